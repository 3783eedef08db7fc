// The device side of the trust boundary (issue 12, items 1, 3 and 4), attacked as a hostile client of the broker
// would: forged state, state signed with another device's key, replayed genuine state, a garbage flood, forged
// outcomes racing the driver's, and a captured release replayed into a restarted driver. Through the interlock as
// `interlock run` builds it (embedded broker, SQLite audit log, real keys). Each case fails on the code that took
// unsigned reports.

import t from 'tap';
import { SimulatedConveyor } from '../../simulator/conveyor-driver.js';
import { liveInterlock, topics, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage, ARM_HOME_RAD, armStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';
import { DeviceReporter } from '../../src/driver-sdk/device-reporter.js';

const ARM = 'arm-1';
const CONVEYOR = 'conveyor-1';
const FORGED_BASE_RAD = 2.0;
const TARGET_BASE_RAD = 2.5;

/** The arm's base joint as the interlock holds it now. */
function baseRad(rig: LiveInterlock): number | undefined {
  const state = rig.interlock.states.latest(ARM)?.state;
  return state?.kind === 'robot_arm' ? state.positionsRad[0] : undefined;
}

/** The arm at home, reported once by its own driver; resolves when the interlock holds it. */
async function genuineArmAtHome(rig: LiveInterlock): Promise<void> {
  const before = rig.interlock.states.latest(ARM);
  await rig.report(ARM, armStateMessage());
  await waitFor(() => rig.interlock.states.latest(ARM) !== before && baseRad(rig) === 0, 'the genuine arm state');
}

/** Resolves once a people report published after everything sent so far has been taken (same connection, in order). */
async function barrier(rig: LiveInterlock): Promise<void> {
  const before = rig.interlock.states.latest('amr-1');
  await rig.report('amr-1', amrStateMessage());
  await waitFor(() => rig.interlock.states.latest('amr-1') !== before, 'a people report sent after the attack');
}

const moveBaseTo = (rig: LiveInterlock, baseTargetRad: number): string =>
  rig.cell.signer('planner-1').sign(ARM, 'move_joints', { positionsRad: [baseTargetRad, ...ARM_HOME_RAD.slice(1)], velocityRadPerS: 0.5 });

t.test('forged arm state: an unsigned flood claiming the base at 2.0 rad does not get a move to 2.5 rad released', async (t) => {
  const rig = await liveInterlock(t, { feed: { 'amr-1': () => amrStateMessage() } });
  await rig.modesSettled();
  await genuineArmAtHome(rig);
  // The attacker: any client of the broker, publishing the arm's state topic in the old unsigned format.
  const forged = JSON.stringify(armStateMessage({ positionsRad: [FORGED_BASE_RAD, ...ARM_HOME_RAD.slice(1)] }));
  for (let i = 0; i < 50; i++) await rig.client.publish(topics.actuatorState(ARM), forged, { qos: 1 });
  await barrier(rig);
  t.equal(baseRad(rig), 0, 'the interlock still holds the arm where its own driver reported it');
  const decided = await rig.send(ARM, moveBaseTo(rig, TARGET_BASE_RAD));
  t.equal(decided.report.verdict, 'deny');
  t.ok(decided.report.reasons.some((r) => r.code === 'BOUNDS_JOINT_STEP' && r.ruleId === 'arm-1/maxStep/normal'), 'the 143 degree swing from the real pose is over the max step');
  t.equal(rig.releases.length, 0, 'nothing released');
});

t.test("state signed with another device's driver key, or replayed, is ignored; a garbage flood blanks nothing", async (t) => {
  const rig = await liveInterlock(t, { feed: { 'amr-1': () => amrStateMessage() } });
  await rig.modesSettled();
  const atForgedBase = armStateMessage({ positionsRad: [FORGED_BASE_RAD, ...ARM_HOME_RAD.slice(1)] });
  // Captured from the arm's own driver earlier (genuine, signed), then superseded by newer genuine reports.
  const captured = rig.reporter(ARM).state(atForgedBase);
  await genuineArmAtHome(rig);
  // The conveyor's driver key, speaking for the arm.
  const impostor = new DeviceReporter(ARM, rig.cell.driverKey(CONVEYOR), () => rig.clock.nowMs());
  await rig.client.publish(topics.actuatorState(ARM), impostor.state(atForgedBase), { qos: 1 });
  await rig.client.publish(topics.actuatorState(ARM), captured, { qos: 1 });
  for (let i = 0; i < 200; i++) await rig.client.publish(topics.actuatorState(ARM), i % 2 === 0 ? 'not json' : '{}', { qos: 0 });
  await barrier(rig);
  t.equal(baseRad(rig), 0, 'neither the impostor nor the replay moved the arm in the interlock');
  t.ok(rig.interlock.states.latest(ARM) !== undefined, 'and the flood did not blank its state');
  const honest = await rig.send(ARM, moveBaseTo(rig, 0.1));
  t.equal(honest.report.verdict, 'allow', `an honest small move still passes (${honest.report.reasons.map((r) => r.code).join(', ')})`);
});

t.test("forged outcomes do not reach the audit log; the driver's own does", async (t) => {
  const rig = await liveInterlock(t, { feed: { [CONVEYOR]: () => conveyorStateMessage(), 'amr-1': () => amrStateMessage() } });
  await rig.modesSettled();
  const allowed = await rig.send(CONVEYOR, rig.cell.signer('planner-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(allowed.released, true);
  await waitFor(() => rig.releases.some((r) => r.command.commandId === allowed.report.commandId), 'the release');
  const release = required(rig.releases.find((r) => r.command.commandId === allowed.report.commandId), 'the release').command;
  // The attacker answers first, in the unsigned format and signed with the arm's key; then the real driver.
  const forged = { commandId: release.commandId, auditSeq: release.auditSeq, status: 'refused', problem: 'forged', timeMs: Date.now() };
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), JSON.stringify(forged), { qos: 1 });
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), new DeviceReporter(CONVEYOR, rig.cell.driverKey(ARM)).outcome(forged), { qos: 1 });
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), rig.reporter(CONVEYOR).outcome({ ...forged, status: 'executed', problem: undefined }), { qos: 1 });
  await waitFor(() => rig.audit.read(1, 1000).some((r) => r.kind === 'outcome'), 'the outcome record');
  await rig.interlock.idle();
  const outcomes = rig.audit.read(1, 1000).filter((r) => r.kind === 'outcome');
  t.equal(outcomes.length, 1, 'one outcome recorded');
  t.match(outcomes[0]?.detail, { event: 'device-outcome', status: 'executed' }, "the driver's own");
});

t.test('a captured release replayed into a restarted driver is refused; a stop still passes', async (t) => {
  // On mosquitto without an ACL (the embedded broker already refuses anyone but the interlock on actuator topics):
  // the driver's own check is what is tested, the wall that holds when a broker's ACL is missing or wrong.
  const rig = await liveInterlock(t, { broker: 'mosquitto', feed: { 'amr-1': () => amrStateMessage() } });
  await rig.modesSettled();
  const driver = (): SimulatedConveyor =>
    new SimulatedConveyor({
      deviceId: CONVEYOR,
      transport: rig.client,
      interlockPublicKey: rig.runtime.interlockPublicKey,
      driverKey: rig.cell.driverKey(CONVEYOR),
      heartbeatTimeoutMs: 0,
      defaultRampMPerS2: 0.25,
      permissives: { guardClosed: true, estopReleased: true, downstreamReady: true },
    });
  const first = driver();
  await first.start();
  t.teardown(() => first.stop());
  await waitFor(() => rig.interlock.states.latest(CONVEYOR) !== undefined, 'the first run of the driver to report');
  const planner = rig.cell.signer('planner-1');
  const decided = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(decided.released, true);
  await waitFor(() => first.executed.some((c) => c.commandId === decided.report.commandId), 'the first run to execute it');
  await waitFor(() => rig.releases.some((r) => r.command.commandId === decided.report.commandId), 'the release to reach the outside client');
  const captured = required(rig.releases.find((r) => r.command.commandId === decided.report.commandId), 'the captured release');
  t.equal(captured.command.session, first.session, 'the release names the run it was checked against');

  // The driver restarts (a new process: nothing of the first run is remembered); the attacker replays the release.
  await first.stop();
  const second = driver();
  await second.start();
  t.teardown(() => second.stop());
  t.not(second.session, first.session);
  await rig.client.publish(topics.actuatorCommand(CONVEYOR), captured.token, { qos: 1 });
  await waitFor(() => second.received.some((r) => r.token === captured.token), 'the replay to reach the restarted driver');
  const replay = required(second.received.find((r) => r.token === captured.token), 'the replay as received');
  t.equal(replay.accepted, false, 'refused');
  t.match(replay.problem ?? '', /driver run/);
  t.equal(second.executed.length, 0, 'nothing executed');
  // A stop is a stop whatever run it names.
  const stop = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  t.equal(stop.released, true);
  await waitFor(() => second.executed.some((c) => c.commandId === stop.report.commandId), 'the restarted driver to execute the stop');
});
