// The interlock's side of group commit and of log-before-act, through the interlock as `interlock run` composes it
// (startRuntime: embedded broker or a real mosquitto, SQLite audit log and identity store, the interlock's key), with
// commands, device state and device outcomes on a real MQTT connection and every release verified where the device
// receives it. Proves: commands that arrive together are decided and recorded in arrival order and share commits;
// each release arrives only after its record committed; a device's next command is decided against its previous
// release; outcomes become records linked to their decisions; audit failures (log full, log unavailable) and a failed
// release publish deny or report as they must, and nothing moves without a record except a stop.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { auditFailureReason } from '../../src/interlock/decision-entry.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { parseDeviceOutcome } from '../../src/interlock/device-reports.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import type { PublishOptions } from '../../src/transport/transport.js';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { liveInterlock, topics } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { DEMO_CELL } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';

const demoFile = (path: string): string => readFileSync(join(DEMO_CELL, path), 'utf8');

/** `text` with `from` replaced by `to`; fails loudly when the demo cell no longer contains `from`. */
function replaced(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the demo cell no longer contains ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

/**
 * For bursts of 40 commands: the conveyor's rate limit (10 per second) and the quarantine after 5 denials would
 * otherwise decide most of the burst, and this file is about ordering and recording, not about those rules.
 */
const BURST_FILES = {
  'devices/conveyor-1.yaml': replaced(demoFile('devices/conveyor-1.yaml'), 'rateLimit: { commands: 10,', 'rateLimit: { commands: 1000,'),
  'agents.yaml': replaced(demoFile('agents.yaml'), 'demoteAfter: { denials: 5,', 'demoteAfter: { denials: 1000,'),
};

const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);

t.test('a burst of commands is decided and recorded in arrival order, shares commits, and each release follows its commit', async (t) => {
  const rig = await liveInterlock(t, { files: BURST_FILES });
  const planner = rig.cell.signer('planner-1');
  // 40 commands published together: every tenth one within limits (0.1 or 0.2 m/s from a belt at rest), the others
  // far over maxSpeed. An allow makes the same device's next command wait until it has settled, so the denials
  // between two allows are what can share a commit.
  const allowedAt = new Set([9, 19, 29, 39]);
  const tokens = Array.from({ length: 40 }, (_, i) =>
    planner.sign(CONVEYOR, 'set_speed', { speedMPerS: allowedAt.has(i) ? (i % 20 === 9 ? 0.1 : 0.2) : 0.9 + i / 1000, rampMPerS2: 0.2 }),
  );
  const before = rig.audit.stats();
  const decided = await rig.burst(CONVEYOR, tokens);
  const after = rig.audit.stats();

  t.same(
    decided.map((d) => d.report.commandDigest),
    tokens.map(commandDigest),
    'decided in the order they were published on the one connection (MQTT keeps the order of one client)',
  );
  t.same(
    decided.map((d) => d.report.verdict),
    tokens.map((_, i) => (allowedAt.has(i) ? 'allow' : 'deny')),
    'the four within limits allowed, the others denied',
  );
  t.ok(decided.filter((d) => d.report.verdict === 'deny').every((d) => codes(d).includes('BOUNDS_CONVEYOR_SPEED')), 'denied over maxSpeed');
  const seqs = decided.map((d) => required(d.auditSeq, `the record of decision ${d.report.commandDigest.slice(0, 12)}`));
  t.ok(
    seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] ?? Infinity)),
    'audit order is decision order',
  );
  // Every decision's record is in the log, with its own digest and verdict.
  t.ok(
    decided.every((d, i) => {
      const record = rig.audit.read(seqs[i] ?? 0, 1)[0];
      return record?.kind === 'decision' && record.commandDigest === d.report.commandDigest && record.verdict === d.report.verdict;
    }),
    'each record holds its decision',
  );
  const commits = after.commits - before.commits;
  t.ok(commits < tokens.length, `fewer commits (${commits}) than decisions (${tokens.length}); largest batch ${after.largestBatch}`);

  await waitFor(() => rig.releases.length >= allowedAt.size, 'the four releases');
  await rig.interlock.idle();
  t.same(
    rig.releases.map((r) => r.command.auditSeq),
    decided.filter((d) => d.report.verdict === 'allow').map((d) => d.auditSeq),
    'exactly the allowed commands reached the conveyor, in order',
  );
  t.ok(rig.releases.every((r) => r.committedBefore), 'each record was readable from another connection when its release arrived');
  t.same(rig.badReleases, []);
  t.ok(rig.audit.verify().ok, 'the hash chain verifies');
});

t.test("a device's next command is decided against its previous release, even when both arrive together", async (t) => {
  const rig = await liveInterlock(t);
  const planner = rig.cell.signer('planner-1');
  // Forward, then reverse: the belt still measures 0 m/s, so only the last released setpoint (0.1 forward) can
  // deny the reversal; decided without it, the reverse command would pass.
  const [forward, reverse] = await rig.burst(CONVEYOR, [
    planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }),
    planner.sign(CONVEYOR, 'set_speed', { speedMPerS: -0.1, rampMPerS2: 0.2 }),
  ]);
  const first = required(forward, 'the decision on the forward command');
  const second = required(reverse, 'the decision on the reverse command');
  t.equal(first.report.verdict, 'allow');
  t.equal(second.report.verdict, 'deny', 'the reversal is checked against the forward setpoint just released');
  t.ok(codes(second).includes('BOUNDS_CONVEYOR_REVERSAL'), codes(second).join(','));
  t.ok(required(first.auditSeq, 'the forward record') < required(second.auditSeq, 'the reverse record'), 'recorded in order');
  await waitFor(() => rig.releases.length > 0, 'the release');
  await rig.interlock.idle();
  t.equal(rig.releases.length, 1, 'only the forward command reached the conveyor');
  t.equal(rig.releases[0]?.command.auditSeq, first.auditSeq);
});

t.test("a device's outcome is recorded once, linked to the decision it answers; anything else is an unmatched event", async (t) => {
  const rig = await liveInterlock(t);
  const allowed = await rig.send(CONVEYOR, rig.cell.signer('planner-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(allowed.report.verdict, 'allow');
  await waitFor(() => rig.releases.length > 0, 'the release');
  const release = required(rig.releases[0], 'the release').command;
  // The driver answers on its outcome topic, over the broker.
  const outcome = { commandId: release.commandId, auditSeq: release.auditSeq, status: 'executed', timeMs: Date.now() };
  const driver = rig.reporter(CONVEYOR);
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), driver.outcome(outcome), { qos: 1 });
  await waitFor(() => rig.audit.read(1, 1000).some((rec) => rec.kind === 'outcome'), 'the outcome record');
  const linked = rig.audit.read(1, 1000).filter((rec) => rec.kind === 'outcome');
  t.equal(linked.length, 1);
  t.equal(linked[0]?.parentSeq, allowed.auditSeq, 'linked to the decision');
  t.equal(linked[0]?.commandId, release.commandId);
  t.match(linked[0]?.detail, { event: 'device-outcome', status: 'executed' });

  // The same outcome again, signed anew (a driver bug) is not a second outcome of the command.
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), driver.outcome(outcome), { qos: 1 });
  await waitFor(() => rig.audit.read(1, 1000).some((rec) => rec.detail?.['event'] === 'device-outcome-unmatched'), 'the unmatched event');
  t.equal(rig.audit.read(1, 1000).filter((rec) => rec.kind === 'outcome').length, 1, 'still one outcome');
  t.ok(rig.audit.verify().ok);
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

t.test('audit failure codes the live cases here cannot produce map to their own reason; anything else is AUDIT_WRITE_FAILED', async (t) => {
  // AUDIT_LOG_FULL and AUDIT_UNAVAILABLE are produced by real failures in the cases below. A full disk and an fsync
  // error (outcome unknown) need a filesystem that fails: test/audit's disk-full and fsync-failure tests produce them
  // from the real audit log. Here only the mapping from their codes to reasons.
  for (const code of ['AUDIT_DISK_FULL', 'AUDIT_OUTCOME_UNKNOWN'] as const) {
    const reason = auditFailureReason(Object.assign(new Error(`failed: ${code}`), { code }));
    t.equal(reason.code, code);
    t.equal(reason.stage, 'audit');
    t.match(reason.message, code);
  }
  t.equal(auditFailureReason(Object.assign(new Error('x'), { code: 'SQLITE_BUSY' })).code, 'AUDIT_WRITE_FAILED');
  t.equal(auditFailureReason('a string').code, 'AUDIT_WRITE_FAILED');
});

t.test('a full audit log denies actuations with AUDIT_LOG_FULL, while a stop is still recorded and released', async (t) => {
  // The runtime sizes the log from cell.yaml: 512 KiB, of which the default reserve (64 KiB) is kept for stops.
  const cellYaml = replaced(demoFile('cell.yaml'), 'maxSize: { value: 256, unit: MiB }', 'maxSize: { value: 512, unit: KiB }');
  const rig = await liveInterlock(t, { files: { 'cell.yaml': cellYaml } });
  t.equal(rig.audit.health().maxBytes, 512 * 1024, 'the log has the declared cap');
  let filled = 0;
  const fill = async (together: number): Promise<unknown> => {
    // Far fewer than 10 000 filler records fit under the cap.
    while (filled < 10_000) {
      const results = await Promise.allSettled(
        Array.from({ length: together }, (_, i) => rig.audit.record({ kind: 'event', timeMs: Date.now(), detail: { event: 'filler', i: filled + i, pad: 'z'.repeat(500) } })),
      );
      filled += results.filter((r) => r.status === 'fulfilled').length;
      const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (refused !== undefined) return refused.reason;
    }
    return undefined;
  };
  // Filler records 50 at a time, then one at a time: the log counts records still waiting for their commit
  // pessimistically, so a refusal with 50 in flight can come a little before the cap.
  t.match(await fill(50), { code: 'AUDIT_LOG_FULL' }, 'refused with 50 filler records in flight');
  t.match(await fill(1), { code: 'AUDIT_LOG_FULL' }, 'refused with nothing else in flight');
  t.equal(rig.audit.health().state, 'full', `full after ${filled} filler records`);

  const planner = rig.cell.signer('planner-1');
  const move = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(move.report.verdict, 'deny', 'nothing moves without a record');
  t.ok(codes(move).includes('AUDIT_LOG_FULL'), codes(move).join(','));
  t.equal(move.auditSeq, null);
  t.equal(move.released, false);
  const stop = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  t.equal(stop.report.verdict, 'allow');
  t.equal(stop.released, true);
  t.ok(typeof stop.auditSeq === 'number', 'the stop was recorded, in the reserve');
  await waitFor(() => rig.releases.length > 0, 'the stop release');
  await rig.interlock.idle();
  t.equal(rig.releases.length, 1, 'only the stop reached the conveyor');
  t.equal(rig.releases[0]?.command.action, 'stop');
  t.equal(rig.releases[0]?.command.auditSeq, stop.auditSeq);
  t.equal(rig.releases[0]?.committedBefore, true);
});

t.test('an audit log that cannot be written denies actuations with AUDIT_UNAVAILABLE; a stop still passes', async (t) => {
  const rig = await liveInterlock(t);
  rig.audit.close(); // every record() rejects from here on, as after a failed write poisons the log
  const planner = rig.cell.signer('planner-1');
  const move = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(move.report.verdict, 'deny', 'nothing moves without a record');
  t.ok(codes(move).includes('AUDIT_UNAVAILABLE'), codes(move).join(','));
  const unavailable = required(move.report.reasons.find((r) => r.code === 'AUDIT_UNAVAILABLE'), 'the audit reason');
  t.equal(unavailable.stage, 'audit');
  t.equal(move.auditSeq, null);
  t.equal(move.released, false);
  await rig.interlock.idle();
  t.equal(rig.releases.length, 0, 'nothing reached the conveyor');

  // Stopping is always safe: released without a record, saying why.
  const stop = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  t.equal(stop.report.verdict, 'allow');
  t.ok(codes(stop).includes('AUDIT_UNAVAILABLE'), 'the stop reports the audit failure');
  t.equal(stop.auditSeq, null);
  t.equal(stop.released, true);
  await waitFor(() => rig.releases.length > 0, 'the stop release');
  const release = required(rig.releases[0], 'the stop release');
  t.equal(release.command.action, 'stop');
  t.equal(release.command.safeState, true);
  t.equal(release.command.auditSeq, 0, 'a safe-state release without a record carries seq 0');
  t.same(rig.badReleases, [], 'and drivers accept it');
});

/** A real transport whose publishes to actuator command topics are refused while `failing` is set (fault injection). */
class FailingReleases extends DelegatingTransport {
  failing = false;
  readonly refused: string[] = [];
  override publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void> {
    if (this.failing && /^actuator\/[^/]+\/command$/.test(topic)) {
      this.refused.push(topic);
      return Promise.reject(new Error(`injected fault: publish to ${topic} refused`));
    }
    return this.inner.publish(topic, payload, options);
  }
}

t.test('a release publish that fails after the allow record is recorded as release-failed and does not count as a release', async (t) => {
  let faulty: FailingReleases | undefined;
  const rig = await liveInterlock(t, {
    broker: 'mosquitto',
    wrapTransport: (inner) => (faulty = new FailingReleases(inner)),
  });
  const fault = required(faulty, 'the wrapped transport');
  const planner = rig.cell.signer('planner-1');

  const published: Record<string, unknown>[] = [];
  await rig.client.subscribe(topics.decision(CONVEYOR), (_topic, payload) => published.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  fault.failing = true;
  const forward = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  await rig.interlock.idle();
  t.match(forward.releaseProblem, /could not be published \(injected fault: publish to actuator\/conveyor-1\/command refused\)/, 'the decision says why nothing was released');
  await waitFor(() => published.some((m) => m['commandId'] === forward.report.commandId), 'the decision on its topic');
  t.match(
    published.find((m) => m['commandId'] === forward.report.commandId),
    { verdict: 'allow', released: false, releaseProblem: /could not be published/ },
    'and so does the message the agent reads',
  );
  t.equal(forward.report.verdict, 'allow', 'the decision stands: the command was within limits');
  const seq = required(forward.auditSeq, 'the record of the allow');
  t.equal(rig.audit.read(seq, 1)[0]?.verdict, 'allow', 'the allow was committed before the release was tried');
  t.equal(forward.released, false, 'reported as not released');
  t.same(fault.refused, [topics.actuatorCommand(CONVEYOR)], 'the release was tried once, and refused');
  t.equal(rig.releases.length, 0, 'nothing reached the conveyor');
  const failed = rig.audit.read(1, 1000).filter((rec) => rec.detail?.['event'] === 'release-failed');
  t.equal(failed.length, 1, 'one release-failed record');
  t.equal(failed[0]?.kind, 'outcome');
  t.equal(failed[0]?.parentSeq, seq, 'linked to the decision');
  t.equal(failed[0]?.detail?.['commandId'], forward.report.commandId);
  t.match(String(failed[0]?.detail?.['error']), /injected fault/);

  // Fault cleared. Had the failed forward release counted as the conveyor's last release, this reversal would be
  // denied (BOUNDS_CONVEYOR_REVERSAL, as in the device-order case above); it is decided against no release at all.
  fault.failing = false;
  const reverse = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: -0.1, rampMPerS2: 0.2 }));
  t.equal(reverse.report.verdict, 'allow', codes(reverse).join(','));
  t.equal(reverse.released, true);
  await waitFor(() => rig.releases.length > 0, 'the release after the fault');
  const release = required(rig.releases[0], 'the release after the fault');
  t.equal(release.command.commandId, reverse.report.commandId);
  t.equal(release.command.auditSeq, reverse.auditSeq);
  t.equal(release.committedBefore, true);
  t.same(rig.badReleases, []);
  t.ok(rig.audit.verify().ok);
});
