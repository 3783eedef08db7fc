// Every AWS IoT call `interlock provision` makes goes through here: bounded retries with backoff on throttling, and
// each failure turned into one line that names the IoT action (and, when access is denied, the IAM permission). It
// never prints a request's credentials or signature: only the action, the error's name and the service's message.

import type { IoTClient } from '@aws-sdk/client-iot';

/** The IoT API actions provisioning uses; the IAM permission is `iot:<action>`. */
export type IotAction =
  | 'DescribeCustomMetric'
  | 'CreateCustomMetric'
  | 'UpdateCustomMetric'
  | 'DescribeSecurityProfile'
  | 'CreateSecurityProfile'
  | 'UpdateSecurityProfile'
  | 'DescribeThingGroup'
  | 'ListTargetsForSecurityProfile'
  | 'AttachSecurityProfile';

/** The actions that only read: a dry run makes these and no other. */
export const READ_ACTIONS: readonly IotAction[] = ['DescribeCustomMetric', 'DescribeSecurityProfile', 'DescribeThingGroup', 'ListTargetsForSecurityProfile'];
export const WRITE_ACTIONS: readonly IotAction[] = ['CreateCustomMetric', 'UpdateCustomMetric', 'CreateSecurityProfile', 'UpdateSecurityProfile', 'AttachSecurityProfile'];

export type FailureKind = 'not-found' | 'already-exists' | 'version-conflict' | 'throttled' | 'unavailable' | 'access-denied' | 'invalid-request' | 'other';

/** A failed call, classified. `message` is the one line to print. */
export class IotCallError extends Error {
  constructor(
    readonly action: IotAction,
    readonly kind: FailureKind,
    message: string,
    readonly errorName: string,
  ) {
    super(message);
    this.name = 'IotCallError';
  }
}

export interface RetryOptions {
  /** Attempts in all for a throttled or unavailable call (default 5). */
  readonly attempts: number;
  /** First backoff; it doubles each time up to maxDelayMs (defaults 250 ms and 4 s), with jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Injected so tests never wait. */
  readonly sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryOptions = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

const THROTTLING = new Set(['ThrottlingException', 'TooManyRequestsException', 'Throttling', 'RequestLimitExceeded', 'SlowDown']);
const UNAVAILABLE = new Set(['ServiceUnavailableException', 'InternalFailureException', 'InternalServerException']);
const ACCESS_DENIED = new Set(['AccessDeniedException', 'UnauthorizedException', 'AccessDenied', 'UnrecognizedClientException', 'ExpiredTokenException', 'InvalidSignatureException']);

function classify(name: string, status: number | undefined): FailureKind {
  if (name === 'ResourceNotFoundException') return 'not-found';
  if (name === 'ResourceAlreadyExistsException') return 'already-exists';
  if (name === 'VersionConflictException') return 'version-conflict';
  if (THROTTLING.has(name) || status === 429) return 'throttled';
  if (ACCESS_DENIED.has(name) || status === 403) return 'access-denied';
  if (name === 'InvalidRequestException' || name === 'ValidationException') return 'invalid-request';
  if (UNAVAILABLE.has(name) || (status !== undefined && status >= 500)) return 'unavailable';
  return 'other';
}

/** The service's message, on one line and without anything that looks like a key id or token. */
function serviceMessage(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  return raw.replace(/\s+/g, ' ').replace(/\b(AKIA|ASIA)[A-Z0-9]{12,}\b/g, '<access key id>').trim();
}

function describeFailure(action: IotAction, kind: FailureKind, name: string, message: string, attempts: number): string {
  if (name === 'CredentialsProviderError') {
    return `no AWS credentials for iot:${action}: the SDK's default chain (environment, shared config or SSO profile, container or instance role) found none: ${message}`;
  }
  switch (kind) {
    case 'access-denied':
      return `access denied to iot:${action} (${name}): the credentials in use need the IAM permission iot:${action}; see docs/provisioning.md for the whole policy`;
    case 'throttled':
      return `iot:${action} was still throttled (${name}) after ${attempts} attempts; wait a minute and run it again`;
    case 'unavailable':
      return `iot:${action} still failed on the service side (${name}) after ${attempts} attempts: ${message}`;
    case 'invalid-request':
      return `iot:${action} refused the request as invalid (${name}): ${message}`;
    default:
      return `iot:${action} failed (${name}): ${message}`;
  }
}

/** Sends one command, retrying throttled calls with exponential backoff; throws IotCallError on failure. */
export async function callIot<Output>(
  client: IoTClient,
  action: IotAction,
  // One of the client's commands; typed loosely because send's overloads do not accept a union of them.
  command: object,
  retry: RetryOptions = DEFAULT_RETRY,
): Promise<Output> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await client.send(command as never)) as Output;
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      const errorName = typeof name === 'string' ? name : 'Error';
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const kind = classify(errorName, status);
      // The client is built with maxAttempts 1: these retries are the only ones, so their bound is this one.
      if ((kind === 'throttled' || kind === 'unavailable') && attempt < retry.attempts) {
        const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
        await retry.sleep(ceiling / 2 + Math.random() * (ceiling / 2));
        continue;
      }
      throw new IotCallError(action, kind, describeFailure(action, kind, errorName, serviceMessage(error), attempt), errorName);
    }
  }
}
