// Human approval, demotion and operator messages through the interlock as `interlock run` builds it (embedded broker,
// SQLite audit log and identity store, real Cedar and keys), with agents, the operator and the drivers' state on a
// real MQTT connection. Each case says what it proves. The adversarial cases are the ones the identity issue names:
// an approval for command A presented with command B, an approval after state drift, an expired approval, a
// replayed approval, a quarantined agent trying again, and a stop from a quarantined agent (must pass).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { offsetClock, type OffsetClock } from '../helpers/clocks.js';
import { liveInterlock, topics, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { DEMO_CELL } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';

/** agents.yaml of the demo cell plus a second operator who may switch modes but not approve. */
const AGENTS_WITH_VIEWER = readFileSync(join(DEMO_CELL, 'agents.yaml'), 'utf8').replace(
  'operators:\n',
  'operators:\n  - id: mode-only\n    name: Operator without the approve role\n    roles: [mode]\n    keys:\n      - kid: mode-only-k1\n        publicKeyFile: keys/mode-only-k1.pub.pem\n',
);

interface Harness {
  readonly rig: LiveInterlock;
  /** The real clock plus an offset the test sets (to let approvals expire without waiting two minutes). */
  readonly clock: OffsetClock;
  /** The conveyor's measured speed the feed publishes. */
  conveyorSpeed: number;
  /** Retained approval and standing messages, as a late subscriber gets them from the broker. */
  readonly retained: Map<string, string>;
  send(agentId: string, action: string, params: Record<string, unknown>): Promise<DecisionEvent>;
  /** Waits until the conveyor's state as the interlock holds it shows `speed`. */
  beltAt(speed: number): Promise<void>;
}

async function harness(t: Test): Promise<Harness> {
  const clock = offsetClock();
  const h = { conveyorSpeed: 0 };
  const rig = await liveInterlock(t, {
    files: { 'agents.yaml': AGENTS_WITH_VIEWER },
    clock,
    feed: { [CONVEYOR]: () => conveyorStateMessage({ speedMPerS: h.conveyorSpeed }), 'amr-1': () => amrStateMessage() },
  });
  const retained = new Map<string, string>();
  for (const filter of [topics.approvalPendingFilter, topics.agentTrust('+')]) await rig.client.subscribe(filter, (topic, payload) => retained.set(topic, payload.toString()));
  const signers = new Map<string, ReturnType<typeof rig.cell.signer>>();
  return Object.assign(h, {
    rig,
    clock,
    retained,
    async send(agentId: string, action: string, params: Record<string, unknown>) {
      let signer = signers.get(agentId);
      if (signer === undefined) {
        signer = rig.cell.signer(agentId, () => clock.nowMs());
        signers.set(agentId, signer);
      }
      return rig.send(CONVEYOR, signer.sign(CONVEYOR, action, params));
    },
    async beltAt(speed: number) {
      await waitFor(() => {
        const state = rig.interlock.states.latest(CONVEYOR)?.state;
        return state?.kind === 'conveyor' && state.speedMPerS === speed;
      }, `the belt at ${speed} m/s`);
    },
  });
}

const codes = (event: DecisionEvent | undefined): string[] => (event?.report.reasons ?? []).map((r) => r.code);
const lastDecision = (h: Harness): DecisionEvent => required(h.rig.decisions.at(-1), 'a decision');

t.test('a scope 2 agent is held; an operator approval releases exactly that command, once', async (t) => {
  const h = await harness(t);
  const held = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  // Held by the built-in scope 2 rule and by the cell's @approval permit, both named.
  t.equal(held.report.verdict, 'hold');
  t.same(codes(held), ['POLICY_APPROVAL_REQUIRED', 'POLICY_APPROVAL_REQUIRED']);
  t.same(held.report.reasons.map((r) => r.ruleId).sort(), ['conveyor-speed-scope-2-approved', 'scope-2']);
  t.equal(held.released, false, 'nothing moves on a hold');
  const pending = h.rig.interlock.approvals.list();
  t.equal(pending.length, 1);
  const approval = required(pending[0], 'the pending approval');
  await waitFor(() => (h.retained.get(topics.approvalPending(approval.id)) ?? '') !== '', 'the pending approval to be published');
  const published = JSON.parse(h.retained.get(topics.approvalPending(approval.id)) ?? '{}') as Record<string, unknown>;
  t.equal(published['commandDigest'], held.report.commandDigest, 'the published request binds the command digest');
  t.match(published['snapshot'], { speedMPerS: 0 }, 'with the state the person judges');

  const releasedBefore = h.rig.releases.length;
  const answer = await h.rig.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest, note: 'belt is clear' });
  t.match(answer, { ok: true, verdict: 'allow', released: true });
  const final = lastDecision(h);
  t.equal(final.report.commandDigest, held.report.commandDigest, 'the final decision is on the same command');
  t.equal(final.report.verdict, 'allow');
  t.equal(codes(final)[0], 'APPROVAL_GRANTED');
  // The release reached the device over the broker, verified with the interlock's key (valid now, although the agent's
  // own TTL may be over), after its record was committed.
  await waitFor(() => h.rig.releases.length > releasedBefore, 'the release at the conveyor');
  const release = required(h.rig.releases.at(-1), 'the release');
  t.equal(release.command.commandId, held.report.commandId);
  t.equal(release.command.auditSeq, final.auditSeq);
  t.equal(release.committedBefore, true, 'its record was committed before it arrived');
  t.same(h.rig.badReleases, []);
  await waitFor(() => h.retained.get(topics.approvalPending(approval.id)) === '', 'the retained pending message to be cleared');

  // The same signed approval again: its jti is spent, and there is nothing pending any more.
  const again = await h.rig.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest }, 'shift-lead', { token: answer.token });
  t.equal(again['ok'], false);
  t.match(String(again['problem']), /already received/);
  await h.rig.interlock.idle();
  t.equal(h.rig.releases.length, releasedBefore + 1, 'a replayed approval releases nothing');
});

t.test('an approval for command A presented with command B releases nothing', async (t) => {
  const h = await harness(t);
  const a = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const b = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.15 });
  t.equal(a.report.verdict, 'hold');
  t.equal(b.report.verdict, 'hold');
  const list = h.rig.interlock.approvals.list();
  t.equal(list.length, 2, 'two pending approvals');
  const pa = required(list.find((p) => p.commandDigest === a.report.commandDigest), "A's approval");
  const pb = required(list.find((p) => p.commandDigest === b.report.commandDigest), "B's approval");
  // A's id with B's digest, and B's id with A's digest: both refused, both still pending.
  const crossed1 = await h.rig.operator({ action: 'approve', approvalId: pa.id, commandDigest: pb.commandDigest });
  const crossed2 = await h.rig.operator({ action: 'approve', approvalId: pb.id, commandDigest: pa.commandDigest });
  t.equal(crossed1['ok'], false);
  t.match(String(crossed1['problem']), /names command/);
  t.equal(crossed2['ok'], false);
  t.equal(h.rig.interlock.approvals.list().length, 2, 'both still pending');
  // An approval for a digest that was never held.
  const unknown = await h.rig.operator({ action: 'approve', approvalId: 'ffffffffffffffff', commandDigest: 'f'.repeat(64) });
  t.match(String(unknown['problem']), /no pending approval/);
  // Barrier: everything received so far is settled, so a release would have been published by now.
  await h.rig.interlock.idle();
  t.same(h.rig.releases, [], 'nothing released');
});

t.test('an operator without the approve role cannot approve; a rejection denies', async (t) => {
  const h = await harness(t);
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const pending = required(h.rig.interlock.approvals.list()[0], 'the pending approval');
  const refused = await h.rig.operator({ action: 'approve', approvalId: pending.id, commandDigest: pending.commandDigest }, 'mode-only');
  t.equal(refused['ok'], false);
  t.match(String(refused['problem']), /lacks the approve role/);
  t.equal(h.rig.interlock.approvals.list().length, 1, 'still pending');
  const rejected = await h.rig.operator({ action: 'reject', approvalId: pending.id, commandDigest: pending.commandDigest, note: 'not now' });
  t.match(rejected, { ok: true, verdict: 'deny' });
  const final = lastDecision(h);
  t.equal(final.report.verdict, 'deny');
  t.same(codes(final), ['APPROVAL_REJECTED']);
  t.match(final.report.reasons[0]?.message ?? '', /not now/);
  await h.rig.interlock.idle();
  t.same(h.rig.releases, [], 'nothing released');
});

t.test('an approval after the state drifted beyond its tolerance is void; within it, it stands', async (t) => {
  const h = await harness(t);
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const pending = required(h.rig.interlock.approvals.list()[0], 'the pending approval');
  // The belt now runs 0.05 m/s faster than when the person looked (tolerance 0.02 m/s).
  h.conveyorSpeed = 0.05;
  await h.beltAt(0.05);
  const answer = await h.rig.operator({ action: 'approve', approvalId: pending.id, commandDigest: pending.commandDigest });
  t.match(answer, { ok: true, verdict: 'deny' });
  const final = lastDecision(h);
  t.equal(final.report.verdict, 'deny');
  t.ok(codes(final).includes('APPROVAL_STATE_DRIFT'), codes(final).join(','));
  const drift = required(final.report.reasons.find((r) => r.code === 'APPROVAL_STATE_DRIFT'), 'the drift reason');
  t.equal(drift.limit, 0.02);
  t.ok(Math.abs((drift.actual ?? 0) - 0.05) < 1e-12, `moved ${drift.actual}`);
  await h.rig.interlock.idle();
  t.same(h.rig.releases, [], 'nothing released');

  // Within the tolerance (0.01 m/s) the approval stands.
  h.conveyorSpeed = 0;
  await h.beltAt(0);
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const second = required(h.rig.interlock.approvals.list()[0], 'the second pending approval');
  h.conveyorSpeed = 0.01;
  await h.beltAt(0.01);
  const ok = await h.rig.operator({ action: 'approve', approvalId: second.id, commandDigest: second.commandDigest });
  t.match(ok, { ok: true, verdict: 'allow', released: true });
  await waitFor(() => h.rig.releases.length === 1, 'the release');
});

t.test('an approved hold that no longer passes its re-check is denied, naming both the approval and the reason', async (t) => {
  const h = await harness(t);
  const held = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  t.equal(held.report.verdict, 'hold', codes(held).join(','));
  const pending = required(h.rig.interlock.approvals.list()[0], 'the pending approval');
  // While the command waits, an operator quarantines its agent: the device state has not drifted, but the command
  // would not pass now, and the approval checks it again against everything in force.
  t.match(await h.rig.operator({ action: 'quarantine_agent', agent: 'trainee-1', reason: 'incident 44' }), { ok: true });
  const answer = await h.rig.operator({ action: 'approve', approvalId: pending.id, commandDigest: pending.commandDigest });
  t.match(answer, { ok: true, verdict: 'deny', released: false, problem: 'the command no longer passes' });
  const final = lastDecision(h);
  t.equal(final.report.commandDigest, held.report.commandDigest);
  t.equal(final.report.verdict, 'deny');
  t.same(codes(final), ['APPROVAL_RECHECK_FAILED', 'TRUST_QUARANTINED']);
  t.equal(final.report.reasons[0]?.ruleId, 'operator/shift-lead');
  t.match(final.report.reasons[1]?.message ?? '', /incident 44/);
  const record = required(h.rig.audit.read(final.auditSeq ?? 0, 1)[0], 'the record of the final decision');
  t.equal(record.parentSeq, held.auditSeq, 'recorded as the answer to the hold');
  t.match(record.detail, { approvalId: pending.id, outcome: 'recheck-failed', operatorId: 'shift-lead' });
  await h.rig.interlock.idle();
  t.same(h.rig.releases, [], 'nothing released');
  t.equal(h.rig.interlock.approvals.list().length, 0, 'the approval is used up');
});

t.test('an approval whose record cannot be written releases nothing (log before act)', async (t) => {
  const h = await harness(t);
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const pending = required(h.rig.interlock.approvals.list()[0], 'the pending approval');
  h.rig.audit.close(); // every record() rejects from here on
  const answer = await h.rig.operator({ action: 'approve', approvalId: pending.id, commandDigest: pending.commandDigest });
  t.match(answer, { ok: true, verdict: 'deny', released: false });
  const final = lastDecision(h);
  t.equal(final.report.verdict, 'deny');
  t.same(codes(final), ['APPROVAL_GRANTED', 'AUDIT_UNAVAILABLE'], 'granted by the person, denied for want of a record');
  t.equal(final.auditSeq, null);
  t.equal(final.released, false);
  await h.rig.interlock.idle();
  t.same(h.rig.releases, [], 'nothing reached the conveyor');
});

t.test('held commands expire; the pending cap refuses a flood', async (t) => {
  const h = await harness(t);
  for (let i = 0; i < 3; i++) {
    const held = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 + i * 0.01 });
    t.equal(held.report.verdict, 'hold', `hold ${i + 1} of 3`);
  }
  const fourth = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.14 });
  t.equal(fourth.report.verdict, 'deny', 'the fourth pending approval for one agent and device is refused');
  t.ok(codes(fourth).includes('APPROVAL_PENDING_LIMIT'));
  const counts = h.rig.interlock.approvals.requestsPerOperator(h.clock.nowMs());
  t.equal(counts.get('shift-lead'), 3, 'three requests routed to the approver in the last 10 minutes');
  t.equal(counts.has('mode-only'), false, 'none to an operator who cannot approve');
  const metrics = h.rig.interlock.metrics();
  t.same(metrics.approvalRequestsPer10Min, { 'shift-lead': 3 }, 'the flood metric the interlock publishes');
  t.equal(metrics.pendingApprovals, 3);
  t.same(metrics.decisions, { allow: 0, hold: 3, deny: 1 });
  const first = required(h.rig.interlock.approvals.list()[0], 'a pending approval');
  // Two minutes later (declared pendingFor: 120 s) every pending approval expires.
  h.clock.offsetMs = 121_000;
  await waitFor(() => h.rig.interlock.approvals.list().length === 0, 'the approvals to expire');
  await waitFor(() => h.rig.decisions.filter((d) => d.report.reasons.some((r) => r.code === 'APPROVAL_EXPIRED')).length === 3, 'three expiry decisions');
  // An approval that arrives afterwards finds nothing to approve.
  const late = await h.rig.operator({ action: 'approve', approvalId: first.id, commandDigest: first.commandDigest });
  t.equal(late['ok'], false);
  t.match(String(late['problem']), /no pending approval/);
});

t.test('repeated denials quarantine an agent; stops still pass; an operator restores it', async (t) => {
  const h = await harness(t);
  // Five commands over the conveyor's 0.5 m/s limit within a minute (trust: 5 denials in 60 s -> quarantine).
  for (let i = 0; i < 5; i++) {
    const denied = await h.send('planner-1', 'set_speed', { speedMPerS: 2 });
    t.equal(denied.report.verdict, 'deny', `denial ${i + 1}`);
  }
  t.match(h.rig.interlock.trust.standing('planner-1').quarantined ?? '', /5 denied commands/);
  t.same(h.rig.interlock.metrics().demotedAgents.map((d) => [d.agentId, d.demotedTo]), [['planner-1', 'quarantine']]);
  await waitFor(() => h.retained.has(topics.agentTrust('planner-1')), 'the demotion to be published');
  t.match(JSON.parse(h.retained.get(topics.agentTrust('planner-1')) ?? '{}'), { event: 'agent-demoted', standing: { demotedTo: 'quarantine' } });
  const safeSpeed = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.equal(safeSpeed.report.verdict, 'deny', 'a quarantined agent trying again is denied');
  t.same(codes(safeSpeed), ['TRUST_QUARANTINED']);
  const stop = await h.send('planner-1', 'stop', {});
  t.equal(stop.report.verdict, 'allow', 'a stop from a quarantined agent passes');
  t.equal(stop.released, true);

  const notDemoted = await h.rig.operator({ action: 'restore_agent', agent: 'trainee-1' });
  t.match(String(notDemoted['problem']), /not demoted/);
  const restored = await h.rig.operator({ action: 'restore_agent', agent: 'planner-1', note: 'planner fixed' });
  t.match(restored, { ok: true });
  const after = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.equal(after.report.verdict, 'allow', 'restored: commands pass again');
  // An operator can quarantine by hand too.
  await h.rig.operator({ action: 'quarantine_agent', agent: 'planner-1', reason: 'incident 42' });
  const blocked = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.same(codes(blocked), ['TRUST_QUARANTINED']);
  t.match(blocked.report.reasons[0]?.message ?? '', /incident 42/);
});

t.test('a quarantine and the replay memory survive a restart of the interlock (SQLite identity store)', async (t) => {
  const h = await harness(t);
  await h.rig.operator({ action: 'quarantine_agent', agent: 'planner-1', reason: 'incident 43' });
  const signer = h.rig.cell.signer('planner-1', () => h.clock.nowMs());
  const allowed = signer.sign(CONVEYOR, 'stop', {});
  t.equal((await h.rig.send(CONVEYOR, allowed)).report.verdict, 'allow', 'a stop passes before the restart');
  await h.rig.restart();
  const before = h.rig.decisions.length;
  // The same signed stop again, to the new process: its jti was spent before the restart.
  await h.rig.client.publish(topics.command(CONVEYOR), allowed, { qos: 1 });
  await waitFor(() => h.rig.decisions.length > before, 'the decision on the replayed stop');
  const replayed = required(h.rig.decisions[before], 'the decision on the replay');
  t.equal(replayed.report.verdict, 'deny', 'a replay across the restart is refused');
  t.ok(codes(replayed).some((c) => c.startsWith('ENVELOPE_')), codes(replayed).join(','));
  const move = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.same(codes(move), ['TRUST_QUARANTINED'], 'still quarantined after the restart');
  t.match(move.report.reasons[0]?.message ?? '', /incident 43/);
});

t.test('an operator forces the reduced limit set; messages outside the rules are refused', async (t) => {
  const h = await harness(t);
  await h.rig.modesSettled();
  const normal = await h.send('planner-1', 'set_speed', { speedMPerS: 0.2 });
  t.equal(normal.report.mode, 'normal');
  const set = await h.rig.operator({ action: 'set_mode', device: CONVEYOR, mode: 'reduced' }, 'mode-only');
  t.match(set, { ok: true, mode: 'reduced' });
  h.conveyorSpeed = 0.2;
  await h.beltAt(0.2);
  const reduced = await h.send('planner-1', 'set_speed', { speedMPerS: 0.3 });
  t.equal(reduced.report.mode, 'reduced');
  t.same(codes(reduced), ['BOUNDS_CONVEYOR_SPEED'], 'over the reduced 0.25 m/s');
  await h.rig.operator({ action: 'set_mode', device: CONVEYOR, mode: 'auto' }, 'mode-only');
  const back = await h.send('planner-1', 'set_speed', { speedMPerS: 0.3 });
  t.equal(back.report.mode, 'normal');

  // A role the operator lacks; an unknown device; a seq that goes back.
  const wrongRole = await h.rig.operator({ action: 'restore_agent', agent: 'planner-1' }, 'mode-only');
  t.match(String(wrongRole['problem']), /lacks the restore role/);
  const unknownDevice = await h.rig.operator({ action: 'set_mode', device: 'arm-9', mode: 'reduced' });
  t.match(String(unknownDevice['problem']), /no device arm-9/);
  const rollback = await h.rig.operator({ action: 'set_mode', device: CONVEYOR, mode: 'reduced' }, 'shift-lead', { seq: 5 });
  t.match(String(rollback['problem']), /seq 5 is not greater/);
});
