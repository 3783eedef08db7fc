// Failure paths through the interlock as `interlock run` builds it (embedded broker, SQLite audit log and identity
// store, real Cedar and keys), with agents, operators and drivers on a real MQTT connection. Each subtest drives one
// way a check can fail and asserts the verdict, the exact reason codes, that nothing reached an actuator, and that
// the decision was recorded: a Cedar policy that errors at request time, IK that cannot follow a straight line, a
// run-out that overflows, and an identity store (demotions and replay memory) that fails. @approval on a forbid never
// gets that far: the interlock refuses to start, naming the file and the policy.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { startRuntime } from '../../src/app/compose.js';
import { ArmPose, compileChain, forwardKinematics } from '../../src/bounds/robot-arm/kinematics.js';
import { createLogger, type Logger } from '../../src/core/log.js';
import type { ArmDeclaration } from '../../src/core/kinds/robot-arm.js';
import { DeclarationError } from '../../src/core/problems.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { liveInterlock, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage, armStateMessage } from '../helpers/state-messages.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const ARM = 'arm-1';
const CONVEYOR = 'conveyor-1';
const H = Math.PI / 2;
/** arm-1 upright, forearm level, tool pointing straight down over the pick area (exact right angles). */
const ARM_START_RAD = [0, -H, H, -H, -H, 0];

const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);

/** A logger that keeps every line, to check what the interlock said about a failure. */
function recordingLogger(lines: string[]): Logger {
  return createLogger('test', 'info', (line) => lines.push(line));
}

/**
 * What every failure path must show once the interlock has settled everything it received: nothing reached an
 * actuator, and the decision is in the audit log as it was reported (the same command, verdict and reasons).
 */
async function assertRecordedNothingReleased(t: Test, rig: LiveInterlock, event: DecisionEvent): Promise<void> {
  // Barrier: every command received so far is decided, recorded and released or reported.
  await rig.interlock.idle();
  t.equal(event.released, false, 'the decision released nothing');
  t.same(rig.releases, [], 'no release reached an actuator topic');
  t.same(rig.badReleases, []);
  const seq = required(event.auditSeq, `the audit record of the decision on ${event.report.commandDigest.slice(0, 12)}`);
  const record = required(rig.audit.read(seq, 1)[0], `audit record ${seq}`);
  t.match(record, { kind: 'decision', commandDigest: event.report.commandDigest, verdict: event.report.verdict }, 'recorded as decided');
  t.same((record.reasons ?? []).map((r) => r.code), codes(event), 'with the same reasons');
}

t.test('a Cedar policy that errors at request time denies with POLICY_ERROR, although Cedar alone would allow', async (t) => {
  // An erroring forbid is skipped by Cedar, so its decision is the permit's allow; the interlock turns any policy
  // error into a deny. The overflow passes strict validation (types are right) and happens only at request time.
  const policy = readFileSync(join(DEMO_CELL, 'policies', 'conveyor.cedar'), 'utf8');
  const rig = await liveInterlock(t, {
    files: {
      'policies/conveyor.cedar': `${policy}
@id("conveyor-speed-overflow")
forbid (principal is Interlock::Agent, action == Interlock::Action::"set_speed", resource)
when { principal.autonomyScope + 9223372036854775807 > 0 };
`,
    },
  });
  const decided = await rig.send(CONVEYOR, rig.cell.signer('planner-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1 }));
  t.equal(decided.report.verdict, 'deny');
  t.same(codes(decided), ['POLICY_ERROR'], 'only the policy error: bounds pass, and the permit alone would allow');
  const error = required(decided.report.reasons[0], 'the policy error');
  t.equal(error.ruleId, 'conveyor-speed-overflow', 'names the policy that errored');
  t.match(error.message, /overflow/);
  t.equal(decided.report.agentId, 'planner-1', 'decided on the authenticated command');
  await assertRecordedNothingReleased(t, rig, decided);
});

t.test('@approval on a forbid is refused at load: interlock run does not start, naming the file and the policy', async (t) => {
  const policy = readFileSync(join(DEMO_CELL, 'policies', 'arm.cedar'), 'utf8');
  const annotated = policy.replace('@id("scope-1-never-actuates")\n', '@id("scope-1-never-actuates")\n@approval("a person decides")\n');
  t.not(annotated, policy, 'the forbid got the annotation');
  const cell = makeTestCell({ 'policies/arm.cedar': annotated });
  t.teardown(() => cell.cleanup());
  const stateDirectory = mkdtempSync(join(tmpdir(), 'interlock-live-'));
  t.teardown(() => rmSync(stateDirectory, { recursive: true, force: true }));
  const started = startRuntime({ cellDirectory: cell.cellDir, stateDirectory, embeddedPort: 0, heartbeatPeriodMs: 0, log: createLogger('test', 'silent') });
  // If it started after all, stop it (the assertions below then fail).
  t.teardown(async () => (await started.catch(() => undefined))?.stop());
  const error = await started.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof DeclarationError, 'refused with the declaration problems');
  const problems = error instanceof DeclarationError ? error.problems : [];
  t.same(
    problems.map((p) => ({ file: p.file, path: p.path })),
    [{ file: 'policies/arm.cedar', path: 'scope-1-never-actuates' }],
    'exactly one problem, in the file and on the policy',
  );
  t.match(problems[0]?.message ?? '', /@approval marks a permit/);
  t.match(String((error as Error | undefined)?.message), /policies\/arm\.cedar: scope-1-never-actuates: @approval marks a permit/, 'the message says where');
});

t.test('a move_linear whose straight line leaves the reachable space between reachable ends: BOUNDS_IK_UNREACHABLE', async (t) => {
  // The target is the TCP of a pose within every joint range: the start turned 150 degrees about the base axis, the
  // last wrist joint turned back as much, so the tool keeps the start's orientation. The straight chord between the
  // two passes close to the base axis, where no pose puts the TCP with that orientation (the wrist cannot come
  // nearer the axis than its offset allows), so IK loses the line halfway.
  const rig = await liveInterlock(t, { feed: { [ARM]: () => armStateMessage({ positionsRad: ARM_START_RAD }), 'amr-1': () => amrStateMessage() } });
  await rig.modesSettled();
  const arm = required(rig.interlock.declarations.declarations.devices.get(ARM), 'arm-1') as ArmDeclaration;
  const chain = compileChain(required(arm.kinematics, "arm-1's kinematics"));
  const pose = new ArmPose(chain.jointCount);
  forwardKinematics(chain, ARM_START_RAD, pose);
  const startRotation = [...pose.rotation];
  const turn = (150 * Math.PI) / 180;
  forwardKinematics(chain, [turn, -H, H, -H, -H, turn], pose);
  const tcp = pose.tcpIndex * 3;
  const target = [pose.points[tcp] as number, pose.points[tcp + 1] as number, pose.points[tcp + 2] as number];
  t.ok(startRotation.every((v, i) => Math.abs(v - (pose.rotation[i] as number)) < 1e-12), 'the target pose has the start tool orientation');

  // Slow and gentle, so that no joint speed or ramp limit fires before the line is lost.
  const decided = await rig.send(ARM, rig.cell.signer('planner-1').sign(ARM, 'move_linear', { positionM: target, speedMPerS: 0.01, accelerationMPerS2: 0.01 }));
  t.equal(decided.report.verdict, 'deny');
  t.equal(decided.report.mode, 'normal', 'checked in the normal limits (nobody near the table)');
  t.same(codes(decided), ['BOUNDS_IK_UNREACHABLE']);
  const ik = required(decided.report.reasons[0], 'the IK reason');
  t.equal(ik.ruleId, 'arm-1/kinematics');
  t.equal(ik.path, '/params/positionM');
  // Lost in the middle of the line, not at either end.
  const s = Number(/cannot be followed at s=([0-9.]+)/.exec(ik.message)?.[1]);
  t.ok(s > 0.1 && s < 0.9, `lost at s=${s}, between the ends`);
  await assertRecordedNothingReleased(t, rig, decided);
});

t.test('a moving arm whose reported speeds make the run-out overflow: BOUNDS_ARM_RUN_OUT_UNBOUNDED', async (t) => {
  // 1e200 rad/s is a finite JSON number, so the state is accepted; squared (braking distance) it overflows, so the
  // run-out margin is not a finite distance and no widened zone can be checked.
  const moving = (): Record<string, unknown> => ({ ...armStateMessage({ positionsRad: ARM_START_RAD, moving: true }), velocitiesRadPerS: [1e200, 0, 0, 0, 0, 0] });
  const rig = await liveInterlock(t, { feed: { [ARM]: moving, 'amr-1': () => amrStateMessage() } });
  const target = [...ARM_START_RAD];
  target[0] = 0.05;
  const decided = await rig.send(ARM, rig.cell.signer('planner-1').sign(ARM, 'move_joints', { positionsRad: target, velocityRadPerS: 0.1 }));
  t.equal(decided.report.verdict, 'deny');
  t.same(codes(decided), ['BOUNDS_ARM_RUN_OUT_UNBOUNDED']);
  const runOut = required(decided.report.reasons[0], 'the run-out reason');
  t.equal(runOut.ruleId, 'arm-1/runOut');
  t.match(runOut.message, /not a finite distance/);
  await assertRecordedNothingReleased(t, rig, decided);
});

/** Over the belt's 0.5 m/s limit (and its step limit from rest): denied. agents.yaml: 5 denials in 60 s quarantine. */
const OVER_SPEED = { speedMPerS: 2 };

t.test('a command whose numbers overflow the checks is denied and still recorded, the non-finite values in words', async (t) => {
  // A finite but absurd speed: the joint accelerations it implies overflow to Infinity. JSON (and so the audit log)
  // cannot carry Infinity; the denial must not go unrecorded because of it (an agent could otherwise make its own
  // denials vanish from the trail).
  const rig = await liveInterlock(t, { feed: { [ARM]: () => armStateMessage({ positionsRad: ARM_START_RAD }), 'amr-1': () => amrStateMessage() } });
  const decided = await rig.send(ARM, rig.cell.signer('planner-1').sign(ARM, 'move_linear', { positionM: [1.45, 1.13, 1.08], speedMPerS: 1e200 }));
  t.equal(decided.report.verdict, 'deny');
  t.notOk(codes(decided).some((code) => code.startsWith('AUDIT_')), `no audit failure: ${codes(decided).join(',')}`);
  const inWords = decided.report.reasons.filter((r) => /\[(limit [^\]]*, )?actual (-?Infinity|NaN)/.test(r.message));
  t.ok(inWords.length > 0, 'at least one reason had a non-finite value, now in its message');
  t.ok(decided.report.reasons.every((r) => (r.actual === undefined || Number.isFinite(r.actual)) && (r.limit === undefined || Number.isFinite(r.limit))), 'no non-finite number left in a reason');
  await assertRecordedNothingReleased(t, rig, decided);
});

t.test('a demotion the identity store cannot write holds in memory; a restore it cannot write is refused', async (t) => {
  const lines: string[] = [];
  const rig = await liveInterlock(t, { log: recordingLogger(lines) });
  const identityDb = new Database(join(rig.stateDirectory, 'identity.db'));
  t.teardown(() => identityDb.close());
  const storedDemotions = (): unknown[] => identityDb.prepare('SELECT agent, demoted_to FROM demotions ORDER BY agent').all();
  // observer-1 quarantined by an operator while the store works: stored.
  t.match(await rig.operator({ action: 'quarantine_agent', agent: 'observer-1', reason: 'incident 50' }), { ok: true });
  t.same(storedDemotions(), [{ agent: 'observer-1', demoted_to: 'quarantine' }], 'the quarantine is stored');
  const planner = rig.cell.signer('planner-1');
  const denials: DecisionEvent[] = [];
  for (let i = 0; i < 4; i++) denials.push(await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', OVER_SPEED)));
  // From here SQLite refuses every write to the store's demotions table (a real SQLite error inside the real store);
  // its replay memory keeps working, so commands and operator messages are still authenticated. (Closing the store
  // would stop those too: see the next subtest.)
  for (const op of ['INSERT', 'UPDATE', 'DELETE']) {
    identityDb.exec(`CREATE TRIGGER refuse_${op.toLowerCase()} BEFORE ${op} ON demotions BEGIN SELECT RAISE(ABORT, 'demotions are read-only (test)'); END;`);
  }
  denials.push(await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', OVER_SPEED)));
  for (const [i, denial] of denials.entries()) {
    t.equal(denial.report.verdict, 'deny', `denial ${i + 1}`);
    t.same(codes(denial), ['BOUNDS_CONVEYOR_SPEED', 'BOUNDS_CONVEYOR_STEP'], `denial ${i + 1}: over the belt's limits`);
    await assertRecordedNothingReleased(t, rig, denial);
  }
  // Fail closed: quarantined in this run although the store refused it, and said so loudly.
  t.match(rig.interlock.trust.standing('planner-1').quarantined ?? '', /5 denied commands/, 'the fifth denial quarantines planner-1 in memory');
  await waitFor(() => lines.some((l) => /ERROR .*demotion of planner-1 not stored: .*demotions are read-only/.test(l)), 'the error about the unstored demotion');
  t.same(storedDemotions(), [{ agent: 'observer-1', demoted_to: 'quarantine' }], 'and really not stored');
  const next = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1 }));
  t.same(codes(next), ['TRUST_QUARANTINED'], 'its next command, within the limits, is denied');
  await assertRecordedNothingReleased(t, rig, next);

  // An operator restores observer-1, whose quarantine is stored: removing it fails, so the restore is refused and
  // observer-1 stays quarantined (in memory, and on disk for the next start).
  const answer = await rig.operator({ action: 'restore_agent', agent: 'observer-1', note: 'cleared' });
  t.equal(answer['ok'], false, 'the restore is refused');
  t.match(String(answer['problem']), /^restore not stored, the agent stays demoted: .*demotions are read-only/);
  t.match(rig.interlock.trust.standing('observer-1').quarantined ?? '', /incident 50/, 'observer-1 stays quarantined');
  t.same(storedDemotions(), [{ agent: 'observer-1', demoted_to: 'quarantine' }], 'and stays stored');
  const observer = await rig.send(CONVEYOR, rig.cell.signer('observer-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1 }));
  t.same(codes(observer), ['TRUST_QUARANTINED'], "observer-1's command is denied as quarantined");
  await assertRecordedNothingReleased(t, rig, observer);
});

t.test('a closed identity store (the replay memory) denies every command and restores nobody: fail closed', async (t) => {
  const lines: string[] = [];
  const rig = await liveInterlock(t, { log: recordingLogger(lines) });
  const planner = rig.cell.signer('planner-1');
  // planner-1 quarantined (and stored) while the store still works.
  t.match(await rig.operator({ action: 'quarantine_agent', agent: 'planner-1', reason: 'incident 51' }), { ok: true });
  rig.runtime.identity.close();

  // A command of a quarantined agent would be denied anyway; what denies it here is the envelope: it cannot be checked
  // against the replay memory, so it is refused before anything else, as an internal error.
  const decided = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1 }));
  t.equal(decided.report.verdict, 'deny');
  t.same(codes(decided), ['INTERNAL_ERROR']);
  t.match(decided.report.reasons[0]?.message ?? '', /database connection is not open/);
  await assertRecordedNothingReleased(t, rig, decided);

  // An operator's restore: its message cannot be checked against the replay memory either, so it is refused (and the
  // refusal recorded); nothing is restored.
  const answer = await rig.operator({ action: 'restore_agent', agent: 'planner-1' });
  t.equal(answer['ok'], false, 'the restore is refused');
  t.match(String(answer['problem']), /^the message cannot be checked: .*database connection is not open/);
  t.match(rig.interlock.trust.standing('planner-1').quarantined ?? '', /incident 51/, 'planner-1 stays quarantined');
  t.ok(lines.some((l) => /ERROR .*operator message not checked: /.test(l)), 'the failure is logged as an error');
  await rig.interlock.idle();
  const refusal = rig.audit.read(1, 1000).filter((r) => r.detail?.['event'] === 'operator-message-refused');
  t.same(refusal.map((r) => r.detail?.['messageDigest']), [answer['messageDigest']], 'the refusal is recorded');
  const after = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1 }));
  t.same(codes(after), ['INTERNAL_ERROR'], 'and commands are still denied');
  await assertRecordedNothingReleased(t, rig, after);
});
