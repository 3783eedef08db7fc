// The decision entry builder alone (no I/O): the state record's keys, values and ages, a value JSON cannot carry
// turned into words so the record stays recordable, decisionUs as whole microseconds, and the token only when the
// command authenticated.

import t from 'tap';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { reason } from '../../src/core/reasons.js';
import { decisionEntry, elapsedUs, recordableValue, stateRecord } from '../../src/interlock/decision-entry.js';
import type { Decision } from '../../src/pipeline/pipeline.js';

const T = 1_800_000_000_000;

t.test('state: <device>/<field> with the value and its age, the kind left out, people kept', async (t) => {
  const record = stateRecord(
    [
      { deviceId: 'conveyor-1', observed: { state: { kind: 'conveyor', speedMPerS: 0.2, permissives: { guardClosed: true } } as never, receivedAtMs: T - 40 } },
      { deviceId: 'amr-1', observed: { state: { kind: 'mobile_robot', moving: false } as never, people: [[1, 2, 0]], receivedAtMs: T - 15 } },
    ],
    T,
  );
  t.same(record, {
    'conveyor-1/speedMPerS': { value: 0.2, ageMs: 40 },
    'conveyor-1/permissives': { value: { guardClosed: true }, ageMs: 40 },
    'amr-1/moving': { value: false, ageMs: 15 },
    'amr-1/people': { value: [[1, 2, 0]], ageMs: 15 },
  });
});

t.test('a value JSON cannot carry is recorded in words; the entry stays canonical JSON', async (t) => {
  t.same(recordableValue({ a: [1, Infinity, -Infinity, NaN], b: 'x' }), { a: [1, 'Infinity', '-Infinity', 'NaN'], b: 'x' });
  const decision: Decision = {
    verdict: 'deny',
    reasons: [reason('BOUNDS_CONVEYOR_SPEED', 'too fast', { actual: Infinity, limit: 0.5 })],
    commandDigest: 'a'.repeat(64),
    declarationsDigest: 'b'.repeat(64),
    decidedAtMs: T,
    identity: { agentId: 'planner-1', commandId: 'c-1', deviceId: 'conveyor-1', action: 'set_speed' },
    commandToken: 'h.p.s',
    stateUsed: [{ deviceId: 'conveyor-1', observed: { state: { kind: 'conveyor', speedMPerS: Infinity } as never, receivedAtMs: T - 5 } }],
  };
  const entry = decisionEntry(decision, 'conveyor-1', { arrivedAt: 10, decidedAt: 10.0123456 });
  t.doesNotThrow(() => canonicalJson(entry));
  t.same(entry.state, { 'conveyor-1/speedMPerS': { value: 'Infinity', ageMs: 5 } });
  t.equal(entry.commandToken, 'h.p.s');
  t.equal(entry.decisionUs, 12, 'whole microseconds');
});

t.test('no token, no state, no decisionUs unless the decision has them', async (t) => {
  const entry = decisionEntry(
    { verdict: 'deny', reasons: [], commandDigest: 'a'.repeat(64), declarationsDigest: 'b'.repeat(64), decidedAtMs: T, identity: {} },
    'arm-1',
  );
  t.equal(entry.commandToken, undefined);
  t.equal(entry.state, undefined);
  t.equal(entry.decisionUs, undefined);
  t.equal(elapsedUs(5, 4), 0, 'never negative');
  t.equal(elapsedUs(0, Number.NaN), 0);
});
