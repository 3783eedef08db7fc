// A JWS whose header or claims repeat a key is malformed, wherever the repeat is: JSON.parse would keep the last one
// and another reader the first, so one signed text would have two meanings. Commands (ENVELOPE_MALFORMED), operator
// messages and released commands all go through the same parser. Each hostile token is correctly signed with a
// registered key, and its twin without the repeat passes, so only the repeat can be the reason.

import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { COMMAND_TOKEN_TYPE } from '../../src/core/command.js';
import { generateEd25519KeyPair, parseCompactJws } from '../../src/crypto/jws.js';
import { RELEASED_COMMAND_TYPE, INTERLOCK_KID, verifyReleasedCommand } from '../../src/dispatch/released-command.js';
import { checkEnvelope } from '../../src/envelope/envelope.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { OPERATOR_TOKEN_TYPE, verifyOperatorMessage } from '../../src/operator/operator-message.js';
import { required } from '../helpers/required.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { signRawJws, signRawRelease } from '../helpers/tokens.js';

const NOW = 1_700_000_000_000;
const S = NOW / 1000;
const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const { declarations } = cell.load();
const planner = required(cell.agentKeys.get('planner-1'), 'the planner-1 key of the test cell');

const HEADER = JSON.stringify({ alg: 'EdDSA', kid: planner.kid, typ: COMMAND_TOKEN_TYPE });
let seq = 1;
/** Claims text of a valid planner-1 -> arm-1 move_joints at NOW, with `extra` spliced in before the closing brace. */
function claimsText(extra = '', params = '{"positionsRad":[0.1,-1.2,0.3,0,0,0],"velocityRadPerS":0.5}'): string {
  seq += 1;
  return `{"iss":"planner-1","aud":"arm-1","jti":"${randomUUID()}","seq":${seq},"iat":${S},"exp":${S + 2},"action":"move_joints","params":${params}${extra}}`;
}

function envelope(headerText: string, payloadText: string): ReturnType<typeof checkEnvelope> {
  const token = signRawJws(headerText, payloadText, planner.privateKey);
  return checkEnvelope({ token, topicDeviceId: 'arm-1' }, { declarations, replay: new MemoryReplayGuard(() => NOW), nowMs: NOW });
}

function deniedMalformed(t: Test, outcome: ReturnType<typeof checkEnvelope>, message: RegExp, name: string): void {
  if (outcome.ok) {
    t.fail(`${name}: allowed`);
    return;
  }
  t.same(outcome.result.reasons.map((r) => r.code), ['ENVELOPE_MALFORMED'], `${name}: ENVELOPE_MALFORMED`);
  t.match(outcome.result.reasons[0]?.message, message, `${name}: says which key`);
}

t.test('fixture: the same tokens without a repeated key pass the envelope', async (t) => {
  t.ok(envelope(HEADER, claimsText()).ok, 'plain');
  t.ok(envelope(HEADER, claimsText(',"trace":{"session":"iss"}')).ok, 'a key name used as a value');
});

t.test('a header with alg none then alg EdDSA is malformed, not EdDSA', async (t) => {
  const header = `{"alg":"none","kid":"${planner.kid}","typ":"${COMMAND_TOKEN_TYPE}","alg":"EdDSA"}`;
  t.equal((JSON.parse(header) as { alg: string }).alg, 'EdDSA', 'fixture: JSON.parse alone would read EdDSA');
  deniedMalformed(t, envelope(header, claimsText()), /header: duplicate key "alg"/, 'alg none, alg EdDSA');
  deniedMalformed(t, envelope(`{"alg":"EdDSA","kid":"observer-1-k1","kid":"${planner.kid}","typ":"${COMMAND_TOKEN_TYPE}"}`, claimsText()), /header: duplicate key "kid"/, 'two kids');
  deniedMalformed(t, envelope(`{"alg":"EdDSA","kid":"${planner.kid}","typ":"x","typ":"${COMMAND_TOKEN_TYPE}"}`, claimsText()), /duplicate key "typ"/, 'two typs');
  deniedMalformed(t, envelope(`{"alg":"EdDSA","\\u0061lg":"EdDSA","kid":"${planner.kid}","typ":"${COMMAND_TOKEN_TYPE}"}`, claimsText()), /duplicate key "alg"/, 'alg spelled with an escape');
});

t.test('repeated claims are malformed: two aud, two exp, two seq, two action', async (t) => {
  deniedMalformed(t, envelope(HEADER, claimsText(',"aud":"arm-2"')), /payload: duplicate key "aud"/, 'two aud');
  deniedMalformed(t, envelope(HEADER, claimsText(`,"exp":${S + 3600}`)), /duplicate key "exp"/, 'two exp (a longer life)');
  deniedMalformed(t, envelope(HEADER, claimsText(',"seq":1')), /duplicate key "seq"/, 'two seq');
  deniedMalformed(t, envelope(HEADER, claimsText(',"action":"stop"')), /duplicate key "action"/, 'two actions');
});

t.test('repeats inside nested objects are malformed too', async (t) => {
  deniedMalformed(t, envelope(HEADER, claimsText('', '{"positionsRad":[0.1,-1.2,0.3,0,0,0],"velocityRadPerS":0.1,"velocityRadPerS":9}')), /duplicate key "velocityRadPerS"/, 'in params');
  deniedMalformed(t, envelope(HEADER, claimsText(',"trace":{"session":"a","session":"b"}')), /duplicate key "session"/, 'in trace');
  deniedMalformed(t, envelope(HEADER, claimsText(',"x":[[{"k":1,"k":2}]]')), /duplicate key "k"/, 'deep in an unknown claim (caught before the claims schema)');
});

t.test('a key that appears once per object, at different depths, is fine', async (t) => {
  const parsed = parseCompactJws(signRawJws(HEADER, '{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}', planner.privateKey));
  t.ok(parsed.ok, 'parses');
  t.same(parsed.ok ? parsed.jws.payload : undefined, { a: { a: { a: 1 } }, b: [{ a: 1 }, { a: 2 }] });
});

t.test('operator messages and released commands use the same parser', async (t) => {
  const operatorHeader = `{"alg":"none","alg":"EdDSA","kid":"shift-lead-k1","typ":"${OPERATOR_TOKEN_TYPE}"}`;
  const operatorClaims = `{"iss":"shift-lead","aud":"demo-cell","aud":"other-cell","jti":"op-dup-000001","seq":2,"iat":${S},"exp":${S + 30},"action":"set_mode","params":{"device":"conveyor-1","mode":"reduced"}}`;
  const context = { declarations, replay: new MemoryReplayGuard(() => NOW), maxTtlMs: 60_000, nowMs: NOW };
  const header = verifyOperatorMessage(signRawJws(operatorHeader, '{}', planner.privateKey), context);
  t.match(header, { ok: false, problem: /header: duplicate key "alg"/ }, 'operator message header');
  const claims = verifyOperatorMessage(signRawJws(JSON.stringify({ alg: 'EdDSA', kid: 'shift-lead-k1', typ: OPERATOR_TOKEN_TYPE }), operatorClaims, planner.privateKey), context);
  t.match(claims, { ok: false, problem: /payload: duplicate key "aud"/ }, 'operator message claims');

  const interlock = generateEd25519KeyPair();
  const release = (extra: string): string =>
    `{"commandId":"c-1","agentId":"planner-1","deviceId":"arm-1","action":"move_joints","params":{"positionsRad":[0,0,0,0,0,0],"velocityRadPerS":0.5},"safeState":false,"auditSeq":7,"auditHash":"h","session":null,"releasedAtMs":${NOW},"expiresAtMs":${NOW + 2000}${extra}}`;
  const expect = { deviceId: 'arm-1', nowMs: NOW, lastAuditSeq: 0 };
  t.match(verifyReleasedCommand(signRawRelease(release(''), interlock.privateKey), interlock.publicKey, expect), { ok: true }, 'fixture: the release without a repeat verifies');
  t.match(verifyReleasedCommand(signRawRelease(release(',"deviceId":"arm-2"'), interlock.privateKey), interlock.publicKey, expect), { ok: false, problem: /duplicate key "deviceId"/ }, 'two deviceIds');
  t.match(verifyReleasedCommand(signRawRelease(release(',"safeState":true'), interlock.privateKey), interlock.publicKey, expect), { ok: false, problem: /duplicate key "safeState"/ }, 'two safeState flags');
  const releaseHeader = `{"alg":"EdDSA","kid":"${INTERLOCK_KID}","typ":"${RELEASED_COMMAND_TYPE}","kid":"${INTERLOCK_KID}"}`;
  t.match(verifyReleasedCommand(signRawJws(releaseHeader, release(''), interlock.privateKey), interlock.publicKey, expect), { ok: false, problem: /header: duplicate key "kid"/ }, 'a release header with two kids, even equal ones');
});
