// The payload limits per topic kind and the packet-length meter behind the embedded broker's limit: boundaries,
// headers split anywhere, and that the largest valid messages fit with room. Unit tests: no sockets.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { COMMAND_TOKEN_TYPE } from '../../src/core/command.js';
import { generateEd25519KeyPair, signCompactJws } from '../../src/crypto/jws.js';
import { PacketLengthMeter } from '../../src/transport/packet-size-guard.js';
import {
  commandPayloadProblem,
  MAX_PACKET_BYTES,
  operatorMessagePayloadProblem,
  outcomePayloadProblem,
  PAYLOAD_LIMITS,
  statePayloadProblem,
} from '../../src/transport/payload-limits.js';
import { variableByteInteger } from '../../scripts/bench-oversize.js';
import { REPO_ROOT } from '../helpers/test-cell.js';

t.test('each topic kind: a payload at its limit passes, one byte more is a problem naming both sizes', async (t) => {
  const kinds = [
    ['command', commandPayloadProblem, PAYLOAD_LIMITS.commandBytes],
    ['state', statePayloadProblem, PAYLOAD_LIMITS.stateBytes],
    ['outcome', outcomePayloadProblem, PAYLOAD_LIMITS.outcomeBytes],
    ['operator message', operatorMessagePayloadProblem, PAYLOAD_LIMITS.operatorMessageBytes],
  ] as const;
  for (const [name, problem, limit] of kinds) {
    t.equal(problem(Buffer.alloc(limit)), undefined, `${name}: ${limit} bytes pass`);
    t.equal(problem(Buffer.alloc(0)), undefined, `${name}: empty passes (the parser refuses it)`);
    t.match(problem(Buffer.alloc(limit + 1)), new RegExp(`of ${limit + 1} bytes exceeds the limit of ${limit} bytes`), `${name}: one byte more`);
    // A string is measured in UTF-8 bytes, not characters: 'é' is two.
    t.match(problem('é'.repeat(limit / 2 + 1)), /exceeds/, `${name}: a string counts its UTF-8 bytes`);
    t.equal(problem('é'.repeat(limit / 2)), undefined, `${name}: a string of exactly the limit in UTF-8`);
    t.ok(limit * 4 <= MAX_PACKET_BYTES, `${name}: the broker's packet limit is at least 4 times the payload limit`);
  }
  t.ok(MAX_PACKET_BYTES * 380 <= 100_000_000, 'a 100 MB publish is over 380 times the packet limit');
});

t.test('the largest valid messages fit within their limits', async (t) => {
  const { privateKey } = generateEd25519KeyPair();
  // Full double precision everywhere: what a planner that prints every digit sends.
  const far = (i: number): number => -123.45678901234567 - i;
  const claims = (params: Record<string, unknown>): Record<string, unknown> => ({
    iss: 'planner-1', aud: 'amr-1', jti: 'cmd-0123456789abcdef0123456789', seq: Number.MAX_SAFE_INTEGER, iat: 1_795_000_000.123, exp: 1_795_000_005.123,
    action: 'follow_path', params, trace: { session: 's'.repeat(128), plan: 'a'.repeat(64) },
  });
  const path = (n: number): string => signCompactJws(claims({ waypoints: Array.from({ length: n }, (_, i) => [far(i), far(i)]), speedMPerS: 0.123456789, accelerationMPerS2: 0.123456789 }), 'planner-1-k1', privateKey, COMMAND_TOKEN_TYPE);
  t.ok(path(100).length < 8 * 1024, `a 100-waypoint path is ${path(100).length} bytes`);
  t.equal(commandPayloadProblem(path(1000)), undefined, `a 1000-waypoint path (the most follow_path takes) is ${path(1000).length} bytes`);

  const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`.padEnd(64, 'x'));
  const people = Array.from({ length: 64 }, (_, i) => [far(i), far(i), far(i)]);
  const processUnit = {
    measurements: Object.fromEntries(names('m', 64).map((n, i) => [n, far(i)])),
    setpoints: Object.fromEntries(names('s', 32).map((n, i) => [n, far(i)])),
    running: true, trips: names('t', 32), safeStopped: false, lastCommandId: 'c'.repeat(128), timeMs: 1_795_000_000_000, people,
  };
  const signedState = signCompactJws({ dev: 'pump-1', sid: 'r'.repeat(64), seq: Number.MAX_SAFE_INTEGER, iat: 1_795_000_000_000, body: processUnit }, 'pump-1-driver-k1', privateKey, 'device-state+jws');
  t.equal(statePayloadProblem(signedState), undefined, `the largest process-unit state, signed, is ${signedState.length} bytes`);
  t.ok(signedState.length * 2 < PAYLOAD_LIMITS.stateBytes, 'with room to double');

  // A problem of control characters, each written as a 6-byte escape, filling the body to parseDeviceOutcome's 4096.
  const outcome = (problem: string): Record<string, unknown> => ({ commandId: 'c'.repeat(128), auditSeq: Number.MAX_SAFE_INTEGER, status: 'refused', problem, timeMs: 1_795_000_000_000 });
  const outcomeBody = outcome('\u0001'.repeat(Math.floor((4096 - JSON.stringify(outcome('')).length) / 6)));
  t.ok(JSON.stringify(outcomeBody).length > 4090 && JSON.stringify(outcomeBody).length <= 4096, 'fixture: an outcome body of nearly 4096 bytes');
  const signedOutcome = signCompactJws({ dev: 'pump-1', sid: 'r'.repeat(64), seq: Number.MAX_SAFE_INTEGER, iat: 1_795_000_000_000, body: outcomeBody }, 'pump-1-driver-k1', privateKey, 'device-outcome+jws');
  t.equal(outcomePayloadProblem(signedOutcome), undefined, `a signed outcome with a 4 KB body is ${signedOutcome.length} bytes`);

  const operator = signCompactJws(
    { iss: 'shift-lead', aud: 'demo-cell', jti: 'op-'.padEnd(128, '0'), seq: Number.MAX_SAFE_INTEGER, iat: 1_795_000_000, exp: 1_795_000_030, action: 'approve', params: { approvalId: 'a'.repeat(64), commandDigest: 'b'.repeat(64), note: '\u{1F6D1}'.repeat(250) } },
    'shift-lead-k1', privateKey, 'interlock-operator+jws',
  );
  t.equal(operatorMessagePayloadProblem(operator), undefined, `an approval with a 500-character note of 4-byte characters is ${operator.length} bytes`);
});

t.test('the shipped mosquitto configuration has the same packet limit', async (t) => {
  const config = readFileSync(join(REPO_ROOT, 'greengrass', 'standalone', 'mosquitto.conf'), 'utf8');
  const lines = config.split('\n').filter((line) => /^\s*max_packet_size\s/.test(line));
  t.same(lines, [`max_packet_size ${MAX_PACKET_BYTES}`], 'one max_packet_size line, equal to MAX_PACKET_BYTES');
});

/** A fixed header (type byte and remaining length) announcing `remaining` bytes of body. */
function header(remaining: number, type = 0x30): Buffer {
  return Buffer.concat([Buffer.from([type]), variableByteInteger(remaining)]);
}

t.test('packet meter: exactly the limit passes and one byte more is refused, for every length width', async (t) => {
  for (const limit of [64, 200, 20_000, MAX_PACKET_BYTES, 3_000_000]) {
    const width = header(limit).length - 1;
    const fits = limit - 1 - width;
    const meter = new PacketLengthMeter(limit);
    t.equal(meter.feed(Buffer.concat([header(fits), Buffer.alloc(fits)])), undefined, `limit ${limit}: a packet of exactly ${limit} bytes`);
    t.equal(meter.feed(Buffer.from([0xc0, 0x00])), undefined, `limit ${limit}: then a PINGREQ (no body)`);
    t.match(meter.feed(header(fits + 1)), new RegExp(`packet of ${limit + 1} bytes exceeds the broker's maximum of ${limit} bytes`), `limit ${limit}: one byte more, refused at the header`);
    t.match(meter.feed(Buffer.from([0xc0, 0x00])), /exceeds/, `limit ${limit}: and stays refused`);
  }
});

t.test('packet meter: headers and bodies split across chunks at every byte', async (t) => {
  const limit = 300;
  const stream = Buffer.concat([header(150), Buffer.alloc(150, 1), Buffer.from([0xc0, 0x00]), header(200), Buffer.alloc(200, 2), header(297), Buffer.alloc(297, 3), header(400)]);
  const wrong: string[] = [];
  for (let cut = 0; cut < stream.length; cut++) {
    const meter = new PacketLengthMeter(limit);
    // The offending length is complete only with the stream's last byte, so the first part never holds the refusal.
    if (meter.feed(stream.subarray(0, cut)) !== undefined) wrong.push(`cut ${cut}: refused early`);
    if (!/packet of 403 bytes exceeds/.test(meter.feed(stream.subarray(cut)) ?? '')) wrong.push(`cut ${cut}: not refused`);
  }
  t.same(wrong, [], `split at each of ${stream.length} places: refused at the 403-byte packet, never before`);
  const bytewise = new PacketLengthMeter(limit);
  const problems = [...stream].map((byte) => bytewise.feed(Buffer.from([byte])));
  t.equal(problems.findIndex((p) => p !== undefined), stream.length - 1, 'byte by byte: refused at the last length byte of the bad header');
});

t.test('packet meter: a remaining length of more than four bytes is malformed', async (t) => {
  const meter = new PacketLengthMeter(MAX_PACKET_BYTES);
  t.match(meter.feed(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])), /remaining length longer than 4 bytes/);
  const longest = new PacketLengthMeter(1_000);
  t.match(longest.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])), /packet of 268435460 bytes exceeds/, 'the largest MQTT length is read, then refused');
});
