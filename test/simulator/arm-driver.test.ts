// The simulated arm moves only on releases signed by the interlock for it: joint moves synchronised (the leading
// joint at the commanded speed, all arriving together), straight TCP moves by IK, ramps when asked; it publishes
// efforts, tool force and payload, and halts on stop and when the interlock's heartbeat goes silent.
// Unit tests of the driver alone, on an in-memory bus (test/helpers/memory-bus.ts: no sockets, no broker, no
// interlock; the driver through the real interlock is in test/integration). Tests that sample the motion at given
// instants, and the watchdog tests, run on an injected clock, so that a stalled event loop on a loaded machine cannot
// move the physics past the instant sampled. Waits are for conditions, bounded generously (the bound only matters
// when the condition never comes); negative checks wait for a barrier first.

import type { KeyObject } from 'node:crypto';
import t, { type Test } from 'tap';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { INTERLOCK_KID, signReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { topicSet } from '../../src/transport/topics.js';
import { waitFor } from '../helpers/wait-for.js';
import { SimulatedArm, trapezoidPosition, type ArmStateMessage, type SimulatedArmOptions } from '../../simulator/arm-driver.js';
import { ArmPose, compileChain, forwardKinematics } from '../../src/bounds/robot-arm/kinematics.js';
import type { ArmKinematics } from '../../src/core/kinds/robot-arm.js';
import { InMemoryBus } from '../helpers/memory-bus.js';
import { signRawRelease } from '../helpers/tokens.js';
import { driverKeyFixture, HeartbeatSigner, reportReader, type ReportReader } from '../helpers/driver-fixtures.js';

const DEVICE = 'arm-1';
const JOINTS = 6;
const PHYSICS_MS = 5;
const STATE_MS = 10;
const topics = topicSet();
const interlockKeys = generateEd25519KeyPair();
const otherKeys = generateEd25519KeyPair();
const driverKey = driverKeyFixture('arm-1-driver-k1');
/** How long a wait may take before the test fails: a bound, not a sleep (a loaded 2-core machine is slow). */
const WAIT_MS = 10_000;

/** The arm's clock when a test injects one: it moves only when the test moves it. */
class TestClock {
  ms = Date.now();
  readonly now = (): number => this.ms;
}

/** Moves the injected clock on and waits until the arm has integrated up to it. */
async function advance(arm: SimulatedArm, clock: TestClock, ms: number): Promise<void> {
  clock.ms += ms;
  await waitFor(() => arm.physicsTimeMs === clock.ms, `physics to reach +${ms} ms`, WAIT_MS, 2);
}

let nextSeq = 1;
/** A release for the driver run `session` (the arm's, unless a test wants it otherwise). */
function releaseFor(session: string | null, overrides: Partial<ReleasedCommand> = {}): ReleasedCommand {
  const nowMs = Date.now();
  const seq = nextSeq++;
  return {
    commandId: `cmd-${seq}`,
    agentId: 'agent-a',
    deviceId: DEVICE,
    action: 'move_joints',
    params: { positionsRad: [0, 0, 0, 0, 0, 0], velocityRadPerS: 1 },
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
  readonly arm: SimulatedArm;
  /** The state bodies, each verified with the driver key on the arm's clock. */
  readonly states: ArmStateMessage[];
  readonly reports: ReportReader;
  readonly logs: string[];
  /** A release for this arm's run (its session). */
  release(overrides?: Partial<ReleasedCommand>): ReleasedCommand;
  /** Publishes the interlock's next signed heartbeat, timed by the arm's clock. */
  heartbeat(): Promise<void>;
  send(token: string): Promise<void>;
  /** Publishes and waits until the arm has recorded it. */
  deliver(token: string): Promise<void>;
  /** Stops the arm and drops the rig's state subscription, leaving the bus to another rig. */
  detach(): Promise<void>;
}

/** `bus`: a bus another rig used, for an arm restarted as a new instance on it. */
async function rig(t: Test, options: Partial<SimulatedArmOptions> = {}, bus = new InMemoryBus()): Promise<Rig> {
  const logs: string[] = [];
  const states: ArmStateMessage[] = [];
  const clock = options.nowMs ?? Date.now;
  const reports = reportReader(DEVICE, options.driverKey ?? driverKey, clock);
  await bus.start();
  const subscription = await bus.subscribe(topics.actuatorState(DEVICE), (_topic, payload) => states.push(reports.state<ArmStateMessage>(payload)));
  const arm = new SimulatedArm({
    deviceId: DEVICE,
    transport: bus,
    interlockPublicKey: interlockKeys.publicKey,
    driverKey,
    jointCount: JOINTS,
    physicsPeriodMs: PHYSICS_MS,
    statePeriodMs: STATE_MS,
    heartbeatTimeoutMs: 0,
    log: (msg) => logs.push(msg),
    ...options,
  });
  t.teardown(async () => {
    await arm.stop();
    await subscription.unsubscribe();
    await bus.stop();
  });
  await arm.start();
  const send = (token: string): Promise<void> => bus.publish(topics.actuatorCommand(DEVICE), token);
  const heartbeats = new HeartbeatSigner(interlockKeys.privateKey, clock);
  return {
    bus,
    arm,
    states,
    reports,
    logs,
    release: (overrides) => releaseFor(arm.session, overrides),
    async detach() {
      await arm.stop();
      await subscription.unsubscribe();
    },
    heartbeat: () => bus.publish(topics.heartbeat, heartbeats.next()),
    send,
    async deliver(token) {
      const before = arm.received.length;
      await send(token);
      await waitFor(() => arm.received.length > before, 'the arm to record the release', WAIT_MS, 2);
    },
  };
}

const EPS = 1e-9;

const DEG = Math.PI / 180;
/** UR5e DH (Universal Robots' published values), base at the origin of the cell frame, a 150 mm tool. */
const UR5E: ArmKinematics = {
  dh: [
    [0, 0.1625, 90],
    [-0.425, 0, 0],
    [-0.3922, 0, 0],
    [0, 0.1333, 90],
    [0, 0.0997, -90],
    [0, 0.0996, 0],
  ].map(([a, d, alpha]) => ({ aM: a as number, dM: d as number, alphaRad: (alpha as number) * DEG, thetaOffsetRad: 0 })),
  basePositionM: [0, 0, 0],
  baseYawRad: 0,
  toolOffsetM: [0, 0, 0.15],
};
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
const chain = compileChain(UR5E);

function tcpOf(positionsRad: readonly number[]): { point: number[]; toolAxis: number[] } {
  const pose = new ArmPose(6);
  forwardKinematics(chain, positionsRad, pose);
  const k = pose.tcpIndex * 3;
  return { point: [pose.points[k] ?? NaN, pose.points[k + 1] ?? NaN, pose.points[k + 2] ?? NaN], toolAxis: [pose.rotation[2] ?? NaN, pose.rotation[5] ?? NaN, pose.rotation[8] ?? NaN] };
}


t.test('a signed move runs synchronised: the leading joint at the commanded speed, all joints arriving together', async (t) => {
  // On the real clock one stall of 0.34 s before the sample would let the whole 0.4 s move finish first.
  const clock = new TestClock();
  const { arm, states, deliver, release } = await rig(t, { nowMs: clock.now });
  const speed = 1;
  const target = [0.4, -0.25, 0, 0.03, 0, 0.1];
  const leading = 0.4; // joint 0 travels farthest, so it moves at the commanded speed; the rest in proportion
  const move = release({ params: { positionsRad: target, velocityRadPerS: speed } });
  await deliver(signed(move));
  const record = arm.received[0];
  t.equal(record?.accepted, true, 'accepted');
  t.equal(record?.problem, undefined);
  t.same(arm.executed.map((c) => c.commandId), [move.commandId]);
  t.same(arm.targetsRad, target);
  const atMs = record?.atMs ?? NaN;

  // After N physics ticks every joint has covered the same fraction s = v t / leading of its own travel.
  await advance(arm, clock, 12 * PHYSICS_MS);
  const elapsedS = (arm.physicsTimeMs - atMs) / 1000;
  const sample = arm.positionsRad;
  t.ok(elapsedS < 0.4, `sampled while still moving (${elapsedS} s)`);
  const fraction = Math.min(1, (speed * elapsedS) / leading);
  t.ok(Math.abs((sample[0] ?? NaN) - speed * elapsedS) < EPS, `joint 0 (leading) advanced v*t (${sample[0]} vs ${speed * elapsedS})`);
  for (let j = 0; j < JOINTS; j++) {
    const expected = (target[j] ?? NaN) * fraction;
    t.ok(Math.abs((sample[j] ?? NaN) - expected) < EPS, `joint ${j} at ${sample[j]}, expected ${expected} (same fraction of its travel)`);
  }
  t.ok((sample[3] ?? 1) < 0.03, 'joint 3 (short travel) has not arrived early: it moves slower, not sooner');

  // On to the end, one state period at a time, with a state published at each instant.
  for (let i = 0; i < 40 && arm.moving; i++) {
    await advance(arm, clock, 2 * STATE_MS);
    await waitFor(() => states.some((s) => s.timeMs === clock.ms), 'a state at this instant', WAIT_MS, 2);
  }
  t.equal(arm.moving, false, 'the motion finished');
  t.same(arm.positionsRad, target, 'on target exactly');
  t.ok(states.some((s) => !s.moving && s.timeMs > atMs), 'a state shows the arm at rest');

  // Every state published during the motion: on the straight joint line, never beyond the target, no joint
  // faster than its share of the commanded speed.
  const during = states.filter((s) => s.timeMs >= atMs);
  t.ok(during.length >= 5, `enough state samples (${during.length})`);
  for (const state of during) {
    const elapsed = (state.timeMs - atMs) / 1000;
    const s = (state.positionsRad[0] ?? NaN) / leading;
    for (let j = 0; j < JOINTS; j++) {
      const p = state.positionsRad[j] ?? NaN;
      const goal = target[j] ?? NaN;
      if (Math.abs(p - s * goal) > EPS) t.fail(`joint ${j} at ${p} is off the joint-space line (s=${s})`);
      if (Math.abs(p) > Math.abs(goal) + EPS) t.fail(`joint ${j} at ${p} overshot ${goal}`);
      if (Math.abs(p) > (speed * elapsed * Math.abs(goal)) / leading + EPS) t.fail(`joint ${j} at ${p} after ${elapsed}s is faster than its share of ${speed} rad/s`);
      if (Math.abs(state.velocitiesRadPerS[j] ?? NaN) > (speed * Math.abs(goal)) / leading + EPS) t.fail(`joint ${j} velocity ${state.velocitiesRadPerS[j]} over its share`);
    }
  }
  const lastMoving = during.filter((s) => s.moving).at(-1);
  t.ok(lastMoving !== undefined, 'motion was visible on the state topic');
});

t.test('forged, misaddressed, expired, replayed and malformed releases are recorded and never move', async (t) => {
  const { arm, deliver, release } = await rig(t);
  const away = { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 2 };
  const cases: Array<{ name: string; token: () => string; problem: RegExp }> = [
    { name: 'not a JWS', token: () => 'move please', problem: /3 dot-separated parts/ },
    {
      name: 'unsigned (alg none)',
      token: () => {
        const header = Buffer.from(JSON.stringify({ alg: 'none', kid: INTERLOCK_KID })).toString('base64url');
        return `${header}.${Buffer.from(JSON.stringify(release({ params: away }))).toString('base64url')}.`;
      },
      problem: /alg/,
    },
    { name: 'signed by another key', token: () => signed(release({ params: away }), otherKeys.privateKey), problem: /signature/ },
    { name: 'addressed to another device', token: () => signed(release({ deviceId: 'arm-2', params: away })), problem: /addressed to arm-2/ },
    { name: 'expired', token: () => signed(release({ params: away, expiresAtMs: Date.now() - 1 })), problem: /expired/ },
    { name: 'unknown action', token: () => signed(release({ action: 'dance', params: away })), problem: /unknown action "dance"/ },
    {
      name: 'wrong joint count',
      token: () => signed(release({ params: { positionsRad: [1, 1, 1, 1, 1], velocityRadPerS: 1 } })),
      problem: /6 finite numbers/,
    },
    {
      name: 'null (NaN after JSON) position',
      token: () => signed(release({ params: { positionsRad: [1, NaN, 1, 1, 1, 1], velocityRadPerS: 1 } })),
      problem: /6 finite numbers/,
    },
    {
      name: 'infinite position (1e999)',
      token: () => {
        const json = JSON.stringify(release({ params: { positionsRad: [1, 1, 1, 1, 1, 0], velocityRadPerS: 1 } }));
        return signedRaw(json.replace('1,1,1,1,1,0]', '1,1,1,1,1,1e999]'));
      },
      problem: /6 finite numbers/,
    },
    { name: 'zero speed', token: () => signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0 } })), problem: /velocityRadPerS/ },
    { name: 'string speed', token: () => signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: '9' } })), problem: /velocityRadPerS/ },
  ];
  for (const c of cases) {
    const before = arm.received.length;
    await deliver(c.token());
    const record = arm.received[before];
    t.equal(record?.accepted, false, `${c.name}: refused`);
    t.match(record?.problem ?? '', c.problem, `${c.name}: says why`);
  }
  t.equal(arm.received.length, cases.length, 'every message was recorded');
  t.same(arm.executed, [], 'nothing executed');
  const startTime = arm.physicsTimeMs;
  await waitFor(() => arm.physicsTimeMs >= startTime + 4 * PHYSICS_MS, 'a few physics ticks', WAIT_MS, 2);
  t.same(arm.positionsRad, [0, 0, 0, 0, 0, 0], 'did not move');
  t.same(arm.targetsRad, [0, 0, 0, 0, 0, 0], 'no target was set');
  t.equal(arm.moving, false);
});

t.test('a replayed or older release is refused', async (t) => {
  const { arm, deliver, release } = await rig(t);
  const first = release({ params: { positionsRad: [0.01, 0, 0, 0, 0, 0], velocityRadPerS: 1 } });
  const older = release({ auditSeq: first.auditSeq - 1, params: { positionsRad: [-1, -1, -1, -1, -1, -1], velocityRadPerS: 1 } });
  const sameSeq = release({ auditSeq: first.auditSeq, params: { positionsRad: [-1, -1, -1, -1, -1, -1], velocityRadPerS: 1 } });
  await deliver(signed(first));
  t.equal(arm.received[0]?.accepted, true);
  await deliver(signed(first));
  await deliver(signed(sameSeq));
  await deliver(signed(older));
  for (const record of arm.received.slice(1)) {
    t.equal(record.accepted, false);
    t.match(record.problem ?? '', /replayed/);
  }
  t.same(arm.targetsRad, [0.01, 0, 0, 0, 0, 0], 'targets are still the first release');
  t.same(arm.executed.map((c) => c.commandId), [first.commandId]);
  await waitFor(() => !arm.moving, 'the first move to finish', WAIT_MS, 2);
  t.same(arm.positionsRad, [0.01, 0, 0, 0, 0, 0]);
});

t.test('an authentic release the driver refuses is consumed and cannot be replayed into acceptance', async (t) => {
  // On the injected clock the cleared safe stop stays cleared: on the real one the 30 ms watchdog re-trips after
  // the single heartbeat, and a poll delayed by more than that on a loaded machine never saw it clear.
  const clock = new TestClock();
  const { arm, deliver, release, heartbeat } = await rig(t, { heartbeatTimeoutMs: 30, nowMs: clock.now });
  await advance(arm, clock, 31);
  t.equal(arm.safeStopped, true, 'the watchdog tripped with no interlock');
  const move = signed(release({ params: { positionsRad: [0.2, 0, 0, 0, 0, 0], velocityRadPerS: 1 } }));
  await deliver(move);
  t.equal(arm.received[0]?.accepted, false);
  t.match(arm.received[0]?.problem ?? '', /safe-stopped/);
  t.equal(arm.received[0]?.command?.action, 'move_joints', 'the authentic command is attached to the record');

  await heartbeat();
  await waitFor(() => !arm.safeStopped, 'the heartbeat to clear the safe stop', WAIT_MS, 2);
  await deliver(move);
  t.equal(arm.received[1]?.accepted, false, 'the same token, replayed once the interlock is back, is refused');
  t.match(arm.received[1]?.problem ?? '', /replayed/);
  t.same(arm.positionsRad, [0, 0, 0, 0, 0, 0]);
  t.same(arm.executed, []);
});

t.test('a release captured before the arm restarted is refused by the new driver; a stop made for the old run is not', async (t) => {
  const first = await rig(t);
  const move = first.release({ params: { positionsRad: [0.3, 0, 0, 0, 0, 0], velocityRadPerS: 1 } });
  const captured = signed(move);
  await first.deliver(captured);
  t.equal(first.arm.received[0]?.accepted, true, 'the first run executes the move');
  const stop = first.release({ action: 'stop', params: {}, safeState: true, auditSeq: 0, auditHash: '' });
  const capturedStop = signed(stop);
  await first.deliver(capturedStop);
  t.equal(first.arm.received[1]?.accepted, true, 'and a stop made for it');
  await first.detach();

  // The driver process restarts: the same device on the same bus, a new instance that remembers no audit seq.
  const { arm, bus, reports, deliver } = await rig(t, {}, first.bus);
  t.not(arm.session, first.arm.session, 'a new driver run');
  const outcomes: { sid: string; commandId: unknown; status: unknown }[] = [];
  await bus.subscribe(topics.actuatorOutcome(DEVICE), (_topic, payload) => {
    const claims = reports.verify('outcome', payload);
    outcomes.push({ sid: claims.sid, commandId: claims.body['commandId'], status: claims.body['status'] });
  });
  await deliver(captured);
  t.equal(arm.received[0]?.accepted, false, 'the captured move is refused, although the new instance saw no seq yet');
  t.match(arm.received[0]?.problem ?? '', `release was made for driver run ${first.arm.session}, this run is ${arm.session}`);
  t.same(arm.targetsRad, [0, 0, 0, 0, 0, 0], 'no target was set');
  await deliver(capturedStop);
  t.equal(arm.received[1]?.accepted, true, 'the stop made for the old run is still taken');
  t.same(arm.executed.map((c) => c.commandId), [stop.commandId]);
  await waitFor(() => outcomes.length >= 2, 'the outcomes of both', WAIT_MS, 2);
  t.same(
    outcomes,
    [
      { sid: arm.session, commandId: move.commandId, status: 'refused' },
      { sid: arm.session, commandId: stop.commandId, status: 'executed' },
    ],
    'the new run reports both to the interlock, signed as the new run',
  );
});

t.test('stop halts a motion in progress', async (t) => {
  // On the injected clock: on the real one a stall longer than the 2 s motion would let it finish before the stop.
  const clock = new TestClock();
  const { arm, states, deliver, release } = await rig(t, { nowMs: clock.now });
  await deliver(signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  await advance(arm, clock, 100);
  t.ok((arm.positionsRad[0] ?? 0) > 0.02, 'moving');
  const stop = release({ action: 'stop', params: {} });
  await deliver(signed(stop));
  t.equal(arm.received[1]?.accepted, true);
  t.equal(arm.moving, false);
  const halted = arm.positionsRad;
  t.same(arm.targetsRad, halted, 'targets are where the arm stopped');
  t.ok(Math.abs((halted[0] ?? NaN) - 0.05) < EPS, `stopped where it was when the stop arrived (${halted[0]}), well short of the old target`);
  const stoppedAt = arm.physicsTimeMs;
  // Time passes on the arm's clock, with a state published at each instant: proof that the physics ran on.
  for (let i = 0; i < 3; i++) {
    await advance(arm, clock, 2 * STATE_MS);
    await waitFor(() => states.some((s) => s.timeMs === clock.ms), 'a state at this instant', WAIT_MS, 2);
  }
  t.same(arm.positionsRad, halted, 'does not creep after stop');
  const after = states.filter((s) => s.timeMs > stoppedAt);
  t.ok(after.length >= 3, `states after the stop (${after.length})`);
  t.ok(after.every((s) => !s.moving && s.velocitiesRadPerS.every((v) => v === 0)), 'state shows it halted');
  t.ok(after.every((s) => s.lastCommandId === stop.commandId), 'state names the stop');
});

t.test('a safe-state stop without an audit record (seq 0) still halts; the exemption is for stop only', async (t) => {
  // On the injected clock, so that the motion is still under way when the stop arrives, however slow the machine.
  const clock = new TestClock();
  const { arm, deliver, release } = await rig(t, { nowMs: clock.now });
  await deliver(signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  await advance(arm, clock, 100);
  t.equal(arm.moving, true, 'moving when the stop arrives');
  // What the interlock releases when the audit log cannot be written: a stop with auditSeq 0.
  await deliver(signed(release({ action: 'stop', params: {}, safeState: true, auditSeq: 0, auditHash: '' })));
  t.equal(arm.received.at(-1)?.accepted, true, 'the unrecorded stop is accepted');
  t.equal(arm.moving, false, 'and halts the arm');
  // The exemption must not carry a move past the seq check, nor lower the watermark for later releases.
  await deliver(signed(release({ safeState: true, auditSeq: 0, params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  t.equal(arm.received.at(-1)?.accepted, false, 'a "safe-state" move is refused');
  t.match(arm.received.at(-1)?.problem ?? '', /only stop is a safe state/);
  t.equal(arm.moving, false);
  const stale = release({ auditSeq: 1, params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } });
  await deliver(signed(stale));
  t.equal(arm.received.at(-1)?.accepted, false, 'an old seq is still refused after the seq-0 stop');
});

t.test('a release without the safeState flag is refused', async (t) => {
  const { arm, deliver, release } = await rig(t);
  const { safeState: _omitted, ...withoutFlag } = release();
  await deliver(signedRaw(JSON.stringify(withoutFlag)));
  t.equal(arm.received[0]?.accepted, false);
  t.match(arm.received[0]?.problem ?? '', /safeState/);
});

t.test('state is published periodically with the documented shape', async (t) => {
  const { states, deliver, release } = await rig(t, { initialPositionsRad: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] });
  await waitFor(() => states.length >= 3, 'three state messages', WAIT_MS, 2);
  const first = states[0];
  // Without kinematics the driver cannot compute joint torques, so effortsNm is left out.
  t.same(Object.keys(first ?? {}).sort(), ['lastCommandId', 'moving', 'payloadKg', 'positionsRad', 'safeStopped', 'timeMs', 'toolForceN', 'velocitiesRadPerS']);
  t.equal(first?.payloadKg, 0);
  t.equal(first?.toolForceN, 0);
  t.same(first?.positionsRad, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  t.same(first?.velocitiesRadPerS, [0, 0, 0, 0, 0, 0]);
  t.equal(first?.moving, false);
  t.equal(first?.safeStopped, false);
  t.equal(first?.lastCommandId, null);
  t.type(first?.timeMs, 'number');
  for (let i = 1; i < states.length; i++) t.ok((states[i]?.timeMs ?? 0) >= (states[i - 1]?.timeMs ?? Infinity), 'time does not run backwards');

  // Slow (0.4 rad at 0.01 rad/s takes 40 s), so that no stall of a loaded machine can end the move before a state
  // shows it under way.
  const move = release({ params: { positionsRad: [0.1, 0.2, 0.3, 0.4, 0.5, 1], velocityRadPerS: 0.01 } });
  await deliver(signed(move));
  // Waits for the state the assertion reads: a state published in the millisecond of receipt already names the
  // command and says moving, but no physics step has run since, so its velocities are still 0.
  const movingAtSpeed = (s: ArmStateMessage): boolean => s.moving && s.lastCommandId === move.commandId && (s.velocitiesRadPerS[5] ?? 0) > 0;
  await waitFor(() => states.some(movingAtSpeed), 'a moving state naming the command, with velocity', WAIT_MS, 2);
  const moving = states.find(movingAtSpeed);
  t.ok(Math.abs((moving?.velocitiesRadPerS[5] ?? 0) - 0.01) < 1e-9, `velocity shows the commanded speed (${moving?.velocitiesRadPerS[5]})`);
});

t.test('the heartbeat watchdog halts the arm and a returning heartbeat does not resume the motion', async (t) => {
  // On the injected clock, with heartbeats sent by hand: on the real clock a stall longer than the timeout while
  // heartbeats "flow" trips the watchdog spuriously, and the halt position could only be bounded loosely.
  const clock = new TestClock();
  const timeoutMs = 150;
  const { arm, deliver, release, heartbeat } = await rig(t, { heartbeatTimeoutMs: timeoutMs, nowMs: clock.now });
  // The bus delivers on setImmediate, in order: one more setImmediate after publishing means it was delivered.
  const beat = async (): Promise<void> => {
    await heartbeat();
    await new Promise((resolve) => setImmediate(resolve));
  };

  await deliver(signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  t.equal(arm.received[0]?.accepted, true);
  const atMs = arm.received[0]?.atMs ?? NaN;
  for (let i = 0; i < 4; i++) {
    await advance(arm, clock, 50);
    await beat();
  }
  t.ok((arm.positionsRad[0] ?? 0) > 0.02, 'moving');
  t.equal(arm.safeStopped, false, 'no safe stop while heartbeats flow');

  const lastBeatMs = clock.ms;
  await advance(arm, clock, timeoutMs + 50);
  t.equal(arm.safeStopped, true, 'the watchdog tripped');
  t.match(arm.safeStopReason ?? '', /no heartbeat for 150 ms/);
  t.equal(arm.moving, false);
  const halted = arm.positionsRad;
  t.same(arm.targetsRad, halted);
  const expected = 0.5 * ((lastBeatMs + timeoutMs - atMs) / 1000);
  t.ok(Math.abs((halted[0] ?? NaN) - expected) < EPS, `halted at the deadline (${halted[0]} vs ${expected})`);

  await deliver(signed(release({ params: { positionsRad: [-1, 0, 0, 0, 0, 0], velocityRadPerS: 1 } })));
  t.equal(arm.received[1]?.accepted, false, 'no new motion while the interlock is silent');
  t.match(arm.received[1]?.problem ?? '', /safe-stopped/);

  await beat();
  t.equal(arm.safeStopped, false, 'the heartbeat clears the safe stop');
  await advance(arm, clock, 6 * PHYSICS_MS);
  t.same(arm.positionsRad, halted, 'the old motion did not resume');

  await beat();
  const resume = release({ params: { positionsRad: [halted[0] ?? 0, 0, 0, 0, 0, 0], velocityRadPerS: 1 } });
  await deliver(signed(resume));
  t.equal(arm.received[2]?.accepted, true, 'a new command is accepted once heartbeats are back');
  for (let i = 0; i < 20 && arm.moving; i++) {
    await advance(arm, clock, 50);
    await beat();
  }
  t.equal(arm.moving, false, 'the new motion finished');
  t.same(arm.positionsRad, resume.params['positionsRad']);
});

t.test('with no heartbeat ever, the watchdog trips counting from start', async (t) => {
  // On the injected clock: the physics is brought to the deadline itself (nothing happens there), then 1 ms past it.
  const clock = new TestClock();
  const { arm } = await rig(t, { heartbeatTimeoutMs: 30, nowMs: clock.now });
  await advance(arm, clock, 30);
  t.equal(arm.safeStopped, false, 'not at the deadline itself, although no heartbeat ever came');
  await advance(arm, clock, 1);
  t.equal(arm.safeStopped, true, 'tripped once the deadline passed');
  t.match(arm.safeStopReason ?? '', /no heartbeat for 30 ms/);
});

t.test('a failing bus is logged once and does not stop the driver; stop is idempotent and releases everything', async (t) => {
  const { arm, bus, logs, states, deliver, release } = await rig(t);
  bus.failPublish = true;
  // Counts the refused publishes themselves: physics time can cover five state periods in one stalled tick.
  await waitFor(() => bus.refused >= 5, 'several refused state publishes', WAIT_MS, 2);
  t.equal(logs.filter((l) => l.includes('state publish failed')).length, 1, 'logged once per outage');
  t.ok(logs.every((l) => l.startsWith(`arm-driver[${DEVICE}]: `)), 'logs are namespaced');
  bus.failPublish = false;
  const count = states.length;
  await waitFor(() => states.length > count, 'publishing to recover', WAIT_MS, 2);
  t.ok(logs.some((l) => l.includes('state publish recovered')));

  await deliver(signed(release({ params: { positionsRad: [0.5, 0, 0, 0, 0, 0], velocityRadPerS: 0.5 } })));
  t.equal(arm.moving, true);
  await arm.stop();
  await arm.stop();
  t.equal(arm.running, false);
  t.equal(arm.moving, false, 'stopping the driver halts the arm');
  t.equal(bus.subscriberCount, 1, 'only the test\'s own state subscription is left');
  // A state published just before stop() may still be on its way (the bus delivers on setImmediate, in order):
  // let it land before counting, or it would look like a state published after stop.
  await new Promise((resolve) => setImmediate(resolve));
  const seen = states.length;
  const received = arm.received.length;
  await bus.publish(topics.actuatorCommand(DEVICE), signed(release()));
  // Barrier: a witness interval of the driver's own state period, started now, fires three times. Node runs interval
  // timers of one period in order, so a state timer the driver had left running would have fired by then too; and
  // one more setImmediate lets anything the bus still had to deliver land.
  let witnessed = 0;
  const witness = setInterval(() => (witnessed += 1), STATE_MS);
  t.teardown(() => clearInterval(witness));
  await waitFor(() => witnessed >= 3, 'three state periods to pass', WAIT_MS, 2);
  clearInterval(witness);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(states.length, seen, 'no state after stop');
  t.equal(arm.received.length, received, 'nothing received after stop');
});

t.test('options that cannot describe an arm are refused at construction', async (t) => {
  const base = { deviceId: DEVICE, transport: new InMemoryBus(), interlockPublicKey: interlockKeys.publicKey, driverKey, jointCount: JOINTS };
  t.throws(() => new SimulatedArm({ ...base, deviceId: 'arm/#' }), /invalid device id/);
  t.throws(() => new SimulatedArm({ ...base, jointCount: 0 }), /jointCount/);
  t.throws(() => new SimulatedArm({ ...base, initialPositionsRad: [0, 0] }), /initialPositionsRad/);
  t.throws(() => new SimulatedArm({ ...base, initialPositionsRad: [0, 0, 0, 0, 0, NaN] }), /initialPositionsRad/);
  t.throws(() => new SimulatedArm({ ...base, physicsPeriodMs: 0 }), /physicsPeriodMs/);
  t.throws(() => new SimulatedArm({ ...base, heartbeatTimeoutMs: -1 }), /heartbeatTimeoutMs/);
  t.throws(() => new SimulatedArm({ ...base, jointCount: 5 , kinematics: UR5E }), /DH rows/);
  t.throws(() => new SimulatedArm({ ...base, defaultAccelerationRadPerS2: 0 }), /accelerations/);
});

// ---- ramps, linear moves, measurements ----

t.test('trapezoidPosition: ramps, cruise, triangle, the end, and no motion for bad times', async (t) => {
  const cases: { name: string; args: [number, number, number, number]; expected: number }[] = [
    { name: 'no ramp: v t', args: [1, 2, Infinity, 0.25], expected: 0.5 },
    { name: 'no ramp: capped at the distance', args: [1, 2, Infinity, 10], expected: 1 },
    { name: 'in the ramp: a t^2 / 2', args: [10, 2, 4, 0.25], expected: 0.125 },
    { name: 'cruising: ramp distance + v (t - t_ramp)', args: [10, 2, 4, 1], expected: 0.5 + 2 * 0.5 },
    { name: 'braking: distance - a (T - t)^2 / 2', args: [10, 2, 4, 5.5 - 0.25], expected: 10 - 0.125 },
    { name: 'the end', args: [10, 2, 4, 6], expected: 10 },
    { name: 'too short to cruise: triangle, half-way at the peak', args: [1, 10, 4, 0.5], expected: 0.5 },
    { name: 'time 0', args: [1, 2, 4, 0], expected: 0 },
    { name: 'negative time (clock went back)', args: [1, 2, 4, -1], expected: 0 },
    { name: 'NaN time', args: [1, 2, 4, NaN], expected: 0 },
  ];
  for (const c of cases) t.ok(Math.abs(trapezoidPosition(...c.args) - c.expected) < 1e-12, `${c.name}: ${trapezoidPosition(...c.args)} vs ${c.expected}`);
});

t.test('a move_joints with an acceleration ramps up: the leading joint covers a t^2 / 2 at first', async (t) => {
  // On the injected clock: on the real one a stall of 0.46 s before the sample would carry it out of the ramp.
  const clock = new TestClock();
  const { arm, deliver, release } = await rig(t, { nowMs: clock.now });
  const acceleration = 2;
  await deliver(signed(release({ params: { positionsRad: [1, 0.5, 0, 0, 0, 0], velocityRadPerS: 1, accelerationRadPerS2: acceleration } })));
  const atMs = arm.received[0]?.atMs ?? NaN;
  t.equal(arm.received[0]?.accepted, true);
  await advance(arm, clock, 8 * PHYSICS_MS);
  const elapsedS = (arm.physicsTimeMs - atMs) / 1000;
  const sample = arm.positionsRad;
  t.ok(elapsedS < 0.5, 'still in the ramp (it lasts v / a = 0.5 s)');
  t.ok(Math.abs((sample[0] ?? NaN) - 0.5 * acceleration * elapsedS * elapsedS) < EPS, `joint 0 at ${sample[0]} = a t^2 / 2`);
  t.ok(Math.abs((sample[1] ?? NaN) - (sample[0] ?? NaN) / 2) < EPS, 'joint 1 keeps to its half share');
  // Ramp up 0.5 s, cruise 0.5 s, ramp down 0.5 s.
  await advance(arm, clock, 1500);
  t.equal(arm.moving, false, 'the move finished on time');
  t.same(arm.positionsRad, [1, 0.5, 0, 0, 0, 0]);
});

t.test('a move_linear drives the TCP on the straight line at the commanded speed, keeping the tool orientation', async (t) => {
  const { arm, states, deliver, release } = await rig(t, { kinematics: UR5E, initialPositionsRad: HOME });
  const start = tcpOf(HOME);
  const target = [start.point[0] ?? NaN, (start.point[1] ?? NaN) - 0.1, (start.point[2] ?? NaN) + 0.05];
  const speed = 0.5;
  await deliver(signed(release({ action: 'move_linear', params: { positionM: target, speedMPerS: speed, payloadKg: 1.2 } })));
  t.equal(arm.received[0]?.accepted, true, 'accepted');
  const atMs = arm.received[0]?.atMs ?? NaN;
  t.equal(arm.payloadKg, 1.2, 'the payload named in the move is what the arm now reports');
  await waitFor(() => !arm.moving, 'the linear move to finish', WAIT_MS, 2);
  const end = tcpOf(arm.positionsRad);
  t.ok(Math.hypot(...end.point.map((v, i) => v - (target[i] ?? NaN))) < 1e-6, `the TCP reached the target (${end.point})`);
  await waitFor(() => states.some((s) => !s.moving && s.timeMs > atMs), 'a state at rest', WAIT_MS, 2);
  const length = Math.hypot(0.1, 0.05);
  for (const state of states.filter((s) => s.timeMs >= atMs)) {
    const { point, toolAxis } = tcpOf(state.positionsRad);
    const offset = point.map((v, i) => v - (start.point[i] ?? NaN));
    const along = (offset[1] ?? NaN) / -0.1; // fraction of the line from the y component
    const off = Math.hypot(offset[0] ?? NaN, (offset[1] ?? NaN) - along * -0.1, (offset[2] ?? NaN) - along * 0.05);
    if (!(off < 1e-6)) t.fail(`TCP ${point} is ${off} m off the line`);
    if (!(along * length <= speed * ((state.timeMs - atMs) / 1000) + 1e-6)) t.fail(`TCP ahead of the commanded speed at ${state.timeMs - atMs} ms`);
    const tilt = Math.acos(Math.min(1, toolAxis.reduce((sum, v, i) => sum + v * (start.toolAxis[i] ?? NaN), 0)));
    if (!(tilt < 1e-6)) t.fail(`tool axis turned by ${tilt} rad`);
    t.equal(state.payloadKg, 1.2);
  }
  t.pass('every published state lay on the line, no faster than commanded, with the tool orientation kept');
});

t.test('a move_linear is refused without kinematics, and malformed linear params are refused', async (t) => {
  const bare = await rig(t);
  await bare.deliver(signed(bare.release({ action: 'move_linear', params: { positionM: [0.1, 0.2, 0.3], speedMPerS: 0.1 } })));
  t.equal(bare.arm.received[0]?.accepted, false);
  t.match(bare.arm.received[0]?.problem ?? '', /no kinematics/);

  const { arm, deliver, release } = await rig(t, { kinematics: UR5E, initialPositionsRad: HOME });
  const cases: { name: string; params: Record<string, unknown>; problem: RegExp }[] = [
    { name: 'two coordinates', params: { positionM: [0.1, 0.2], speedMPerS: 0.1 }, problem: /3 finite numbers/ },
    { name: 'a null (NaN) coordinate', params: { positionM: [0.1, NaN, 0.2], speedMPerS: 0.1 }, problem: /3 finite numbers/ },
    { name: 'zero speed', params: { positionM: [0.1, 0.2, 0.3], speedMPerS: 0 }, problem: /speedMPerS/ },
    { name: 'negative acceleration', params: { positionM: [0.1, 0.2, 0.3], speedMPerS: 0.1, accelerationMPerS2: -1 }, problem: /accelerationMPerS2/ },
    { name: 'negative payload', params: { positionM: [0.1, 0.2, 0.3], speedMPerS: 0.1, payloadKg: -1 }, problem: /payloadKg/ },
  ];
  for (const c of cases) {
    const before = arm.received.length;
    await deliver(signed(release({ action: 'move_linear', params: c.params })));
    t.equal(arm.received[before]?.accepted, false, `${c.name}: refused`);
    t.match(arm.received[before]?.problem ?? '', c.problem, `${c.name}: says why`);
  }
  const before = arm.received.length;
  await deliver(signed(release({ params: { positionsRad: HOME, velocityRadPerS: 1, accelerationRadPerS2: 0 } })));
  t.match(arm.received[before]?.problem ?? '', /accelerationRadPerS2/, 'a zero joint acceleration is refused');
  t.same(arm.positionsRad, HOME, 'nothing moved');
});

t.test('the state reports payload, tool force and the joint torques they cause (J^T F)', async (t) => {
  const { arm, states } = await rig(t, { kinematics: UR5E, initialPositionsRad: HOME });
  arm.setPayloadKg(2);
  arm.setExternalToolForceN([30, 0, 40]);
  const from = states.length;
  await waitFor(() => states.length > from + 1, 'a fresh state', WAIT_MS, 2);
  const state = states.at(-1) as ArmStateMessage;
  t.equal(state.payloadKg, 2);
  t.ok(Math.abs(state.toolForceN - 50) < 1e-12, 'the force magnitude (|(30, 0, 40)| = 50 N)');
  t.equal(state.effortsNm?.length, 6);
  // Independent: the base joint turns about the vertical through the origin, so the weight (vertical) gives it no
  // torque; the x force at the TCP gives tau = (z x r) . F = -r_y * F_x.
  const { point } = tcpOf(HOME);
  t.ok(Math.abs((state.effortsNm?.[0] ?? NaN) - -(point[1] ?? NaN) * 30) < 1e-9, `base torque ${state.effortsNm?.[0]}`);
  t.throws(() => arm.setPayloadKg(-1), /payload/);
  t.throws(() => arm.setExternalToolForceN([NaN, 0, 0]), /finite/);
});
