// Adversarial unit tests for signed operator messages: each hostile or broken message is refused with a problem
// that says why, and each action passes for an operator who holds its role. Real declarations (the demo cell plus
// operators with single roles, a revoked key and keys with validity windows), real Ed25519 keys, a fixed clock.

import { createHash, createHmac, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { COMMAND_TOKEN_TYPE } from '../../src/core/command.js';
import { signCompactJws } from '../../src/crypto/jws.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import {
  OPERATOR_TOKEN_TYPE,
  signOperatorMessage,
  verifyOperatorMessage,
  type OperatorAction,
  type OperatorMessageResult,
  type OperatorParams,
} from '../../src/operator/operator-message.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { signRawJws } from '../helpers/tokens.js';

/** A fixed now on a whole second (2023-11-14T22:13:20Z), so NumericDates convert to exact milliseconds. */
const NOW = 1_700_000_000_000;
const NOW_TEXT = '2023-11-14T22:13:20Z';

function operatorYaml(id: string, roles: string, keyLines = ''): string {
  return `  - id: ${id}\n    name: ${id} (test)\n    roles: [${roles}]\n    keys:\n      - kid: ${id}-k1\n        publicKeyFile: keys/${id}-k1.pub.pem\n${keyLines}`;
}

function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`fixture text not found: ${from}`);
  return text.replace(from, to);
}

const AGENTS = edit(
  edit(
    readFileSync(join(DEMO_CELL, 'agents.yaml'), 'utf8'),
    'operators:\n',
    `operators:\n${[
      operatorYaml('approver', 'approve'),
      operatorYaml('restorer', 'restore'),
      operatorYaml('moder', 'mode'),
      operatorYaml('resetter', 'reset'),
      operatorYaml('gone-op', 'approve, reset, restore, mode'),
      // Valid from exactly NOW on; valid until just before NOW.
      operatorYaml('early-op', 'approve, restore, mode', `        notBefore: "${NOW_TEXT}"\n`),
      operatorYaml('late-op', 'approve, restore, mode', `        notAfter: "${NOW_TEXT}"\n`),
    ].join('')}`,
  ),
  'revoked: []',
  'revoked:\n  - kid: gone-op-k1\n    reason: badge and laptop stolen on 2023-11-01',
);

const cell = makeTestCell({ 'agents.yaml': AGENTS });
t.teardown(() => cell.cleanup());
const { declarations } = cell.load();
const MAX_TTL_MS = declarations.approvals.maxAnswerTtlMs;

function key(id: string): { kid: string; privateKey: KeyObject } {
  const k = cell.agentKeys.get(id);
  if (k === undefined) throw new Error(`no key for ${id}`);
  return k;
}

const DIGEST = 'ab'.repeat(32);
/** A valid request for each action. */
type AnswerParams = Extract<OperatorParams, { action: 'approve' | 'reject' }>;
const APPROVE: AnswerParams = { action: 'approve', approvalId: 'abababababababab', commandDigest: DIGEST, note: 'belt is clear' };
const REJECT: AnswerParams = { action: 'reject', approvalId: 'abababababababab', commandDigest: DIGEST };
const REQUESTS: Record<OperatorAction, OperatorParams> = {
  approve: APPROVE,
  reject: REJECT,
  restore_agent: { action: 'restore_agent', agent: 'planner-1', note: 'planner fixed' },
  quarantine_agent: { action: 'quarantine_agent', agent: 'planner-1', reason: 'incident 42' },
  set_mode: { action: 'set_mode', device: 'conveyor-1', mode: 'reduced' },
};

let seqCounter = 1;
let jtiCounter = 0;
/** Claims of a valid message from `operatorId`, valid at NOW for 30 s; overrides replace fields (undefined drops one). */
function claims(operatorId: string, request: OperatorParams = REQUESTS.set_mode, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  seqCounter += 1;
  jtiCounter += 1;
  const { action, ...params } = request;
  return { iss: operatorId, aud: 'demo-cell', jti: `op-test-${String(jtiCounter).padStart(6, '0')}`, seq: seqCounter, iat: NOW / 1000, exp: (NOW + 30_000) / 1000, action, params, ...overrides };
}

function signed(claimsValue: unknown, signerId = 'shift-lead', options: { kid?: string; typ?: string | null } = {}): string {
  const k = key(signerId);
  return signCompactJws(claimsValue, options.kid ?? k.kid, k.privateKey, options.typ === null ? undefined : (options.typ ?? OPERATOR_TOKEN_TYPE));
}

/** Signs an exact header and payload text (JSON that JSON.stringify would not produce). */
function signedRaw(headerText: string, payloadText: string, signerId = 'shift-lead'): string {
  return signRawJws(headerText, payloadText, key(signerId).privateKey);
}

function verify(token: string, options: { nowMs?: number; replay?: MemoryReplayGuard } = {}): OperatorMessageResult {
  const nowMs = options.nowMs ?? NOW;
  return verifyOperatorMessage(token, { declarations, replay: options.replay ?? new MemoryReplayGuard(() => nowMs), maxTtlMs: MAX_TTL_MS, nowMs });
}

function assertRefused(t: Test, result: OperatorMessageResult, problem: RegExp, name: string): void {
  t.equal(result.ok, false, `${name}: refused`);
  if (!result.ok) t.match(result.problem, problem, `${name}: says why`);
}

t.test('fixture: the declarations these tests rely on', async (t) => {
  t.equal(MAX_TTL_MS, 60_000);
  t.equal(declarations.commandLimits.clockSkewMs, 1000);
  t.equal(declarations.commandLimits.maxTokenBytes, 8192);
  t.equal(declarations.keys.get('gone-op-k1')?.revoked, 'badge and laptop stolen on 2023-11-01');
  t.equal(declarations.keys.get('early-op-k1')?.notBeforeMs, NOW);
  t.equal(declarations.keys.get('late-op-k1')?.notAfterMs, NOW);
});

t.test('each action passes for an operator holding its role', async (t) => {
  const cases: { action: OperatorAction; operator: string }[] = [
    { action: 'approve', operator: 'approver' },
    { action: 'reject', operator: 'approver' },
    { action: 'restore_agent', operator: 'restorer' },
    { action: 'quarantine_agent', operator: 'restorer' },
    { action: 'set_mode', operator: 'moder' },
    // The demo shift lead holds every role.
    ...(['approve', 'reject', 'restore_agent', 'quarantine_agent', 'set_mode'] as const).map((action) => ({ action, operator: 'shift-lead' })),
  ];
  for (const c of cases) {
    const k = key(c.operator);
    const token = signOperatorMessage({ operatorId: c.operator, kid: k.kid, privateKey: k.privateKey, cellId: 'demo-cell', request: REQUESTS[c.action], nowMs: NOW, ttlMs: 30_000, seq: 42, jti: 'op-positive-0001' });
    const result = verify(token);
    const name = `${c.operator} ${c.action}`;
    t.equal(result.ok, true, `${name}: passes${result.ok ? '' : ` (${result.problem})`}`);
    if (!result.ok) continue;
    t.same(result.message.request, REQUESTS[c.action], `${name}: the request as signed`);
    t.equal(result.message.operator.id, c.operator, `${name}: the operator`);
    t.equal(result.message.kid, `${c.operator}-k1`);
    t.equal(result.message.seq, 42);
    t.equal(result.message.jti, 'op-positive-0001');
    t.equal(result.message.issuedAtMs, NOW);
    t.equal(result.message.expiresAtMs, NOW + 30_000);
    t.equal(result.message.digest, createHash('sha256').update(token, 'utf8').digest('hex'), `${name}: digest of the exact bytes`);
  }
});

t.test('an operator lacking the role for an action is refused, for every action', async (t) => {
  const cases: { action: OperatorAction; operator: string; role: string }[] = [
    { action: 'approve', operator: 'restorer', role: 'approve' },
    { action: 'approve', operator: 'moder', role: 'approve' },
    { action: 'approve', operator: 'resetter', role: 'approve' },
    { action: 'reject', operator: 'restorer', role: 'approve' },
    { action: 'reject', operator: 'moder', role: 'approve' },
    { action: 'restore_agent', operator: 'approver', role: 'restore' },
    { action: 'restore_agent', operator: 'moder', role: 'restore' },
    { action: 'restore_agent', operator: 'resetter', role: 'restore' },
    // Quarantining takes the restore role too.
    { action: 'quarantine_agent', operator: 'approver', role: 'restore' },
    { action: 'quarantine_agent', operator: 'moder', role: 'restore' },
    { action: 'set_mode', operator: 'approver', role: 'mode' },
    { action: 'set_mode', operator: 'restorer', role: 'mode' },
    { action: 'set_mode', operator: 'resetter', role: 'mode' },
  ];
  for (const c of cases) {
    const result = verify(signed(claims(c.operator, REQUESTS[c.action]), c.operator));
    assertRefused(t, result, new RegExp(`operator ${c.operator} lacks the ${c.role} role needed to ${c.action}`), `${c.operator} ${c.action}`);
    t.equal(result.ok ? undefined : result.operatorId, c.operator, `${c.operator} ${c.action}: the refusal names the operator`);
  }
});

t.test('only an operator key signs an operator message', async (t) => {
  // SAFETY case: an agent's own registered key, claiming to be the agent or an operator.
  assertRefused(t, verify(signed(claims('planner-1'), 'planner-1')), /kid "planner-1-k1" is not an operator key/, 'agent key, iss the agent');
  assertRefused(t, verify(signed(claims('shift-lead'), 'planner-1')), /kid "planner-1-k1" is not an operator key/, 'agent key, iss an operator');
  // An agent's key under an operator's kid: the signature does not verify.
  assertRefused(t, verify(signed(claims('shift-lead'), 'planner-1', { kid: 'shift-lead-k1' })), /signature does not verify with key shift-lead-k1/, 'agent key under the operator kid');
  // One operator's key claiming to be another operator.
  assertRefused(t, verify(signed(claims('shift-lead'), 'approver')), /iss "shift-lead" does not own key approver-k1/, 'approver key, iss shift-lead');
  // A kid nobody registered.
  assertRefused(t, verify(signed(claims('shift-lead'), 'shift-lead', { kid: 'shift-lead-k9' })), /kid "shift-lead-k9" is not an operator key/, 'unknown kid');
});

t.test('kid injection: the kid only ever selects a registered key by exact match', async (t) => {
  const kids = [
    '../keys/shift-lead-k1',
    '../keys/shift-lead-k1.pub.pem',
    'keys/shift-lead-k1.pub.pem',
    '/etc/passwd',
    'shift-lead-k1\u0000',
    '\u0000shift-lead-k1',
    'shift-lead-k1\u0000../../approver-k1',
    'shift-lead-k1\u200b', // zero-width space
    'shift\u2010lead-k1', // U+2010 hyphen
    '\uff53hift-lead-k1', // fullwidth s
    'SHIFT-LEAD-K1',
    'shift-lead-k1 ',
    'shift-lead', // the operator id, not a kid
    '__proto__',
    'constructor',
  ];
  for (const kid of kids) assertRefused(t, verify(signed(claims('shift-lead'), 'shift-lead', { kid })), /is not an operator key/, `kid ${JSON.stringify(kid)}`);
  assertRefused(t, verify(signed(claims('shift-lead'), 'shift-lead', { kid: 'k'.repeat(129) })), /kid must be a non-empty string of at most 128/, 'kid of 129 characters');
  t.equal(({} as Record<string, unknown>)['kid'], undefined, 'Object.prototype untouched');
});

t.test('algorithms other than EdDSA are refused before any key is used', async (t) => {
  const body = Buffer.from(JSON.stringify(claims('shift-lead'))).toString('base64url');
  const header = (h: Record<string, unknown>): string => Buffer.from(JSON.stringify(h)).toString('base64url');
  // alg none: no signature at all.
  const none = `${header({ alg: 'none', kid: 'shift-lead-k1', typ: OPERATOR_TOKEN_TYPE })}.${body}.`;
  assertRefused(t, verify(none), /alg "none" is not accepted/, 'alg none');
  // Algorithm confusion: HS256 with the operator's public key PEM (which is public) as the HMAC secret.
  const publicPem = readFileSync(join(cell.cellDir, 'keys', 'shift-lead-k1.pub.pem'), 'utf8');
  const hsHeader = header({ alg: 'HS256', kid: 'shift-lead-k1', typ: OPERATOR_TOKEN_TYPE });
  const hmac = createHmac('sha256', publicPem).update(`${hsHeader}.${body}`).digest('base64url');
  assertRefused(t, verify(`${hsHeader}.${body}.${hmac}`), /alg "HS256" is not accepted/, 'HS256 keyed with the public key PEM');
  // The same with the signature padded to 64 bytes, so only the algorithm can refuse it.
  const hmac64 = Buffer.concat([createHmac('sha256', publicPem).update(`${hsHeader}.${body}`).digest(), Buffer.alloc(32)]).toString('base64url');
  assertRefused(t, verify(`${hsHeader}.${body}.${hmac64}`), /alg "HS256" is not accepted/, 'HS256 with a 64-byte MAC');
  // A key embedded in the header is never used.
  const jwkHeader = header({ alg: 'EdDSA', kid: 'shift-lead-k1', typ: OPERATOR_TOKEN_TYPE, jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } });
  assertRefused(t, verify(`${jwkHeader}.${body}.${'A'.repeat(86)}`), /unsupported fields: jwk/, 'embedded jwk');
});

t.test('a revoked key and a key outside its window are refused', async (t) => {
  const revoked = verify(signed(claims('gone-op', REQUESTS.approve), 'gone-op'));
  assertRefused(t, revoked, /key gone-op-k1 is revoked: badge and laptop stolen/, 'revoked operator key');
  t.equal(revoked.ok ? undefined : revoked.operatorId, 'gone-op', 'the refusal names the key\'s operator');
  const at = (operatorId: string, nowMs: number): OperatorMessageResult =>
    verify(signed(claims(operatorId, REQUESTS.set_mode, { iat: nowMs / 1000, exp: (nowMs + 30_000) / 1000 }), operatorId), { nowMs });
  // notBefore is inclusive, notAfter exclusive.
  assertRefused(t, at('early-op', NOW - 1), /key early-op-k1 is outside its validity window/, '1 ms before notBefore');
  t.equal(at('early-op', NOW).ok, true, 'at notBefore: valid');
  t.equal(at('late-op', NOW - 1).ok, true, '1 ms before notAfter: valid');
  assertRefused(t, at('late-op', NOW), /key late-op-k1 is outside its validity window/, 'at notAfter');
  // A clock that gives no number is outside every window.
  assertRefused(t, verify(signed(claims('shift-lead')), { nowMs: NaN }), /outside its validity window/, 'NaN clock');
});

t.test('typ, audience, lifetime and shape', async (t) => {
  const sl = (overrides: Record<string, unknown>, request: OperatorParams = REQUESTS.set_mode): string => signed(claims('shift-lead', request, overrides));
  const cases: { name: string; token: string; nowMs?: number; problem?: RegExp }[] = [
    // A command signed with the operator's key is not an operator message, and the reverse.
    { name: 'typ of a command', token: signed(claims('shift-lead'), 'shift-lead', { typ: COMMAND_TOKEN_TYPE }), problem: /header typ must be "interlock-operator\+jws", got "interlock-command\+jws"/ },
    { name: 'no typ', token: signed(claims('shift-lead'), 'shift-lead', { typ: null }), problem: /header typ must be .* got null/ },
    { name: 'typ JWT', token: signed(claims('shift-lead'), 'shift-lead', { typ: 'JWT' }), problem: /header typ must be/ },
    { name: 'typ in capitals', token: signed(claims('shift-lead'), 'shift-lead', { typ: OPERATOR_TOKEN_TYPE.toUpperCase() }), problem: /header typ must be/ },
    // Audience: another cell's operator channel.
    { name: 'aud another cell', token: sl({ aud: 'other-cell' }), problem: /aud other-cell is not this cell \(demo-cell\)/ },
    { name: 'aud in capitals', token: sl({ aud: 'DEMO-CELL' }), problem: /aud DEMO-CELL is not this cell/ },
    { name: 'aud as an array', token: sl({ aud: ['demo-cell'] }), problem: /claims \/aud/ },
    // Lifetime: exp strictly after iat, at most maxAnswerTtl, not expired, iat at most clockSkew ahead.
    { name: 'TTL exactly maxAnswerTtl', token: sl({ exp: (NOW + 60_000) / 1000 }) },
    { name: 'TTL 1 ms over maxAnswerTtl', token: sl({ exp: (NOW + 60_001) / 1000 }), problem: /time-to-live .* exceeds 60000 ms/ },
    { name: 'TTL a day', token: sl({ exp: (NOW + 86_400_000) / 1000 }), problem: /time-to-live 86400000 ms exceeds 60000 ms/ },
    { name: 'exp == iat', token: sl({ exp: NOW / 1000 }), problem: /exp must be later than iat/ },
    { name: 'expired: now == exp', token: sl({}), nowMs: NOW + 30_000, problem: /expired 0 ms ago/ },
    { name: 'long expired', token: sl({ iat: (NOW - 60_000) / 1000, exp: (NOW - 50_000) / 1000 }), problem: /expired 50000 ms ago/ },
    { name: 'iat exactly at the clock skew', token: sl({ iat: (NOW + 1000) / 1000, exp: (NOW + 31_000) / 1000 }) },
    { name: 'iat 1 ms beyond the clock skew', token: sl({ iat: (NOW + 1001) / 1000, exp: (NOW + 31_001) / 1000 }), problem: /iat is 1001 ms in the future/ },
    { name: 'iat an hour ahead', token: sl({ iat: (NOW + 3_600_000) / 1000, exp: (NOW + 3_630_000) / 1000 }), problem: /iat is 3600000 ms in the future/ },
    // Shape of the claims.
    { name: 'extra claim', token: sl({ role: 'admin' }), problem: /claims \/: must NOT have additional properties/ },
    { name: 'missing seq', token: sl({ seq: undefined }), problem: /claims \/: must have required property 'seq'/ },
    { name: 'seq 0', token: sl({ seq: 0 }), problem: /claims \/seq/ },
    { name: 'seq as a string', token: sl({ seq: '5' }), problem: /claims \/seq/ },
    { name: 'unknown action', token: sl({ action: 'shutdown' }), problem: /claims \/action/ },
    { name: 'action __proto__', token: sl({ action: '__proto__' }), problem: /claims \/action/ },
    { name: 'jti too short', token: sl({ jti: 'short' }), problem: /claims \/jti/ },
    { name: 'look-alike iss (U+2010)', token: sl({ iss: 'shift\u2010lead' }), problem: /claims \/iss/ },
    // Params of each action: unknown fields, missing fields, wrong shapes.
    { name: 'approve with an extra field', token: sl({}, { ...APPROVE, force: true } as unknown as OperatorParams), problem: /params \/: must NOT have additional properties/ },
    { name: 'approve without its digest', token: sl({ params: { approvalId: 'abababababababab' } }, REQUESTS.approve), problem: /params \/: must have required property 'commandDigest'/ },
    { name: 'approve with a short digest', token: sl({}, { ...APPROVE, commandDigest: 'abab' }), problem: /params \/commandDigest/ },
    { name: 'approve with an upper-case digest', token: sl({}, { ...APPROVE, commandDigest: DIGEST.toUpperCase() }), problem: /params \/commandDigest/ },
    { name: 'reject with a note of 501 characters', token: sl({}, { ...REJECT, note: 'n'.repeat(501) }), problem: /params \/note/ },
    { name: 'restore an agent id with a path', token: sl({}, { action: 'restore_agent', agent: '../planner-1' }), problem: /params \/agent/ },
    { name: 'quarantine without a reason', token: sl({ params: { agent: 'planner-1' } }, REQUESTS.quarantine_agent), problem: /params \/: must have required property 'reason'/ },
    { name: 'quarantine with an empty reason', token: sl({}, { action: 'quarantine_agent', agent: 'planner-1', reason: '' }), problem: /params \/reason/ },
    { name: 'set_mode to normal (only reduced or auto)', token: sl({}, { action: 'set_mode', device: 'conveyor-1', mode: 'normal' } as unknown as OperatorParams), problem: /params \/mode/ },
    { name: 'set_mode with the params of approve', token: sl({ params: { approvalId: 'abababababababab', commandDigest: DIGEST } }), problem: /params \/: must NOT have additional properties|must have required property/ },
    { name: 'params an array', token: sl({ params: [] }), problem: /claims \/params/ },
  ];
  for (const c of cases) {
    const result = verify(c.token, c.nowMs === undefined ? {} : { nowMs: c.nowMs });
    if (c.problem === undefined) t.equal(result.ok, true, `${c.name}: passes${result.ok ? '' : ` (${result.problem})`}`);
    else assertRefused(t, result, c.problem, c.name);
  }
});

t.test('__proto__ keys in claims and params are refused and pollute nothing', async (t) => {
  const header = JSON.stringify({ alg: 'EdDSA', kid: 'shift-lead-k1', typ: OPERATOR_TOKEN_TYPE });
  const base = claims('shift-lead', REQUESTS.approve);
  const text = JSON.stringify(base);
  const inParams = text.replace('"approvalId":', '"__proto__":{"note":"polluted","approvalId":"x"},"approvalId":');
  const inClaims = text.replace('"iss":', '"__proto__":{"aud":"demo-cell"},"iss":');
  t.not(inParams, text, 'fixture: params carry __proto__');
  t.not(inClaims, text, 'fixture: claims carry __proto__');
  assertRefused(t, verify(signedRaw(header, inParams)), /params \/: must NOT have additional properties/, '__proto__ in params');
  assertRefused(t, verify(signedRaw(header, inClaims)), /claims \/: must NOT have additional properties/, '__proto__ in claims');
  // In the header too: an unknown header field.
  const protoHeader = '{"alg":"EdDSA","kid":"shift-lead-k1","typ":"interlock-operator+jws","__proto__":{"kid":"approver-k1"}}';
  assertRefused(t, verify(signedRaw(protoHeader, text)), /unsupported fields: __proto__/, '__proto__ in the header');
  t.equal(({} as Record<string, unknown>)['note'], undefined, 'Object.prototype has no note');
  t.equal(({} as Record<string, unknown>)['aud'], undefined, 'Object.prototype has no aud');
});

t.test('replay: a message acts once; seq never goes back; the replay epoch is honoured', async (t) => {
  const replay = new MemoryReplayGuard(() => NOW);
  const first = signed(claims('shift-lead', REQUESTS.set_mode, { seq: 100, jti: 'op-replay-000001' }));
  t.equal(verify(first, { replay }).ok, true, 'first time: passes');
  assertRefused(t, verify(first, { replay }), /message op-replay-000001 was already received/, 'the same bytes again');
  // Same jti, new seq and new content: still the same message id.
  assertRefused(t, verify(signed(claims('shift-lead', REQUESTS.approve, { seq: 101, jti: 'op-replay-000001' })), { replay }), /already received/, 'same jti, other content');
  assertRefused(t, verify(signed(claims('shift-lead', REQUESTS.set_mode, { seq: 100 })), { replay }), /seq 100 is not greater than the last accepted 100/, 'equal seq');
  assertRefused(t, verify(signed(claims('shift-lead', REQUESTS.set_mode, { seq: 99 })), { replay }), /seq 99 is not greater than the last accepted 100/, 'lower seq');
  t.equal(verify(signed(claims('shift-lead', REQUESTS.set_mode, { seq: 101 })), { replay }).ok, true, 'higher seq passes');
  // Seqs are per operator: another operator starts from its own.
  t.equal(verify(signed(claims('moder', REQUESTS.set_mode, { seq: 5 }), 'moder'), { replay }).ok, true, 'another operator with seq 5');
  // The operator channel has its own seq: a command the operator sent to a device does not move it.
  replay.accept('shift-lead', 'conveyor-1', 'command-of-shift-lead', 1_000_000, NOW + 5000);
  t.equal(verify(signed(claims('shift-lead', REQUESTS.set_mode, { seq: 102 })), { replay }).ok, true, 'a device seq of 1 000 000 does not block operator seq 102');
  // A message refused for a missing role still used up its jti (it can never act later).
  const wrongRole = signed(claims('moder', REQUESTS.approve, { seq: 6, jti: 'op-wrong-role-01' }), 'moder');
  assertRefused(t, verify(wrongRole, { replay }), /lacks the approve role/, 'wrong role');
  assertRefused(t, verify(wrongRole, { replay }), /already received/, 'the same message again');

  // The replay memory began after the message was signed (a restart after a crash): refused.
  const beforeEpoch = new MemoryReplayGuard(() => NOW, NOW + 1);
  assertRefused(t, verify(signed(claims('shift-lead')), { replay: beforeEpoch }), /issued before the replay memory began/, 'iat 1 ms before the epoch');
  t.equal(verify(signed(claims('shift-lead')), { replay: new MemoryReplayGuard(() => NOW, NOW) }).ok, true, 'iat at the epoch: passes');
});

/** A valid shift-lead message of exactly `bytes` bytes, padded with JSON whitespace inside the signed parts. */
function messageOfSize(bytes: number): string {
  const text = JSON.stringify(claims('shift-lead'));
  const header = JSON.stringify({ alg: 'EdDSA', kid: 'shift-lead-k1', typ: OPERATOR_TOKEN_TYPE });
  const build = (headerPad: number, payloadPad: number): string => signedRaw(`${header.slice(0, -1)}${' '.repeat(headerPad)}}`, `${text.slice(0, -1)}${' '.repeat(payloadPad)}}`);
  const base = build(0, 0).length;
  for (let headerPad = 0; headerPad < 4; headerPad += 1) {
    for (let payloadPad = Math.max(0, Math.floor(((bytes - base) * 3) / 4) - 8); payloadPad < bytes; payloadPad += 1) {
      const token = build(headerPad, payloadPad);
      if (token.length === bytes) return token;
      if (token.length > bytes) break;
    }
  }
  throw new Error(`cannot build a message of ${bytes} bytes`);
}

t.test('size: a message over the cell\'s token limit is refused before parsing', async (t) => {
  const atLimit = messageOfSize(8192);
  t.equal(Buffer.byteLength(atLimit), 8192, 'fixture is exactly 8192 bytes');
  t.equal(verify(atLimit).ok, true, 'a valid message of exactly 8192 bytes passes');
  assertRefused(t, verify(messageOfSize(8193)), /message is 8193 bytes, limit 8192/, 'a valid message of 8193 bytes');
  assertRefused(t, verify('\u20ac'.repeat(2731)), /message is 8193 bytes, limit 8192/, 'counted in bytes, not characters');
});
