// The aggregator of unauthenticated denials on its own (no broker, no log): which denials it takes, how it counts a
// window, that its memory is bounded whatever keys a flood spreads over, and when a window is written.

import t from 'tap';
import { ManualClock } from '../../src/core/clock.js';
import { reason, type ReasonCode } from '../../src/core/reasons.js';
import {
  EXAMPLE_MESSAGE_CHARS,
  EXAMPLE_PAYLOAD_CHARS,
  isUnauthenticatedDenial,
  UnauthenticatedDenials,
  UNAUTHENTICATED_CODES,
  type UnauthenticatedDenialsSummary,
} from '../../src/interlock/unauthenticated-denials.js';
import type { Decision } from '../../src/pipeline/pipeline.js';

const NOW = 1_700_000_000_000;

function denial(code: ReasonCode, extra: Partial<Decision> = {}, digest = 'd'.repeat(64)): Decision {
  return {
    verdict: 'deny',
    reasons: [reason(code, `refused: ${code} ${'m'.repeat(300)}`)],
    commandDigest: digest,
    declarationsDigest: 'e'.repeat(64),
    decidedAtMs: NOW,
    identity: {},
    ...extra,
  };
}

function recorder(clock: ManualClock, options: { windowMs?: number; maxKeys?: number } = {}): { denials: UnauthenticatedDenials; written: UnauthenticatedDenialsSummary[] } {
  const written: UnauthenticatedDenialsSummary[] = [];
  const denials = new UnauthenticatedDenials({ clock, record: async (summary) => void written.push(summary), ...options });
  return { denials, written };
}

t.test('only denials that authenticated nobody, with pre-signature reasons only, are aggregated', async (t) => {
  for (const code of UNAUTHENTICATED_CODES) t.ok(isUnauthenticatedDenial(denial(code)), `${code} is aggregated`);
  // Reasons a key holder can be held to, and internal errors (a bug or a broken store, not a flood), stay records.
  for (const code of ['ENVELOPE_INVALID_CLAIMS', 'ENVELOPE_ISSUER_MISMATCH', 'ENVELOPE_REPLAYED', 'ENVELOPE_EXPIRED', 'INTERNAL_ERROR'] as const) {
    t.notOk(isUnauthenticatedDenial(denial(code)), `${code} is recorded alone`);
  }
  t.notOk(isUnauthenticatedDenial(denial('ENVELOPE_MALFORMED', { identity: { agentId: 'planner-1' } })), 'an identified sender is recorded alone');
  t.notOk(isUnauthenticatedDenial(denial('ENVELOPE_MALFORMED', { verdict: 'hold' })), 'never a hold');
  t.notOk(isUnauthenticatedDenial(denial('ENVELOPE_MALFORMED', { verdict: 'allow' })), 'never an allow');
  t.notOk(isUnauthenticatedDenial(denial('ENVELOPE_MALFORMED', { reasons: [] })), 'never a denial without a reason');
  t.notOk(
    isUnauthenticatedDenial(denial('ENVELOPE_MALFORMED', { reasons: [reason('ENVELOPE_MALFORMED', 'x'), reason('AUDIT_LOG_FULL', 'y')] })),
    'never one with any other reason',
  );
});

t.test('a window counts per topic and code, keeps the first example bounded, and is written when the next one starts', async (t) => {
  const clock = new ManualClock(NOW);
  const { denials, written } = recorder(clock, { windowMs: 10_000 });
  const payload = `${'p'.repeat(200)}`;
  denials.add(denial('ENVELOPE_MALFORMED', {}, 'a'.repeat(64)), 'conveyor-1', payload);
  denials.add(denial('ENVELOPE_MALFORMED', {}, 'b'.repeat(64)), 'conveyor-1', 'x');
  denials.add(denial('ENVELOPE_BAD_SIGNATURE'), 'conveyor-1', 'y');
  denials.add(denial('ENVELOPE_MALFORMED'), 'amr-1', 'z');
  clock.advance(9_999);
  denials.add(denial('ENVELOPE_MALFORMED'), 'amr-1', 'z');
  t.same(written, [], 'nothing written within the window');
  clock.advance(1);
  denials.add(denial('ENVELOPE_UNKNOWN_KEY'), 'amr-1', 'w');
  t.equal(written.length, 1, 'the window is written when a denial comes after its end');
  const first = written[0] as UnauthenticatedDenialsSummary;
  t.match(first, { windowStartMs: NOW, windowEndMs: NOW + 10_000, denials: 5 });
  t.same(first.buckets.map((b) => [b.topicDeviceId, b.code, b.count]), [
    ['conveyor-1', 'ENVELOPE_MALFORMED', 2],
    ['conveyor-1', 'ENVELOPE_BAD_SIGNATURE', 1],
    ['amr-1', 'ENVELOPE_MALFORMED', 2],
  ]);
  const example = first.buckets[0]?.first;
  t.equal(example?.commandDigest, 'a'.repeat(64), 'the first command is the example');
  t.equal(example?.payloadPrefix, payload.slice(0, EXAMPLE_PAYLOAD_CHARS));
  t.equal(example?.payloadBytes, 200);
  t.equal(example?.message.length, EXAMPLE_MESSAGE_CHARS);
  t.equal(first.overflow, undefined);
  const hostile = recorder(clock);
  hostile.denials.add(denial('ENVELOPE_UNKNOWN_KEY', { reasons: [reason('ENVELOPE_UNKNOWN_KEY', `kid "\u0001\u00e9" is not registered`)] }), 'amr-1', 'ab\u0000\n\u00e9\u{1F600}cd');
  await hostile.denials.close();
  t.match(hostile.written[0]?.buckets[0]?.first, { payloadPrefix: 'ab?????cd', message: 'kid "??" is not registered', payloadBytes: 12 }, 'anything but printable ASCII shown as ?');
  await denials.close();
  t.equal(written.length, 2, 'close writes the open window');
  t.match(written[1], { windowStartMs: NOW + 10_000, denials: 1, buckets: [{ topicDeviceId: 'amr-1', code: 'ENVELOPE_UNKNOWN_KEY', count: 1 }] });
  await denials.close();
  t.equal(written.length, 2, 'an empty window writes nothing');
});

t.test('memory is bounded: keys past the cap are counted in one overflow bucket', async (t) => {
  const clock = new ManualClock(NOW);
  const { denials, written } = recorder(clock, { maxKeys: 4 });
  for (let i = 0; i < 10_000; i++) denials.add(denial('ENVELOPE_MALFORMED', {}, String(i).padStart(64, '0')), `device-${i % 1000}`, 'x');
  await denials.close();
  const summary = written[0] as UnauthenticatedDenialsSummary;
  t.equal(summary.denials, 10_000);
  t.equal(summary.buckets.length, 4, 'four keys kept');
  t.same(summary.buckets.map((b) => b.count), [10, 10, 10, 10]);
  t.equal(summary.overflow?.count, 10_000 - 40, 'the rest in the overflow bucket');
  t.match(summary.overflow?.first, { topicDeviceId: 'device-4', code: 'ENVELOPE_MALFORMED', commandDigest: String(4).padStart(64, '0') });
});

t.test('a record that fails loses that window only; the aggregator goes on', async (t) => {
  const clock = new ManualClock(NOW);
  let fail = true;
  const written: UnauthenticatedDenialsSummary[] = [];
  const denials = new UnauthenticatedDenials({
    clock,
    record: async (summary) => {
      if (fail) throw new Error('log full');
      written.push(summary);
    },
  });
  denials.add(denial('ENVELOPE_MALFORMED'), 'conveyor-1', 'x');
  await denials.close();
  fail = false;
  denials.add(denial('ENVELOPE_MALFORMED'), 'conveyor-1', 'x');
  await denials.close();
  t.equal(written.length, 1);
  t.throws(() => new UnauthenticatedDenials({ clock, record: async () => undefined, maxKeys: 0 }), RangeError);
});
