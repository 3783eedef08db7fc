// Red-team cases through the real pipeline (evaluateCommand: envelope -> trust -> policy -> bounds) with loaded
// test cells, real Ed25519 keys and the real Cedar engine. Each hostile command must be denied with its exact
// reason, and nothing a command carries may crash the process or reach a prototype.
//
// Covered elsewhere, so not repeated here:
// - alg none, HS256 reusing the Ed25519 signature, embedded jwk, malformed JWS: test/envelope/envelope.test.ts
//   ("malformed tokens and rejected algorithms"); alg none and a forged signature on a stop: test/pipeline/pipeline.test.ts.
// - replay, seq rollback, seq per agent and device: envelope.test.ts ("replay and rollback"); a replayed stop: pipeline.test.ts.
// - expired, iat in the future, TTL too long, NaN clock: envelope.test.ts ("time: ...", "a broken clock ...").
// - wrong aud, issuer mismatch: envelope.test.ts ("issuer and audience"); a stop for another device: pipeline.test.ts.
// - oversize (bytes, not characters): envelope.test.ts ("size limit").
// - __proto__ keys in claims and params, Cyrillic look-alike iss, kid __proto__/constructor: envelope.test.ts.
// - Cedar policies that overflow at evaluation (erroring permit and forbid): test/policy/cedar-policy.test.ts.
// - every hostile operator message: test/operator/operator-message.test.ts; a quarantined agent and its stop:
//   test/integration/approvals-and-trust.test.ts.

import { createHmac, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { COMMAND_TOKEN_TYPE } from '../../src/core/command.js';
import type { ObservedState, StateView } from '../../src/core/device-state.js';
import type { ReasonCode } from '../../src/core/reasons.js';
import { signCompactJws } from '../../src/crypto/jws.js';
import { loadCell, type LoadedCell } from '../../src/declarations/load.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { BoundsMemory, evaluateCommand, NO_RELEASES, type Decision, type PipelineContext } from '../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { DEMO_CELL, makeTestCell, type TestCell } from '../helpers/test-cell.js';
import { signRawJws } from '../helpers/tokens.js';

/** A fixed now on a whole second: 2023-11-14T22:13:20Z. */
const NOW = 1_700_000_000_000;
const HOME = [0, -1, 0, 0, 0, 0];
const IN_BOUNDS = { positionsRad: [0.2, -1.2, 0.4, 0, 0, 0], velocityRadPerS: 0.5 };

const demoText = (file: string): string => readFileSync(join(DEMO_CELL, file), 'utf8');

function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`fixture text not found: ${from}`);
  return text.replace(from, to);
}

function agentYaml(id: string, keyLines = ''): string {
  return `  - id: ${id}\n    owner: red-team\n    autonomyScope: 4\n    keys:\n      - kid: ${id}-k1\n        publicKeyFile: keys/${id}-k1.pub.pem\n${keyLines}`;
}

/**
 * The demo registry plus scope 4 agents whose keys are revoked, not yet valid (from NOW + 1 s) and retired (until
 * NOW), and an operator whose key is revoked.
 */
const AGENTS = edit(
  edit(
    edit(
      demoText('agents.yaml'),
      'publicKeyFile: keys/observer-1-k1.pub.pem\n',
      `publicKeyFile: keys/observer-1-k1.pub.pem\n${agentYaml('revoked-1')}${agentYaml('future-1', '        notBefore: "2023-11-14T22:13:21Z"\n')}${agentYaml('retired-1', '        notAfter: "2023-11-14T22:13:20Z"\n')}`,
    ),
    'operators:\n',
    'operators:\n  - id: gone-op\n    name: Former operator\n    roles: [approve, reset, restore, mode]\n    keys:\n      - kid: gone-op-k1\n        publicKeyFile: keys/gone-op-k1.pub.pem\n',
  ),
  'revoked: []',
  'revoked:\n  - kid: revoked-1-k1\n    reason: agent host compromised (incident 7)\n  - kid: gone-op-k1\n    reason: operator left the company',
);

const cell = makeTestCell({ 'agents.yaml': AGENTS });
t.teardown(() => cell.cleanup());
const loaded = cell.load();

function freshStates(): StateView {
  const observed: ObservedState = { state: { kind: 'robot_arm', positionsRad: HOME }, receivedAtMs: NOW - 20 };
  // amr-1, the cell's people source, reports nobody near the table and is out of the station it shares with the arm.
  return withAmrReport({ latest: (deviceId) => (deviceId === 'arm-1' ? observed : undefined) }, amrReport(NOW - 20));
}

function context(cellUnderTest: LoadedCell = loaded, replay = new MemoryReplayGuard(() => NOW)): PipelineContext {
  return { cell: cellUnderTest, replay, states: freshStates(), releases: NO_RELEASES, bounds: new BoundsMemory() };
}

function evaluate(token: string, options: { cell?: LoadedCell; nowMs?: number; replay?: MemoryReplayGuard } = {}): Decision {
  return evaluateCommand({ token, topicDeviceId: 'arm-1' }, context(options.cell, options.replay), options.nowMs ?? NOW);
}

function keyOf(source: TestCell, id: string): { kid: string; privateKey: KeyObject } {
  const k = source.agentKeys.get(id);
  if (k === undefined) throw new Error(`no key for ${id}`);
  return k;
}

let seq = 1;
/** Valid claims of `iss` for arm-1, valid at NOW for 2 s; overrides replace fields. */
function claims(iss: string, action = 'move_joints', params: Record<string, unknown> = IN_BOUNDS, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  seq += 1;
  return { iss, aud: 'arm-1', jti: `red-team-${String(seq).padStart(6, '0')}`, seq, iat: NOW / 1000, exp: (NOW + 2000) / 1000, action, params, ...overrides };
}

/** A command signed by `signerId`'s registered key (or under another kid). */
function signed(claimsValue: unknown, signerId: string, options: { source?: TestCell; kid?: string } = {}): string {
  const k = keyOf(options.source ?? cell, signerId);
  return signCompactJws(claimsValue, options.kid ?? k.kid, k.privateKey, COMMAND_TOKEN_TYPE);
}

/** Signs exact header and payload texts with `signerId`'s key (for JSON that JSON.stringify would not write). */
function signedRaw(headerText: string, payloadText: string, signerId = 'planner-1', source: TestCell = cell): string {
  return signRawJws(headerText, payloadText, keyOf(source, signerId).privateKey);
}

const HEADER = JSON.stringify({ alg: 'EdDSA', kid: 'planner-1-k1', typ: COMMAND_TOKEN_TYPE });

type Expected = { code: ReasonCode; ruleId?: string; path?: string; message?: RegExp };

/**
 * Denied with exactly `expected` from the stages before bounds. Bounds reasons may follow a policy deny (every
 * stage's reasons are kept); the arm's physical limits are not what these tests are about.
 */
function assertDenied(t: Test, decision: Decision, expected: Expected, name: string): void {
  t.equal(decision.verdict, 'deny', `${name}: denied`);
  const judged = decision.reasons.filter((r) => r.stage !== 'bounds');
  t.same(judged.map((r) => r.code), [expected.code], `${name}: exactly ${expected.code} before bounds`);
  if (judged[0]?.stage === 'envelope') t.equal(decision.reasons.length, 1, `${name}: nothing after the envelope ran`);
  const r = judged[0];
  if (expected.ruleId !== undefined) t.equal(r?.ruleId, expected.ruleId, `${name}: ruleId`);
  if (expected.path !== undefined) t.equal(r?.path, expected.path, `${name}: path`);
  if (expected.message !== undefined) t.match(r?.message, expected.message, `${name}: message`);
}

/** The command was authenticated and no trust or policy rule objected (the bounds may still say no). */
function assertPassedIdentityAndPolicy(t: Test, decision: Decision, name: string): void {
  t.not(decision.command, undefined, `${name}: authenticated`);
  const objections = decision.reasons.filter((r) => ['envelope', 'trust', 'policy', 'internal'].includes(r.stage));
  t.same(objections, [], `${name}: no envelope, trust or policy reason`);
  t.not(decision.verdict, 'hold', `${name}: not held`);
}

t.test('fixture: the planner\'s move and stop pass envelope and policy, so every deny below comes from the attack', async (t) => {
  assertPassedIdentityAndPolicy(t, evaluate(signed(claims('planner-1'), 'planner-1')), 'planner-1 move');
  const stop = evaluate(signed(claims('planner-1', 'stop', {}), 'planner-1'));
  t.equal(stop.verdict, 'allow', 'planner-1 stop: allowed');
});

t.test('algorithm confusion: HS256 keyed with the agent\'s public key PEM', async (t) => {
  // The classic attack: a verifier that picks the algorithm from the header would check an HMAC using the
  // (public) key material as the secret. Here the header's alg never selects anything.
  const publicPem = readFileSync(join(cell.cellDir, 'keys', 'planner-1-k1.pub.pem'), 'utf8');
  const payload = Buffer.from(JSON.stringify(claims('planner-1'))).toString('base64url');
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    const header = Buffer.from(JSON.stringify({ alg, kid: 'planner-1-k1', typ: COMMAND_TOKEN_TYPE })).toString('base64url');
    const hash = `sha${alg.slice(2)}`;
    const mac = createHmac(hash, publicPem).update(`${header}.${payload}`).digest();
    const decision = evaluate(`${header}.${payload}.${mac.toString('base64url')}`);
    assertDenied(t, decision, { code: 'ENVELOPE_ALG_REJECTED', message: new RegExp(`alg "${alg}" is not accepted`) }, `${alg} with the PEM as secret`);
    t.same(decision.identity, {}, `${alg}: nothing unauthenticated is reported as identity`);
    // The same MAC stretched to 64 bytes (the Ed25519 signature length): only the algorithm can refuse it.
    const stretched = Buffer.concat([mac, Buffer.alloc(64 - mac.length)]).subarray(0, 64);
    assertDenied(t, evaluate(`${header}.${payload}.${stretched.toString('base64url')}`), { code: 'ENVELOPE_ALG_REJECTED' }, `${alg}, MAC padded to 64 bytes`);
  }
  // The HMAC under alg EdDSA is simply a bad signature.
  const header = Buffer.from(HEADER).toString('base64url');
  const mac = createHmac('sha512', publicPem).update(`${header}.${payload}`).digest();
  assertDenied(t, evaluate(`${header}.${payload}.${mac.toString('base64url')}`), { code: 'ENVELOPE_BAD_SIGNATURE' }, 'HMAC-SHA512 presented as an EdDSA signature');
});

t.test('alg spelled another way, with a genuine Ed25519 signature attached', async (t) => {
  // Case variants and synonyms of the accepted algorithm are not the accepted algorithm.
  for (const alg of ['none', 'None', 'NONE', 'eddsa', 'EDDSA', 'Ed25519', 'EdDSA ', ' EdDSA']) {
    const token = signedRaw(JSON.stringify({ alg, kid: 'planner-1-k1', typ: COMMAND_TOKEN_TYPE }), JSON.stringify(claims('planner-1')));
    assertDenied(t, evaluate(token), { code: 'ENVELOPE_ALG_REJECTED' }, `alg ${JSON.stringify(alg)}`);
  }
});

t.test('kid injection: paths, control characters and look-alikes select no key', async (t) => {
  const kids = [
    '../keys/planner-1-k1',
    '../keys/planner-1-k1.pub.pem',
    'keys/planner-1-k1.pub.pem',
    './planner-1-k1',
    '/etc/passwd',
    '..\\keys\\planner-1-k1',
    'planner-1-k1\u0000',
    'planner-1-k1\u0000.pub.pem',
    '\u0000planner-1-k1',
    'planner-1-k1\n',
    'planner-1-k1\u200b', // zero-width space
    '\u202eplanner-1-k1', // right-to-left override
    'planner\u20101-k1', // U+2010 hyphen
    'planner-1\u2011k1', // U+2011 non-breaking hyphen
    '\u0440lanner-1-k1', // Cyrillic er
    '\uff50\uff4c\uff41\uff4e\uff4e\uff45\uff52-1-k1', // fullwidth "planner"
    'plann\u00e9r-1-k1',
    'planner-1-k1%00',
    '%2e%2e/planner-1-k1',
  ];
  for (const kid of kids) {
    const decision = evaluate(signed(claims('planner-1'), 'planner-1', { kid }));
    assertDenied(t, decision, { code: 'ENVELOPE_UNKNOWN_KEY' }, `kid ${JSON.stringify(kid)}`);
    t.same(decision.identity, {}, `kid ${JSON.stringify(kid)}: no identity`);
  }
  // A stop under an injected kid is not authenticated, so the safe-state pass does not apply.
  assertDenied(t, evaluate(signed(claims('planner-1', 'stop', {}), 'planner-1', { kid: '../keys/planner-1-k1' })), { code: 'ENVELOPE_UNKNOWN_KEY' }, 'a stop under an injected kid');
});

t.test('look-alike agent and device ids are not identifiers at all', async (t) => {
  const cases: { name: string; overrides: Record<string, unknown>; path: string }[] = [
    { name: 'iss "planner\u20101" (U+2010 hyphen)', overrides: { iss: 'planner\u20101' }, path: '/iss' },
    { name: 'iss "planner\u20111" (U+2011 non-breaking hyphen)', overrides: { iss: 'planner\u20111' }, path: '/iss' },
    { name: 'iss "planner\u22121" (U+2212 minus)', overrides: { iss: 'planner\u22121' }, path: '/iss' },
    { name: 'iss fullwidth "\uff50\uff4c\uff41\uff4e\uff4e\uff45\uff52\uff0d\uff11"', overrides: { iss: '\uff50\uff4c\uff41\uff4e\uff4e\uff45\uff52\uff0d\uff11' }, path: '/iss' },
    { name: 'iss with a zero-width joiner', overrides: { iss: 'planner-1\u200d' }, path: '/iss' },
    // NFC/NFD: a decomposed accent is two code points, neither an identifier character.
    { name: 'iss with a combining accent', overrides: { iss: 'planne\u0301r-1' }, path: '/iss' },
    { name: 'aud "arm\u20101"', overrides: { aud: 'arm\u20101' }, path: '/aud' },
    { name: 'aud "\u0430rm-1" (Cyrillic a)', overrides: { aud: '\u0430rm-1' }, path: '/aud' },
  ];
  for (const c of cases) {
    assertDenied(t, evaluate(signed(claims('planner-1', 'move_joints', IN_BOUNDS, c.overrides), 'planner-1')), { code: 'ENVELOPE_INVALID_CLAIMS', path: c.path }, c.name);
  }
  // Nor can a look-alike be registered: the loader refuses it, so no key can ever belong to one.
  const lookAlike = makeTestCell({ 'agents.yaml': edit(demoText('agents.yaml'), '- id: trainee-1', '- id: \u0440lanner-1') });
  t.teardown(() => lookAlike.cleanup());
  const result = loadCell(lookAlike.cellDir);
  t.equal(result.ok, false, 'a registry with agent "\u0440lanner-1" is refused');
  t.ok(!result.ok && result.problems.some((p) => p.file === 'agents.yaml' && p.path === '/agents/1/id' && /pattern/.test(p.message)), 'at /agents/1/id', { found: result.ok ? [] : result.problems });
});

t.test('deeply nested payloads are denied without exhausting the stack', async (t) => {
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const nestedObject = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const withParams = (paramsText: string, action = 'move_joints'): string => {
    const text = JSON.stringify(claims('planner-1', action, { placeholder: true }));
    return text.replace('{"placeholder":true}', paramsText);
  };
  // In the demo cell the 8 KiB limit refuses them before anything is parsed.
  assertDenied(t, evaluate(signedRaw(HEADER, withParams(`{"positionsRad":${nested(10_000)},"velocityRadPerS":0.5}`))), { code: 'ENVELOPE_OVERSIZE' }, '10 000 nested arrays, 8 KiB limit');

  // With a 4 MiB limit they are parsed, and each stage must still answer without recursing into them.
  const big = makeTestCell({ 'cell.yaml': edit(demoText('cell.yaml'), 'maxTokenSize: { value: 8, unit: KiB }', 'maxTokenSize: { value: 4096, unit: KiB }') });
  t.teardown(() => big.cleanup());
  const bigCell = big.load();
  t.equal(bigCell.declarations.commandLimits.maxTokenBytes, 4096 * 1024, 'fixture: 4 MiB tokens');
  const bigHeader = JSON.stringify({ alg: 'EdDSA', kid: 'planner-1-k1', typ: COMMAND_TOKEN_TYPE });
  const cases: { name: string; header?: string; payload: string; expected: Expected }[] = [
    { name: 'positionsRad nested 10 000 deep', payload: withParams(`{"positionsRad":${nested(10_000)},"velocityRadPerS":0.5}`), expected: { code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad/0' } },
    // JSON.stringify of this value overflows the stack: nothing on the path may serialise the params.
    { name: 'positionsRad nested 100 000 deep', payload: withParams(`{"positionsRad":${nested(100_000)},"velocityRadPerS":0.5}`), expected: { code: 'COMMAND_INVALID_PARAMS', path: '/params/positionsRad/0' } },
    { name: 'an unknown param holding 10 000 nested objects', payload: withParams(`{"positionsRad":[0,-1,0,0,0,0],"velocityRadPerS":0.5,"x":${nestedObject(10_000)}}`), expected: { code: 'COMMAND_INVALID_PARAMS', path: '/params/x' } },
    // A stop is a safe-state command, but its params are still validated before it passes.
    { name: 'a stop whose params nest 10 000 deep', payload: withParams(`{"x":${nested(10_000)}}`, 'stop'), expected: { code: 'COMMAND_INVALID_PARAMS', path: '/params/x' } },
    { name: 'params itself 10 000 nested objects', payload: withParams(nestedObject(10_000)), expected: { code: 'COMMAND_INVALID_PARAMS' } },
    { name: 'trace nested 10 000 deep', payload: JSON.stringify(claims('planner-1')).replace(/}$/, `,"trace":{"session":${nested(10_000)}}}`), expected: { code: 'ENVELOPE_INVALID_CLAIMS', path: '/trace/session' } },
    { name: 'an unknown claim nested 100 000 deep', payload: JSON.stringify(claims('planner-1')).replace(/}$/, `,"x":${nested(100_000)}}`), expected: { code: 'ENVELOPE_INVALID_CLAIMS', path: '/x' } },
    { name: 'the header nested 10 000 deep', header: bigHeader.replace(/}$/, `,"x":${nested(10_000)}}`), payload: JSON.stringify(claims('planner-1')), expected: { code: 'ENVELOPE_ALG_REJECTED' } },
  ];
  for (const c of cases) {
    const token = signedRaw(c.header ?? bigHeader, c.payload, 'planner-1', big);
    let decision: Decision | undefined;
    t.doesNotThrow(() => {
      decision = evaluateCommand({ token, topicDeviceId: 'arm-1' }, context(bigCell), NOW);
    }, `${c.name}: evaluateCommand returns`);
    if (decision === undefined) continue;
    // INTERNAL_ERROR would also deny, but would mean a stage blew up (a RangeError caught by the pipeline).
    assertDenied(t, decision, c.expected, c.name);
  }
});

t.test('__proto__ in the JWS header and in a stop\'s params', async (t) => {
  const payload = JSON.stringify(claims('planner-1'));
  // JSON.parse makes "__proto__" an own key: an unknown header field, never the header's prototype.
  const protoHeader = `{"alg":"EdDSA","kid":"planner-1-k1","typ":"${COMMAND_TOKEN_TYPE}","__proto__":{"kid":"observer-1-k1","alg":"none"}}`;
  assertDenied(t, evaluate(signedRaw(protoHeader, payload)), { code: 'ENVELOPE_ALG_REJECTED', message: /unsupported fields: __proto__/ }, '__proto__ in the header');
  const constructorHeader = `{"alg":"EdDSA","kid":"planner-1-k1","typ":"${COMMAND_TOKEN_TYPE}","constructor":{"prototype":{"admin":true}}}`;
  assertDenied(t, evaluate(signedRaw(constructorHeader, payload)), { code: 'ENVELOPE_ALG_REJECTED', message: /unsupported fields: constructor/ }, 'constructor in the header');
  // A stop passes on authentication alone, but not with smuggled params.
  const stopText = JSON.stringify(claims('planner-1', 'stop', { placeholder: true })).replace('{"placeholder":true}', '{"__proto__":{"safeState":true}}');
  assertDenied(t, evaluate(signedRaw(HEADER, stopText)), { code: 'COMMAND_INVALID_PARAMS', path: '/params/__proto__' }, '__proto__ in a stop\'s params');
  for (const key of ['alg', 'kid', 'admin', 'safeState']) t.equal(({} as Record<string, unknown>)[key], undefined, `Object.prototype has no ${key}`);
});

t.test('revoked keys, keys outside their window, and commands from before the replay memory began', async (t) => {
  const cases: { name: string; token: () => string; nowMs?: number; expected: Expected & { limit?: number } }[] = [
    {
      name: 'a move signed by a revoked key',
      token: () => signed(claims('revoked-1'), 'revoked-1'),
      expected: { code: 'ENVELOPE_KEY_REVOKED', ruleId: 'revoked/revoked-1-k1', message: /agent host compromised \(incident 7\)/ },
    },
    // A revoked key cannot even stop: the safe-state pass is for authenticated commands only.
    { name: 'a stop signed by a revoked key', token: () => signed(claims('revoked-1', 'stop', {}), 'revoked-1'), expected: { code: 'ENVELOPE_KEY_REVOKED', ruleId: 'revoked/revoked-1-k1' } },
    { name: 'a stop signed by a revoked operator key', token: () => signed(claims('gone-op', 'stop', {}), 'gone-op'), expected: { code: 'ENVELOPE_KEY_REVOKED', ruleId: 'revoked/gone-op-k1', message: /operator left the company/ } },
    { name: 'a move by a key 1 s before its notBefore', token: () => signed(claims('future-1'), 'future-1'), expected: { code: 'ENVELOPE_KEY_NOT_VALID', limit: NOW + 1000, message: /not valid before 2023-11-14T22:13:21\.000Z/ } },
    { name: 'a stop by a key before its notBefore', token: () => signed(claims('future-1', 'stop', {}), 'future-1'), expected: { code: 'ENVELOPE_KEY_NOT_VALID' } },
    { name: 'a move by a key at its notAfter', token: () => signed(claims('retired-1'), 'retired-1'), expected: { code: 'ENVELOPE_KEY_NOT_VALID', limit: NOW, message: /expired at 2023-11-14T22:13:20\.000Z/ } },
  ];
  for (const c of cases) {
    const decision = evaluate(c.token());
    assertDenied(t, decision, c.expected, c.name);
    if (c.expected.limit !== undefined) t.equal(decision.reasons[0]?.limit, c.expected.limit, `${c.name}: limit`);
  }
  // The window boundaries: notBefore is inclusive, notAfter exclusive (a stop, which passes once authenticated).
  const stopAt = (id: string, nowMs: number): Decision => evaluate(signed(claims(id, 'stop', {}, { iat: nowMs / 1000, exp: (nowMs + 2000) / 1000 }), id), { nowMs });
  t.equal(stopAt('future-1', NOW + 1000).verdict, 'allow', 'future-1 at its notBefore: allowed');
  assertDenied(t, stopAt('future-1', NOW + 999), { code: 'ENVELOPE_KEY_NOT_VALID' }, 'future-1 1 ms before its notBefore');
  t.equal(stopAt('retired-1', NOW - 1).verdict, 'allow', 'retired-1 1 ms before its notAfter: allowed');

  // The replay memory began after the command was issued (a restart after a crash): it cannot be proven new.
  const restarted = new MemoryReplayGuard(() => NOW, NOW + 1);
  assertDenied(t, evaluate(signed(claims('planner-1'), 'planner-1'), { replay: restarted }), { code: 'ENVELOPE_ISSUED_BEFORE_START' }, 'a move issued 1 ms before the epoch');
  assertDenied(t, evaluate(signed(claims('planner-1', 'stop', {}), 'planner-1'), { replay: restarted }), { code: 'ENVELOPE_ISSUED_BEFORE_START' }, 'a stop issued before the epoch');
  t.equal(evaluate(signed(claims('planner-1', 'stop', {}), 'planner-1'), { replay: new MemoryReplayGuard(() => NOW, NOW) }).verdict, 'allow', 'a stop issued at the epoch: allowed');
});

t.test('operator-signed commands: the Operator principal, denied unless a policy permits operators; stops pass', async (t) => {
  // In the demo cell no policy permits an operator to move an arm.
  const move = evaluate(signed(claims('shift-lead'), 'shift-lead'));
  assertDenied(t, move, { code: 'POLICY_NO_PERMIT', message: /no policy permits operator shift-lead to move_joints on arm-1/ }, 'operator move, demo policies');
  t.equal(move.command?.agent.kind, 'operator', 'authenticated as an Operator principal');
  t.equal(move.identity.agentId, 'shift-lead');
  // An operator's stop passes as a safe-state command.
  const stop = evaluate(signed(claims('shift-lead', 'stop', {}), 'shift-lead'));
  t.equal(stop.verdict, 'allow');
  t.same(stop.reasons.map((r) => r.code), ['SAFE_STATE_COMMAND']);
  t.equal(stop.command?.agent.kind, 'operator');
  // An operator cannot pass as an agent: iss an agent with the operator's key.
  assertDenied(t, evaluate(signed(claims('planner-1'), 'shift-lead')), { code: 'ENVELOPE_ISSUER_MISMATCH' }, 'operator key, iss planner-1');

  // A cell whose policy permits operators with the mode role to move arms.
  const permitting = makeTestCell({
    'policies/operators.cedar':
      '@id("operators-with-mode-move-arms")\npermit (\n  principal is Interlock::Operator,\n  action == Interlock::Action::"move_joints",\n  resource is Interlock::Device in Interlock::Cell::"demo-cell"\n)\nwhen { principal.roles.contains("mode") && resource.kind == "robot_arm" };\n',
  });
  t.teardown(() => permitting.cleanup());
  const permittingCell = permitting.load();
  const permitted = evaluateCommand({ token: signed(claims('shift-lead'), 'shift-lead', { source: permitting }), topicDeviceId: 'arm-1' }, context(permittingCell), NOW);
  assertPassedIdentityAndPolicy(t, permitted, 'operator move with a permitting policy');
  t.equal(permitted.command?.agent.kind, 'operator');
  // The same policy does not let an operator move the conveyor, nor an agent do anything new.
  const conveyor = evaluateCommand(
    { token: signed({ ...claims('shift-lead', 'set_speed', { speedMPerS: 0.1 }), aud: 'conveyor-1' }, 'shift-lead', { source: permitting }), topicDeviceId: 'conveyor-1' },
    context(permittingCell),
    NOW,
  );
  t.ok(conveyor.reasons.some((r) => r.code === 'POLICY_NO_PERMIT'), 'operator set_speed: still no permit');
  t.equal(conveyor.verdict, 'deny');
});

t.test('a scope 1 agent may stop but never actuate, whatever the policies say', async (t) => {
  // A cell with a policy that permits everything to everyone: the scope rule is not a policy and is not overridden.
  const permissive = makeTestCell({ 'policies/everything.cedar': '@id("permit-everything")\npermit (principal, action, resource);\n' });
  t.teardown(() => permissive.cleanup());
  const permissiveCell = permissive.load();
  const observer = (action: string, params: Record<string, unknown>, source: TestCell, cellUnderTest: LoadedCell): Decision =>
    evaluateCommand({ token: signed(claims('observer-1', action, params), 'observer-1', { source }), topicDeviceId: 'arm-1' }, context(cellUnderTest), NOW);
  for (const [name, source, cellUnderTest] of [
    ['demo policies', cell, loaded],
    ['a permit-everything policy', permissive, permissiveCell],
  ] as const) {
    const move = observer('move_joints', IN_BOUNDS, source, cellUnderTest);
    assertDenied(t, move, { code: 'POLICY_SCOPE_OBSERVE_ONLY', ruleId: 'scope-1', message: /autonomy scope 1: it may observe, never actuate/ }, `${name}: observer-1 move`);
    const stop = observer('stop', {}, source, cellUnderTest);
    t.equal(stop.verdict, 'allow', `${name}: observer-1 stop passes`);
    t.same(stop.reasons.map((r) => r.code), ['SAFE_STATE_COMMAND'], `${name}: as a safe-state command`);
  }
  // The permit-everything policy is really in force: trainee-1 (scope 2), which no demo policy permits to move an
  // arm, is now only held for approval by the scope 2 rule.
  const trainee = (source: TestCell, cellUnderTest: LoadedCell): Decision =>
    evaluateCommand({ token: signed(claims('trainee-1'), 'trainee-1', { source }), topicDeviceId: 'arm-1' }, context(cellUnderTest), NOW);
  t.ok(trainee(cell, loaded).reasons.some((r) => r.code === 'POLICY_NO_PERMIT'), 'fixture: demo policies do not permit trainee-1');
  const held = trainee(permissive, permissiveCell).reasons.filter((r) => r.stage === 'policy');
  t.same(held.map((r) => [r.code, r.ruleId]), [['POLICY_APPROVAL_REQUIRED', 'scope-2']], 'fixture: the permissive cell permits trainee-1 (held only by the scope 2 rule)');
});

t.test('a Cedar policy that reads a missing attribute: refused at load, or POLICY_ERROR at run time', async (t) => {
  const schema = demoText('policies/schema.cedarschema');

  t.test('an attribute the principal type does not declare: strict validation refuses the cell at load', async (t) => {
    // Without `is Interlock::Agent` the principal may be an Operator, which has no autonomyScope.
    const broken = makeTestCell({ 'policies/missing-attr.cedar': '@id("scope-for-anyone")\npermit (principal, action, resource)\nwhen { principal.autonomyScope >= 3 };\n' });
    t.teardown(() => broken.cleanup());
    const result = loadCell(broken.cellDir);
    t.equal(result.ok, false, 'the cell does not load, so no command is ever judged by it');
    const problems = result.ok ? [] : result.problems;
    t.ok(problems.some((p) => p.file === 'policies/missing-attr.cedar' && p.path === 'scope-for-anyone' && /autonomyScope/.test(p.message) && /Operator/.test(p.message)), 'names file, policy and attribute', { found: problems });
  });

  t.test('an Agent attribute the interlock never sends: the load-time probe refuses the cell', async (t) => {
    const agentTeam = edit(schema, 'entity Agent = { autonomyScope: Long, owner: String };', 'entity Agent = { autonomyScope: Long, owner: String, team: String };');
    const broken = makeTestCell({
      'policies/schema.cedarschema': agentTeam,
      'policies/team.cedar': '@id("team-red-forbidden")\nforbid (principal is Interlock::Agent, action, resource)\nwhen { principal.team == "red" };\n',
    });
    t.teardown(() => broken.cleanup());
    const result = loadCell(broken.cellDir);
    t.equal(result.ok, false, 'refused at load');
    const problems = result.ok ? [] : result.problems;
    t.ok(problems.some((p) => p.file === 'policies/schema.cedarschema' && /does not fit this schema/.test(p.message) && /team/.test(p.message)), 'the probe names the missing attribute', { found: problems });
  });

  t.test('an Operator attribute the interlock never sends is refused at load (the probe sends an Operator too)', async (t) => {
    const operatorBadge = edit(schema, 'entity Operator = { name: String, roles: Set<String> };', 'entity Operator = { name: String, roles: Set<String>, badge: String };');
    const broken = makeTestCell({ 'policies/schema.cedarschema': operatorBadge });
    t.teardown(() => broken.cleanup());
    const result = loadCell(broken.cellDir);
    t.equal(result.ok, false, 'refused at load');
    const problems = result.ok ? [] : result.problems;
    t.ok(problems.some((p) => /from an operator/.test(p.message) && /badge/.test(p.message)), 'the probe names the operator attribute', { found: problems });
  });

  t.test('a forbid that errors at run time (Long overflow) denies with POLICY_ERROR, never skipped', async (t) => {
    // Strict validation cannot see an overflow: the forbid loads, and erroring at run time it must not be skipped
    // (which would leave the permit standing and allow the move).
    const erroring = makeTestCell({
      'policies/overflow.cedar':
        '@id("overflowing-forbid")\nforbid (principal is Interlock::Agent, action, resource)\nwhen { principal.autonomyScope * 9223372036854775807 > 0 };\n',
    });
    t.teardown(() => erroring.cleanup());
    const result = loadCell(erroring.cellDir);
    t.equal(result.ok, true, 'loads', { problems: result.ok ? [] : result.problems });
    if (!result.ok) return;
    const move = evaluateCommand({ token: signed(claims('planner-1'), 'planner-1', { source: erroring }), topicDeviceId: 'arm-1' }, context(result.cell), NOW);
    assertDenied(t, move, { code: 'POLICY_ERROR', message: /overflowing-forbid|overflow/ }, 'planner move');
    // An authenticated stop still passes: safe-state commands never reach Cedar.
    const stop = evaluateCommand({ token: signed(claims('planner-1', 'stop', {}), 'planner-1', { source: erroring }), topicDeviceId: 'arm-1' }, context(result.cell), NOW);
    t.equal(stop.verdict, 'allow', 'stop still passes');
  });
});
