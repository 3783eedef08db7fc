// Signed messages from human operators: approve or reject a held command, restore or quarantine an agent, force a
// device into its reduced limit set. Same rules as commands (JWS, EdDSA only, pinned kid, revocation, validity
// window, short TTL, unique jti, increasing seq), plus the operator's role for the action. Pure apart from the
// injected replay memory; never throws for input.

import type { ValidateFunction } from 'ajv';
import { OPERATOR_VALIDATORS } from '../generated/operator-validators.js';
import { createHash } from 'node:crypto';
import type { Declarations, OperatorDeclaration, OperatorRole } from '../core/declarations.js';
import { parseCompactJws, signCompactJws, verifyJws } from '../crypto/jws.js';
import type { ReplayGuard } from '../envelope/replay-guard.js';
import type { KeyObject } from 'node:crypto';

export const OPERATOR_TOKEN_TYPE = 'interlock-operator+jws';

/** The replay memory keeps operator messages apart from any device's commands under this name. */
export const OPERATOR_CHANNEL = 'operator-channel';

export type OperatorAction = 'approve' | 'reject' | 'restore_agent' | 'quarantine_agent' | 'set_mode';

/** The role an operator needs for each action. */
export const ROLE_FOR: Readonly<Record<OperatorAction, OperatorRole>> = {
  approve: 'approve',
  reject: 'approve',
  restore_agent: 'restore',
  quarantine_agent: 'restore',
  set_mode: 'mode',
};

export type OperatorParams =
  | { readonly action: 'approve' | 'reject'; readonly approvalId: string; readonly commandDigest: string; readonly note?: string }
  | { readonly action: 'restore_agent'; readonly agent: string; readonly note?: string }
  | { readonly action: 'quarantine_agent'; readonly agent: string; readonly reason: string }
  | { readonly action: 'set_mode'; readonly device: string; readonly mode: 'reduced' | 'auto' };

export interface OperatorMessage {
  readonly operator: OperatorDeclaration;
  readonly kid: string;
  readonly jti: string;
  readonly seq: number;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  readonly request: OperatorParams;
  /** sha256 (hex) of the exact message bytes: what the audit record names. */
  readonly digest: string;
}

export type OperatorMessageResult = { readonly ok: true; readonly message: OperatorMessage } | { readonly ok: false; readonly problem: string; readonly operatorId?: string };

// Compiled at build time (scripts/compile-schemas.ts): start-up neither loads ajv's compiler nor compiles.
const validateClaims = OPERATOR_VALIDATORS.claims as ValidateFunction<{ iss: string; aud: string; jti: string; seq: number; iat: number; exp: number; action: OperatorAction; params: Record<string, unknown> }>;

export interface OperatorContext {
  readonly declarations: Declarations;
  readonly replay: ReplayGuard;
  /** Longest exp - iat an operator message may have. */
  readonly maxTtlMs: number;
  readonly nowMs: number;
}

/** Verifies one operator message. On success its jti and seq are consumed, so it can act once only. */
export function verifyOperatorMessage(token: string, context: OperatorContext): OperatorMessageResult {
  const { declarations, nowMs } = context;
  const fail = (problem: string, operatorId?: string): OperatorMessageResult => (operatorId === undefined ? { ok: false, problem } : { ok: false, problem, operatorId });
  const size = Buffer.byteLength(token, 'utf8');
  if (size > declarations.commandLimits.maxTokenBytes) return fail(`message is ${size} bytes, limit ${declarations.commandLimits.maxTokenBytes}`);
  const parsed = parseCompactJws(token);
  if (!parsed.ok) return fail(parsed.problem.message);
  const { jws } = parsed;
  if (jws.header.typ !== OPERATOR_TOKEN_TYPE) return fail(`header typ must be "${OPERATOR_TOKEN_TYPE}", got ${JSON.stringify(jws.header.typ ?? null)}`);
  const key = declarations.keys.get(jws.header.kid);
  // SAFETY: an agent's key can never sign an operator message, whatever the message claims.
  if (key === undefined || key.owner !== 'operator') return fail(`kid ${JSON.stringify(jws.header.kid)} is not an operator key`);
  if (key.revoked !== undefined) return fail(`key ${key.kid} is revoked: ${key.revoked}`, key.agentId);
  if (!(nowMs >= key.notBeforeMs && nowMs < key.notAfterMs)) return fail(`key ${key.kid} is outside its validity window`, key.agentId);
  if (!verifyJws(jws, key.publicKey)) return fail(`signature does not verify with key ${key.kid}`, key.agentId);
  if (!validateClaims(jws.payload)) {
    const error = validateClaims.errors?.[0];
    return fail(`claims ${error?.instancePath || '/'}: ${error?.message ?? 'invalid'}`, key.agentId);
  }
  const claims = jws.payload;
  const operator = declarations.operators.get(key.agentId);
  if (operator === undefined || claims.iss !== operator.id) return fail(`iss ${JSON.stringify(claims.iss)} does not own key ${key.kid}`, key.agentId);
  if (claims.aud !== declarations.cellId) return fail(`aud ${claims.aud} is not this cell (${declarations.cellId})`, operator.id);
  const issuedAtMs = claims.iat * 1000;
  const expiresAtMs = claims.exp * 1000;
  if (!(expiresAtMs > issuedAtMs)) return fail('exp must be later than iat', operator.id);
  if (expiresAtMs - issuedAtMs > context.maxTtlMs) return fail(`time-to-live ${expiresAtMs - issuedAtMs} ms exceeds ${context.maxTtlMs} ms`, operator.id);
  if (!(nowMs < expiresAtMs)) return fail(`expired ${nowMs - expiresAtMs} ms ago`, operator.id);
  if (!(issuedAtMs <= nowMs + declarations.commandLimits.clockSkewMs)) return fail(`iat is ${issuedAtMs - nowMs} ms in the future`, operator.id);
  if (!(issuedAtMs >= context.replay.epochMs)) return fail('issued before the replay memory began; sign it again', operator.id);
  const replay = context.replay.check(operator.id, OPERATOR_CHANNEL, claims.jti, claims.seq);
  if (replay === 'replayed') return fail(`message ${claims.jti} was already received`, operator.id);
  if (replay === 'seq-not-increasing') return fail(`seq ${claims.seq} is not greater than the last accepted ${context.replay.lastSeq(operator.id, OPERATOR_CHANNEL) ?? '?'}`, operator.id);
  context.replay.accept(operator.id, OPERATOR_CHANNEL, claims.jti, claims.seq, expiresAtMs + declarations.commandLimits.clockSkewMs);
  const role = ROLE_FOR[claims.action];
  if (!operator.roles.includes(role)) return fail(`operator ${operator.id} lacks the ${role} role needed to ${claims.action}`, operator.id);
  // SAFETY: the claims schema admits only the five actions, each of which has its params validator; a missing one
  // (a generated file out of step) refuses the message rather than skipping the check.
  const validate = OPERATOR_VALIDATORS[`params:${claims.action}`];
  if (validate === undefined) return fail(`no params schema for ${claims.action}`, operator.id);
  if (!validate(claims.params)) {
    const error = validate.errors?.[0];
    return fail(`params ${error?.instancePath || '/'}: ${error?.message ?? 'invalid'}`, operator.id);
  }
  return {
    ok: true,
    message: {
      operator,
      kid: key.kid,
      jti: claims.jti,
      seq: claims.seq,
      issuedAtMs,
      expiresAtMs,
      request: { action: claims.action, ...claims.params } as OperatorParams,
      digest: createHash('sha256').update(token, 'utf8').digest('hex'),
    },
  };
}

/** Signs an operator message (CLI, tests). `seq` must grow per operator; the time of signing is a good choice. */
export function signOperatorMessage(
  input: { operatorId: string; kid: string; privateKey: KeyObject; cellId: string; request: OperatorParams; nowMs: number; ttlMs: number; seq?: number; jti?: string },
): string {
  const { action, ...params } = input.request;
  const claims = {
    iss: input.operatorId,
    aud: input.cellId,
    jti: input.jti ?? `op-${input.nowMs.toString(36)}-${Math.random().toString(36).slice(2, 10)}`,
    seq: input.seq ?? Math.max(1, Math.floor(input.nowMs)),
    // NumericDate with milliseconds, as commands use: an integer second could predate a start in the same second.
    iat: input.nowMs / 1000,
    exp: (input.nowMs + input.ttlMs) / 1000,
    action,
    params,
  };
  return signCompactJws(claims, input.kid, input.privateKey, OPERATOR_TOKEN_TYPE);
}
