// The interlock's side of group commit: commands that arrive together are decided in order and share one audit
// transaction; each is released only once its own record is committed; a device's next command is decided only once
// its previous one is settled; device outcomes become records linked to their decisions. Real Cedar, real SQLite,
// real keys; an in-memory bus, with the conveyor's and the AMR's state published by the test.

import t from 'tap';
import { auditFailureReason, parseDeviceOutcome } from '../../src/interlock/interlock.js';
import { CONVEYOR, conveyorRig as rig, topics } from '../helpers/conveyor-rig.js';
import { waitFor } from '../helpers/wait-for.js';

t.test('commands that arrive together share one audit transaction, in arrival order, and are released only after it commits', async (t) => {
  const r = await rig(t);
  const planner = r.cell.signer('planner-1');
  // The allowed command last: after an allow, the same device's next command waits for that allow to settle.
  const speeds = [0.9, 0.95, 0.99, 0.1];
  const tokens = speeds.map((speedMPerS) => planner.sign(CONVEYOR, 'set_speed', { speedMPerS, rampMPerS2: 0.2 }));
  const before = r.audit.stats();
  const decided = await r.burst(tokens);
  const after = r.audit.stats();
  t.same(decided.map((d) => d.report.verdict), ['deny', 'deny', 'deny', 'allow'], 'decided in arrival order: three far over maxSpeed, the last within limits');
  const seqs = decided.map((d) => d.auditSeq);
  t.ok(seqs.every((s) => typeof s === 'number'), 'every decision has a record');
  t.same(seqs, [...seqs].sort((a, b) => (a ?? 0) - (b ?? 0)), 'audit order is arrival order');
  t.ok(after.largestBatch >= tokens.length, `the ${tokens.length} decisions shared one commit (largest batch ${after.largestBatch})`);
  t.ok(after.commits - before.commits < tokens.length, `fewer commits (${after.commits - before.commits}) than decisions (${tokens.length})`);
  await waitFor(() => r.releases.length > 0, 'the release');
  t.equal(r.releases.length, 1, 'only the allowed command reached the conveyor');
  t.equal(r.releases[0]?.command.auditSeq, seqs[3]);
  t.equal(r.releases[0]?.committedBefore, true, 'its record was readable from another connection when it arrived');
});

t.test("a device's next command is decided against its previous release, even when both arrive together", async (t) => {
  const r = await rig(t);
  const planner = r.cell.signer('planner-1');
  // Forward, then reverse: the belt still measures 0 m/s, so only the last released setpoint (0.1 forward) can
  // deny the reversal; decided without it, the reverse command would pass.
  const decided = await r.burst([
    planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }),
    planner.sign(CONVEYOR, 'set_speed', { speedMPerS: -0.1, rampMPerS2: 0.2 }),
  ]);
  t.equal(decided[0]?.report.verdict, 'allow');
  t.equal(decided[1]?.report.verdict, 'deny', 'the reversal is checked against the forward setpoint just released');
  t.ok(decided[1]?.report.reasons.some((reason) => reason.code === 'BOUNDS_CONVEYOR_REVERSAL'), `the reversal reason: ${JSON.stringify(decided[1]?.report.reasons)}`);
  t.ok((decided[0]?.auditSeq ?? Infinity) < (decided[1]?.auditSeq ?? 0), 'recorded in order');
  await waitFor(() => r.releases.length > 0, 'the release');
  t.equal(r.releases.length, 1);
});

t.test("a device's outcome is recorded once, linked to the decision it answers; anything else is an unmatched event", async (t) => {
  const r = await rig(t);
  const planner = r.cell.signer('planner-1');
  const [allowed] = await r.burst([planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 })]);
  await waitFor(() => r.releases.length > 0, 'the release');
  const release = r.releases[0]?.command;
  if (allowed === undefined || release === undefined) throw new Error('no release to answer');
  const outcome = { commandId: release.commandId, auditSeq: release.auditSeq, status: 'executed', timeMs: Date.now() };
  await r.bus.publish(topics.actuatorOutcome(CONVEYOR), JSON.stringify(outcome));
  await waitFor(() => r.audit.read(1, 1000).some((rec) => rec.kind === 'outcome'), 'the outcome record');
  const linked = r.audit.read(1, 1000).filter((rec) => rec.kind === 'outcome');
  t.equal(linked.length, 1);
  t.equal(linked[0]?.parentSeq, allowed.auditSeq, 'linked to the decision');
  t.equal(linked[0]?.commandId, release.commandId);
  t.match(linked[0]?.detail, { event: 'device-outcome', status: 'executed' });

  // The same outcome again (a replay, or a driver bug) is not a second outcome of the command.
  await r.bus.publish(topics.actuatorOutcome(CONVEYOR), JSON.stringify(outcome));
  await waitFor(() => r.audit.read(1, 1000).some((rec) => rec.detail?.['event'] === 'device-outcome-unmatched'), 'the unmatched event');
  t.equal(r.audit.read(1, 1000).filter((rec) => rec.kind === 'outcome').length, 1, 'still one outcome');
  t.ok(r.audit.verify().ok);
});

t.test('device outcome messages are parsed strictly', async (t) => {
  const ok = { commandId: 'c-1', auditSeq: 3, status: 'refused', problem: 'expired', timeMs: 1 };
  t.match(parseDeviceOutcome(Buffer.from(JSON.stringify(ok))), { ok: true, outcome: ok });
  const bad: [string, unknown][] = [
    ['not JSON', 'nope'],
    ['an array', [ok]],
    ['an extra field', { ...ok, extra: 1 }],
    ['a missing command id', { ...ok, commandId: undefined }],
    ['a fractional seq', { ...ok, auditSeq: 1.5 }],
    ['a negative seq', { ...ok, auditSeq: -1 }],
    ['a numeric-string seq', { ...ok, auditSeq: '3' }],
    ['an unknown status', { ...ok, status: 'done' }],
    ['a non-finite time', { ...ok, timeMs: 'NaN' }],
  ];
  for (const [what, value] of bad) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    t.equal(parseDeviceOutcome(Buffer.from(text)).ok, false, `refused: ${what}`);
  }
  t.equal(parseDeviceOutcome(Buffer.alloc(5000, 0x20)).ok, false, 'refused: too long');
});

t.test('each audit failure code becomes its own reason; anything else is AUDIT_WRITE_FAILED', async (t) => {
  for (const code of ['AUDIT_LOG_FULL', 'AUDIT_DISK_FULL', 'AUDIT_OUTCOME_UNKNOWN', 'AUDIT_UNAVAILABLE'] as const) {
    const error = Object.assign(new Error(`failed: ${code}`), { code });
    const reason = auditFailureReason(error);
    t.equal(reason.code, code);
    t.equal(reason.stage, 'audit');
    t.match(reason.message, code);
  }
  t.equal(auditFailureReason(Object.assign(new Error('x'), { code: 'SQLITE_BUSY' })).code, 'AUDIT_WRITE_FAILED');
  t.equal(auditFailureReason('a string').code, 'AUDIT_WRITE_FAILED');
});

t.test('a full audit log denies actuations with AUDIT_LOG_FULL, while a stop is still recorded and released', async (t) => {
  const r = await rig(t, {}, { maxBytes: 512 * 1024, reserveBytes: 128 * 1024 });
  for (let i = 0; ; i++) {
    try {
      await r.audit.record({ kind: 'event', timeMs: Date.now(), detail: { event: 'filler', i, pad: 'z'.repeat(500) } });
    } catch (error) {
      t.match(error, { code: 'AUDIT_LOG_FULL' }, `full after ${i} filler records`);
      break;
    }
  }
  const planner = r.cell.signer('planner-1');
  const [move] = await r.burst([planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 })]);
  t.equal(move?.report.verdict, 'deny', 'nothing moves without a record');
  t.ok(move?.report.reasons.some((reason) => reason.code === 'AUDIT_LOG_FULL'), JSON.stringify(move?.report.reasons));
  t.equal(move?.auditSeq, null);
  const [stop] = await r.burst([planner.sign(CONVEYOR, 'stop', {})]);
  t.equal(stop?.report.verdict, 'allow');
  t.equal(stop?.released, true);
  t.ok(typeof stop?.auditSeq === 'number', 'the stop was recorded, in the reserve');
  await waitFor(() => r.releases.length > 0, 'the stop release');
  t.equal(r.releases.length, 1, 'only the stop reached the conveyor');
  t.equal(r.releases[0]?.command.action, 'stop');
  t.equal(r.releases[0]?.committedBefore, true);
});
