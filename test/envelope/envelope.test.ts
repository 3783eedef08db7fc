// Adversarial unit tests for the envelope stage: size, JWS structure, key selection, signature, claims shape,
// issuer, audience, freshness, replay and parameters. Each hostile input must deny with its exact reason code.
// Real demo-cell declarations, real Ed25519 keys, a fixed injected clock; no sockets.

import { randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ObservedState, StateView } from '../../src/core/device-state.js';
import { COMMAND_TOKEN_TYPE } from '../../src/core/command.js';
import type { Reason } from '../../src/core/reasons.js';
import { generateEd25519KeyPair, signCompactJws } from '../../src/crypto/jws.js';
import { checkEnvelope, type EnvelopeOutcome } from '../../src/envelope/envelope.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { evaluateCommand, BoundsMemory, NO_RELEASES } from '../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { signRawJws } from '../helpers/tokens.js';

/** A fixed "now" on a whole second, so iat/exp in seconds convert to exact milliseconds. */
const NOW = 1_700_000_000_000;
const S = NOW / 1000;

// A second arm (same limits, id arm-2) so that audience and per-device seq can be exercised.
const arm2Yaml = readFileSync(join(DEMO_CELL, 'devices', 'arm-1.yaml'), 'utf8').replace(/^id: arm-1$/m, 'id: arm-2');
const cell = makeTestCell({ 'devices/arm-2.yaml': arm2Yaml });
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const { declarations } = loaded;

const HOME = [0, -1, 0, 0, 0, 0];
const MOVE = { positionsRad: [0.1, -1.2, 0.3, 0, 0, 0], velocityRadPerS: 0.5 };

function key(agentId: string): { kid: string; privateKey: KeyObject } {
  const k = cell.agentKeys.get(agentId);
  if (k === undefined) throw new Error(`no key for ${agentId}`);
  return k;
}

let seqCounter = 1;
/** Well-formed claims for planner-1 -> arm-1 move_joints, valid at NOW; overrides replace fields (undefined drops one). */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  seqCounter += 1;
  return {
    iss: 'planner-1',
    aud: 'arm-1',
    jti: randomUUID(),
    seq: seqCounter,
    iat: S,
    exp: S + 2,
    action: 'move_joints',
    params: MOVE,
    ...overrides,
  };
}

/** Signs claims with an agent's registered key (JSON.stringify drops undefined fields). */
function signed(claimsValue: unknown, agentId = 'planner-1', typ: string = COMMAND_TOKEN_TYPE): string {
  const k = key(agentId);
  return signCompactJws(claimsValue, k.kid, k.privateKey, typ);
}

/** Signs an exact payload text (for JSON that JSON.stringify cannot produce: 1e400, -0, __proto__ keys). */
function signedRaw(payloadText: string, agentId = 'planner-1', kid?: string): string {
  const k = key(agentId);
  return signRawJws(JSON.stringify({ alg: 'EdDSA', kid: kid ?? k.kid, typ: COMMAND_TOKEN_TYPE }), payloadText, k.privateKey);
}

/** Claims as JSON text with the placeholder string "@RAW@" replaced by `raw` (one occurrence). */
function rawClaims(overrides: Record<string, unknown>, raw: string): string {
  const text = JSON.stringify(claims(overrides));
  if (!text.includes('"@RAW@"')) throw new Error('placeholder missing');
  return text.replace('"@RAW@"', raw);
}

function freshGuard(): MemoryReplayGuard {
  return new MemoryReplayGuard(() => NOW);
}

function check(token: string, options: { topicDeviceId?: string; nowMs?: number; replay?: MemoryReplayGuard } = {}): EnvelopeOutcome {
  return checkEnvelope(options.topicDeviceId === undefined ? { token } : { token, topicDeviceId: options.topicDeviceId }, {
    declarations,
    replay: options.replay ?? freshGuard(),
    nowMs: options.nowMs ?? NOW,
  });
}

type Expected = { code: Reason['code'] } & Partial<Pick<Reason, 'path' | 'limit' | 'actual' | 'unit' | 'ruleId'>>;

/** Asserts a deny with exactly one reason matching `expected` (only the listed detail fields are compared). */
function assertDenied(t: Test, outcome: EnvelopeOutcome, expected: Expected, name: string): void {
  if (outcome.ok) {
    t.fail(`${name}: expected ${expected.code}, but the envelope passed`);
    return;
  }
  t.equal(outcome.result.verdict, 'deny', `${name}: verdict`);
  t.equal(outcome.result.reasons.length, 1, `${name}: one reason`);
  const r = outcome.result.reasons[0];
  t.equal(r?.code, expected.code, `${name}: code`);
  t.equal(r?.stage, 'envelope', `${name}: stage`);
  for (const field of ['path', 'limit', 'actual', 'unit', 'ruleId'] as const) {
    if (field in expected) t.equal(r?.[field], expected[field], `${name}: ${field}`);
  }
}

function freshState(positionsRad: readonly number[] = HOME): StateView {
  const observed: ObservedState = { state: { kind: 'robot_arm', positionsRad, moving: false }, receivedAtMs: NOW - 10 };
  // amr-1, the cell's people source, reports nobody near the table: the arm checks in its normal limits.
  return withAmrReport({ latest: (deviceId) => (deviceId === 'arm-1' || deviceId === 'arm-2' ? observed : undefined) }, amrReport(NOW - 10));
}

/**
 * Builds a valid planner-1 token of exactly `bytes` bytes by padding the signed header and payload with JSON
 * whitespace (which JSON.parse ignores). base64url lengths are never 1 mod 4, so both parts are varied.
 */
function tokenOfSize(bytes: number): string {
  const k = key('planner-1');
  const text = JSON.stringify(claims());
  const header = JSON.stringify({ alg: 'EdDSA', kid: k.kid, typ: COMMAND_TOKEN_TYPE });
  const build = (headerPad: number, payloadPad: number): string => {
    return signRawJws(`${header.slice(0, -1)}${' '.repeat(headerPad)}}`, `${text.slice(0, -1)}${' '.repeat(payloadPad)}}`, k.privateKey);
  };
  const base = build(0, 0).length;
  for (let headerPad = 0; headerPad < 4; headerPad += 1) {
    for (let payloadPad = Math.max(0, Math.floor(((bytes - base) * 3) / 4) - 8); payloadPad < bytes; payloadPad += 1) {
      const token = build(headerPad, payloadPad);
      if (token.length === bytes) return token;
      if (token.length > bytes) break;
    }
  }
  throw new Error(`cannot build a token of ${bytes} bytes`);
}

t.test('declarations used by these tests', async (t) => {
  t.equal(declarations.commandLimits.maxTokenBytes, 8192);
  t.equal(declarations.commandLimits.maxTtlMs, 5000);
  t.equal(declarations.commandLimits.clockSkewMs, 1000);
  t.ok(declarations.devices.has('arm-2'));
});

t.test('a well-formed command passes and carries the authenticated facts', async (t) => {
  const outcome = check(signed(claims({ jti: 'cmd-00000001', seq: 7 })), { topicDeviceId: 'arm-1' });
  t.ok(outcome.ok);
  if (!outcome.ok) return;
  t.equal(outcome.command.commandId, 'cmd-00000001');
  t.equal(outcome.command.agent.id, 'planner-1');
  t.equal(outcome.command.device.id, 'arm-1');
  t.equal(outcome.command.seq, 7);
  t.equal(outcome.command.issuedAtMs, NOW);
  t.equal(outcome.command.expiresAtMs, NOW + 2000);
  t.equal(outcome.command.safeState, false);
  t.same(outcome.command.params, MOVE);
});

t.test('size limit (8 KiB from cell.yaml): counted in bytes before any parsing', async (t) => {
  const atLimit = tokenOfSize(8192);
  t.equal(Buffer.byteLength(atLimit), 8192, 'fixture is exactly 8192 bytes');
  t.ok(check(atLimit).ok, 'a valid token of exactly 8192 bytes passes');
  const overLimit = tokenOfSize(8193);
  assertDenied(t, check(overLimit), { code: 'ENVELOPE_OVERSIZE', limit: 8192, actual: 8193, unit: 'B' }, 'valid token of 8193 bytes');
  assertDenied(t, check('a'.repeat(1024 * 1024)), { code: 'ENVELOPE_OVERSIZE', limit: 8192, actual: 1024 * 1024, unit: 'B' }, '1 MiB of garbage');
  // 2731 three-byte characters are only 2731 UTF-16 units but 8193 bytes.
  assertDenied(t, check('€'.repeat(2731)), { code: 'ENVELOPE_OVERSIZE', limit: 8192, actual: 8193, unit: 'B' }, 'multi-byte characters count as bytes');
});

t.test('malformed tokens and rejected algorithms', async (t) => {
  const good = signed(claims());
  const [h, p, s] = good.split('.') as [string, string, string];
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const cases: { name: string; token: string; code: Reason['code'] }[] = [
    { name: 'empty string', token: '', code: 'ENVELOPE_MALFORMED' },
    { name: 'plain JSON claims, unsigned', token: JSON.stringify(claims()), code: 'ENVELOPE_MALFORMED' },
    { name: 'two parts', token: `${h}.${p}`, code: 'ENVELOPE_MALFORMED' },
    { name: 'four parts', token: `${good}.${s}`, code: 'ENVELOPE_MALFORMED' },
    { name: 'padding', token: `${good}==`, code: 'ENVELOPE_MALFORMED' },
    { name: 'signature truncated to 63 bytes', token: `${h}.${p}.${Buffer.from(s, 'base64url').subarray(0, 63).toString('base64url')}`, code: 'ENVELOPE_MALFORMED' },
    { name: 'alg none with empty signature', token: `${b64({ alg: 'none', kid: 'planner-1-k1' })}.${p}.`, code: 'ENVELOPE_ALG_REJECTED' },
    { name: 'alg HS256', token: `${b64({ alg: 'HS256', kid: 'planner-1-k1' })}.${p}.${s}`, code: 'ENVELOPE_ALG_REJECTED' },
    { name: 'alg missing', token: `${b64({ kid: 'planner-1-k1' })}.${p}.${s}`, code: 'ENVELOPE_ALG_REJECTED' },
    { name: 'embedded jwk', token: `${b64({ alg: 'EdDSA', kid: 'planner-1-k1', jwk: {} })}.${p}.${s}`, code: 'ENVELOPE_ALG_REJECTED' },
  ];
  for (const c of cases) assertDenied(t, check(c.token), { code: c.code }, c.name);
});

t.test('key selection: only a registered kid selects a key, and the signature must verify with it', async (t) => {
  const intruder = generateEd25519KeyPair();
  const body = claims();
  const cases: { name: string; token: string; code: Reason['code'] }[] = [
    { name: 'kid not in the registry', token: signCompactJws(body, 'intruder-k1', intruder.privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_UNKNOWN_KEY' },
    { name: 'kid __proto__', token: signCompactJws(body, '__proto__', intruder.privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_UNKNOWN_KEY' },
    { name: 'kid constructor', token: signCompactJws(body, 'constructor', intruder.privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_UNKNOWN_KEY' },
    { name: 'kid toString', token: signCompactJws(body, 'toString', intruder.privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_UNKNOWN_KEY' },
    { name: 'kid of an agent id, not a kid', token: signCompactJws(body, 'planner-1', intruder.privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_UNKNOWN_KEY' },
    { name: 'kid differing only in case', token: signCompactJws(body, 'PLANNER-1-k1', key('planner-1').privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_UNKNOWN_KEY' },
    // A registered kid with a key the registry does not hold.
    { name: 'planner-1 kid, intruder key', token: signCompactJws(body, 'planner-1-k1', intruder.privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_BAD_SIGNATURE' },
    // One agent's key cannot sign under another agent's kid.
    { name: 'planner-1 kid, trainee-1 key', token: signCompactJws(body, 'planner-1-k1', key('trainee-1').privateKey, COMMAND_TOKEN_TYPE), code: 'ENVELOPE_BAD_SIGNATURE' },
  ];
  for (const c of cases) assertDenied(t, check(c.token), { code: c.code }, c.name);
  // Tampering after signing.
  const good = signed(claims());
  const [h, , s] = good.split('.') as [string, string, string];
  const tamperedPayload = Buffer.from(JSON.stringify(claims({ params: { positionsRad: [3, 0, 0, 0, 0, 0], velocityRadPerS: 3 } }))).toString('base64url');
  assertDenied(t, check(`${h}.${tamperedPayload}.${s}`), { code: 'ENVELOPE_BAD_SIGNATURE' }, 'payload swapped under the original signature');
  t.same(
    (check(`${h}.${tamperedPayload}.${s}`) as { identity: unknown }).identity,
    {},
    'nothing from an unauthenticated payload is reported as identity',
  );
});

t.test('claims shape: every deviation is ENVELOPE_INVALID_CLAIMS naming the field', async (t) => {
  const required = ['iss', 'aud', 'jti', 'seq', 'iat', 'exp', 'action', 'params'] as const;
  const cases: { name: string; token: string; path: string }[] = [
    // Missing each required field.
    ...required.map((field) => ({ name: `missing ${field}`, token: signed(claims({ [field]: undefined })), path: `/${field}` })),
    { name: 'extra field (role)', token: signed(claims({ role: 'admin' })), path: '/role' },
    { name: 'extra field (kid in claims)', token: signed(claims({ kid: 'observer-1-k1' })), path: '/kid' },
    // A __proto__ own key (JSON.parse makes it a real property) is an unknown field, not a prototype.
    { name: '__proto__ key', token: signedRaw(rawClaims({ iss: 'planner-1', x: '@RAW@' }, '{}').replace('"x":', '"__proto__":')), path: '/__proto__' },
    { name: 'extra field inside trace', token: signed(claims({ trace: { session: 's', user: 'root' } })), path: '/trace/user' },
    { name: 'claims is an array', token: signed([claims()]), path: '' },
    { name: 'claims is null', token: signed(null), path: '' },
    // Numeric strings are not numbers.
    { name: 'seq "5"', token: signed(claims({ seq: '5' })), path: '/seq' },
    { name: 'iat as a string', token: signed(claims({ iat: String(S) })), path: '/iat' },
    { name: 'exp as a date string', token: signed(claims({ exp: new Date(NOW + 2000).toISOString() })), path: '/exp' },
    { name: 'exp as a numeric string', token: signed(claims({ exp: String(S + 2) })), path: '/exp' },
    // seq: a positive safe integer.
    { name: 'seq 0', token: signed(claims({ seq: 0 })), path: '/seq' },
    { name: 'seq -1', token: signed(claims({ seq: -1 })), path: '/seq' },
    { name: 'seq 1.5', token: signed(claims({ seq: 1.5 })), path: '/seq' },
    { name: 'seq MAX_SAFE_INTEGER + 1', token: signed(claims({ seq: Number.MAX_SAFE_INTEGER + 1 })), path: '/seq' },
    { name: 'seq 1e300', token: signed(claims({ seq: 1e300 })), path: '/seq' },
    { name: 'seq true', token: signed(claims({ seq: true })), path: '/seq' },
    { name: 'seq null', token: signed(claims({ seq: null })), path: '/seq' },
    // 1e400 is valid JSON that JSON.parse turns into Infinity.
    { name: 'seq 1e400', token: signedRaw(rawClaims({ seq: '@RAW@' }, '1e400')), path: '/seq' },
    { name: 'iat 1e400', token: signedRaw(rawClaims({ iat: '@RAW@' }, '1e400')), path: '/iat' },
    { name: 'exp 1e400', token: signedRaw(rawClaims({ exp: '@RAW@' }, '1e400')), path: '/exp' },
    { name: 'iat -1e400', token: signedRaw(rawClaims({ iat: '@RAW@' }, '-1e400')), path: '/iat' },
    { name: 'iat negative', token: signed(claims({ iat: -1 })), path: '/iat' },
    // Identifiers: a Cyrillic "р" (U+0440) look-alike of planner-1 is not an identifier at all.
    { name: 'look-alike iss "рlanner-1" (Cyrillic р)', token: signed(claims({ iss: '\u0440lanner-1' })), path: '/iss' },
    { name: 'iss with a trailing NUL', token: signed(claims({ iss: 'planner-1\u0000' })), path: '/iss' },
    { name: 'iss with a trailing newline', token: signed(claims({ iss: 'planner-1\n' })), path: '/iss' },
    { name: 'aud as an array (RFC 7519 allows it; we do not)', token: signed(claims({ aud: ['arm-1'] })), path: '/aud' },
    { name: 'aud with a path separator', token: signed(claims({ aud: 'arm-1/../arm-2' })), path: '/aud' },
    { name: 'jti too short', token: signed(claims({ jti: 'abc' })), path: '/jti' },
    { name: 'jti with a space', token: signed(claims({ jti: 'abc def ghi' })), path: '/jti' },
    { name: 'action with capitals', token: signed(claims({ action: 'Move_joints' })), path: '/action' },
    { name: 'action __proto__', token: signed(claims({ action: '__proto__' })), path: '/action' },
    { name: 'params is an array', token: signed(claims({ params: [] })), path: '/params' },
    { name: 'params is null', token: signed(claims({ params: null })), path: '/params' },
  ];
  for (const c of cases) assertDenied(t, check(c.token), { code: 'ENVELOPE_INVALID_CLAIMS', path: c.path }, c.name);
  t.equal(({} as Record<string, unknown>)['x'], undefined, 'Object.prototype not polluted');
});

t.test('issuer and audience', async (t) => {
  // The key decides who is speaking: planner-1's key claiming to be another registered agent.
  assertDenied(t, check(signed(claims({ iss: 'trainee-1' }))), { code: 'ENVELOPE_ISSUER_MISMATCH' }, 'planner-1 key, iss trainee-1');
  assertDenied(t, check(signed(claims({ iss: 'observer-1' }), 'trainee-1')), { code: 'ENVELOPE_ISSUER_MISMATCH' }, 'trainee-1 key, iss observer-1');
  assertDenied(t, check(signed(claims({ iss: 'ghost-agent' }))), { code: 'ENVELOPE_ISSUER_MISMATCH' }, 'iss of no registered agent');
  // aud binds the device: a command for arm-2 replayed onto arm-1's topic.
  assertDenied(t, check(signed(claims({ aud: 'arm-2' })), { topicDeviceId: 'arm-1' }), { code: 'ENVELOPE_WRONG_AUDIENCE' }, 'aud arm-2 on arm-1 topic');
  assertDenied(t, check(signed(claims({ aud: 'arm-1' })), { topicDeviceId: 'arm-9' }), { code: 'ENVELOPE_WRONG_AUDIENCE' }, 'aud arm-1 on an undeclared topic');
  assertDenied(t, check(signed(claims({ aud: 'ARM-1' })), { topicDeviceId: 'arm-1' }), { code: 'ENVELOPE_WRONG_AUDIENCE' }, 'aud differing only in case');
  assertDenied(t, check(signed(claims({ aud: 'arm-9' }))), { code: 'COMMAND_UNKNOWN_DEVICE' }, 'aud of an undeclared device (offline)');
  assertDenied(t, check(signed(claims({ aud: 'arm-9' })), { topicDeviceId: 'arm-9' }), { code: 'COMMAND_UNKNOWN_DEVICE' }, 'aud of an undeclared device on its own topic');
  assertDenied(t, check(signed(claims({ aud: 'constructor' }))), { code: 'COMMAND_UNKNOWN_DEVICE' }, 'aud constructor');
  // Identity is reported for authenticated denials.
  const outcome = check(signed(claims({ aud: 'arm-2', jti: 'aud-test-0001', seq: 42 })), { topicDeviceId: 'arm-1' });
  t.same(outcome.ok ? undefined : outcome.identity, { agentId: 'planner-1', commandId: 'aud-test-0001', deviceId: 'arm-2', action: 'move_joints', seq: 42 });
});

t.test('actions and parameters', async (t) => {
  const p = (params: unknown): string => signed(claims({ params }));
  const cases: { name: string; token: string; code: Reason['code']; path?: string }[] = [
    { name: 'unknown action', token: signed(claims({ action: 'dance' })), code: 'COMMAND_UNKNOWN_ACTION' },
    { name: 'action constructor (prototype name)', token: signed(claims({ action: 'constructor' })), code: 'COMMAND_UNKNOWN_ACTION' },
    { name: 'action hasownproperty-like', token: signed(claims({ action: 'valueof' })), code: 'COMMAND_UNKNOWN_ACTION' },
    { name: 'params extra field', token: p({ ...MOVE, clamp: true }), code: 'COMMAND_INVALID_PARAMS', path: '/params/clamp' },
    { name: 'params __proto__ key', token: signedRaw(rawClaims({ params: '@RAW@' }, `{"positionsRad":[0,0,0,0,0,0],"velocityRadPerS":1,"__proto__":{"velocityRadPerS":0.1}}`)), code: 'COMMAND_INVALID_PARAMS', path: '/params/__proto__' },
    { name: 'params missing velocity', token: p({ positionsRad: MOVE.positionsRad }), code: 'COMMAND_INVALID_PARAMS', path: '/params/velocityRadPerS' },
    { name: 'params missing positions', token: p({ velocityRadPerS: 1 }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad' },
    { name: 'params empty object', token: p({}), code: 'COMMAND_INVALID_PARAMS' },
    { name: 'positions a string', token: p({ ...MOVE, positionsRad: '0,0,0,0,0,0' }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad' },
    { name: 'positions an object', token: p({ ...MOVE, positionsRad: { 0: 0 } }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad' },
    { name: 'position a numeric string', token: p({ ...MOVE, positionsRad: ['0', 0, 0, 0, 0, 0] }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad/0' },
    { name: 'position null', token: p({ ...MOVE, positionsRad: [0, null, 0, 0, 0, 0] }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad/1' },
    { name: 'empty positions', token: p({ ...MOVE, positionsRad: [] }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad' },
    { name: '17 positions', token: p({ ...MOVE, positionsRad: new Array(17).fill(0) }), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad' },
    { name: 'position 1e400 (Infinity)', token: signedRaw(rawClaims({ params: { positionsRad: [0, 0, '@RAW@', 0, 0, 0], velocityRadPerS: 1 } }, '1e400')), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad/2' },
    { name: 'position -1e400 (-Infinity)', token: signedRaw(rawClaims({ params: { positionsRad: ['@RAW@', 0, 0, 0, 0, 0], velocityRadPerS: 1 } }, '-1e400')), code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad/0' },
    { name: 'velocity 1e400 (Infinity)', token: signedRaw(rawClaims({ params: { positionsRad: HOME, velocityRadPerS: '@RAW@' } }, '1e400')), code: 'COMMAND_INVALID_PARAMS', path: '/params/velocityRadPerS' },
    { name: 'velocity 0', token: p({ ...MOVE, velocityRadPerS: 0 }), code: 'COMMAND_INVALID_PARAMS', path: '/params/velocityRadPerS' },
    { name: 'velocity negative', token: p({ ...MOVE, velocityRadPerS: -1 }), code: 'COMMAND_INVALID_PARAMS', path: '/params/velocityRadPerS' },
    { name: 'velocity a string', token: p({ ...MOVE, velocityRadPerS: '1' }), code: 'COMMAND_INVALID_PARAMS', path: '/params/velocityRadPerS' },
    { name: 'stop with a parameter', token: signed(claims({ action: 'stop', params: { force: true } })), code: 'COMMAND_INVALID_PARAMS', path: '/params/force' },
  ];
  for (const c of cases) assertDenied(t, check(c.token), c.path === undefined ? { code: c.code } : { code: c.code, path: c.path }, c.name);
});

t.test('-0 in positions is treated like 0 (allowed, 0 is in every joint range)', async (t) => {
  const token = signedRaw(rawClaims({ params: { positionsRad: '@RAW@', velocityRadPerS: 0.5 } }, '[-0,-0,-0,-0,-0,-0]'));
  const envelope = check(token);
  t.ok(envelope.ok, 'envelope passes');
  t.ok(envelope.ok && Object.is((envelope.command.params['positionsRad'] as number[])[1], -0), 'fixture really carries -0');
  const decision = evaluateCommand({ token, topicDeviceId: 'arm-1' }, { cell: loaded, replay: freshGuard(), states: freshState(), releases: NO_RELEASES, bounds: new BoundsMemory() }, NOW);
  t.equal(decision.verdict, 'allow');
  t.same(decision.reasons, []);
});

t.test('time: expiry, not-before with skew, TTL, exp after iat', async (t) => {
  const cases: { name: string; iat: number; exp: number; nowMs?: number; expected?: Expected }[] = [
    // RFC 7519: on or after exp is expired.
    { name: 'now == exp is expired', iat: S, exp: S + 2, nowMs: NOW + 2000, expected: { code: 'ENVELOPE_EXPIRED', limit: NOW + 2000, actual: NOW + 2000, unit: 'ms' } },
    { name: 'now == exp - 1 ms is valid', iat: S, exp: S + 2, nowMs: NOW + 1999 },
    { name: 'long expired', iat: S - 60, exp: S - 58, expected: { code: 'ENVELOPE_EXPIRED', limit: NOW - 58_000, actual: NOW, unit: 'ms' } },
    { name: 'epoch-era token', iat: 0, exp: 1, expected: { code: 'ENVELOPE_EXPIRED', limit: 1000, actual: NOW, unit: 'ms' } },
    // iat may lie at most clockSkew (1 s) ahead of now.
    { name: 'iat exactly at the skew limit is valid', iat: S + 1, exp: S + 3 },
    { name: 'iat 1 ms beyond the skew', iat: S + 1, exp: S + 3, nowMs: NOW - 1, expected: { code: 'ENVELOPE_NOT_YET_VALID', limit: 1000, actual: 1001, unit: 'ms' } },
    { name: 'iat an hour ahead', iat: S + 3600, exp: S + 3602, expected: { code: 'ENVELOPE_NOT_YET_VALID', limit: 1000, actual: 3_600_000, unit: 'ms' } },
    // TTL (exp - iat) at most 5 s.
    { name: 'TTL exactly 5 s is valid', iat: S, exp: S + 5 },
    { name: 'TTL 6 s', iat: S, exp: S + 6, expected: { code: 'ENVELOPE_TTL_TOO_LONG', limit: 5000, actual: 6000, unit: 'ms' } },
    { name: 'TTL a year', iat: S, exp: S + 365 * 86400, expected: { code: 'ENVELOPE_TTL_TOO_LONG', limit: 5000, actual: 365 * 86400 * 1000, unit: 'ms' } },
    { name: 'exp so large that exp*1000 overflows to Infinity', iat: S, exp: 1e306, expected: { code: 'ENVELOPE_TTL_TOO_LONG', limit: 5000, actual: Infinity, unit: 'ms' } },
    // exp must be later than iat.
    { name: 'exp == iat', iat: S, exp: S, expected: { code: 'ENVELOPE_INVALID_CLAIMS', path: '/exp' } },
    { name: 'exp before iat', iat: S, exp: S - 1, expected: { code: 'ENVELOPE_INVALID_CLAIMS', path: '/exp' } },
    { name: 'iat and exp both overflow to Infinity', iat: 1e306, exp: 1.5e306, expected: { code: 'ENVELOPE_INVALID_CLAIMS', path: '/exp' } },
  ];
  for (const c of cases) {
    const outcome = check(signed(claims({ iat: c.iat, exp: c.exp })), c.nowMs === undefined ? {} : { nowMs: c.nowMs });
    if (c.expected === undefined) t.ok(outcome.ok, `${c.name}: passes`);
    else assertDenied(t, outcome, c.expected, c.name);
  }
  // TTL of 5 s + 1 ms (fractional seconds): denied; the actual is 5001 ms up to float rounding.
  const justOver = check(signed(claims({ iat: S, exp: (NOW + 5001) / 1000 })));
  assertDenied(t, justOver, { code: 'ENVELOPE_TTL_TOO_LONG', limit: 5000, unit: 'ms' }, 'TTL 5.001 s');
  if (!justOver.ok) t.ok(Math.abs((justOver.result.reasons[0]?.actual ?? 0) - 5001) < 0.01, 'actual ~5001 ms');
});

t.test('replay and rollback', async (t) => {
  t.test('the identical token twice: second is ENVELOPE_REPLAYED', async (t) => {
    const signer = cell.signer('planner-1', () => NOW);
    const replay = freshGuard();
    const token = signer.sign('arm-1', 'move_joints', MOVE);
    t.ok(check(token, { replay }).ok, 'first passes');
    assertDenied(t, check(token, { replay }), { code: 'ENVELOPE_REPLAYED' }, 'second');
    assertDenied(t, check(token, { replay, topicDeviceId: 'arm-1' }), { code: 'ENVELOPE_REPLAYED' }, 'third, on the topic');
    // Whitespace around the bytes does not make it a new command.
    // The same bytes with a trailing newline are not a new command (replayed, or refused as malformed).
    const withNewline = check(`${token}\n`, { replay });
    t.ok(!withNewline.ok && ['ENVELOPE_REPLAYED', 'ENVELOPE_MALFORMED'].includes(withNewline.result.reasons[0]?.code ?? ''), 'with a trailing newline: denied');
  });

  t.test('a new token with a lower or equal seq: ENVELOPE_SEQ_NOT_INCREASING', async (t) => {
    const replay = freshGuard();
    t.ok(check(signed(claims({ seq: 100 })), { replay }).ok, 'seq 100 passes');
    assertDenied(t, check(signed(claims({ seq: 100 })), { replay }), { code: 'ENVELOPE_SEQ_NOT_INCREASING', limit: 100, actual: 100 }, 'equal seq, new jti');
    assertDenied(t, check(signed(claims({ seq: 99 })), { replay }), { code: 'ENVELOPE_SEQ_NOT_INCREASING', limit: 100, actual: 99 }, 'lower seq');
    assertDenied(t, check(signed(claims({ seq: 1 })), { replay }), { code: 'ENVELOPE_SEQ_NOT_INCREASING', limit: 100, actual: 1 }, 'seq 1');
    t.ok(check(signed(claims({ seq: 101 })), { replay }).ok, 'seq 101 passes');
    // A rejected rollback does not lower the watermark.
    assertDenied(t, check(signed(claims({ seq: 100 })), { replay }), { code: 'ENVELOPE_SEQ_NOT_INCREASING', limit: 101, actual: 100 }, 'after 101, 100 again');
  });

  t.test('seq is per agent and device: the same seq on another device, or from another agent, is fine', async (t) => {
    const replay = freshGuard();
    t.ok(check(signed(claims({ seq: 500, aud: 'arm-1' })), { replay }).ok, 'planner-1 seq 500 on arm-1');
    t.ok(check(signed(claims({ seq: 500, aud: 'arm-2' })), { replay }).ok, 'planner-1 seq 500 on arm-2');
    t.ok(check(signed(claims({ seq: 500, iss: 'trainee-1' }), 'trainee-1'), { replay }).ok, 'trainee-1 seq 500 on arm-1');
    // A jti is scoped to its agent: another agent choosing the same id does not collide.
    t.ok(check(signed(claims({ seq: 501, jti: 'shared-jti-0001' })), { replay }).ok, 'planner-1 jti shared-jti-0001');
    t.ok(check(signed(claims({ seq: 501, iss: 'trainee-1', jti: 'shared-jti-0001' }), 'trainee-1'), { replay }).ok, 'trainee-1 same jti');
    // ... but one agent cannot reuse a jti on another device.
    assertDenied(t, check(signed(claims({ seq: 502, aud: 'arm-2', jti: 'shared-jti-0001' })), { replay }), { code: 'ENVELOPE_REPLAYED' }, 'planner-1 reuses its jti on arm-2');
  });

  t.test('a denied but authentic command consumes its jti', async (t) => {
    const replay = freshGuard();
    // Denied in the envelope (bad params) after authentication.
    assertDenied(t, check(signed(claims({ seq: 10, jti: 'denied-params-1', params: { positionsRad: [], velocityRadPerS: 1 } })), { replay }), { code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad' }, 'first: bad params');
    assertDenied(t, check(signed(claims({ seq: 11, jti: 'denied-params-1' })), { replay }), { code: 'ENVELOPE_REPLAYED' }, 'same jti, now valid params, higher seq');
    assertDenied(t, check(signed(claims({ seq: 10, jti: 'denied-params-2' })), { replay }), { code: 'ENVELOPE_SEQ_NOT_INCREASING', limit: 10, actual: 10 }, 'its seq is consumed too');
    // Denied for an unknown action.
    assertDenied(t, check(signed(claims({ seq: 20, jti: 'denied-action-1', action: 'dance' })), { replay }), { code: 'COMMAND_UNKNOWN_ACTION' }, 'unknown action');
    assertDenied(t, check(signed(claims({ seq: 21, jti: 'denied-action-1' })), { replay }), { code: 'ENVELOPE_REPLAYED' }, 'jti of the unknown-action command');

    // Denied later by bounds, through the whole pipeline.
    const context = { cell: loaded, replay, states: freshState(), releases: NO_RELEASES, bounds: new BoundsMemory() };
    const outOfBounds = signed(claims({ seq: 30, jti: 'denied-bounds-1', params: { positionsRad: [0, -1, 3, 0, 0, 0], velocityRadPerS: 0.5 } }));
    const first = evaluateCommand({ token: outOfBounds, topicDeviceId: 'arm-1' }, context, NOW);
    t.equal(first.verdict, 'deny');
    t.same(first.reasons.map((r) => r.code), ['BOUNDS_JOINT_POSITION']);
    const second = evaluateCommand({ token: signed(claims({ seq: 31, jti: 'denied-bounds-1' })), topicDeviceId: 'arm-1' }, context, NOW);
    t.same(second.reasons.map((r) => r.code), ['ENVELOPE_REPLAYED'], 'the in-bounds retry must use a new jti');
    // Denied by policy: trainee-1 has no permit.
    const trainee = signed(claims({ iss: 'trainee-1', seq: 40, jti: 'denied-policy-1' }), 'trainee-1');
    t.same(evaluateCommand({ token: trainee }, context, NOW).reasons.map((r) => r.code), ['POLICY_NO_PERMIT']);
    t.same(evaluateCommand({ token: trainee }, context, NOW).reasons.map((r) => r.code), ['ENVELOPE_REPLAYED']);
  });

  t.test('a command denied before it was accepted (wrong audience) does not poison its seq', async (t) => {
    const replay = freshGuard();
    const token = signed(claims({ seq: 60, jti: 'wrong-topic-0001', aud: 'arm-1' }));
    assertDenied(t, check(token, { replay, topicDeviceId: 'arm-2' }), { code: 'ENVELOPE_WRONG_AUDIENCE' }, 'misrouted');
    t.ok(check(token, { replay, topicDeviceId: 'arm-1' }).ok, 'the same command on its own topic passes once');
    assertDenied(t, check(token, { replay, topicDeviceId: 'arm-1' }), { code: 'ENVELOPE_REPLAYED' }, 'and only once');
  });
});

t.test('a broken clock (non-finite now) never makes an expired or future token valid', async (t) => {
  // The freshness comparisons must fail closed like the bounds ones: NaN fails every comparison, so a check written
  // as "deny if now >= exp" lets everything through when now is NaN. The outcome is a deny value with its reason,
  // never an exception (an expected outcome is returned). A NaN or +Infinity clock lies inside no key validity window,
  // so the key check denies first; -Infinity lies inside the default window (-Infinity, Infinity) and is before every
  // iat, so the token is not yet valid.
  const cases: { name: string; iat: number; exp: number; nowMs: number; code: Reason['code'] }[] = [
    { name: 'expired token, now NaN', iat: S - 60, exp: S - 58, nowMs: NaN, code: 'ENVELOPE_KEY_NOT_VALID' },
    { name: 'token from the far future, now NaN', iat: S + 3600, exp: S + 3602, nowMs: NaN, code: 'ENVELOPE_KEY_NOT_VALID' },
    { name: 'valid token, now NaN', iat: S, exp: S + 2, nowMs: NaN, code: 'ENVELOPE_KEY_NOT_VALID' },
    { name: 'valid token, now +Infinity', iat: S, exp: S + 2, nowMs: Infinity, code: 'ENVELOPE_KEY_NOT_VALID' },
    { name: 'expired token, now -Infinity', iat: S - 60, exp: S - 58, nowMs: -Infinity, code: 'ENVELOPE_NOT_YET_VALID' },
  ];
  for (const c of cases) {
    assertDenied(t, check(signed(claims({ iat: c.iat, exp: c.exp })), { nowMs: c.nowMs }), { code: c.code }, c.name);
  }
  // Through the whole pipeline a move is still denied, but only because bounds find the state stale (defence in depth).
  const move = evaluateCommand({ token: signed(claims({ iat: S - 60, exp: S - 58 })), topicDeviceId: 'arm-1' }, { cell: loaded, replay: freshGuard(), states: freshState(), releases: NO_RELEASES, bounds: new BoundsMemory() }, NaN);
  t.equal(move.verdict, 'deny', 'pipeline: expired move with a NaN clock is denied');
});

t.test('explicit typing: a JWS the agent signed for another purpose is not a command', async (t) => {
  const body = claims();
  const k = key('planner-1');
  for (const typ of [undefined, 'JWT', 'interlock-release+jws', 'INTERLOCK-COMMAND+JWS']) {
    assertDenied(t, check(signCompactJws(body, k.kid, k.privateKey, typ)), { code: 'ENVELOPE_MALFORMED' }, `typ ${String(typ)}`);
  }
  t.ok(check(signCompactJws(body, k.kid, k.privateKey, COMMAND_TOKEN_TYPE)).ok, 'the command typ passes');
});

t.test('no trimming: a command with surrounding whitespace is not the same command', async (t) => {
  const token = signed(claims());
  assertDenied(t, check(`${token}\n`), { code: 'ENVELOPE_MALFORMED' }, 'trailing newline');
  assertDenied(t, check(` ${token}`), { code: 'ENVELOPE_MALFORMED' }, 'leading space');
});

t.test('commands for undeclared devices never enter replay memory (no growth from made-up device ids)', async (t) => {
  const replay = freshGuard();
  for (const aud of ['arm-9', 'x1', 'x2', 'constructor']) {
    assertDenied(t, check(signed(claims({ aud })), { replay }), { code: 'COMMAND_UNKNOWN_DEVICE' }, `aud ${aud}`);
    t.equal(replay.lastSeq('planner-1', aud), undefined, `no seq remembered for ${aud}`);
  }
});
