// The counting of one interval from audit records, on its own: each verdict, the stage of the first reason (from the
// catalog), auth failures and replays by code, the aggregated unauthenticated denials with their counts, bounds
// reasons per device kind, approval requests, declaration changes (while running and across a start) and the p99 of
// decisionUs (records without it ignored).

import t from 'tap';
import type { AuditRecord } from '../../../src/audit/audit-log.js';
import { IntervalCounts, LATENCY_SAMPLE_LIMIT } from '../../../src/cloud/metrics/interval-counts.js';
import { METRICS } from '../../../src/cloud/metric-catalog.js';
import { reason, type ReasonCode } from '../../../src/core/reasons.js';

const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);
let seq = 10;
function rec(entry: Partial<AuditRecord>): AuditRecord {
  seq += 1;
  return { kind: 'decision', timeMs: 1, seq, prevHash: '', hash: '', declarationsDigest: D1, ...entry } as AuditRecord;
}
const deny = (codes: ReasonCode[], extra: Partial<AuditRecord> = {}): AuditRecord => rec({ verdict: 'deny', reasons: codes.map((c) => reason(c, c)), deviceId: 'arm-1', ...extra });
const kinds: Record<string, 'robot_arm' | 'conveyor'> = { 'arm-1': 'robot_arm', 'conveyor-1': 'conveyor' };

t.test('decisions, events and aggregated denials counted as their verdicts and codes say', async (t) => {
  const counts = new IntervalCounts(seq, { kindOf: (id) => kinds[id], digestBefore: D1 });
  const records = [
    rec({ verdict: 'allow', deviceId: 'arm-1', decisionUs: 100 }),
    rec({ verdict: 'allow', deviceId: 'arm-1', reasons: [reason('SAFE_STATE_COMMAND', 'stop')], decisionUs: 300 }),
    rec({ verdict: 'hold', deviceId: 'arm-1', reasons: [reason('POLICY_APPROVAL_REQUIRED', 'hold')], decisionUs: 200 }),
    deny(['BOUNDS_JOINT_POSITION' as ReasonCode, 'BOUNDS_TCP_SPEED' as ReasonCode]),
    deny(['BOUNDS_STATE_STALE'], { deviceId: 'conveyor-1' }),
    deny(['BOUNDS_STATE_STALE'], { deviceId: 'gone-1' }),
    deny(['POLICY_NO_PERMIT']),
    deny(['ENVELOPE_EXPIRED']),
    deny(['ENVELOPE_REPLAYED']),
    deny(['ENVELOPE_SEQ_NOT_INCREASING']),
    deny(['POLICY_APPROVAL_REQUIRED', 'APPROVAL_PENDING_LIMIT']),
    deny(['TRUST_QUARANTINED']),
    deny(['APPROVAL_EXPIRED'], { parentSeq: 3 }),
    rec({ kind: 'outcome', detail: { event: 'device-outcome' } }),
    rec({ kind: 'event', detail: { event: 'operator-message-refused', problem: 'bad signature' } }),
    rec({
      kind: 'event',
      detail: {
        event: 'unauthenticated-denials',
        windowStartMs: 0,
        windowEndMs: 10_000,
        denials: 9,
        buckets: [
          { topicDeviceId: 'arm-1', code: 'ENVELOPE_BAD_SIGNATURE', count: 5, first: {} },
          { topicDeviceId: 'x', code: 'ENVELOPE_MALFORMED', count: 3, first: {} },
        ],
        overflow: { count: 1, first: { topicDeviceId: 'y', code: 'ENVELOPE_UNKNOWN_KEY' } },
      },
    }),
  ];
  for (const r of records) counts.add(r);
  const v = counts.values();
  t.equal(v['interlock_commands_allowed'], 2);
  t.equal(v['interlock_commands_held'], 1);
  t.equal(v['interlock_commands_denied'], 10 + 9, 'ten denial records and nine aggregated');
  t.equal(v['interlock_denied_bounds'], 3);
  t.equal(v['interlock_denied_policy'], 2, 'first reason POLICY_NO_PERMIT, and the hold refused for a full queue');
  t.equal(v['interlock_denied_envelope'], 3 + 9);
  t.equal(v['interlock_denied_trust'], 1);
  t.equal(v['interlock_denied_approval'], 1);
  t.equal(v['interlock_denied_input'], 0, 'every stage present, zero when none');
  t.equal(v['interlock_auth_failures'], 1 + 1 + 9, 'expired claims, the refused operator message, the aggregated ones');
  t.equal(v['interlock_replay_attempts'], 2);
  t.equal(v['interlock_approval_requests'], 2, 'the hold and the one refused for a full queue');
  t.equal(v['interlock_bounds_violations_robot_arm'], 2, 'both bounds reasons of one denial');
  t.equal(v['interlock_bounds_violations_conveyor'], 1);
  t.equal(v['interlock_bounds_violations_mobile_robot'], 0);
  t.equal(v['interlock_declaration_digest_changes'], 0);
  t.equal(v['interlock_decision_latency_p99_us'], 300, 'records without decisionUs ignored');
  t.equal(counts.lastSeq, seq);
  t.equal(counts.records, records.length);
  for (const [name, spec] of Object.entries(METRICS)) {
    if (spec.measure === 'counter' && name !== 'interlock_audit_errors') t.type(v[name], 'number', `${name} is reported`);
  }
  t.throws(() => counts.add({ ...records[0], seq: 1 } as AuditRecord), /is not after/, 'records go in seq order');
});

t.test('declaration digest changes: a change while running, and a start under other declarations', async (t) => {
  const counts = new IntervalCounts(seq, { kindOf: () => undefined, digestBefore: D1 });
  counts.add(rec({ kind: 'event', detail: { event: 'interlock-started', declarationsDigest: D1 } }));
  counts.add(rec({ kind: 'event', declarationsDigest: D1, detail: { event: 'declarations-changed', fromDigest: D1, toDigest: D2 } }));
  counts.add(rec({ kind: 'event', declarationsDigest: D2, detail: { event: 'interlock-stopped' } }));
  counts.add(rec({ kind: 'event', declarationsDigest: D2, detail: { event: 'interlock-started', declarationsDigest: D2 } }));
  counts.add(rec({ kind: 'event', declarationsDigest: D1, detail: { event: 'interlock-started', declarationsDigest: D1 } }));
  t.equal(counts.values()['interlock_declaration_digest_changes'], 2, 'the change, then the restart back to D1; a restart under the same set is none');
  const unknown = new IntervalCounts(seq, { kindOf: () => undefined, digestBefore: undefined });
  unknown.add(rec({ kind: 'event', declarationsDigest: D2, detail: { event: 'interlock-started', declarationsDigest: D2 } }));
  t.equal(unknown.values()['interlock_declaration_digest_changes'], 0, 'with nothing known before, a start is no change');
});

t.test('p99 by nearest rank; a uniform sample beyond the limit', async (t) => {
  const counts = new IntervalCounts(seq, { kindOf: () => undefined, digestBefore: undefined });
  for (let i = 1; i <= 1000; i++) counts.add(rec({ verdict: 'allow', decisionUs: i }));
  t.equal(counts.latencyP99Us(), 990);
  t.ok(LATENCY_SAMPLE_LIMIT >= 100_000, 'an interval of 300 s at 300 decisions/s is counted exactly');
});
