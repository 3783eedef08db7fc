// The input lines of `interlock check`: a bare JWS, or a JSON object with the command, the state it meets and,
// optionally, the history before it (earlier state messages and releases) that the live interlock would have seen.

import { lazyValidator } from '../core/lazy-validator.js';
import { jsonDepthProblem } from '../core/json-text.js';

/**
 * Deepest nesting of arrays and objects an input line may have. A line with full history is about 7 deep (the token
 * is a string, so nothing inside it counts); past this the line is refused before JSON.parse, ajv or JSON.stringify
 * (which recurses and overflows the stack a few thousand levels down) see it.
 */
export const MAX_LINE_DEPTH = 64;

const SNAPSHOT_PROPERTIES = {
  ageMs: { type: 'number', minimum: 0 },
  steadyMs: { type: 'number', minimum: 0 },
} as const;

/** A state message as a driver publishes it, plus when it arrived (ageMs before atMs). */
const STATE_SNAPSHOT = {
  type: 'object',
  required: ['ageMs'],
  properties: SNAPSHOT_PROPERTIES,
} as const;

const RELEASE = {
  type: 'object',
  additionalProperties: false,
  required: ['device', 'action', 'params', 'ageMs'],
  properties: {
    device: { type: 'string', minLength: 1 },
    action: { type: 'string', minLength: 1 },
    params: { type: 'object' },
    ageMs: { type: 'number', minimum: 0 },
    /** The released command's id (its jti), so that a later state can name it as finished (lastCommandId). */
    commandId: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

/** A JSON input line. A line that does not start with `{` is taken as a bare JWS. */
export const CHECK_LINE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: {
    /** The signed command (JWS compact). */
    token: { type: 'string' },
    /** The device whose command topic it arrived on; defaults to the command's own aud. */
    device: { type: 'string' },
    /** Check as of this time (ms since the epoch); defaults to the wall clock. */
    atMs: { type: 'number', minimum: 0 },
    /** Live state of the target device: the state message a driver publishes, plus its age at atMs. */
    state: STATE_SNAPSHOT,
    /** Live state of other devices (people sources, shared-zone neighbours), by device id. */
    states: { type: 'object', maxProperties: 64, additionalProperties: STATE_SNAPSHOT },
    /** What happened before: earlier state messages (by device id) and releases, each ageMs before atMs. */
    history: {
      type: 'object',
      additionalProperties: false,
      properties: {
        states: { type: 'object', maxProperties: 64, additionalProperties: { type: 'array', maxItems: 10_000, items: STATE_SNAPSHOT } },
        releases: { type: 'array', maxItems: 10_000, items: RELEASE },
      },
    },
  },
} as const;

export type Snapshot = Record<string, unknown> & { ageMs: number; steadyMs?: number };

export interface HistoryRelease {
  readonly device: string;
  readonly action: string;
  readonly params: Record<string, unknown>;
  readonly ageMs: number;
  readonly commandId?: string;
}

export interface CheckLine {
  readonly token: string;
  readonly device?: string;
  readonly atMs?: number;
  readonly state?: Snapshot;
  readonly states?: Record<string, Snapshot>;
  readonly history?: { readonly states?: Record<string, Snapshot[]>; readonly releases?: HistoryRelease[] };
}

// Compiled at the first input line (only `interlock check` reads them).
const lineValidator = lazyValidator<CheckLine>(CHECK_LINE_SCHEMA, { strict: true, allErrors: false });

/** Reads one non-blank input line; a problem names the field. */
export function readCheckLine(trimmed: string): { ok: true; line: CheckLine } | { ok: false; problem: string } {
  if (!trimmed.startsWith('{')) return { ok: true, line: { token: trimmed } };
  // SAFETY: depth first; every later step may recurse.
  const deep = jsonDepthProblem(trimmed, MAX_LINE_DEPTH);
  if (deep !== undefined) return { ok: false, problem: `line ${deep}` };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    return { ok: false, problem: `line is not valid JSON: ${(error as Error).message}` };
  }
  const validateLine = lineValidator();
  if (!validateLine(value)) {
    const error = validateLine.errors?.[0];
    const extra = error?.keyword === 'additionalProperties' ? ` "${(error.params as { additionalProperty: string }).additionalProperty}"` : '';
    return { ok: false, problem: `line ${error?.instancePath || '/'}: ${error?.message ?? 'invalid'}${extra}` };
  }
  return { ok: true, line: value };
}

/** Reads aud from a token without trusting it: only used to attach the supplied state to the right device. */
export function audOf(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { aud?: unknown };
    return typeof claims.aud === 'string' ? claims.aud : undefined;
  } catch {
    return undefined;
  }
}
