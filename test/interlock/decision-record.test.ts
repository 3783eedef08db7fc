// The complete decision record, through the interlock as `interlock run` builds it (embedded broker, SQLite audit log,
// real keys, drivers' signed state over MQTT): an allow record carries the exact token the agent signed (its sha256 is
// the record's commandDigest, its claims carry the params), the device state the decision read with the values the
// driver reported and their ages on the interlock's clock, and an integer decisionUs; a hold, its approval and the
// device's outcome are linked record to record.

import { createHash } from 'node:crypto';
import t from 'tap';
import type { AuditRecord } from '../../src/audit/audit-log.js';
import { offsetClock } from '../helpers/clocks.js';
import { liveInterlock, topics, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const PLAN = 'ab'.repeat(32);
const AMR = 'amr-1';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const claimsOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
const recordAt = (rig: LiveInterlock, seq: number | null): AuditRecord => required(rig.audit.read(required(seq, 'an audit seq'), 1)[0], `record ${String(seq)}`);

/** A rig whose drivers report once, when the test says (no feed), on a clock the test can move forward. */
async function quietRig(t: Parameters<typeof liveInterlock>[0]) {
  const clock = offsetClock();
  const rig = await liveInterlock(t, { feed: false, clock });
  const belt = conveyorStateMessage({ speedMPerS: 0.05, permissives: { downstreamReady: true } });
  const amr = amrStateMessage({ pose: { xM: 4.5, yM: -0.5, yawRad: 0.25 } });
  await rig.report(CONVEYOR, belt);
  await rig.report(AMR, amr);
  await waitFor(() => rig.interlock.states.latest(CONVEYOR) !== undefined && rig.interlock.states.latest(AMR) !== undefined, 'the reported state');
  return { rig, clock, belt, amr };
}

t.test('an allow record holds the exact token, the state the bounds used with its age, and decisionUs', async (t) => {
  const { rig, clock, belt, amr } = await quietRig(t);
  // The state ages on the interlock's clock: 1.5 s pass between the reports and the command.
  clock.offsetMs += 1500;
  const params = { speedMPerS: 0.15, rampMPerS2: 0.2 };
  const token = rig.cell.signer('planner-1', () => clock.nowMs()).sign(CONVEYOR, 'set_speed', params, { trace: { session: 's-1', plan: PLAN } });
  const decided = await rig.send(CONVEYOR, token);
  t.equal(decided.report.verdict, 'allow', JSON.stringify(decided.report.reasons));
  const record = recordAt(rig, decided.auditSeq);

  t.equal(record.commandToken, token, 'the token exactly as the agent sent it');
  t.equal(sha256(required(record.commandToken, 'the token')), record.commandDigest, 'whose sha256 is the commandDigest');
  t.same(claimsOf(token)['params'], params, 'and whose claims carry the params');
  t.same(record.trace, { session: 's-1', plan: PLAN });

  const state = required(record.state, 'the recorded state');
  const beltAt = required(rig.interlock.states.latest(CONVEYOR), 'the belt state').receivedAtMs;
  const amrAt = required(rig.interlock.states.latest(AMR), 'the AMR state').receivedAtMs;
  // Every field the driver reported, with the value it reported (the conveyor's own state and the people source's).
  t.same(state[`${CONVEYOR}/speedMPerS`], { value: belt['speedMPerS'], ageMs: record.timeMs - beltAt });
  t.same(state[`${CONVEYOR}/permissives`]?.value, belt['permissives']);
  t.same(state[`${CONVEYOR}/running`]?.value, true);
  t.same(state[`${AMR}/pose`], { value: amr['pose'], ageMs: record.timeMs - amrAt });
  t.same(state[`${AMR}/people`]?.value, [], 'the people report the mode was chosen from');
  t.ok(required(state[`${CONVEYOR}/speedMPerS`], 'the speed').ageMs >= 1500, 'the age is the time since the interlock received the state');
  t.notOk(Object.keys(state).some((key) => key.startsWith('arm-1/')), 'a device the decision never read is not recorded');
  t.ok(Number.isInteger(record.decisionUs) && (record.decisionUs ?? -1) >= 0, `decisionUs ${String(record.decisionUs)} is a whole number`);

  // The same token again: an authenticated command the envelope denies (replayed) is recorded with its token too.
  await rig.client.publish(topics.command(CONVEYOR), token, { qos: 1 });
  await waitFor(() => rig.decisions.some((d) => d.report.reasons.some((r) => r.code === 'ENVELOPE_REPLAYED')), 'the replay denied');
  const replayed = recordAt(rig, required(rig.decisions.find((d) => d.report.reasons.some((r) => r.code === 'ENVELOPE_REPLAYED')), 'the replay').auditSeq);
  t.equal(replayed.commandToken, token);
  t.equal(replayed.state, undefined, 'it read no state');
  t.ok(Number.isInteger(replayed.decisionUs));
  t.ok(rig.audit.verify().ok);
});

t.test('a safe-state command records its token and no state (it reads none)', async (t) => {
  const { rig } = await quietRig(t);
  const token = rig.cell.signer('planner-1', () => rig.clock.nowMs()).sign(CONVEYOR, 'stop', {});
  const decided = await rig.send(CONVEYOR, token);
  t.equal(decided.report.verdict, 'allow');
  const record = recordAt(rig, decided.auditSeq);
  t.equal(record.commandToken, token);
  t.equal(record.state, undefined);
  t.ok(Number.isInteger(record.decisionUs));
});

t.test('a hold, its approval and the device outcome are linked, each decision with its token and state', async (t) => {
  const { rig, belt } = await quietRig(t);
  const params = { speedMPerS: 0.1, rampMPerS2: 0.2 };
  const token = rig.cell.signer('trainee-1', () => rig.clock.nowMs()).sign(CONVEYOR, 'set_speed', params);
  const held = await rig.send(CONVEYOR, token);
  t.equal(held.report.verdict, 'hold');
  const hold = recordAt(rig, held.auditSeq);
  t.equal(hold.commandToken, token);
  t.same(hold.state?.[`${CONVEYOR}/speedMPerS`]?.value, belt['speedMPerS']);

  const approval = required(rig.interlock.approvals.list()[0], 'the pending approval');
  const answer = await rig.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest });
  t.match(answer, { ok: true, verdict: 'allow', released: true });
  const approvedEvent = required(rig.decisions.at(-1), 'the decision on the approval');
  const approved = recordAt(rig, approvedEvent.auditSeq);
  t.equal(approved.kind, 'decision');
  t.equal(approved.verdict, 'allow');
  t.equal(approved.parentSeq, hold.seq, 'the approval names its hold');
  t.equal(approved.commandId, hold.commandId);
  t.equal(approved.commandToken, token, 'and records the same command');
  t.match(approved.detail, { approvalId: approval.id, outcome: 'approved', operatorId: 'shift-lead' });
  t.same(approved.state?.[`${CONVEYOR}/speedMPerS`]?.value, belt['speedMPerS'], 'the state the re-check read');
  t.ok(Number.isInteger(approved.decisionUs));

  await waitFor(() => rig.releases.length > 0, 'the release');
  const release = required(rig.releases[0], 'the release').command;
  t.equal(release.auditSeq, approved.seq, 'released under the approval record');
  const outcome = { commandId: release.commandId, auditSeq: release.auditSeq, status: 'executed', timeMs: rig.clock.nowMs() };
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), rig.reporter(CONVEYOR).outcome(outcome), { qos: 1 });
  await waitFor(() => rig.audit.read(1, 1000).some((r) => r.kind === 'outcome'), 'the outcome record');
  const recorded = required(rig.audit.read(1, 1000).find((r) => r.kind === 'outcome'), 'the outcome');
  t.equal(recorded.parentSeq, approved.seq, 'the outcome links to the decision that released it');
  t.equal(recorded.commandId, hold.commandId, 'and names the command');
  t.ok(rig.audit.verify().ok);
});

t.test('a rejected hold is recorded with its token and linked to its hold', async (t) => {
  const { rig } = await quietRig(t);
  const token = rig.cell.signer('trainee-1', () => rig.clock.nowMs()).sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 });
  const held = await rig.send(CONVEYOR, token);
  const approval = required(rig.interlock.approvals.list()[0], 'the pending approval');
  await rig.operator({ action: 'reject', approvalId: approval.id, commandDigest: approval.commandDigest, note: 'not now' });
  const rejected = recordAt(rig, required(rig.decisions.at(-1), 'the rejection').auditSeq);
  t.equal(rejected.verdict, 'deny');
  t.equal(rejected.parentSeq, held.auditSeq);
  t.equal(rejected.commandToken, token);
  t.match(rejected.detail, { outcome: 'rejected' });
  t.ok(Number.isInteger(rejected.decisionUs));
});
