// The one catalog of stable reason codes. Every deny, hold or note the interlock emits uses a code from here;
// codes are part of the public contract (agents re-plan on them), so they are never renamed or reused.

import { KIND_REASONS } from './kinds/index.js';
import type { ReasonSpec, Stage } from './reasons-spec.js';

export type { ReasonSpec, Stage };

const BASE_REASONS = {
  INPUT_INVALID: {
    stage: 'input',
    summary: 'An input line or message could not be read as a command (not JSON, not a JWS, wrong shape).',
  },
  ENVELOPE_OVERSIZE: {
    stage: 'envelope',
    summary: 'The signed command is larger than the declared maximum token size.',
  },
  ENVELOPE_MALFORMED: {
    stage: 'envelope',
    summary: 'The command is not a well-formed JWS compact serialization with a JSON header and payload.',
  },
  ENVELOPE_ALG_REJECTED: {
    stage: 'envelope',
    summary: 'The JWS header names an algorithm other than EdDSA (for example none or HS256), or carries unknown header fields.',
  },
  ENVELOPE_UNKNOWN_KEY: {
    stage: 'envelope',
    summary: 'The JWS kid is not in the cell\'s agent registry.',
  },
  ENVELOPE_BAD_SIGNATURE: {
    stage: 'envelope',
    summary: 'The Ed25519 signature does not verify with the registered key for the kid.',
  },
  ENVELOPE_INVALID_CLAIMS: {
    stage: 'envelope',
    summary: 'The signed claims are missing a field, carry an unknown field, or a field has the wrong type.',
  },
  ENVELOPE_ISSUER_MISMATCH: {
    stage: 'envelope',
    summary: 'The iss claim is not the agent that owns the signing key.',
  },
  ENVELOPE_WRONG_AUDIENCE: {
    stage: 'envelope',
    summary: 'The aud claim does not name the device whose command topic carried the command.',
  },
  ENVELOPE_EXPIRED: {
    stage: 'envelope',
    summary: 'The command\'s exp time has passed.',
  },
  ENVELOPE_NOT_YET_VALID: {
    stage: 'envelope',
    summary: 'The command\'s iat lies in the future by more than the allowed clock skew.',
  },
  ENVELOPE_TTL_TOO_LONG: {
    stage: 'envelope',
    summary: 'exp - iat exceeds the cell\'s maximum command time-to-live.',
  },
  ENVELOPE_KEY_REVOKED: {
    stage: 'envelope',
    summary: 'The signing key (kid) is on the cell\'s revocation list; the declared reason is given.',
  },
  ENVELOPE_KEY_NOT_VALID: {
    stage: 'envelope',
    summary: 'The signing key is outside its declared validity window (before notBefore or from notAfter on).',
  },
  ENVELOPE_ISSUED_BEFORE_START: {
    stage: 'envelope',
    summary: 'The command was issued before the interlock\'s replay memory began, so it cannot be proven new.',
  },
  ENVELOPE_REPLAYED: {
    stage: 'envelope',
    summary: 'A command with this jti was already seen.',
  },
  ENVELOPE_SEQ_NOT_INCREASING: {
    stage: 'envelope',
    summary: 'The seq claim is not greater than the last one accepted from this agent for this device.',
  },
  COMMAND_UNKNOWN_DEVICE: {
    stage: 'envelope',
    summary: 'The command targets a device that the cell does not declare.',
  },
  COMMAND_UNKNOWN_ACTION: {
    stage: 'envelope',
    summary: 'The action is not one the device\'s kind supports.',
  },
  COMMAND_INVALID_PARAMS: {
    stage: 'envelope',
    summary: 'The action\'s parameters are missing, of the wrong type, non-finite, or carry unknown fields.',
  },
  POLICY_NO_PERMIT: {
    stage: 'policy',
    summary: 'No Cedar policy permits this agent to perform this action on this device (default deny).',
  },
  POLICY_FORBIDDEN: {
    stage: 'policy',
    summary: 'A Cedar forbid policy matched; the policy ids are listed in ruleId.',
  },
  POLICY_ERROR: {
    stage: 'policy',
    summary: 'Cedar evaluation failed or reported an error for some policy; an indeterminate policy is a deny.',
  },
  POLICY_SCOPE_OBSERVE_ONLY: {
    stage: 'policy',
    summary: 'The agent has autonomy scope 1: it may observe but never actuate.',
  },
  POLICY_APPROVAL_REQUIRED: {
    stage: 'policy',
    summary: 'Hold: the command needs a human approval (scope 2 agent, or a permit annotated @approval); it waits for an operator.',
  },
  TRUST_QUARANTINED: {
    stage: 'trust',
    summary: 'The agent is quarantined after repeated denials (or by an operator): every actuation is denied until an operator restores it.',
  },
  APPROVAL_PENDING_LIMIT: {
    stage: 'approval',
    summary: 'The agent already has the declared maximum of pending approvals on this device (flood limit).',
  },
  APPROVAL_GRANTED: {
    stage: 'approval',
    summary: 'Note on an allow: an operator approved this exact command, and it was re-checked against the current state.',
  },
  APPROVAL_REJECTED: {
    stage: 'approval',
    summary: 'An operator rejected the held command.',
  },
  APPROVAL_EXPIRED: {
    stage: 'approval',
    summary: 'No valid operator answer arrived before the held command\'s pending time ran out.',
  },
  APPROVAL_STATE_DRIFT: {
    stage: 'approval',
    summary: 'The device\'s state moved beyond a declared tolerance between the hold and the approval, so the approval is void.',
  },
  APPROVAL_RECHECK_FAILED: {
    stage: 'approval',
    summary: 'On approval the command was checked again against the current state and policies, and no longer passes.',
  },
  BOUNDS_NOT_DECLARED: {
    stage: 'bounds',
    summary: 'The device declares no bounds that cover this action, so it cannot be proven safe.',
  },
  BOUNDS_STATE_MISSING: {
    stage: 'bounds',
    summary: 'No live state has been received from the device, so the command cannot be checked against it.',
  },
  BOUNDS_STATE_STALE: {
    stage: 'bounds',
    summary: 'The device\'s latest state is older than its declared maximum state age.',
  },
  BOUNDS_STATE_INVALID: {
    stage: 'bounds',
    summary: 'The device\'s latest state is malformed (wrong joint count, non-finite values).',
  },
  BOUNDS_RATE_LIMIT: {
    stage: 'bounds',
    summary: 'The agent, or all agents together for this device, sent more commands in the window than the declared rate allows.',
  },
  BOUNDS_SHARED_ZONE_OCCUPIED: {
    stage: 'bounds',
    summary: 'The command would take the device into a shared zone that another device occupies or has been released into.',
  },
  BOUNDS_STATE_KIND_MISMATCH: {
    stage: 'bounds',
    summary: 'The state held for the device is not of the device\'s kind (a driver or configuration fault).',
  },
  SAFE_STATE_COMMAND: {
    stage: 'decide',
    summary: 'Note on an allow: a safe-state command (stop) from an authenticated agent passes policy and bounds.',
  },
  APPROVAL_DECLARATIONS_CHANGED: {
    stage: 'approval',
    summary: 'The command was held under declarations that were replaced before an operator answered, so it is denied; the agent may send it again.',
  },
  AUDIT_WRITE_FAILED: {
    stage: 'audit',
    summary: 'The decision could not be durably recorded, so nothing is released (a safe-state command still passes and the failure is reported).',
  },
  AUDIT_LOG_FULL: {
    stage: 'audit',
    summary: 'The audit log is at its size cap with records the cloud has not acknowledged yet, so nothing but a safe-state command is released.',
  },
  AUDIT_DISK_FULL: {
    stage: 'audit',
    summary: 'The file system holding the audit log is full, so nothing but a safe-state command is released until space returns.',
  },
  AUDIT_OUTCOME_UNKNOWN: {
    stage: 'audit',
    summary: 'An I/O error during commit left it unknown whether the record is on disk; nothing is released and the log reconciles when it reopens.',
  },
  AUDIT_UNAVAILABLE: {
    stage: 'audit',
    summary: 'The audit log is closed or recovering from an earlier failure, so nothing but a safe-state command is released.',
  },
  INTERNAL_ERROR: {
    stage: 'internal',
    summary: 'An unexpected error occurred while checking the command; the interlock fails closed.',
  },
} as const satisfies Record<string, ReasonSpec>;

/** Every code: the ones above plus each device kind's own (src/core/kinds/). */
export const REASON_CATALOG = { ...BASE_REASONS, ...KIND_REASONS } as const;

export type ReasonCode = keyof typeof REASON_CATALOG;

export const REASON_CODES = Object.keys(REASON_CATALOG) as ReasonCode[];

/**
 * Why a command was denied, held or noted. Names the rule that fired and, for a physical limit, the limit and
 * the actual value in the same unit, so an agent can re-plan without parsing the message.
 */
export interface Reason {
  readonly stage: Stage;
  readonly code: ReasonCode;
  readonly message: string;
  /** The bound id (e.g. `arm-1/joints/elbow/position`) or Cedar policy id(s) that fired. */
  readonly ruleId?: string;
  /** The field of the command or declaration concerned, as a JSON pointer. */
  readonly path?: string;
  readonly limit?: number;
  readonly actual?: number;
  readonly unit?: string;
}

export type ReasonDetails = Omit<Reason, 'stage' | 'code' | 'message'>;

export function reason(code: ReasonCode, message: string, details: ReasonDetails = {}): Reason {
  return { stage: REASON_CATALOG[code].stage, code, message, ...details };
}

/**
 * The reasons as JSON carries them. A limit or actual that is not a finite number (NaN, ±Infinity: what hostile or
 * broken input produces) has no JSON form, and the audit log refuses what it cannot store exactly, so such a value
 * moves into the message, in words. Finite values are left alone; a reason without such values is returned as is.
 */
export function recordableReasons(reasons: readonly Reason[]): readonly Reason[] {
  // SAFETY: without this an agent could make its own denial unrecordable by sending a number that overflows.
  if (reasons.every((r) => isFiniteOrAbsent(r.limit) && isFiniteOrAbsent(r.actual))) return reasons;
  return reasons.map((r) => {
    if (isFiniteOrAbsent(r.limit) && isFiniteOrAbsent(r.actual)) return r;
    const { limit, actual, ...rest } = r;
    const words = [limit === undefined ? '' : `limit ${String(limit)}`, actual === undefined ? '' : `actual ${String(actual)}`].filter((w) => w !== '');
    return {
      ...rest,
      message: `${r.message} [${words.join(', ')}${r.unit === undefined ? '' : ` ${r.unit}`}]`,
      ...(limit !== undefined && Number.isFinite(limit) ? { limit } : {}),
      ...(actual !== undefined && Number.isFinite(actual) ? { actual } : {}),
    };
  });
}

function isFiniteOrAbsent(value: number | undefined): boolean {
  return value === undefined || Number.isFinite(value);
}
