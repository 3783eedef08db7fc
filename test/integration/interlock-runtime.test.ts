// The interlock as `interlock run` composes it (the live rig: embedded broker over TCP, SQLite audit log and identity
// store, the interlock's own key) with the simulated arm and AMR drivers on the outside MQTT connection: log-before-act
// when the audit log fails, garbled device state, commands on unusable topics and for undeclared devices, and the
// heartbeat watchdog. Waits are for conditions; every negative check waits for a barrier first.

import t, { type Test } from 'tap';
import { SimulatedArm, type SimulatedArmOptions } from '../../simulator/arm-driver.js';
import { SimulatedMobileRobot } from '../../simulator/mobile-robot-driver.js';
import { SimulatedPeople } from '../../simulator/people.js';
import { createLogger } from '../../src/core/log.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import { liveInterlock, topics, type LiveInterlock, type LiveInterlockOptions } from '../helpers/live-interlock.js';
import { ARM_HOME_RAD, armStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';
import { required } from '../helpers/required.js';
import { brokerLogin } from '../../src/transport/broker-clients.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';

const DEVICE = 'arm-1';
const HOME = [...ARM_HOME_RAD];
const AWAY = [1, -1, 1, -1, -1, 1];
/** How long a wait may take before the test fails: a bound, not a sleep (a loaded 2-core machine is slow). */
const WAIT_MS = 15_000;

interface Rig {
  readonly live: LiveInterlock;
  readonly arm: SimulatedArm;
  /** Publishes a signed command on the device's command topic and resolves with the decision on it. */
  send(token: string, device?: string): Promise<DecisionEvent>;
}

interface RigOptions {
  /** The interlock's heartbeat period; default 0 (no heartbeat: only the heartbeat test is about it). */
  readonly heartbeatPeriodMs?: number;
  /** Overrides for the arm; its watchdog is off by default, for the same reason. */
  readonly arm?: Partial<SimulatedArmOptions>;
  readonly log?: LiveInterlockOptions['log'];
  readonly broker?: LiveInterlockOptions['broker'];
}

async function rig(t: Test, options: RigOptions = {}): Promise<Rig> {
  const live = await liveInterlock(t, {
    feed: false,
    heartbeatPeriodMs: options.heartbeatPeriodMs ?? 0,
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.broker === undefined ? {} : { broker: options.broker }),
  });
  const arm = new SimulatedArm({
    deviceId: DEVICE,
    transport: live.client,
    interlockPublicKey: live.runtime.interlockPublicKey,
    driverKey: live.cell.driverKey(DEVICE),
    jointCount: 6,
    initialPositionsRad: HOME,
    heartbeatTimeoutMs: 0,
    ...options.arm,
  });
  // amr-1's scanners are the demo cell's people source. They see nobody (and the AMR waits in the aisle, out of the
  // station it shares with the arm), so the arm checks in its normal limits, as it does with nobody near the table.
  const amr = new SimulatedMobileRobot({
    deviceId: 'amr-1',
    transport: live.client,
    interlockPublicKey: live.runtime.interlockPublicKey,
    driverKey: live.cell.driverKey('amr-1'),
    initialPose: { xM: 4, yM: -0.5, yawRad: 0 },
    heartbeatTimeoutMs: 0,
    people: new SimulatedPeople({ room: { minXM: 10, maxXM: 14, minYM: 2, maxYM: 6 }, count: 0, seed: 1, startMs: Date.now() }),
  });
  // Registered after the rig's own teardown, so it runs first (tap runs teardowns last in, first out).
  t.teardown(async () => {
    await arm.stop();
    await amr.stop();
  });
  await arm.start();
  await amr.start();
  await waitFor(() => live.interlock.states.latest(DEVICE) !== undefined, 'arm state', WAIT_MS);
  await waitFor(() => live.interlock.states.latest('amr-1')?.people !== undefined, 'the people report', WAIT_MS);
  await live.modesSettled();
  return { live, arm, send: (token, device = DEVICE) => live.send(device, token) };
}

const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);

t.test('when the audit log cannot be written, a move is denied for that and not released, but a stop still passes', async (t) => {
  const { live, arm, send } = await rig(t);
  const planner = live.cell.signer('planner-1');
  const observer = live.cell.signer('observer-1');
  const moving = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: AWAY, velocityRadPerS: 0.2 }));
  t.equal(moving.report.verdict, 'allow');
  await waitFor(() => arm.executed.some((c) => c.commandId === moving.report.commandId), 'the arm to execute the move', WAIT_MS);
  t.equal(arm.moving, true, 'the arm moves');

  live.audit.close(); // from here every record() rejects: the log is unwritable
  const releasesBefore = live.releases.length;
  const stop = await send(observer.sign(DEVICE, 'stop', {}));
  t.equal(stop.report.verdict, 'allow', 'stopping is always safe');
  t.same(codes(stop), ['SAFE_STATE_COMMAND', 'AUDIT_UNAVAILABLE'], 'the audit failure is reported with the stop');
  t.equal(stop.released, true);
  t.equal(stop.auditSeq, null);
  await waitFor(() => arm.executed.some((c) => c.commandId === stop.report.commandId), 'the arm to execute the stop', WAIT_MS);
  t.equal(arm.moving, false, 'the arm halted');

  // The next move starts from an arm the interlock sees at rest, so that the log is the only thing against it (the
  // run-out of a moving arm would deny it too).
  await waitFor(() => {
    const state = live.interlock.states.latest(DEVICE)?.state;
    return state?.kind === 'robot_arm' && state.moving === false && state.lastCommandId === stop.report.commandId && (state.velocitiesRadPerS ?? []).every((v) => v === 0);
  }, 'the interlock to see the arm at rest', WAIT_MS);
  const receivedBefore = arm.received.length;
  const denied = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }));
  t.equal(denied.report.verdict, 'deny', 'a safe move is denied without a durable record');
  t.same(codes(denied), ['AUDIT_UNAVAILABLE'], 'for that alone');
  t.equal(denied.released, false);
  t.equal(denied.auditSeq, null);

  // Barrier: a second stop. Releases go out in decision order on one connection, so once it has reached the arm, a
  // release of the denied move (decided before it) would have reached it too.
  const again = await send(observer.sign(DEVICE, 'stop', {}));
  t.equal(again.released, true, 'a second stop passes too');
  await waitFor(() => arm.executed.some((c) => c.commandId === again.report.commandId), 'the arm to execute the second stop', WAIT_MS);
  await waitFor(() => live.releases.some((r) => r.command.commandId === again.report.commandId), 'the outside subscriber to see it', WAIT_MS);
  t.same(arm.received.slice(receivedBefore).map((r) => r.command?.commandId), [again.report.commandId], 'the denied move never reached the arm');
  const released = live.releases.slice(releasesBefore);
  t.same(released.map((r) => r.command.commandId), [stop, again].map((d) => d.report.commandId), 'the actuator topic carried only the stops');
  t.ok(released.every((r) => r.command.auditSeq === 0), 'released without an audit record (seq 0), as only a safe-state command may be');
  t.same(live.badReleases, [], 'every release verified with the interlock\'s key');
  await live.interlock.idle();
});

t.test('a garbled state message signed by the driver voids the previous state, so a move is denied until good state returns', async (t) => {
  const { live, arm, send } = await rig(t);
  const planner = live.cell.signer('planner-1');
  // The test publishes the arm's state itself from here on, on the connection the arm used, so a state the arm
  // published before it stopped reaches the interlock before anything the test sends.
  await arm.stop();
  const driver = live.reporter(DEVICE);
  const publishGood = async (): Promise<void> => {
    const previous = live.interlock.states.latest(DEVICE);
    await live.client.publish(topics.actuatorState(DEVICE), driver.state(armStateMessage()), { qos: 1 });
    await waitFor(() => {
      const latest = live.interlock.states.latest(DEVICE);
      return latest !== undefined && latest !== previous;
    }, 'the good state to be taken', WAIT_MS);
  };
  // The driver itself reports garbage (signed): the device has no state until a good one.
  const garbage = ['{"positionsRad":[1,2]}', '{"positionsRad":[0,0,0,0,0,"0"]}', '{"positionsRad":[0,0,0,0,0,0],"extra":1}', '{}'];
  for (const payload of garbage) {
    await publishGood();
    await live.client.publish(topics.actuatorState(DEVICE), driver.state(JSON.parse(payload) as object), { qos: 1 });
    await waitFor(() => live.interlock.states.latest(DEVICE) === undefined, `state to be discarded after ${payload}`, WAIT_MS);
    const decision = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }));
    t.equal(decision.report.verdict, 'deny', `denied after ${payload}`);
    t.equal(decision.report.reasons[0]?.code, 'BOUNDS_STATE_MISSING');
  }
  // Four denials: one short of the demo cell's quarantine rule (five within a minute).
  t.equal(live.interlock.trust.standing('planner-1').quarantined, undefined);
  await publishGood();
  const again = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }));
  t.equal(again.report.verdict, 'allow', `allowed again once good state returns (${JSON.stringify(again.report.reasons.map((r) => r.message))})`);
  t.equal(again.released, true);
});

t.test('a command on an unusable topic is ignored, one for an undeclared device is denied, and the interlock keeps working', async (t) => {
  const warnings: string[] = [];
  const { live, arm, send } = await rig(t, { log: createLogger('interlock', 'warn', (line) => warnings.push(line)) });
  const planner = live.cell.signer('planner-1');
  const move = (device = DEVICE): string => planner.sign(device, 'move_joints', { positionsRad: AWAY, velocityRadPerS: 0.5 });

  // Topics on which no device id can be read: the first three match the interlock's subscription
  // (interlock/+/command), but what stands for the device is not a device id (the pattern keeps wildcards and
  // separators out of topics); the last one (two levels) is outside every agent's grant: the broker refuses it.
  const matching = ['interlock/-arm-1/command', `interlock/${'a'.repeat(65)}/command`, 'interlock/arm 1/command'];
  const ignoredDigests: string[] = [];
  for (const topic of matching) {
    const token = move(); // a valid command for arm-1, each with its own jti
    ignoredDigests.push(commandDigest(token));
    await live.client.publish(topic, token, { qos: 1 });
  }
  const stray = new MqttTransport({ url: live.runtime.brokerUrl, ...brokerLogin(required(live.runtime.brokerClientsPath, 'the broker clients file'), 'planner-1', 'stray'), log: () => undefined });
  t.teardown(() => stray.stop());
  await stray.start();
  const strayToken = move();
  ignoredDigests.push(commandDigest(strayToken));
  await t.rejects(stray.publish('interlock/arm-1/x/command', strayToken, { qos: 1 }), /outcome unknown/, 'the broker refuses a topic outside the agent grant');
  // A device id that is well-formed but not declared: decided (and recorded) as a denial, never released.
  const unknownDevice = await send(move('arm-9'), 'arm-9');
  t.same(codes(unknownDevice), ['COMMAND_UNKNOWN_DEVICE'], 'a command for an undeclared device is denied for that');
  t.equal(unknownDevice.released, false);
  t.equal(unknownDevice.topicDeviceId, 'arm-9');
  // A command for arm-1 on the undeclared device's topic: the topic names the device, and they differ.
  const misdirected = await send(move(), 'arm-9');
  t.same(codes(misdirected), ['ENVELOPE_WRONG_AUDIENCE'], 'a command on another device\'s topic is denied');
  t.equal(misdirected.released, false);

  // The interlock keeps working, and this is the barrier: it was published after every command above on the same
  // connection, and the interlock decides in arrival order, so once it is decided and released, everything before it
  // has been handled (or was never delivered).
  const good = await send(move());
  t.equal(good.report.verdict, 'allow', `a good command is allowed afterwards (${JSON.stringify(codes(good))})`);
  t.equal(good.released, true);
  await waitFor(() => arm.executed.some((c) => c.commandId === good.report.commandId), 'the arm to execute it', WAIT_MS);
  await waitFor(() => live.releases.some((r) => r.command.commandId === good.report.commandId), 'the outside subscriber to see it', WAIT_MS);
  await live.interlock.idle();

  t.same(live.decisions.filter((d) => ignoredDigests.includes(d.report.commandDigest)), [], 'no decision on a command on an unusable topic');
  t.same(
    live.decisions.map((d) => d.report.commandDigest),
    [unknownDevice, misdirected, good].map((d) => d.report.commandDigest),
    'the interlock decided exactly the three commands on usable topics',
  );
  const recorded = live.audit.read(1, 1000).filter((r) => r.kind === 'decision');
  t.same(recorded.map((r) => r.commandDigest), [unknownDevice, misdirected, good].map((d) => d.report.commandDigest), 'and recorded only those');
  t.same(live.releases.map((r) => r.command.commandId), [good.report.commandId], 'only the good command was released');
  t.same(arm.received.map((r) => r.command?.commandId), [good.report.commandId], 'and only it reached the arm');
  for (const topic of matching) t.ok(warnings.some((w) => w.includes(`command on unusable topic ${JSON.stringify(topic)} ignored`)), `logged: ${topic} ignored`);
  t.notOk(warnings.some((w) => w.includes('command on unusable topic "interlock/arm-1/x/command"')), 'the two-level topic never reached the interlock');
  t.ok(warnings.some((w) => /refused a publish to interlock\/arm-1\/x\/command from client planner-1:stray: agent planner-1 may not publish there/.test(w)), 'the broker logged the refusal');
  t.same(live.badReleases, []);
});

/**
 * The arm's clock for the heartbeat test: stands still while the test steps it (so no stall of a loaded machine
 * between two heartbeats can look like silence), then, once told to run, goes on with the real clock from there.
 */
class SteppedClock {
  #frozenAtMs: number | undefined = Date.now();
  #offsetMs = 0;
  readonly nowMs = (): number => this.#frozenAtMs ?? Date.now() + this.#offsetMs;
  advance(ms: number): void {
    if (this.#frozenAtMs === undefined) throw new Error('the clock runs already');
    this.#frozenAtMs += ms;
  }
  run(): void {
    if (this.#frozenAtMs === undefined) return;
    this.#offsetMs = this.#frozenAtMs - Date.now();
    this.#frozenAtMs = undefined;
  }
}

t.test('the heartbeat keeps the arm live past its watchdog timeout; when the interlock stops, the arm goes to its safe state, whatever an attacker publishes as heartbeats', async (t) => {
  const timeoutMs = 500;
  const clock = new SteppedClock();
  // The arm's stepped clock falls behind the interlock's real one by the rig's start-up (seconds), so the arm takes
  // heartbeats up to a minute off its clock; replays are still refused, by their order (epoch and seq).
  // On mosquitto without an ACL, so that the attacker's heartbeats do reach the arm: the embedded broker refuses them
  // outright (test/transport/broker-acl.test.ts); here the driver's own check of the signature and order is tested.
  const { live, arm, send } = await rig(t, { broker: 'mosquitto', heartbeatPeriodMs: 50, arm: { heartbeatTimeoutMs: timeoutMs, heartbeatMaxSkewMs: 60_000, nowMs: clock.nowMs } });
  // Counted on the arm's own connection, after the arm subscribed: the transport hands each message to the arm's
  // handler first, so a heartbeat counted here has been handled by the arm.
  let heartbeats = 0;
  const captured: Buffer[] = [];
  await live.client.subscribe(topics.heartbeat, (_topic, payload) => {
    heartbeats += 1;
    captured.push(payload);
  });
  const nextHeartbeat = async (): Promise<void> => {
    const seen = heartbeats;
    await waitFor(() => heartbeats > seen, 'the next heartbeat at the arm', WAIT_MS);
  };
  /** Moves the arm's clock on and waits until its physics (and watchdog check) has run at that instant. */
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await waitFor(() => arm.physicsTimeMs === clock.nowMs(), `the arm's physics to reach +${ms} ms`, WAIT_MS);
  };

  const planner = live.cell.signer('planner-1');
  const move = await send(planner.sign(DEVICE, 'move_joints', { positionsRad: AWAY, velocityRadPerS: 0.1 }));
  t.equal(move.report.verdict, 'allow');
  await waitFor(() => arm.executed.some((c) => c.commandId === move.report.commandId), 'the arm to execute the move', WAIT_MS);

  // 1.2 s pass on the arm's clock, more than twice its timeout, in steps shorter than the timeout with a heartbeat
  // from the interlock after each: the watchdog is checked at every step (the barrier), and does not trip.
  const startMs = arm.physicsTimeMs;
  for (let i = 0; i < 6; i++) {
    await nextHeartbeat();
    await advance(200);
  }
  t.ok(arm.physicsTimeMs - startMs > 2 * timeoutMs, `the arm ran ${arm.physicsTimeMs - startMs} ms on heartbeats alone`);
  t.equal(arm.safeStopped, false, 'no safe stop while the heartbeat flows');
  t.equal(arm.moving, true, 'the arm is still moving');

  // The interlock stops: no more heartbeats. From here the arm's clock runs with the real one; the watchdog trips
  // once the last heartbeat (whenever it lands) is older than the timeout. Waited for, not timed.
  // Meanwhile an attacker (any client of this broker) keeps the heartbeat topic busy every 50 ms: unsigned
  // heartbeats in the old format, and every genuine heartbeat it captured, replayed in order.
  await live.interlock.stop();
  let replayed = 0;
  let accepted = 0;
  const attack = setInterval(() => {
    const genuine = captured[replayed % captured.length];
    replayed += 1;
    const count = (): void => void (accepted += 1);
    void live.client.publish(topics.heartbeat, JSON.stringify({ seq: 1_000_000 + replayed, timeMs: clock.nowMs() })).then(count, () => undefined);
    if (genuine !== undefined) void live.client.publish(topics.heartbeat, genuine).then(count, () => undefined);
  }, 50);
  t.teardown(() => clearInterval(attack));
  clock.run();
  await waitFor(() => arm.safeStopped, 'the watchdog to trip', WAIT_MS);
  clearInterval(attack);
  t.ok(replayed > 0 && captured.length > 0 && accepted > 0, `the attacker published ${replayed} rounds of forged and replayed heartbeats (${accepted} accepted by the broker)`);
  t.match(arm.safeStopReason ?? '', /no heartbeat for 500 ms/);
  t.equal(arm.moving, false, 'the arm halted without its heartbeat');
  t.same(arm.targetsRad, arm.positionsRad, 'nothing pending that a returning heartbeat could resume');
});
