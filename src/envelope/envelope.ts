// The envelope stage: who sent this command, is it fresh, not replayed, addressed to a declared device, and are
// its parameters well-formed for the action. Pure apart from the injected replay guard; never throws for input.

import type { ErrorObject, ValidateFunction } from 'ajv';
import { ENVELOPE_VALIDATORS } from '../generated/envelope-validators.js';
import { COMMAND_TOKEN_TYPE, type CommandClaims, type VerifiedCommand } from '../core/command.js';
import type { Declarations, Principal } from '../core/declarations.js';
import { actionSpec } from '../core/kinds/index.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, type StageResult } from '../core/verdict.js';
import { parseCompactJws, verifyJws } from '../crypto/jws.js';
import type { ReplayGuard } from './replay-guard.js';

// Compiled at build time (scripts/compile-schemas.ts): start-up neither loads ajv's compiler nor compiles.
const validateClaims = ENVELOPE_VALIDATORS.claims as ValidateFunction<CommandClaims>;

export interface EnvelopeInput {
  /** The exact bytes received. */
  readonly token: string;
  /** The device named by the topic the command arrived on; undefined offline (then aud alone names it). */
  readonly topicDeviceId?: string;
}

export interface EnvelopeContext {
  readonly declarations: Declarations;
  readonly replay: ReplayGuard;
  readonly nowMs: number;
  /**
   * A signature check already done elsewhere (a worker thread) for this exact token: the answer for `kid`, or
   * undefined when it has none (then the envelope verifies itself).
   */
  readonly signatureHint?: (kid: string) => boolean | undefined;
}

/** What is known about a command even when it is denied; only authenticated facts are filled in. */
export interface EnvelopeIdentity {
  readonly agentId?: string;
  readonly commandId?: string;
  readonly deviceId?: string;
  readonly action?: string;
  readonly seq?: number;
}

export type EnvelopeOutcome =
  | { readonly ok: true; readonly command: VerifiedCommand }
  | { readonly ok: false; readonly result: StageResult; readonly identity: EnvelopeIdentity };

function firstIssue(errors: readonly ErrorObject[] | null | undefined): { path: string; message: string } {
  const error = errors?.[0];
  if (error === undefined) return { path: '', message: 'invalid' };
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return { path: `${error.instancePath}/${extra}`, message: `unknown field "${extra}"` };
  }
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return { path: `${error.instancePath}/${missing}`, message: `missing field "${missing}"` };
  }
  return { path: error.instancePath, message: error.message ?? error.keyword };
}

export function checkEnvelope(input: EnvelopeInput, context: EnvelopeContext): EnvelopeOutcome {
  const { declarations, nowMs } = context;
  const deny = (r: Reason, identity: EnvelopeIdentity = {}): EnvelopeOutcome => ({ ok: false, result: denyWith(r), identity });

  const size = Buffer.byteLength(input.token, 'utf8');
  const maxBytes = declarations.commandLimits.maxTokenBytes;
  if (size > maxBytes) {
    return deny(reason('ENVELOPE_OVERSIZE', `command is ${size} bytes, limit ${maxBytes}`, { limit: maxBytes, actual: size, unit: 'B' }));
  }
  // No trimming: one command has exactly one byte form, so its digest and replay identity are unique.
  const parsed = parseCompactJws(input.token);
  if (!parsed.ok) {
    return deny(reason(parsed.problem.kind === 'algorithm' ? 'ENVELOPE_ALG_REJECTED' : 'ENVELOPE_MALFORMED', parsed.problem.message));
  }
  const { jws } = parsed;
  // RFC 8725 explicit typing: a JWS the agent's key signed for some other purpose is not a command.
  if (jws.header.typ !== COMMAND_TOKEN_TYPE) {
    return deny(reason('ENVELOPE_MALFORMED', `header typ must be "${COMMAND_TOKEN_TYPE}", got ${JSON.stringify(jws.header.typ ?? null)}`));
  }
  // SAFETY: the kid only selects a pinned key from the registry (a Map: no prototype keys); nothing in the
  // token can supply a key.
  const key = declarations.keys.get(jws.header.kid);
  if (key === undefined) return deny(reason('ENVELOPE_UNKNOWN_KEY', `kid ${JSON.stringify(jws.header.kid)} is not registered`));
  if (key.revoked !== undefined) return deny(reason('ENVELOPE_KEY_REVOKED', `key ${key.kid} of ${key.owner} ${key.agentId} is revoked: ${key.revoked}`, { ruleId: `revoked/${key.kid}` }));
  // SAFETY: written as "inside the window" so that a NaN clock is outside it.
  if (!(nowMs >= key.notBeforeMs && nowMs < key.notAfterMs)) {
    // SAFETY: a broken clock (NaN, +Infinity) is a deny value like any other: the message must not be built from the
    // unbounded end of a window (new Date(Infinity).toISOString() throws).
    if (!Number.isFinite(nowMs)) return deny(reason('ENVELOPE_KEY_NOT_VALID', `key ${key.kid} of ${key.owner} ${key.agentId} cannot be shown valid: the clock reads ${nowMs}`));
    const early = nowMs < key.notBeforeMs;
    return deny(
      reason('ENVELOPE_KEY_NOT_VALID', `key ${key.kid} of ${key.owner} ${key.agentId} is ${early ? `not valid before ${new Date(key.notBeforeMs).toISOString()}` : `expired at ${new Date(key.notAfterMs).toISOString()}`}`, {
        limit: early ? key.notBeforeMs : key.notAfterMs,
        actual: nowMs,
        unit: 'ms',
      }),
    );
  }
  if (!(context.signatureHint?.(key.kid) ?? verifyJws(jws, key.publicKey))) {
    return deny(reason('ENVELOPE_BAD_SIGNATURE', `signature does not verify with key ${key.kid} of ${key.owner} ${key.agentId}`));
  }
  // From here the payload is authentic: it is what the key holder signed.
  if (!validateClaims(jws.payload)) {
    const issue = firstIssue(validateClaims.errors);
    return deny(reason('ENVELOPE_INVALID_CLAIMS', `claims ${issue.path || '/'}: ${issue.message}`, { path: issue.path }));
  }
  const claims = jws.payload;
  const agent: Principal | undefined = key.owner === 'agent' ? declarations.agents.get(key.agentId) : declarations.operators.get(key.agentId);
  if (agent === undefined || claims.iss !== key.agentId) {
    return deny(reason('ENVELOPE_ISSUER_MISMATCH', `iss ${JSON.stringify(claims.iss)} does not own key ${key.kid} (owner ${key.agentId})`));
  }
  const identity: EnvelopeIdentity = { agentId: agent.id, commandId: claims.jti, deviceId: claims.aud, action: claims.action, seq: claims.seq };
  if (input.topicDeviceId !== undefined && claims.aud !== input.topicDeviceId) {
    return deny(reason('ENVELOPE_WRONG_AUDIENCE', `aud ${claims.aud} arrived on the command topic of ${input.topicDeviceId}`), identity);
  }
  const issuedAtMs = claims.iat * 1000;
  const expiresAtMs = claims.exp * 1000;
  const { maxTtlMs, clockSkewMs } = declarations.commandLimits;
  if (!(expiresAtMs > issuedAtMs)) {
    return deny(reason('ENVELOPE_INVALID_CLAIMS', 'exp must be later than iat', { path: '/exp' }), identity);
  }
  if (expiresAtMs - issuedAtMs > maxTtlMs) {
    return deny(
      reason('ENVELOPE_TTL_TOO_LONG', `time-to-live ${expiresAtMs - issuedAtMs} ms exceeds ${maxTtlMs} ms`, {
        limit: maxTtlMs,
        actual: expiresAtMs - issuedAtMs,
        unit: 'ms',
      }),
      identity,
    );
  }
  // RFC 7519: the token must not be accepted on or after exp.
  // SAFETY: written as "not before exp" so that a NaN clock is expired, never fresh.
  if (!(nowMs < expiresAtMs)) {
    return deny(reason('ENVELOPE_EXPIRED', `expired ${nowMs - expiresAtMs} ms ago`, { limit: expiresAtMs, actual: nowMs, unit: 'ms' }), identity);
  }
  if (!(issuedAtMs <= nowMs + clockSkewMs)) {
    return deny(
      reason('ENVELOPE_NOT_YET_VALID', `iat is ${issuedAtMs - nowMs} ms in the future (allowed skew ${clockSkewMs} ms)`, {
        limit: clockSkewMs,
        actual: issuedAtMs - nowMs,
        unit: 'ms',
      }),
      identity,
    );
  }
  // SAFETY: a command issued before the replay memory began may have been accepted by a run whose memory is lost
  // (a crash, a power cut, a new database): it cannot be proven new, so it is refused.
  if (!(issuedAtMs >= context.replay.epochMs)) {
    return deny(
      reason('ENVELOPE_ISSUED_BEFORE_START', `issued ${context.replay.epochMs - issuedAtMs} ms before the replay memory began (${new Date(context.replay.epochMs).toISOString()}); send it again`, {
        limit: context.replay.epochMs,
        actual: issuedAtMs,
        unit: 'ms',
      }),
      identity,
    );
  }
  // Before replay memory is touched: a command for an undeclared device is always denied, and checking it first
  // keeps an agent from growing the per-device seq memory with made-up device ids.
  const device = declarations.devices.get(claims.aud);
  if (device === undefined) return deny(reason('COMMAND_UNKNOWN_DEVICE', `device ${claims.aud} is not declared in cell ${declarations.cellId}`), identity);
  const replay = context.replay.check(agent.id, claims.aud, claims.jti, claims.seq);
  if (replay === 'replayed') return deny(reason('ENVELOPE_REPLAYED', `command ${claims.jti} was already received`), identity);
  if (replay === 'seq-not-increasing') {
    const last = context.replay.lastSeq(agent.id, claims.aud);
    return deny(
      reason('ENVELOPE_SEQ_NOT_INCREASING', `seq ${claims.seq} is not greater than the last accepted ${last ?? '?'}`, {
        actual: claims.seq,
        ...(last === undefined ? {} : { limit: last }),
      }),
      identity,
    );
  }
  // SAFETY: recorded before the remaining checks, so a signed command is never usable twice, even if denied now.
  context.replay.accept(agent.id, claims.aud, claims.jti, claims.seq, expiresAtMs + clockSkewMs);

  const spec = actionSpec(device.kind, claims.action);
  const validateParams = ENVELOPE_VALIDATORS[`params:${device.kind}/${claims.action}`];
  if (spec === undefined || validateParams === undefined) {
    return deny(reason('COMMAND_UNKNOWN_ACTION', `a ${device.kind} has no action ${claims.action}`), identity);
  }
  if (!validateParams(claims.params)) {
    const issue = firstIssue(validateParams.errors);
    return deny(reason('COMMAND_INVALID_PARAMS', `params ${issue.path || '/'}: ${issue.message}`, { path: `/params${issue.path}` }), identity);
  }
  const command: VerifiedCommand = {
    commandId: claims.jti,
    kid: key.kid,
    seq: claims.seq,
    agent,
    device,
    action: claims.action,
    params: claims.params,
    safeState: spec.safeState,
    issuedAtMs,
    expiresAtMs,
    ...(claims.trace === undefined ? {} : { trace: claims.trace }),
  };
  return { ok: true, command };
}
