// End to end against a real mosquitto on loopback: agent -> interlock -> simulated arm, with real keys, Cedar,
// SQLite and MQTT. Proves safe commands arrive, unsafe ones never do, and nothing arrives before its allow row.
// Everything runs on the real clock in one process, so the limits that a loaded machine could trip without anything
// being wrong are relaxed for the test (state age, the drivers' watchdogs); freshness and the watchdog are tested on
// injected clocks elsewhere. Waits are for conditions; every "never arrives" waits for a later release first.

import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SimulatedArm } from '../../simulator/arm-driver.js';
import { rogueSigner } from '../../simulator/demo-agent.js';
import { SimulatedMobileRobot } from '../../simulator/mobile-robot-driver.js';
import { SimulatedPeople } from '../../simulator/people.js';
import { startRuntime, type Runtime } from '../../src/app/compose.js';
import { silentLogger } from '../../src/core/log.js';
import type { DecisionReport } from '../../src/pipeline/decision-report.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { topicSet } from '../../src/transport/topics.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { modesSettled } from '../helpers/modes-settled.js';
import { waitFor } from '../helpers/wait-for.js';
import { systemClock } from '../../src/core/clock.js';
import { makeTestCell } from '../helpers/test-cell.js';

const DEVICE = 'arm-1';
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
const topics = topicSet();
/**
 * The demo cell's state-age limits are 200-300 ms: on a loaded 2-core machine the interlock, mosquitto's client
 * side, SQLite and both drivers share the CPU, and a decision can come later than that after the last state.
 */
const STATE_AGE_MS = 10_000;
/** The drivers' heartbeat watchdog (default 1 s): long enough that no stall trips it while the interlock runs. */
const WATCHDOG_MS = 10_000;

t.test('a signed AI command reaches the simulated arm only through the interlock', async (t) => {
  const broker = await startMosquitto();
  const cell = makeTestCell({}, { stateAgeMs: STATE_AGE_MS });
  const stateDirectory = mkdtempSync(join(tmpdir(), 'interlock-state-'));
  const runtime: Runtime = await startRuntime({ cellDirectory: cell.cellDir, stateDirectory, brokerUrl: broker.url, log: silentLogger });
  const armBus = new MqttTransport({ url: broker.url, clientId: 'arm-1-driver' });
  const agentBus = new MqttTransport({ url: broker.url, clientId: 'agent' });
  const observerBus = new MqttTransport({ url: broker.url, clientId: 'observer' });
  const amrBus = new MqttTransport({ url: broker.url, clientId: 'amr-1-driver' });
  const arm = new SimulatedArm({
    deviceId: DEVICE,
    transport: armBus,
    interlockPublicKey: runtime.interlockPublicKey,
    driverKey: cell.driverKey(DEVICE),
    jointCount: 6,
    initialPositionsRad: HOME,
    heartbeatTimeoutMs: WATCHDOG_MS,
  });
  // amr-1's scanners are the demo cell's people source. They see nobody (and the AMR waits in the aisle, out of the
  // station it shares with the arm), so the arm checks in its normal limits, as it does with nobody near the table.
  const amr = new SimulatedMobileRobot({
    deviceId: 'amr-1',
    transport: amrBus,
    interlockPublicKey: runtime.interlockPublicKey,
    driverKey: cell.driverKey('amr-1'),
    initialPose: { xM: 4, yM: -0.5, yawRad: 0 },
    heartbeatTimeoutMs: WATCHDOG_MS,
    people: new SimulatedPeople({ room: { minXM: 10, maxXM: 14, minYM: 2, maxYM: 6 }, count: 0, seed: 1, startMs: Date.now() }),
  });
  t.teardown(async () => {
    await arm.stop();
    await amr.stop();
    await Promise.allSettled([armBus.stop(), agentBus.stop(), observerBus.stop(), amrBus.stop()]);
    await runtime.stop();
    await broker.stop();
    cell.cleanup();
    rmSync(stateDirectory, { recursive: true, force: true });
  });
  await Promise.all([armBus.start(), agentBus.start(), observerBus.start(), amrBus.start()]);
  await arm.start();
  await amr.start();

  // An independent observer on the actuator topic: at the instant each release is delivered, it reads the audit
  // database through its own SQLite connection and notes whether the allow record is already committed.
  const auditReader = new Database(join(stateDirectory, 'audit.db'), { readonly: true, fileMustExist: true });
  t.teardown(() => auditReader.close());
  const findAllow = auditReader.prepare("SELECT seq FROM records WHERE kind = 'decision' AND verdict = 'allow' AND command_id = ?");
  const releasesSeen: { commandId: string | undefined; allowCommitted: boolean }[] = [];
  await observerBus.subscribe(topics.actuatorCommand(DEVICE), (_topic, payload) => {
    const claims = JSON.parse(Buffer.from(payload.toString().split('.')[1] ?? '', 'base64url').toString()) as { commandId?: string };
    releasesSeen.push({ commandId: claims.commandId, allowCommitted: claims.commandId !== undefined && findAllow.get(claims.commandId) !== undefined });
  });

  const decisions = new Map<string, DecisionReport>();
  await agentBus.subscribe(topics.decision(DEVICE), (_topic, payload) => {
    const report = JSON.parse(payload.toString()) as DecisionReport;
    decisions.set(report.commandDigest, report);
  });
  const { commandDigest } = await import('../../src/pipeline/pipeline.js');
  const send = async (token: string): Promise<DecisionReport> => {
    await agentBus.publish(topics.command(DEVICE), token);
    const digest = commandDigest(token);
    await waitFor(() => decisions.has(digest), 'the decision');
    return decisions.get(digest) as DecisionReport;
  };

  await waitFor(() => runtime.interlock.states.latest(DEVICE) !== undefined, 'the arm state to reach the interlock');
  await waitFor(() => runtime.interlock.states.latest('amr-1')?.people !== undefined, 'the people report to reach the interlock');
  await modesSettled(runtime.interlock, systemClock);
  const planner = cell.signer('planner-1');
  /**
   * A later allowed command, as a barrier: once it has reached the arm, anything released before it would have too.
   * Sent once the interlock sees the arm at rest after its last release (not moving and every reported speed 0: the
   * state of the tick a motion ends still reports that tick's speeds): the run-out of a moving arm widens every path
   * by what it may travel in maxStateAge (long here), and the barrier would be denied for that.
   */
  const barrier = async (): Promise<DecisionReport> => {
    const last = arm.executed.at(-1)?.commandId ?? null;
    await waitFor(() => {
      const state = runtime.interlock.states.latest(DEVICE)?.state;
      return state?.kind === 'robot_arm' && state.moving === false && (state.velocitiesRadPerS ?? []).every((v) => v === 0) && state.lastCommandId === last;
    }, 'the interlock to see the arm at rest');
    const decision = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: HOME, velocityRadPerS: 1.5 }));
    if (decision.verdict !== 'allow') throw new Error(`the barrier command was not allowed: ${JSON.stringify(decision.reasons)}`);
    await waitFor(() => arm.executed.some((c) => c.commandId === decision.commandId), 'the arm to execute the barrier command');
    return decision;
  };

  await t.test('a safe command is allowed and the arm executes it', async (t) => {
    const target = [0.3, -1.2, 1.4, -1.571, -1.571, 0.2];
    const decision = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: target, velocityRadPerS: 1.5 }));
    t.equal(decision.verdict, 'allow');
    t.same(decision.reasons, []);
    await waitFor(() => arm.executed.some((c) => c.commandId === decision.commandId), 'the arm to execute the release');
    await waitFor(() => arm.positionsRad.every((p, i) => Math.abs(p - (target[i] as number)) < 1e-9), 'the arm to reach the target');
    t.pass('the arm reached the commanded joint positions');
  });

  await t.test('an unsafe command is denied with its reason and never reaches the arm', async (t) => {
    const receivedBefore = arm.received.length;
    const decision = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: [0, -1.2, 90, -1.571, -1.571, 0], velocityRadPerS: 1 }));
    t.equal(decision.verdict, 'deny');
    t.equal(decision.reasons[0]?.code, 'BOUNDS_JOINT_POSITION');
    t.equal(decision.reasons[0]?.ruleId, 'arm-1/joints/elbow/position');
    t.equal(decision.reasons[0]?.actual, 90);
    await barrier();
    t.equal(arm.received.length, receivedBefore + 1, 'the arm received only the barrier release');
    t.notOk(arm.received.some((r) => r.command?.commandId === decision.commandId), 'the denied command never reached the arm');
  });

  await t.test('a command signed with an unregistered key is denied', async (t) => {
    const receivedBefore = arm.received.length;
    const decision = await send(rogueSigner().sign(DEVICE, 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }));
    t.equal(decision.verdict, 'deny');
    t.equal(decision.reasons[0]?.code, 'ENVELOPE_UNKNOWN_KEY');
    t.equal(decision.agentId, null, 'an unauthenticated command is attributed to no agent');
    await barrier();
    t.equal(arm.received.length, receivedBefore + 1, 'the arm received only the barrier release');
    t.notOk(arm.received.some((r) => r.command?.commandId === decision.commandId), 'the denied command never reached the arm');
  });

  await t.test('a forged release published straight to the actuator topic does not move the arm', async (t) => {
    // This mosquitto has no ACL (the broker-level block is tested with the embedded broker); the driver's own
    // signature check is the second line of defence.
    await waitFor(() => !arm.moving, 'the arm to come to rest');
    const before = arm.positionsRad;
    const receivedBefore = arm.received.length;
    const forged = rogueSigner().sign(DEVICE, 'move_joints', { positionsRad: [1, -1, 1, -1, -1, 1], velocityRadPerS: 2 });
    await agentBus.publish(topics.actuatorCommand(DEVICE), forged);
    await waitFor(() => arm.received.length > receivedBefore, 'the driver to see the forged message');
    t.equal(arm.received.at(-1)?.accepted, false);
    t.same(arm.positionsRad, before, 'the arm did not move');
  });

  await t.test('every release was preceded by its committed allow record', async (t) => {
    await runtime.interlock.idle();
    const genuine = releasesSeen.filter((r) => r.commandId !== undefined && arm.executed.some((c) => c.commandId === r.commandId));
    t.ok(genuine.length >= 2, `observed ${genuine.length} genuine releases`);
    t.ok(genuine.every((r) => r.allowCommitted), 'the allow row was readable from another connection when each release arrived');
    const verify = runtime.audit.verify();
    t.ok(verify.ok, 'the audit chain verifies');
  });
});
