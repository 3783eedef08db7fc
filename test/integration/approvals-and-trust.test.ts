// Human approval, demotion and operator messages through the real interlock (real Cedar, real SQLite audit log,
// real keys; an in-memory bus, and the conveyor's and the AMR's state published by the test at driver rate).
// Each case says what it proves. The adversarial cases are the ones the identity issue names: an approval for
// command A presented with command B, an approval after state drift, an expired approval, a replayed approval,
// a quarantined agent trying again, and a stop from a quarantined agent (must pass).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import type { Clock } from '../../src/core/clock.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { verifyReleasedCommand } from '../../src/dispatch/released-command.js';
import { Interlock, type DecisionEvent } from '../../src/interlock/interlock.js';
import { signOperatorMessage, type OperatorParams } from '../../src/operator/operator-message.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import { topicSet } from '../../src/transport/topics.js';
import { InMemoryBus } from '../helpers/memory-bus.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const topics = topicSet();
const CONVEYOR = 'conveyor-1';

/** agents.yaml of the demo cell plus a second operator who may switch modes but not approve. */
const AGENTS_WITH_VIEWER = readFileSync(join(DEMO_CELL, 'agents.yaml'), 'utf8').replace(
  'operators:\n',
  'operators:\n  - id: mode-only\n    name: Operator without the approve role\n    roles: [mode]\n    keys:\n      - kid: mode-only-k1\n        publicKeyFile: keys/mode-only-k1.pub.pem\n',
);

interface Harness {
  readonly interlock: Interlock;
  readonly bus: InMemoryBus;
  readonly decisions: DecisionEvent[];
  readonly released: string[];
  readonly operatorResults: Record<string, unknown>[];
  readonly retained: Map<string, string>;
  /** The conveyor's measured speed the test publishes. */
  conveyorSpeed: number;
  /** Milliseconds added to the real clock (to let approvals expire without waiting two minutes). */
  offsetMs: number;
  readonly clock: Clock;
  send(agentId: string, action: string, params: Record<string, unknown>): Promise<DecisionEvent[]>;
  operator(request: OperatorParams, operatorId?: string, options?: { seq?: number; jti?: string; token?: string }): Promise<Record<string, unknown>>;
  lastToken: string;
  readonly interlockKey: ReturnType<typeof generateEd25519KeyPair>;
}

async function harness(t: Test): Promise<Harness> {
  const cell = makeTestCell({ 'agents.yaml': AGENTS_WITH_VIEWER });
  const loaded = cell.load();
  const stateDir = mkdtempSync(join(tmpdir(), 'interlock-approvals-'));
  const audit = openSqliteAuditLog(join(stateDir, 'audit.db'));
  const bus = new InMemoryBus();
  const interlockKey = generateEd25519KeyPair();
  const h = {
    conveyorSpeed: 0,
    offsetMs: 0,
    lastToken: '',
  } as { conveyorSpeed: number; offsetMs: number; lastToken: string };
  const clock: Clock = { nowMs: () => Date.now() + h.offsetMs };
  const interlock = new Interlock({ cell: loaded, transport: bus, audit, signingKey: interlockKey.privateKey, clock, heartbeatPeriodMs: 0 });
  const decisions: DecisionEvent[] = [];
  const released: string[] = [];
  const operatorResults: Record<string, unknown>[] = [];
  const retained = new Map<string, string>();
  interlock.onDecision((event) => decisions.push(event));
  await bus.subscribe(topics.actuatorCommand('+'), (_topic, payload) => released.push(payload.toString()));
  await bus.subscribe(topics.operatorResult, (_topic, payload) => operatorResults.push(JSON.parse(payload.toString()) as Record<string, unknown>));
  await bus.subscribe('interlock/#', (topic, payload) => {
    if (topic.startsWith('interlock/approvals/pending/') || topic.startsWith('interlock/agents/')) retained.set(topic, payload.toString());
  });
  await interlock.start();
  // Driver-rate state: the conveyor (running, speed as the test sets it, every permissive true) and the AMR, which is the
  // cell's people source (nobody near).
  const publishStates = (): void => {
    const conveyor = { speedMPerS: h.conveyorSpeed, permissives: { guardClosed: true, estopReleased: true, downstreamReady: true }, running: true, safeStopped: false };
    const amr = { pose: { xM: 4, yM: -0.5, yawRad: 0 }, velocity: { linearMPerS: 0, angularRadPerS: 0 }, localization: { ok: true, ageMs: 20 }, moving: false, safeStopped: false, people: [] };
    void bus.publish(topics.actuatorState(CONVEYOR), JSON.stringify(conveyor));
    void bus.publish(topics.actuatorState('amr-1'), JSON.stringify(amr));
  };
  const timer = setInterval(publishStates, 20);
  publishStates();
  await waitFor(() => interlock.states.latest(CONVEYOR) !== undefined && interlock.states.latest('amr-1') !== undefined, 'state to arrive');
  t.teardown(async () => {
    clearInterval(timer);
    await interlock.stop();
    audit.close();
    await bus.stop();
    cell.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const signers = new Map<string, ReturnType<typeof cell.signer>>();
  let operatorSeq = 0;
  const result: Harness = Object.assign(h, {
    interlock,
    bus,
    decisions,
    released,
    operatorResults,
    retained,
    clock,
    interlockKey,
    async send(agentId: string, action: string, params: Record<string, unknown>): Promise<DecisionEvent[]> {
      let signer = signers.get(agentId);
      if (signer === undefined) {
        signer = cell.signer(agentId, () => clock.nowMs());
        signers.set(agentId, signer);
      }
      const token = signer.sign(CONVEYOR, action, params);
      h.lastToken = token;
      const digest = commandDigest(token);
      const before = decisions.length;
      await bus.publish(topics.command(CONVEYOR), token);
      await waitFor(() => decisions.slice(before).some((d) => d.report.commandDigest === digest), `the decision on ${action}`);
      return decisions.filter((d) => d.report.commandDigest === digest);
    },
    async operator(request: OperatorParams, operatorId = 'shift-lead', options: { seq?: number; jti?: string; token?: string } = {}): Promise<Record<string, unknown>> {
      const key = cell.agentKeys.get(operatorId);
      if (key === undefined) throw new Error(`no key for ${operatorId}`);
      operatorSeq += 1;
      const token =
        options.token ??
        signOperatorMessage({
          operatorId,
          kid: key.kid,
          privateKey: key.privateKey,
          cellId: 'demo-cell',
          request,
          nowMs: clock.nowMs(),
          ttlMs: 30_000,
          seq: options.seq ?? Math.floor(clock.nowMs()) + operatorSeq,
          ...(options.jti === undefined ? {} : { jti: options.jti }),
        });
      h.lastToken = token;
      const before = operatorResults.length;
      await bus.publish(topics.operator, token);
      await waitFor(() => operatorResults.length > before, 'the operator result');
      return operatorResults[operatorResults.length - 1] as Record<string, unknown>;
    },
  });
  return result;
}

const codes = (event: DecisionEvent | undefined): string[] => (event?.report.reasons ?? []).map((r) => r.code);

t.test('a scope 2 agent is held; an operator approval releases exactly that command, once', async (t) => {
  const h = await harness(t);
  const [held] = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  // Held by the built-in scope 2 rule and by the cell's @approval permit, both named.
  t.equal(held?.report.verdict, 'hold');
  t.same(codes(held), ['POLICY_APPROVAL_REQUIRED', 'POLICY_APPROVAL_REQUIRED']);
  t.same(held?.report.reasons.map((r) => r.ruleId).sort(), ['conveyor-speed-scope-2-approved', 'scope-2']);
  t.equal(held?.released, false, 'nothing moves on a hold');
  const pending = h.interlock.approvals.list();
  t.equal(pending.length, 1);
  const approval = pending[0];
  if (approval === undefined) return;
  await waitFor(() => h.retained.has(topics.approvalPending(approval.id)), 'the pending approval to be published');
  const published = JSON.parse(h.retained.get(topics.approvalPending(approval.id)) ?? '{}') as Record<string, unknown>;
  t.equal(published['commandDigest'], held?.report.commandDigest, 'the published request binds the command digest');
  t.match(published['snapshot'], { speedMPerS: 0 }, 'with the state the person judges');

  const releasedBefore = h.released.length;
  const answer = await h.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest, note: 'belt is clear' });
  t.match(answer, { ok: true, verdict: 'allow', released: true });
  const final = h.decisions[h.decisions.length - 1];
  t.equal(final?.report.commandDigest, held?.report.commandDigest, 'the final decision is on the same command');
  t.equal(final?.report.verdict, 'allow');
  t.equal(codes(final)[0], 'APPROVAL_GRANTED');
  t.equal(h.released.length, releasedBefore + 1, 'released once');
  // The release verifies with the interlock's key and is valid now, although the agent's own TTL may be over.
  const check = verifyReleasedCommand(h.released[h.released.length - 1] ?? '', h.interlockKey.publicKey, { deviceId: CONVEYOR, nowMs: h.clock.nowMs(), lastAuditSeq: 0 });
  t.equal(check.ok, true, `release verifies (${check.ok ? '' : check.problem})`);
  await waitFor(() => h.retained.get(topics.approvalPending(approval.id)) === '', 'the retained pending message to be cleared');

  // The same signed approval again: its jti is spent, and there is nothing pending any more.
  const again = await h.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest }, 'shift-lead', { token: h.lastToken });
  t.equal(again['ok'], false);
  t.match(String(again['problem']), /already received/);
  t.equal(h.released.length, releasedBefore + 1, 'a replayed approval releases nothing');
});

t.test('an approval for command A presented with command B releases nothing', async (t) => {
  const h = await harness(t);
  const [a] = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const [b] = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.15 });
  t.equal(a?.report.verdict, 'hold');
  t.equal(b?.report.verdict, 'hold');
  const [pa, pb] = h.interlock.approvals.list();
  if (pa === undefined || pb === undefined) return;
  const before = h.released.length;
  // A's id with B's digest, and B's id with A's digest: both refused, both still pending.
  const crossed1 = await h.operator({ action: 'approve', approvalId: pa.id, commandDigest: pb.commandDigest });
  const crossed2 = await h.operator({ action: 'approve', approvalId: pb.id, commandDigest: pa.commandDigest });
  t.equal(crossed1['ok'], false);
  t.match(String(crossed1['problem']), /names command/);
  t.equal(crossed2['ok'], false);
  t.equal(h.interlock.approvals.list().length, 2, 'both still pending');
  t.equal(h.released.length, before, 'nothing released');
  // An approval for a digest that was never held.
  const unknown = await h.operator({ action: 'approve', approvalId: 'ffffffffffffffff', commandDigest: 'f'.repeat(64) });
  t.match(String(unknown['problem']), /no pending approval/);
});

t.test('an operator without the approve role cannot approve; a rejection denies', async (t) => {
  const h = await harness(t);
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const [pending] = h.interlock.approvals.list();
  if (pending === undefined) return;
  const refused = await h.operator({ action: 'approve', approvalId: pending.id, commandDigest: pending.commandDigest }, 'mode-only');
  t.equal(refused['ok'], false);
  t.match(String(refused['problem']), /lacks the approve role/);
  t.equal(h.interlock.approvals.list().length, 1, 'still pending');
  const rejected = await h.operator({ action: 'reject', approvalId: pending.id, commandDigest: pending.commandDigest, note: 'not now' });
  t.match(rejected, { ok: true, verdict: 'deny' });
  const final = h.decisions[h.decisions.length - 1];
  t.equal(final?.report.verdict, 'deny');
  t.same(codes(final), ['APPROVAL_REJECTED']);
  t.match(final?.report.reasons[0]?.message ?? '', /not now/);
});

t.test('an approval after the state drifted beyond its tolerance is void', async (t) => {
  const h = await harness(t);
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const [pending] = h.interlock.approvals.list();
  if (pending === undefined) return;
  // The belt now runs 0.05 m/s faster than when the person looked (tolerance 0.02 m/s).
  h.conveyorSpeed = 0.05;
  await waitFor(() => {
    const state = h.interlock.states.latest(CONVEYOR)?.state;
    return state?.kind === 'conveyor' && state.speedMPerS === 0.05;
  }, 'the drifted state to arrive');
  const before = h.released.length;
  const answer = await h.operator({ action: 'approve', approvalId: pending.id, commandDigest: pending.commandDigest });
  t.match(answer, { ok: true, verdict: 'deny' });
  const final = h.decisions[h.decisions.length - 1];
  t.equal(final?.report.verdict, 'deny');
  t.ok(codes(final).includes('APPROVAL_STATE_DRIFT'), codes(final).join(','));
  const drift = final?.report.reasons.find((r) => r.code === 'APPROVAL_STATE_DRIFT');
  t.equal(drift?.limit, 0.02);
  t.ok(Math.abs((drift?.actual ?? 0) - 0.05) < 1e-12);
  t.equal(h.released.length, before, 'nothing released');

  // Within the tolerance (0.01 m/s) the approval stands.
  h.conveyorSpeed = 0;
  await waitFor(() => {
    const state = h.interlock.states.latest(CONVEYOR)?.state;
    return state?.kind === 'conveyor' && state.speedMPerS === 0;
  }, 'the belt at rest again');
  await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 });
  const [second] = h.interlock.approvals.list();
  if (second === undefined) return;
  h.conveyorSpeed = 0.01;
  await waitFor(() => {
    const state = h.interlock.states.latest(CONVEYOR)?.state;
    return state?.kind === 'conveyor' && state.speedMPerS === 0.01;
  }, 'a small drift');
  const ok = await h.operator({ action: 'approve', approvalId: second.id, commandDigest: second.commandDigest });
  t.match(ok, { ok: true, verdict: 'allow', released: true });
});

t.test('held commands expire; the pending cap refuses a flood', async (t) => {
  const h = await harness(t);
  for (let i = 0; i < 3; i++) {
    const [held] = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.1 + i * 0.01 });
    t.equal(held?.report.verdict, 'hold', `hold ${i + 1} of 3`);
  }
  const [fourth] = await h.send('trainee-1', 'set_speed', { speedMPerS: 0.14 });
  t.equal(fourth?.report.verdict, 'deny', 'the fourth pending approval for one agent and device is refused');
  t.ok(codes(fourth).includes('APPROVAL_PENDING_LIMIT'));
  const counts = h.interlock.approvals.requestsPerOperator(h.clock.nowMs());
  t.equal(counts.get('shift-lead'), 3, 'three requests routed to the approver in the last 10 minutes');
  t.equal(counts.has('mode-only'), false, 'none to an operator who cannot approve');
  const metrics = h.interlock.metrics();
  t.same(metrics.approvalRequestsPer10Min, { 'shift-lead': 3 }, 'the flood metric the interlock publishes');
  t.equal(metrics.pendingApprovals, 3);
  t.same(metrics.decisions, { allow: 0, hold: 3, deny: 1 });
  const [first] = h.interlock.approvals.list();
  // Two minutes later (declared pendingFor: 120 s) every pending approval expires.
  h.offsetMs = 121_000;
  await waitFor(() => h.interlock.approvals.list().length === 0, 'the approvals to expire', 5000);
  await waitFor(() => h.decisions.filter((d) => d.report.reasons.some((r) => r.code === 'APPROVAL_EXPIRED')).length === 3, 'three expiry decisions');
  if (first === undefined) return;
  // An approval that arrives afterwards finds nothing to approve.
  const late = await h.operator({ action: 'approve', approvalId: first.id, commandDigest: first.commandDigest });
  t.equal(late['ok'], false);
  t.match(String(late['problem']), /no pending approval/);
});

t.test('repeated denials quarantine an agent; stops still pass; an operator restores it', async (t) => {
  const h = await harness(t);
  // Five commands over the conveyor's 0.5 m/s limit within a minute (trust: 5 denials in 60 s -> quarantine).
  for (let i = 0; i < 5; i++) {
    const [denied] = await h.send('planner-1', 'set_speed', { speedMPerS: 2 });
    t.equal(denied?.report.verdict, 'deny', `denial ${i + 1}`);
  }
  t.match(h.interlock.trust.standing('planner-1').quarantined ?? '', /5 denied commands/);
  t.same(h.interlock.metrics().demotedAgents.map((d) => [d.agentId, d.demotedTo]), [['planner-1', 'quarantine']]);
  await waitFor(() => h.retained.has(topics.agentTrust('planner-1')), 'the demotion to be published');
  t.match(JSON.parse(h.retained.get(topics.agentTrust('planner-1')) ?? '{}'), { event: 'agent-demoted', standing: { demotedTo: 'quarantine' } });
  const [safeSpeed] = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.equal(safeSpeed?.report.verdict, 'deny', 'a quarantined agent trying again is denied');
  t.same(codes(safeSpeed), ['TRUST_QUARANTINED']);
  const [stop] = await h.send('planner-1', 'stop', {});
  t.equal(stop?.report.verdict, 'allow', 'a stop from a quarantined agent passes');
  t.equal(stop?.released, true);

  const notDemoted = await h.operator({ action: 'restore_agent', agent: 'trainee-1' });
  t.match(String(notDemoted['problem']), /not demoted/);
  const restored = await h.operator({ action: 'restore_agent', agent: 'planner-1', note: 'planner fixed' });
  t.match(restored, { ok: true });
  const [after] = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.equal(after?.report.verdict, 'allow', 'restored: commands pass again');
  // An operator can quarantine by hand too.
  await h.operator({ action: 'quarantine_agent', agent: 'planner-1', reason: 'incident 42' });
  const [blocked] = await h.send('planner-1', 'set_speed', { speedMPerS: 0.1 });
  t.same(codes(blocked), ['TRUST_QUARANTINED']);
  t.match(blocked?.report.reasons[0]?.message ?? '', /incident 42/);
});

t.test('an operator forces the reduced limit set; messages outside the rules are refused', async (t) => {
  const h = await harness(t);
  const [normal] = await h.send('planner-1', 'set_speed', { speedMPerS: 0.2 });
  t.equal(normal?.report.mode, 'normal');
  const set = await h.operator({ action: 'set_mode', device: CONVEYOR, mode: 'reduced' }, 'mode-only');
  t.match(set, { ok: true, mode: 'reduced' });
  h.conveyorSpeed = 0.2;
  await waitFor(() => {
    const state = h.interlock.states.latest(CONVEYOR)?.state;
    return state?.kind === 'conveyor' && state.speedMPerS === 0.2;
  }, 'the belt at 0.2 m/s');
  const [reduced] = await h.send('planner-1', 'set_speed', { speedMPerS: 0.3 });
  t.equal(reduced?.report.mode, 'reduced');
  t.same(codes(reduced), ['BOUNDS_CONVEYOR_SPEED'], 'over the reduced 0.25 m/s');
  await h.operator({ action: 'set_mode', device: CONVEYOR, mode: 'auto' }, 'mode-only');
  const [back] = await h.send('planner-1', 'set_speed', { speedMPerS: 0.3 });
  t.equal(back?.report.mode, 'normal');

  // A role the operator lacks; an unknown device; a seq that goes back.
  const wrongRole = await h.operator({ action: 'restore_agent', agent: 'planner-1' }, 'mode-only');
  t.match(String(wrongRole['problem']), /lacks the restore role/);
  const unknownDevice = await h.operator({ action: 'set_mode', device: 'arm-9', mode: 'reduced' });
  t.match(String(unknownDevice['problem']), /no device arm-9/);
  const rollback = await h.operator({ action: 'set_mode', device: CONVEYOR, mode: 'reduced' }, 'shift-lead', { seq: 5 });
  t.match(String(rollback['problem']), /seq 5 is not greater/);
});
