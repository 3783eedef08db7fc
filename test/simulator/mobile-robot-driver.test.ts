// The simulated mobile robot moves only on releases signed by the interlock for it: straight segments for go_to and
// follow_path, ramped twists that end for set_velocity, braking on stop and on heartbeat loss; its state carries
// seeded walking people. Unit tests of the driver alone, on an in-memory bus (test/helpers/memory-bus.ts: no sockets,
// no broker, no interlock; the AMR through the real interlock is in test/integration). Waits are for conditions,
// bounded generously, never fixed sleeps. Tests that sample the motion at given instants, or whose outcome a stall
// could change, run on an injected clock, which moves only when the test moves it.

import type { KeyObject } from 'node:crypto';
import t, { type Test } from 'tap';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { signReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { topicSet } from '../../src/transport/topics.js';
import { parseDeviceState } from '../../src/interlock/state-store.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';
import { SimulatedMobileRobot, type MobileRobotStateMessage, type SimulatedMobileRobotOptions } from '../../simulator/mobile-robot-driver.js';
import { seededRandom, SimulatedPeople } from '../../simulator/people.js';
import { InMemoryBus } from '../helpers/memory-bus.js';
import { signRawRelease } from '../helpers/tokens.js';
import { driverKeyFixture, HeartbeatSigner, reportReader } from '../helpers/driver-fixtures.js';

const DEVICE = 'amr-1';
const PHYSICS_MS = 5;
const STATE_MS = 10;
const topics = topicSet();
const interlockKeys = generateEd25519KeyPair();
const otherKeys = generateEd25519KeyPair();
const driverKey = driverKeyFixture('amr-1-driver-k1');
// Brisk dynamics so that motions finish quickly in tests.
const DYNAMICS = { defaultAccelerationMPerS2: 4, defaultAngularAccelerationRadPerS2: 8, turnRateRadPerS: 6, brakingDecelerationMPerS2: 4, angularBrakingRadPerS2: 16 };
/** How long a wait may take before the test fails: a bound, not a sleep (a loaded 2-core machine is slow). */
const WAIT_MS = 10_000;


/** The robot's clock when a test injects one: it moves only when the test moves it. */
class TestClock {
  ms = Date.now();
  readonly now = (): number => this.ms;
}

/** Moves the injected clock on and waits until the robot has integrated up to it. */
async function advance(robot: SimulatedMobileRobot, clock: TestClock, ms: number): Promise<void> {
  clock.ms += ms;
  await waitFor(() => robot.physicsTimeMs === clock.ms, `physics to reach +${ms} ms`, WAIT_MS, 2);
}

let nextSeq = 1;
/** A release for the driver run `session` (the robot's, unless a test wants it otherwise). */
function releaseFor(session: string | null, overrides: Partial<ReleasedCommand> = {}): ReleasedCommand {
  const nowMs = Date.now();
  const seq = nextSeq++;
  return {
    commandId: `cmd-${seq}`,
    agentId: 'agent-a',
    deviceId: DEVICE,
    action: 'go_to',
    params: { xM: 0.2, yM: 0, speedMPerS: 1 },
    safeState: false,
    auditSeq: seq,
    auditHash: 'h'.repeat(64),
    releasedAtMs: nowMs,
    expiresAtMs: nowMs + 5000,
    session,
    ...overrides,
  };
}

function signed(command: ReleasedCommand, key: KeyObject = interlockKeys.privateKey): string {
  return signReleasedCommand(command, key);
}

/** Signs raw payload text, so a test can carry JSON that JSON.stringify would never produce (e.g. 1e999). */
function signedRaw(payloadJson: string, key: KeyObject = interlockKeys.privateKey): string {
  return signRawRelease(payloadJson, key);
}

interface Rig {
  readonly bus: InMemoryBus;
  readonly robot: SimulatedMobileRobot;
  /** The state bodies, each verified with the driver key on the robot's clock. */
  readonly states: MobileRobotStateMessage[];
  readonly logs: string[];
  /** A release for this robot's run (its session). */
  release(overrides?: Partial<ReleasedCommand>): ReleasedCommand;
  /** Publishes the interlock's next signed heartbeat, timed by the robot's clock. */
  heartbeat(): Promise<void>;
  /** Publishes and waits until the robot has recorded it. */
  deliver(token: string): Promise<void>;
}

async function rig(t: Test, options: Partial<SimulatedMobileRobotOptions> = {}): Promise<Rig> {
  const bus = new InMemoryBus();
  const logs: string[] = [];
  const states: MobileRobotStateMessage[] = [];
  const clock = options.nowMs ?? Date.now;
  const reports = reportReader(DEVICE, options.driverKey ?? driverKey, clock);
  await bus.start();
  await bus.subscribe(topics.actuatorState(DEVICE), (_topic, payload) => states.push(reports.state<MobileRobotStateMessage>(payload)));
  const robot = new SimulatedMobileRobot({
    deviceId: DEVICE,
    transport: bus,
    interlockPublicKey: interlockKeys.publicKey,
    driverKey,
    dynamics: DYNAMICS,
    physicsPeriodMs: PHYSICS_MS,
    statePeriodMs: STATE_MS,
    heartbeatTimeoutMs: 0,
    log: (msg) => logs.push(msg),
    ...options,
  });
  t.teardown(async () => {
    await robot.stop();
    await bus.stop();
  });
  await robot.start();
  const heartbeats = new HeartbeatSigner(interlockKeys.privateKey, clock);
  return {
    bus,
    robot,
    states,
    logs,
    release: (overrides) => releaseFor(robot.session, overrides),
    heartbeat: () => bus.publish(topics.heartbeat, heartbeats.next()),
    async deliver(token) {
      const before = robot.received.length;
      await bus.publish(topics.actuatorCommand(DEVICE), token);
      await waitFor(() => robot.received.length > before, 'the robot to record the release', WAIT_MS, 2);
    },
  };
}

/** Distance from (x, y) to the polyline through `points`. */
function distanceToPolyline(x: number, y: number, points: readonly (readonly [number, number])[]): number {
  let best = Infinity;
  for (let i = 0; i + 1 < points.length; i++) {
    const [ax, ay] = points[i] as readonly [number, number];
    const [bx, by] = points[i + 1] as readonly [number, number];
    const ex = bx - ax;
    const ey = by - ay;
    const len2 = ex * ex + ey * ey;
    const s = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - ax) * ex + (y - ay) * ey) / len2));
    best = Math.min(best, Math.hypot(x - (ax + s * ex), y - (ay + s * ey)));
  }
  return best;
}

const EPS = 1e-9;

t.test('go_to drives the straight line at no more than the commanded speed and stops exactly on the target', async (t) => {
  const { robot, states, deliver, release } = await rig(t);
  const move = release({ params: { xM: 0.5, yM: 0, speedMPerS: 1 } });
  await deliver(signed(move));
  t.equal(robot.received[0]?.accepted, true, robot.received[0]?.problem ?? '');
  // Until a state shows it arrived: then every state of the move is in (the bus delivers in order).
  await waitFor(() => states.some((s) => s.lastCommandId === move.commandId && !s.moving), 'a state showing the robot arrived', WAIT_MS, 2);
  t.same(robot.pose, { xM: 0.5, yM: 0, yawRad: 0 });
  const during = states.filter((s) => s.lastCommandId === move.commandId);
  t.ok(during.length > 0, 'state was published naming the move');
  t.ok(during.every((s) => Math.abs(s.pose.yM) < EPS && s.pose.xM <= 0.5 + EPS), 'on the segment, never past the target');
  t.ok(during.every((s) => s.velocity.linearMPerS <= 1 + EPS), 'never faster than commanded');
  t.same(robot.executed.map((c) => c.commandId), [move.commandId]);
});

t.test('follow_path turns in place at each waypoint and never leaves the checked segments', async (t) => {
  const { robot, states, deliver, release } = await rig(t);
  const waypoints: [number, number][] = [[0.3, 0], [0.3, 0.3], [0, 0.3]];
  const move = release({ action: 'follow_path', params: { waypoints, speedMPerS: 1.5 } });
  const seen: { x: number; y: number }[] = [];
  const sampler = setInterval(() => seen.push({ x: robot.pose.xM, y: robot.pose.yM }), 1);
  t.teardown(() => clearInterval(sampler));
  await deliver(signed(move));
  await waitFor(() => robot.executed.length === 1 && !robot.moving, 'the path to finish', WAIT_MS, 2);
  clearInterval(sampler);
  const pose = robot.pose;
  t.ok(Math.abs(pose.xM) < EPS && Math.abs(pose.yM - 0.3) < EPS, `ends on the last waypoint (${pose.xM}, ${pose.yM})`);
  const polyline: [number, number][] = [[0, 0], ...waypoints];
  const worst = Math.max(...seen.map((p) => distanceToPolyline(p.x, p.y, polyline)), ...states.map((s) => distanceToPolyline(s.pose.xM, s.pose.yM, polyline)));
  t.ok(worst < 1e-9, `every observed pose on the path (worst ${worst} m)`);
  t.ok(states.every((s) => s.velocity.linearMPerS <= 1.5 + EPS));
});

t.test('go_to with a final heading turns to it after arriving', async (t) => {
  const { robot, deliver, release } = await rig(t);
  await deliver(signed(release({ params: { xM: 0, yM: 0.2, yawRad: Math.PI, speedMPerS: 1 } })));
  await waitFor(() => !robot.moving, 'the robot to arrive and turn', WAIT_MS, 2);
  t.ok(Math.abs(robot.pose.yM - 0.2) < EPS && Math.abs(robot.pose.xM) < EPS);
  t.ok(Math.abs(Math.abs(robot.pose.yawRad) - Math.PI) < 1e-9, `heading ${robot.pose.yawRad}`);
});

t.test('set_velocity ramps at its acceleration, holds the twist, and brakes to rest after durationMs', async (t) => {
  // On the injected clock: on the real one the test waited for the held twist (0.125 s to 0.3 s after receipt),
  // and a stall across that window on a loaded machine meant it never saw it.
  const clock = new TestClock();
  const { robot, states, deliver, release } = await rig(t, { nowMs: clock.now });
  const twist = release({ action: 'set_velocity', params: { linearMPerS: 0.5, angularRadPerS: 0, durationMs: 300, accelerationMPerS2: 4 } });
  await deliver(signed(twist));
  const step = async (ms: number): Promise<void> => {
    await advance(robot, clock, ms);
    await waitFor(() => states.some((s) => s.timeMs === clock.ms), 'a state at this instant', WAIT_MS, 2);
  };
  await step(100);
  t.ok(Math.abs(robot.velocity.linearMPerS - 0.4) < 1e-9, `ramping at 4 m/s^2 (${robot.velocity.linearMPerS} m/s after 100 ms)`);
  await step(50);
  t.equal(robot.velocity.linearMPerS, 0.5, 'the twist is reached and held');
  await step(149);
  t.equal(robot.velocity.linearMPerS, 0.5, 'still held just before durationMs');
  for (let i = 0; i < 40 && robot.moving; i++) await step(STATE_MS);
  t.equal(robot.moving, false, 'braked to rest after durationMs');
  const traveled = robot.pose.xM;
  // At most 0.5 m/s for 0.3 s, plus braking from 0.5 m/s at 4 m/s^2 (0.03125 m); the ramp only shortens it.
  t.ok(traveled > 0.1 && traveled <= 0.5 * 0.3 + 0.03125 + 1e-6, `traveled ${traveled} m`);
  t.ok(Math.abs(robot.pose.yM) < EPS, 'straight ahead');
  const during = states.filter((s) => s.lastCommandId === twist.commandId);
  t.ok(during.every((s) => s.velocity.linearMPerS <= 0.5 + EPS), 'never faster than commanded');
  for (let i = 1; i < during.length; i++) {
    const dv = (during[i]?.velocity.linearMPerS ?? 0) - (during[i - 1]?.velocity.linearMPerS ?? 0);
    const dt = ((during[i]?.timeMs ?? 0) - (during[i - 1]?.timeMs ?? 0)) / 1000;
    if (dv > 4 * dt + 4 * (PHYSICS_MS / 1000) + EPS) t.fail(`sped up ${dv} m/s in ${dt} s: faster than the 4 m/s^2 ramp`);
  }
});

t.test('set_velocity with a turn rate drives an arc; a zero-speed twist turns in place', async (t) => {
  const { robot, deliver, release } = await rig(t);
  await deliver(signed(release({ action: 'set_velocity', params: { linearMPerS: 0, angularRadPerS: 1, durationMs: 100 } })));
  await waitFor(() => robot.executed.length === 1 && !robot.moving, 'the turn to end', WAIT_MS, 2);
  t.same([robot.pose.xM, robot.pose.yM], [0, 0], 'turning in place does not move the disc');
  t.ok(robot.pose.yawRad > 0, 'it turned left');
  await deliver(signed(release({ action: 'set_velocity', params: { linearMPerS: 0.4, angularRadPerS: 1, durationMs: 150 } })));
  await waitFor(() => robot.executed.length === 2 && !robot.moving, 'the arc to end', WAIT_MS, 2);
  t.ok(robot.pose.xM > 0 && robot.pose.yM > 0, `an arc to the left (${robot.pose.xM}, ${robot.pose.yM})`);
});

t.test('releases that are not authentic, not for this robot, expired, replayed or malformed are refused and recorded', async (t) => {
  const { robot, deliver, release } = await rig(t);
  const cases: { name: string; token: () => string; problem: RegExp }[] = [
    { name: 'signed by another key', token: () => signed(release(), otherKeys.privateKey), problem: /signature/ },
    { name: 'for another device', token: () => signed(release({ deviceId: 'amr-2' })), problem: /addressed to amr-2/ },
    { name: 'expired', token: () => signed(release({ expiresAtMs: Date.now() - 1 })), problem: /expired/ },
    { name: 'not a JWS', token: () => 'hello', problem: /./ },
    { name: 'a safe-state go_to', token: () => signed(release({ safeState: true })), problem: /only stop is a safe state/ },
    { name: 'a fractional audit seq', token: () => signed(release({ auditSeq: 1e6 + 0.5 })), problem: /not an integer/ },
    { name: 'a NaN-free but infinite speed (1e999)', token: () => signedRaw(JSON.stringify(release()).replace('"speedMPerS":1', '"speedMPerS":1e999')), problem: /speedMPerS/ },
    { name: 'go_to without a y', token: () => signed(release({ params: { xM: 1, speedMPerS: 1 } })), problem: /finite xM, yM/ },
    { name: 'a path with a bad waypoint', token: () => signed(release({ action: 'follow_path', params: { waypoints: [[1, 0], [1]], speedMPerS: 1 } })), problem: /waypoint 1/ },
    { name: 'a set_velocity without a duration', token: () => signed(release({ action: 'set_velocity', params: { linearMPerS: 0.2, angularRadPerS: 0 } })), problem: /durationMs/ },
    { name: 'a set_velocity with zero acceleration', token: () => signed(release({ action: 'set_velocity', params: { linearMPerS: 0.2, angularRadPerS: 0, durationMs: 100, accelerationMPerS2: 0 } })), problem: /accelerations/ },
    { name: 'an unknown action', token: () => signed(release({ action: 'dance', params: {} })), problem: /unknown action "dance"/ },
  ];
  for (const c of cases) {
    const before = robot.received.length;
    await deliver(c.token());
    const record = robot.received[before];
    t.equal(record?.accepted, false, `${c.name}: refused`);
    t.match(record?.problem ?? '', c.problem, `${c.name}: ${record?.problem ?? ''}`);
  }
  t.same(robot.executed, [], 'nothing executed');
  t.same(robot.pose, { xM: 0, yM: 0, yawRad: 0 }, 'nothing moved');

  const first = release({ params: { xM: 0.05, yM: 0, speedMPerS: 1 } });
  await deliver(signed(first));
  t.equal(robot.received.at(-1)?.accepted, true);
  await deliver(signed(first));
  t.equal(robot.received.at(-1)?.accepted, false, 'the same release again is a replay');
  t.match(robot.received.at(-1)?.problem ?? '', /replayed/);
  await deliver(signed(release({ auditSeq: first.auditSeq - 1 })));
  t.match(robot.received.at(-1)?.problem ?? '', /replayed/, 'an older seq too');
  const { safeState: _omitted, ...withoutFlag } = release();
  await deliver(signedRaw(JSON.stringify(withoutFlag)));
  t.match(robot.received.at(-1)?.problem ?? '', /safeState/);
});

t.test('stop brakes a motion in progress to rest and it stays there', async (t) => {
  // On the injected clock: on the real one a stall longer than the 3 s drive would let it arrive before the stop.
  const clock = new TestClock();
  const { robot, states, deliver, release } = await rig(t, { nowMs: clock.now });
  await deliver(signed(release({ params: { xM: 3, yM: 0, speedMPerS: 1 } })));
  await advance(robot, clock, 300);
  t.equal(robot.velocity.linearMPerS, 1, 'at cruise speed');
  const stop = release({ action: 'stop', params: {} });
  await deliver(signed(stop));
  t.equal(robot.received.at(-1)?.accepted, true);
  // Braking from 1 m/s at 4 m/s^2 takes 0.25 s.
  for (let i = 0; i < 100 && robot.moving; i++) await advance(robot, clock, PHYSICS_MS);
  t.equal(robot.moving, false, 'braked to rest');
  const halted = robot.pose;
  t.ok(halted.xM < 3, `stopped well short of the old target (${halted.xM} m)`);
  const stoppedAt = robot.physicsTimeMs;
  // Time passes on the robot's clock, with a state published at each instant: proof that the physics ran on.
  for (let i = 0; i < 3; i++) {
    await advance(robot, clock, 2 * STATE_MS);
    await waitFor(() => states.some((s) => s.timeMs === clock.ms), 'a state at this instant', WAIT_MS, 2);
  }
  t.same(robot.pose, halted, 'does not creep after stop');
  const after = states.filter((s) => s.timeMs > stoppedAt);
  t.ok(after.length >= 3, `states after the stop (${after.length})`);
  t.ok(after.every((s) => !s.moving && s.velocity.linearMPerS === 0 && s.lastCommandId === stop.commandId), 'state shows it at rest, naming the stop');
});

t.test('a new path while moving: the robot brakes along its heading first, then follows the new path', async (t) => {
  // On the injected clock no time passes while the new release is delivered, so the run-out is the braking
  // distance alone; on the real clock a stall during delivery added 1 mm per ms to it.
  const clock = new TestClock();
  const { robot, deliver, release } = await rig(t, { nowMs: clock.now });
  await deliver(signed(release({ params: { xM: 3, yM: 0, speedMPerS: 1 } })));
  await advance(robot, clock, 300);
  t.equal(robot.velocity.linearMPerS, 1, 'cruise speed');
  const at = robot.pose.xM;
  let farthest = at;
  await deliver(signed(release({ params: { xM: 0, yM: 0, speedMPerS: 1 } })));
  for (let i = 0; i < 600 && robot.moving; i++) {
    await advance(robot, clock, PHYSICS_MS);
    farthest = Math.max(farthest, robot.pose.xM);
  }
  t.equal(robot.moving, false, 'the robot came back and stopped');
  // Braking from 1 m/s at 4 m/s^2 runs out v^2 / 2a = 0.125 m.
  t.ok(Math.abs(farthest - at - 0.125) < 1e-9, `ran out ${farthest - at} m before turning back`);
  t.ok(Math.abs(robot.pose.xM) < EPS && Math.abs(robot.pose.yM) < EPS, 'back at the origin');
});

t.test('state: the documented shape, localization with its age, and the people the robot sees', async (t) => {
  const people = new SimulatedPeople({ room: { minXM: -5, maxXM: 5, minYM: -5, maxYM: 5 }, count: 3, seed: 42, startMs: Date.now() });
  const { robot, states } = await rig(t, { people, initialPose: { xM: 1, yM: 2, yawRad: 0.5 } });
  await waitFor(() => states.length >= 3, 'three state messages', WAIT_MS, 2);
  const first = states[0];
  t.same(Object.keys(first ?? {}).sort(), ['lastCommandId', 'localization', 'moving', 'people', 'pose', 'safeStopped', 'timeMs', 'velocity']);
  t.same(first?.pose, { xM: 1, yM: 2, yawRad: 0.5 });
  t.same(first?.velocity, { linearMPerS: 0, angularRadPerS: 0 });
  t.equal(first?.localization.ok, true);
  t.ok((first?.localization.ageMs ?? Infinity) < 100 + STATE_MS, 'a fresh fix (every 100 ms)');
  t.equal(first?.people?.length, 3);
  t.ok(first?.people?.every(([x, y]) => x >= -5 && x <= 5 && y >= -5 && y <= 5), 'people inside the room');
  // What the interlock makes of these messages: the demo amr-1's state schema accepts every one of them.
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const amr1 = cell.load().declarations.devices.get('amr-1');
  if (amr1 === undefined) throw new Error('the demo cell has no amr-1');
  const refused = states.map((s) => parseDeviceState(amr1, JSON.stringify(s))).filter((p) => !p.ok);
  t.same(refused, [], 'every state message parses as mobile_robot state');
  robot.setLocalizationOk(false);
  const lostAt = Date.now();
  await waitFor(() => states.some((s) => s.timeMs > lostAt + 150), 'state after losing localization', WAIT_MS, 2);
  const lost = states.at(-1);
  t.equal(lost?.localization.ok, false);
  t.ok((lost?.localization.ageMs ?? 0) >= 150, `the age keeps growing (${lost?.localization.ageMs} ms)`);
});

t.test('the heartbeat watchdog brakes the robot; a returning heartbeat does not resume the motion', async (t) => {
  // On the injected clock, with heartbeats sent by hand: on the real clock a stall longer than the timeout while
  // heartbeats "flow" tripped the watchdog spuriously.
  const clock = new TestClock();
  const timeoutMs = 150;
  const { robot, deliver, release, heartbeat } = await rig(t, { heartbeatTimeoutMs: timeoutMs, nowMs: clock.now });
  // The bus delivers on setImmediate, in order: one more setImmediate after publishing means it was delivered.
  const beat = async (): Promise<void> => {
    await heartbeat();
    await new Promise((resolve) => setImmediate(resolve));
  };
  await deliver(signed(release({ params: { xM: 5, yM: 0, speedMPerS: 1 } })));
  t.equal(robot.received[0]?.accepted, true);
  for (let i = 0; i < 4; i++) {
    await advance(robot, clock, 50);
    await beat();
  }
  t.ok(robot.pose.xM > 0.05, 'moving');
  t.equal(robot.safeStopped, false, 'no safe stop while heartbeats flow');

  await advance(robot, clock, timeoutMs + 1);
  t.equal(robot.safeStopped, true, 'the watchdog tripped');
  t.match(robot.safeStopReason ?? '', /no heartbeat for 150 ms/);
  await advance(robot, clock, 500);
  t.equal(robot.moving, false, 'braked to rest');
  const halted = robot.pose;
  t.ok(halted.xM < 5, 'short of the target');

  await deliver(signed(release({ params: { xM: 0, yM: 0, speedMPerS: 1 } })));
  t.equal(robot.received[1]?.accepted, false, 'no new motion while the interlock is silent');
  t.match(robot.received[1]?.problem ?? '', /safe-stopped/);
  // A stop is still accepted while safe-stopped.
  await deliver(signed(release({ action: 'stop', params: {} })));
  t.equal(robot.received[2]?.accepted, true);

  await beat();
  t.equal(robot.safeStopped, false, 'the heartbeat clears the safe stop');
  await advance(robot, clock, 6 * PHYSICS_MS);
  t.same(robot.pose, halted, 'the old motion did not resume');
  await deliver(signed(release({ params: { xM: halted.xM, yM: 0.1, speedMPerS: 1 } })));
  t.equal(robot.received[3]?.accepted, true, 'a new command is accepted once heartbeats are back');
});

t.test('a failing bus is logged once; stop is idempotent and releases everything', async (t) => {
  const { robot, bus, logs, states, deliver, release } = await rig(t);
  bus.failPublish = true;
  // Counts the refused publishes themselves: physics time can cover five state periods in one stalled tick.
  await waitFor(() => bus.refused >= 5, 'several refused state publishes', WAIT_MS, 2);
  t.equal(logs.filter((l) => l.includes('state publish failed')).length, 1, 'logged once per outage');
  t.ok(logs.every((l) => l.startsWith(`mobile-robot-driver[${DEVICE}]: `)), 'logs are namespaced');
  bus.failPublish = false;
  const count = states.length;
  await waitFor(() => states.length > count, 'publishing to recover', WAIT_MS, 2);
  await deliver(signed(release({ params: { xM: 2, yM: 0, speedMPerS: 1 } })));
  t.equal(robot.moving, true);
  await robot.stop();
  await robot.stop();
  t.equal(robot.running, false);
  t.equal(robot.moving, false, 'stopping the driver leaves the robot at rest');
  t.equal(bus.subscriberCount, 1, 'only the test\'s own state subscription is left');
});

t.test('options that cannot describe a robot are refused at construction', async (t) => {
  const base = { deviceId: DEVICE, transport: new InMemoryBus(), interlockPublicKey: interlockKeys.publicKey, driverKey };
  t.throws(() => new SimulatedMobileRobot({ ...base, deviceId: 'amr/#' }), /invalid device id/);
  t.throws(() => new SimulatedMobileRobot({ ...base, initialPose: { xM: NaN, yM: 0, yawRad: 0 } }), /initialPose/);
  t.throws(() => new SimulatedMobileRobot({ ...base, physicsPeriodMs: 0 }), /physicsPeriodMs/);
  t.throws(() => new SimulatedMobileRobot({ ...base, heartbeatTimeoutMs: -1 }), /heartbeatTimeoutMs/);
  t.throws(() => new SimulatedMobileRobot({ ...base, dynamics: { brakingDecelerationMPerS2: 0 } }), /brakingDecelerationMPerS2/);
});

t.test('simulated people: seeded, deterministic, inside the room, never faster than 1.6 m/s', async (t) => {
  const room = { minXM: 0, maxXM: 10, minYM: -4, maxYM: 4 };
  const walk = (seed: number): [number, number][][] => {
    const people = new SimulatedPeople({ room, count: 8, seed, startMs: 0, maxPauseMs: 500 });
    const frames: [number, number][][] = [people.positions()];
    for (let ms = 20; ms <= 60_000; ms += 20) {
      people.advanceTo(ms);
      frames.push(people.positions());
    }
    return frames;
  };
  const a = walk(7);
  t.same(walk(7), a, 'the same seed gives the same walk');
  t.not(JSON.stringify(walk(8)), JSON.stringify(a), 'another seed another walk');
  let fastest = 0;
  for (let f = 1; f < a.length; f++) {
    (a[f] as [number, number][]).forEach(([x, y], i) => {
      const [px, py] = (a[f - 1] as [number, number][])[i] as [number, number];
      fastest = Math.max(fastest, Math.hypot(x - px, y - py) / 0.02);
      if (x < room.minXM || x > room.maxXM || y < room.minYM || y > room.maxYM) t.fail(`person ${i} left the room at frame ${f}`);
    });
  }
  t.ok(fastest <= 1.6 + 1e-9, `fastest walker ${fastest} m/s`);
  t.ok(fastest > 0.8, 'they do walk');
  const people = new SimulatedPeople({ room, count: 2, seed: 1, startMs: 100 });
  const before = people.positions();
  people.advanceTo(50);
  people.advanceTo(NaN);
  t.same(people.positions(), before, 'a clock that goes back or is NaN moves nobody');
  t.throws(() => new SimulatedPeople({ room: { ...room, maxXM: -1 }, count: 1, seed: 1, startMs: 0 }), /room/);
  t.throws(() => new SimulatedPeople({ room, count: 65, seed: 1, startMs: 0 }), /count/);
  t.throws(() => new SimulatedPeople({ room, count: 1, seed: 1, startMs: 0, maxSpeedMPerS: Infinity }), /maxSpeedMPerS/);
  const random = seededRandom(3);
  const draws = Array.from({ length: 1000 }, random);
  t.ok(draws.every((d) => d >= 0 && d < 1), 'the PRNG stays in [0, 1)');
});
