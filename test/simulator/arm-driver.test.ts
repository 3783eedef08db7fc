// The simulated arm moves only on releases signed by the interlock for it, at the commanded speed, and halts on
// stop and when the interlock's heartbeat goes silent. Runs against an in-memory bus (no sockets).

import { sign, type KeyObject } from 'node:crypto';
import t, { type Test } from 'tap';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { INTERLOCK_KID, RELEASED_COMMAND_TYPE, signReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { topicMatches, topicSet } from '../../src/transport/topics.js';
import { waitFor } from '../helpers/wait-for.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from '../../src/transport/transport.js';
import { SimulatedArm, type ArmStateMessage, type SimulatedArmOptions } from '../../simulator/arm-driver.js';

const DEVICE = 'arm-1';
const JOINTS = 6;
const PHYSICS_MS = 5;
const STATE_MS = 10;
const topics = topicSet();
const interlockKeys = generateEd25519KeyPair();
const otherKeys = generateEd25519KeyPair();

/** A bus in one process: delivers asynchronously, like a broker would, and can be told to refuse publishes. */
class InMemoryBus implements Transport {
  readonly name = 'in-memory';
  failPublish = false;
  readonly #subscribers = new Set<{ filter: string; handler: MessageHandler }>();

  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.#subscribers.clear();
  }
  isConnected(): boolean {
    return true;
  }
  async publish(topic: string, payload: Buffer | string, _options?: PublishOptions): Promise<void> {
    if (this.failPublish) throw new Error('bus refused the message');
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    for (const subscriber of [...this.#subscribers]) {
      if (topicMatches(subscriber.filter, topic)) setImmediate(() => subscriber.handler(topic, bytes));
    }
  }
  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    const entry = { filter, handler };
    this.#subscribers.add(entry);
    return { unsubscribe: async () => void this.#subscribers.delete(entry) };
  }
  onConnectionChange(): () => void {
    return () => {};
  }
  get subscriberCount(): number {
    return this.#subscribers.size;
  }
}

let nextSeq = 1;
function release(overrides: Partial<ReleasedCommand> = {}): ReleasedCommand {
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
    ...overrides,
  };
}

function signed(command: ReleasedCommand, key: KeyObject = interlockKeys.privateKey): string {
  return signReleasedCommand(command, key);
}

/** Signs raw payload text, so a test can carry JSON that JSON.stringify would never produce (e.g. 1e999). */
function signedRaw(payloadJson: string, key: KeyObject = interlockKeys.privateKey): string {
  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: INTERLOCK_KID, typ: RELEASED_COMMAND_TYPE })).toString('base64url');
  const payload = Buffer.from(payloadJson, 'utf8').toString('base64url');
  const signature = sign(null, Buffer.from(`${header}.${payload}`, 'ascii'), key).toString('base64url');
  return `${header}.${payload}.${signature}`;
}

interface Rig {
  readonly bus: InMemoryBus;
  readonly arm: SimulatedArm;
  readonly states: ArmStateMessage[];
  readonly logs: string[];
  send(token: string): Promise<void>;
  /** Publishes and waits until the arm has recorded it. */
  deliver(token: string): Promise<void>;
}

async function rig(t: Test, options: Partial<SimulatedArmOptions> = {}): Promise<Rig> {
  const bus = new InMemoryBus();
  const logs: string[] = [];
  const states: ArmStateMessage[] = [];
  await bus.start();
  await bus.subscribe(topics.actuatorState(DEVICE), (_topic, payload) => states.push(JSON.parse(payload.toString('utf8')) as ArmStateMessage));
  const arm = new SimulatedArm({
    deviceId: DEVICE,
    transport: bus,
    interlockPublicKey: interlockKeys.publicKey,
    jointCount: JOINTS,
    physicsPeriodMs: PHYSICS_MS,
    statePeriodMs: STATE_MS,
    heartbeatTimeoutMs: 0,
    log: (msg) => logs.push(msg),
    ...options,
  });
  t.teardown(async () => {
    await arm.stop();
    await bus.stop();
  });
  await arm.start();
  const send = (token: string): Promise<void> => bus.publish(topics.actuatorCommand(DEVICE), token);
  return {
    bus,
    arm,
    states,
    logs,
    send,
    async deliver(token) {
      const before = arm.received.length;
      await send(token);
      await waitFor(() => arm.received.length > before, 'the arm to record the release', 1000, 2);
    },
  };
}

const EPS = 1e-9;

t.test('a signed move runs at the commanded speed and stops exactly on target', async (t) => {
  const { arm, states, deliver } = await rig(t);
  const speed = 1;
  const target = [0.4, -0.25, 0, 0.03, 0, 0.1];
  const move = release({ params: { positionsRad: target, velocityRadPerS: speed } });
  await deliver(signed(move));
  const record = arm.received[0];
  t.equal(record?.accepted, true, 'accepted');
  t.equal(record?.problem, undefined);
  t.same(arm.executed.map((c) => c.commandId), [move.commandId]);
  t.same(arm.targetsRad, target);
  const atMs = record?.atMs ?? NaN;

  // After N physics ticks of dt each, every joint has covered speed * N * dt, or sits on its target if nearer.
  await waitFor(() => arm.physicsTimeMs - atMs >= 12 * PHYSICS_MS, '12 physics ticks', 2000, 2);
  const elapsedS = (arm.physicsTimeMs - atMs) / 1000;
  const sample = arm.positionsRad;
  t.ok(elapsedS < 0.4, `sampled while joint 0 is still moving (${elapsedS} s)`);
  t.ok(Math.abs((sample[0] ?? NaN) - speed * elapsedS) < EPS, `joint 0 advanced v*N*dt (${sample[0]} vs ${speed * elapsedS})`);
  for (let j = 0; j < JOINTS; j++) {
    const goal = target[j] ?? NaN;
    const expected = Math.sign(goal) * Math.min(Math.abs(goal), speed * elapsedS);
    t.ok(Math.abs((sample[j] ?? NaN) - expected) < EPS, `joint ${j} at ${sample[j]}, expected ${expected}`);
  }
  t.equal(sample[3], 0.03, 'joint 3 (30 ms away) reached its target exactly and stayed');

  await waitFor(() => !arm.moving, 'the motion to finish', 2000, 2);
  t.same(arm.positionsRad, target, 'on target exactly');
  await waitFor(() => states.some((s) => !s.moving && s.timeMs > atMs), 'a state showing the arm at rest', 1000, 2);

  // Every state published during the motion: never beyond the target, never faster than commanded.
  const during = states.filter((s) => s.timeMs >= atMs);
  t.ok(during.length >= 5, `enough state samples (${during.length})`);
  for (const state of during) {
    const elapsed = (state.timeMs - atMs) / 1000;
    for (let j = 0; j < JOINTS; j++) {
      const p = state.positionsRad[j] ?? NaN;
      const goal = target[j] ?? NaN;
      const lo = Math.min(0, goal);
      const hi = Math.max(0, goal);
      if (p < lo - EPS || p > hi + EPS) t.fail(`joint ${j} at ${p} overshot [${lo}, ${hi}]`);
      if (Math.abs(p) > speed * elapsed + EPS) t.fail(`joint ${j} at ${p} after ${elapsed}s is faster than ${speed} rad/s`);
      if (Math.abs(state.velocitiesRadPerS[j] ?? NaN) > speed + EPS) t.fail(`joint ${j} velocity ${state.velocitiesRadPerS[j]} over speed`);
    }
  }
  const lastMoving = during.filter((s) => s.moving).at(-1);
  t.ok(lastMoving !== undefined, 'motion was visible on the state topic');
});

t.test('forged, misaddressed, expired, replayed and malformed releases are recorded and never move', async (t) => {
  const { arm, deliver } = await rig(t);
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
  await waitFor(() => arm.physicsTimeMs >= startTime + 4 * PHYSICS_MS, 'a few physics ticks', 1000, 2);
  t.same(arm.positionsRad, [0, 0, 0, 0, 0, 0], 'did not move');
  t.same(arm.targetsRad, [0, 0, 0, 0, 0, 0], 'no target was set');
  t.equal(arm.moving, false);
});

t.test('a replayed or older release is refused', async (t) => {
  const { arm, deliver } = await rig(t);
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
  await waitFor(() => !arm.moving, 'the first move to finish', 1000, 2);
  t.same(arm.positionsRad, [0.01, 0, 0, 0, 0, 0]);
});

t.test('an authentic release the driver refuses is consumed and cannot be replayed into acceptance', async (t) => {
  const { arm, bus, deliver } = await rig(t, { heartbeatTimeoutMs: 30 });
  await waitFor(() => arm.safeStopped, 'the watchdog to trip with no interlock', 1000, 2);
  const move = signed(release({ params: { positionsRad: [0.2, 0, 0, 0, 0, 0], velocityRadPerS: 1 } }));
  await deliver(move);
  t.equal(arm.received[0]?.accepted, false);
  t.match(arm.received[0]?.problem ?? '', /safe-stopped/);
  t.equal(arm.received[0]?.command?.action, 'move_joints', 'the authentic command is attached to the record');

  await bus.publish(topics.heartbeat, '{}');
  await waitFor(() => !arm.safeStopped, 'the heartbeat to clear the safe stop', 1000, 2);
  await deliver(move);
  t.equal(arm.received[1]?.accepted, false, 'the same token, replayed once the interlock is back, is refused');
  t.match(arm.received[1]?.problem ?? '', /replayed/);
  t.same(arm.positionsRad, [0, 0, 0, 0, 0, 0]);
  t.same(arm.executed, []);
});

t.test('stop halts a motion in progress', async (t) => {
  const { arm, states, deliver } = await rig(t);
  await deliver(signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  await waitFor(() => (arm.positionsRad[0] ?? 0) > 0.02, 'motion to start', 1000, 2);
  const stop = release({ action: 'stop', params: {} });
  await deliver(signed(stop));
  t.equal(arm.received[1]?.accepted, true);
  t.equal(arm.moving, false);
  const halted = arm.positionsRad;
  t.same(arm.targetsRad, halted, 'targets are where the arm stopped');
  t.ok((halted[0] ?? 1) < 0.5, 'stopped well short of the old target');
  const stoppedAt = arm.physicsTimeMs;
  await waitFor(() => arm.physicsTimeMs >= stoppedAt + 6 * PHYSICS_MS && states.some((s) => s.timeMs > stoppedAt + STATE_MS), 'time to pass', 1000, 2);
  t.same(arm.positionsRad, halted, 'does not creep after stop');
  const after = states.filter((s) => s.timeMs > stoppedAt);
  t.ok(after.every((s) => !s.moving && s.velocitiesRadPerS.every((v) => v === 0)), 'state shows it halted');
  t.ok(after.every((s) => s.lastCommandId === stop.commandId), 'state names the stop');
});

t.test('a safe-state stop without an audit record (seq 0) still halts; the exemption is for stop only', async (t) => {
  const { arm, deliver } = await rig(t);
  await deliver(signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  await waitFor(() => (arm.positionsRad[0] ?? 0) > 0.02, 'motion to start', 1000, 2);
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
  const { arm, deliver } = await rig(t);
  const { safeState: _omitted, ...withoutFlag } = release();
  await deliver(signedRaw(JSON.stringify(withoutFlag)));
  t.equal(arm.received[0]?.accepted, false);
  t.match(arm.received[0]?.problem ?? '', /safeState/);
});

t.test('state is published periodically with the documented shape', async (t) => {
  const { arm, states, deliver } = await rig(t, { initialPositionsRad: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] });
  await waitFor(() => states.length >= 3, 'three state messages', 1000, 2);
  const first = states[0];
  t.same(Object.keys(first ?? {}).sort(), ['lastCommandId', 'moving', 'positionsRad', 'safeStopped', 'timeMs', 'velocitiesRadPerS']);
  t.same(first?.positionsRad, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  t.same(first?.velocitiesRadPerS, [0, 0, 0, 0, 0, 0]);
  t.equal(first?.moving, false);
  t.equal(first?.safeStopped, false);
  t.equal(first?.lastCommandId, null);
  t.type(first?.timeMs, 'number');
  for (let i = 1; i < states.length; i++) t.ok((states[i]?.timeMs ?? 0) >= (states[i - 1]?.timeMs ?? Infinity), 'time does not run backwards');

  const move = release({ params: { positionsRad: [0.1, 0.2, 0.3, 0.4, 0.5, 1], velocityRadPerS: 1 } });
  await deliver(signed(move));
  await waitFor(() => states.some((s) => s.moving && s.lastCommandId === move.commandId), 'a moving state naming the command', 1000, 2);
  const moving = states.find((s) => s.moving && s.lastCommandId === move.commandId && (s.velocitiesRadPerS[5] ?? 0) > 0);
  t.ok(Math.abs((moving?.velocitiesRadPerS[5] ?? 0) - 1) < 1e-6, 'velocity shows the commanded speed');
});

t.test('the heartbeat watchdog halts the arm and a returning heartbeat does not resume the motion', async (t) => {
  // Generous against event-loop stalls on a loaded machine: a spurious trip would fail the first assertions.
  const timeoutMs = 150;
  const { arm, bus, deliver } = await rig(t, { heartbeatTimeoutMs: timeoutMs });
  const beat = (): void => void bus.publish(topics.heartbeat, '{}').catch(() => {});
  let beating = setInterval(beat, 10);
  t.teardown(() => clearInterval(beating));

  await deliver(signed(release({ params: { positionsRad: [1, 1, 1, 1, 1, 1], velocityRadPerS: 0.5 } })));
  t.equal(arm.received[0]?.accepted, true);
  await waitFor(() => (arm.positionsRad[0] ?? 0) > 0.02, 'motion to start', 1000, 2);
  t.equal(arm.safeStopped, false, 'no safe stop while heartbeats flow');

  clearInterval(beating);
  const silentFromMs = Date.now();
  await waitFor(() => arm.safeStopped, 'the watchdog to trip', 1000, 2);
  t.match(arm.safeStopReason ?? '', /no heartbeat for 150 ms/);
  t.equal(arm.moving, false);
  const halted = arm.positionsRad;
  t.same(arm.targetsRad, halted);
  // Halted at the deadline: at most one heartbeat period (plus timer slack) of motion after the silence began.
  t.ok((halted[0] ?? 1) < 0.5 * ((silentFromMs + timeoutMs - (arm.received[0]?.atMs ?? 0)) / 1000) + 0.02, 'halted at the deadline');

  await deliver(signed(release({ params: { positionsRad: [-1, 0, 0, 0, 0, 0], velocityRadPerS: 1 } })));
  t.equal(arm.received[1]?.accepted, false, 'no new motion while the interlock is silent');
  t.match(arm.received[1]?.problem ?? '', /safe-stopped/);

  beating = setInterval(beat, 10);
  await waitFor(() => !arm.safeStopped, 'the heartbeat to clear the safe stop', 1000, 2);
  const clearedAt = arm.physicsTimeMs;
  await waitFor(() => arm.physicsTimeMs >= clearedAt + 6 * PHYSICS_MS, 'time to pass', 1000, 2);
  t.same(arm.positionsRad, halted, 'the old motion did not resume');

  const resume = release({ params: { positionsRad: [halted[0] ?? 0, 0, 0, 0, 0, 0], velocityRadPerS: 1 } });
  await deliver(signed(resume));
  t.equal(arm.received[2]?.accepted, true, 'a new command is accepted once heartbeats are back');
  await waitFor(() => !arm.moving, 'the new motion to finish', 1000, 2);
  t.same(arm.positionsRad, resume.params['positionsRad']);
});

t.test('with no heartbeat ever, the watchdog trips counting from start', async (t) => {
  const { arm } = await rig(t, { heartbeatTimeoutMs: 30 });
  t.equal(arm.safeStopped, false);
  await waitFor(() => arm.safeStopped, 'the watchdog to trip', 1000, 2);
  t.match(arm.safeStopReason ?? '', /no heartbeat/);
});

t.test('a failing bus is logged once and does not stop the driver; stop is idempotent and releases everything', async (t) => {
  const { arm, bus, logs, states, deliver } = await rig(t);
  bus.failPublish = true;
  const from = arm.physicsTimeMs;
  await waitFor(() => arm.physicsTimeMs >= from + 5 * STATE_MS, 'several state periods', 1000, 2);
  t.equal(logs.filter((l) => l.includes('state publish failed')).length, 1, 'logged once per outage');
  t.ok(logs.every((l) => l.startsWith(`arm-driver[${DEVICE}]: `)), 'logs are namespaced');
  bus.failPublish = false;
  const count = states.length;
  await waitFor(() => states.length > count, 'publishing to recover', 1000, 2);
  t.ok(logs.some((l) => l.includes('state publish recovered')));

  await deliver(signed(release({ params: { positionsRad: [0.5, 0, 0, 0, 0, 0], velocityRadPerS: 0.5 } })));
  t.equal(arm.moving, true);
  await arm.stop();
  await arm.stop();
  t.equal(arm.running, false);
  t.equal(arm.moving, false, 'stopping the driver halts the arm');
  t.equal(bus.subscriberCount, 1, 'only the test\'s own state subscription is left');
  const seen = states.length;
  const received = arm.received.length;
  await bus.publish(topics.actuatorCommand(DEVICE), signed(release()));
  await new Promise((resolve) => setTimeout(resolve, 3 * STATE_MS));
  t.equal(states.length, seen, 'no state after stop');
  t.equal(arm.received.length, received, 'nothing received after stop');
});

t.test('options that cannot describe an arm are refused at construction', async (t) => {
  const base = { deviceId: DEVICE, transport: new InMemoryBus(), interlockPublicKey: interlockKeys.publicKey, jointCount: JOINTS };
  t.throws(() => new SimulatedArm({ ...base, deviceId: 'arm/#' }), /invalid device id/);
  t.throws(() => new SimulatedArm({ ...base, jointCount: 0 }), /jointCount/);
  t.throws(() => new SimulatedArm({ ...base, initialPositionsRad: [0, 0] }), /initialPositionsRad/);
  t.throws(() => new SimulatedArm({ ...base, initialPositionsRad: [0, 0, 0, 0, 0, NaN] }), /initialPositionsRad/);
  t.throws(() => new SimulatedArm({ ...base, physicsPeriodMs: 0 }), /physicsPeriodMs/);
  t.throws(() => new SimulatedArm({ ...base, heartbeatTimeoutMs: -1 }), /heartbeatTimeoutMs/);
});
