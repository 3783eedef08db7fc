// The simulated conveyor runs only on releases signed by the interlock for it, ramps the belt at the commanded (or
// default) ramp, stops by itself when a permissive drops or the heartbeat goes silent, and never restarts on its
// own. Unit tests of the driver alone, on an in-memory bus (test/helpers/memory-bus.ts: no sockets, no broker, no
// interlock; the driver runs through the real interlock in test/integration/standalone-tls.test.ts and in the demo)
// and an injected clock: physics and watchdog deadlines are exact; waits are for conditions, bounded generously,
// never sleeps.

import type { KeyObject } from 'node:crypto';
import t, { type Test } from 'tap';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { INTERLOCK_KID, signReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { verifyDeviceReport } from '../../src/dispatch/device-report.js';
import type { ConveyorDeclaration } from '../../src/core/kinds/conveyor.js';
import { parseDeviceState } from '../../src/interlock/state-store.js';
import { topicSet } from '../../src/transport/topics.js';
import { SimulatedConveyor, type ConveyorStateMessage, type SimulatedConveyorOptions } from '../../simulator/conveyor-driver.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';
import { InMemoryBus } from '../helpers/memory-bus.js';
import { signRawRelease } from '../helpers/tokens.js';
import { driverKeyFixture, HeartbeatSigner, reportReader } from '../helpers/driver-fixtures.js';

const DEVICE = 'conveyor-1';
const PHYSICS_MS = 5;
const STATE_MS = 10;
const DEFAULT_RAMP = 0.25;
const STOP_DECEL = 1;
const PERMISSIVES = { guardClosed: true, estopReleased: true, downstreamReady: true };
const EPS = 1e-12;
const topics = topicSet();
const interlockKeys = generateEd25519KeyPair();
const otherKeys = generateEd25519KeyPair();
const driverKey = driverKeyFixture('conveyor-1-driver-k1');
/** How long a wait may take before the test fails: a bound, not a sleep (a loaded 2-core machine is slow). */
const WAIT_MS = 10_000;

/** The driver's clock: moves only when a test moves it, so ramps and watchdog deadlines are exact. */
class TestClock {
  ms = 1_700_000_000_000;
  readonly now = (): number => this.ms;
}

let nextSeq = 1;
/** A release for the driver run `session`, timed by the driver's clock. */
function release(clock: TestClock, session: string | null, overrides: Partial<ReleasedCommand> = {}): ReleasedCommand {
  const seq = nextSeq++;
  return {
    commandId: `cmd-${seq}`,
    agentId: 'agent-a',
    deviceId: DEVICE,
    action: 'set_speed',
    params: { speedMPerS: 0.2 },
    safeState: false,
    auditSeq: seq,
    auditHash: 'h'.repeat(64),
    releasedAtMs: clock.ms,
    expiresAtMs: clock.ms + 5000,
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
  readonly belt: SimulatedConveyor;
  readonly clock: TestClock;
  /** The state bodies, each verified with the driver key on the driver's clock. */
  readonly states: ConveyorStateMessage[];
  /** The state messages as published (signed). */
  readonly rawStates: string[];
  readonly logs: string[];
  /** A release for this driver run (its session). */
  release(overrides?: Partial<ReleasedCommand>): ReleasedCommand;
  /** Publishes the interlock's next signed heartbeat, timed by the driver's clock. */
  heartbeat(): Promise<void>;
  /** Publishes and waits until the driver has recorded it. */
  deliver(token: string): Promise<void>;
  /** Moves the clock on and waits until the physics has integrated up to it. */
  advance(ms: number): Promise<void>;
}

async function rig(t: Test, options: Partial<SimulatedConveyorOptions> = {}): Promise<Rig> {
  const bus = new InMemoryBus();
  const clock = new TestClock();
  const logs: string[] = [];
  const states: ConveyorStateMessage[] = [];
  const rawStates: string[] = [];
  const reports = reportReader(DEVICE, options.driverKey ?? driverKey, clock.now);
  await bus.start();
  await bus.subscribe(topics.actuatorState(DEVICE), (_topic, payload) => {
    rawStates.push(payload.toString('utf8'));
    states.push(reports.state<ConveyorStateMessage>(payload));
  });
  const belt = new SimulatedConveyor({
    deviceId: DEVICE,
    transport: bus,
    interlockPublicKey: interlockKeys.publicKey,
    driverKey,
    defaultRampMPerS2: DEFAULT_RAMP,
    stopDecelerationMPerS2: STOP_DECEL,
    permissives: PERMISSIVES,
    physicsPeriodMs: PHYSICS_MS,
    statePeriodMs: STATE_MS,
    heartbeatTimeoutMs: 0,
    nowMs: clock.now,
    log: (msg) => logs.push(msg),
    ...options,
  });
  t.teardown(async () => {
    await belt.stop();
    await bus.stop();
  });
  await belt.start();
  const heartbeats = new HeartbeatSigner(interlockKeys.privateKey, clock.now);
  return {
    bus,
    belt,
    clock,
    states,
    rawStates,
    logs,
    release: (overrides) => release(clock, belt.session, overrides),
    heartbeat: () => bus.publish(topics.heartbeat, heartbeats.next()),
    async deliver(token) {
      const before = belt.received.length;
      await bus.publish(topics.actuatorCommand(DEVICE), token);
      await waitFor(() => belt.received.length > before, 'the driver to record the release', WAIT_MS, 2);
    },
    async advance(ms) {
      clock.ms += ms;
      await waitFor(() => belt.physicsTimeMs === clock.ms, `physics to reach +${ms} ms`, WAIT_MS, 2);
    },
  };
}

const near = (a: number, b: number): boolean => Math.abs(a - b) <= EPS;

t.test('set_speed ramps at the commanded ramp, never overshoots, and settles exactly on the setpoint', async (t) => {
  const { belt, deliver, advance, release: r } = await rig(t);
  await deliver(signed(r({ params: { speedMPerS: 0.3, rampMPerS2: 0.5 } })));
  t.equal(belt.received[0]?.accepted, true);
  t.equal(belt.setpointMPerS, 0.3);
  t.equal(belt.rampMPerS2, 0.5);
  // Proves the ramp: 0.5 m/s^2 for 100 ms is 0.05 m/s, not more.
  await advance(100);
  t.ok(near(belt.speedMPerS, 0.05), `0.05 m/s after 100 ms (${belt.speedMPerS})`);
  await advance(400);
  t.ok(near(belt.speedMPerS, 0.25), `0.25 m/s after 500 ms (${belt.speedMPerS})`);
  await advance(500);
  t.equal(belt.speedMPerS, 0.3, 'snapped onto the setpoint, not past it');
  await advance(500);
  t.equal(belt.speedMPerS, 0.3, 'holds the setpoint');
  t.equal(belt.beltRunning, true);
});

t.test('set_speed without a ramp uses the configured default (the declared reduced ramp)', async (t) => {
  const { belt, deliver, advance, release: r } = await rig(t);
  await deliver(signed(r({ params: { speedMPerS: 0.2 } })));
  t.equal(belt.rampMPerS2, DEFAULT_RAMP);
  await advance(200);
  t.ok(near(belt.speedMPerS, DEFAULT_RAMP * 0.2), `0.05 m/s after 200 ms (${belt.speedMPerS})`);
});

t.test('a reverse setpoint from forward motion ramps through zero (the driver never jumps)', async (t) => {
  const { belt, deliver, advance, release: r } = await rig(t, { initialSpeedMPerS: 0.1 });
  await deliver(signed(r({ params: { speedMPerS: -0.1, rampMPerS2: 0.5 } })));
  await advance(100);
  t.ok(near(belt.speedMPerS, 0.05), `decelerating, still forward (${belt.speedMPerS})`);
  await advance(400);
  t.equal(belt.speedMPerS, -0.1, 'settled on the reverse setpoint');
});

t.test('forged, misaddressed, expired and malformed releases are recorded and never move the belt', async (t) => {
  const { belt, deliver, advance, release: r, clock } = await rig(t);
  const fast = { speedMPerS: 0.2 };
  const cases: Array<{ name: string; token: () => string; problem: RegExp }> = [
    { name: 'not a JWS', token: () => 'run please', problem: /3 dot-separated parts/ },
    {
      name: 'unsigned (alg none)',
      token: () => {
        const header = Buffer.from(JSON.stringify({ alg: 'none', kid: INTERLOCK_KID })).toString('base64url');
        return `${header}.${Buffer.from(JSON.stringify(r({ params: fast }))).toString('base64url')}.`;
      },
      problem: /alg/,
    },
    { name: 'signed by another key', token: () => signed(r({ params: fast }), otherKeys.privateKey), problem: /signature/ },
    { name: 'addressed to another device', token: () => signed(r({ deviceId: 'conveyor-2', params: fast })), problem: /addressed to conveyor-2/ },
    { name: 'expired (at exactly expiresAtMs)', token: () => signed(r({ params: fast, expiresAtMs: clock.ms })), problem: /expired/ },
    { name: 'unknown action', token: () => signed(r({ action: 'jog', params: fast })), problem: /unknown action "jog"/ },
    { name: 'a safe-state set_speed', token: () => signed(r({ safeState: true, params: fast })), problem: /only stop is a safe state/ },
    { name: 'null (NaN after JSON) speed', token: () => signed(r({ params: { speedMPerS: NaN } })), problem: /speedMPerS must be a finite number/ },
    { name: 'string speed', token: () => signed(r({ params: { speedMPerS: '0.2' } })), problem: /speedMPerS must be a finite number/ },
    { name: 'no speed', token: () => signed(r({ params: {} })), problem: /speedMPerS must be a finite number/ },
    {
      name: 'infinite speed (1e999)',
      token: () => signedRaw(JSON.stringify(r({ params: { speedMPerS: 0.125 } })).replace('0.125', '1e999')),
      problem: /speedMPerS must be a finite number/,
    },
    { name: 'zero ramp', token: () => signed(r({ params: { speedMPerS: 0.2, rampMPerS2: 0 } })), problem: /rampMPerS2 must be a finite number > 0/ },
    { name: 'negative ramp', token: () => signed(r({ params: { speedMPerS: 0.2, rampMPerS2: -1 } })), problem: /rampMPerS2/ },
    { name: 'string ramp', token: () => signed(r({ params: { speedMPerS: 0.2, rampMPerS2: '1' } })), problem: /rampMPerS2/ },
    { name: 'fractional audit seq', token: () => signed(r({ auditSeq: 1e9 + 0.5, params: fast })), problem: /not an integer/ },
  ];
  for (const c of cases) {
    const before = belt.received.length;
    await deliver(c.token());
    const record = belt.received[before];
    t.equal(record?.accepted, false, `${c.name}: refused`);
    t.match(record?.problem ?? '', c.problem, `${c.name}: says why`);
  }
  t.equal(belt.received.length, cases.length, 'every message was recorded');
  t.same(belt.executed, [], 'nothing executed');
  await advance(200);
  t.equal(belt.speedMPerS, 0, 'did not move');
  t.equal(belt.setpointMPerS, 0, 'no setpoint was taken');
  t.equal(belt.beltRunning, false);
});

t.test('a replayed or older release is refused', async (t) => {
  const { belt, deliver, release: r } = await rig(t);
  const first = r({ params: { speedMPerS: 0.1 } });
  const older = r({ auditSeq: first.auditSeq - 1, params: { speedMPerS: 0.2 } });
  const sameSeq = r({ auditSeq: first.auditSeq, params: { speedMPerS: 0.2 } });
  await deliver(signed(first));
  t.equal(belt.received[0]?.accepted, true);
  await deliver(signed(first));
  await deliver(signed(sameSeq));
  await deliver(signed(older));
  for (const record of belt.received.slice(1)) {
    t.equal(record.accepted, false);
    t.match(record.problem ?? '', /replayed/);
  }
  t.equal(belt.setpointMPerS, 0.1, 'the setpoint is still the first release');
  t.same(belt.executed.map((c) => c.commandId), [first.commandId]);
});

t.test('stop ramps the belt down at the stop deceleration and holds it at rest', async (t) => {
  const { belt, states, deliver, advance, release: r } = await rig(t, { initialSpeedMPerS: 0.3 });
  const stop = r({ action: 'stop', params: {}, safeState: true });
  await deliver(signed(stop));
  t.equal(belt.received[0]?.accepted, true);
  t.equal(belt.setpointMPerS, 0);
  await advance(100);
  t.ok(near(belt.speedMPerS, 0.3 - STOP_DECEL * 0.1), `0.2 m/s after 100 ms (${belt.speedMPerS})`);
  await advance(300);
  t.equal(belt.speedMPerS, 0, 'at rest');
  t.equal(belt.beltRunning, false);
  await advance(300);
  t.equal(belt.speedMPerS, 0, 'does not creep after stop');
  const at = belt.physicsTimeMs;
  await waitFor(() => states.some((s) => s.timeMs >= at), 'a state after the stop', WAIT_MS, 2);
  const after = states.filter((s) => s.timeMs >= at);
  t.ok(after.every((s) => s.speedMPerS === 0 && !s.running && s.lastCommandId === stop.commandId), 'state shows it at rest, naming the stop');
});

t.test('a safe-state stop without an audit record (seq 0) still stops; the exemption is for stop only', async (t) => {
  const { belt, deliver, release: r } = await rig(t);
  await deliver(signed(r({ params: { speedMPerS: 0.2 } })));
  t.equal(belt.setpointMPerS, 0.2);
  await deliver(signed(r({ action: 'stop', params: {}, safeState: true, auditSeq: 0, auditHash: '' })));
  t.equal(belt.received.at(-1)?.accepted, true, 'the unrecorded stop is accepted');
  t.equal(belt.setpointMPerS, 0, 'and stops the belt');
  await deliver(signed(r({ safeState: true, auditSeq: 0, params: { speedMPerS: 0.2 } })));
  t.equal(belt.received.at(-1)?.accepted, false, 'a "safe-state" set_speed is refused');
  const stale = r({ auditSeq: 1, params: { speedMPerS: 0.2 } });
  await deliver(signed(stale));
  t.equal(belt.received.at(-1)?.accepted, false, 'an old seq is still refused after the seq-0 stop');
  t.equal(belt.setpointMPerS, 0);
});

t.test('opening the guard stops the belt at once; it refuses set_speed while open and does not restart when closed', async (t) => {
  const { belt, states, deliver, advance, clock, release: r } = await rig(t);
  await deliver(signed(r({ params: { speedMPerS: 0.2, rampMPerS2: 0.5 } })));
  await advance(1000);
  t.equal(belt.speedMPerS, 0.2, 'running');

  belt.setPermissive('guardClosed', false);
  // Proves the safety relay: no ramp, no next tick needed.
  t.equal(belt.speedMPerS, 0, 'at rest immediately');
  t.equal(belt.setpointMPerS, 0, 'nothing pending');
  t.equal(belt.safeStopped, true);
  t.match(belt.safeStopReason ?? '', /permissive guardClosed is false/);
  // States carry the injected clock's time: moving it on by 1 ms marks every later state as after the opening.
  await advance(1);
  const openedAt = clock.ms;
  await waitFor(() => states.some((s) => s.timeMs >= openedAt), 'a state with the guard open', WAIT_MS, 2);
  const open = states.filter((s) => s.timeMs >= openedAt)[0];
  t.same(open?.permissives, { ...PERMISSIVES, guardClosed: false }, 'state reports the open guard');
  t.equal(open?.safeStopped, true);

  await deliver(signed(r({ params: { speedMPerS: 0.1 } })));
  t.equal(belt.received.at(-1)?.accepted, false, 'no start with the guard open');
  t.match(belt.received.at(-1)?.problem ?? '', /safe-stopped \(permissive guardClosed is false\)/);

  belt.setPermissive('guardClosed', true);
  t.equal(belt.safeStopped, false);
  await advance(500);
  t.equal(belt.speedMPerS, 0, 'closing the guard does not restart the belt');
  await deliver(signed(r({ params: { speedMPerS: 0.1 } })));
  t.equal(belt.received.at(-1)?.accepted, true, 'a new set_speed is accepted once the guard is closed');
  t.throws(() => belt.setPermissive('lightCurtain', true), /no permissive "lightCurtain"/);
});

t.test('every permissive acts as a safety input, and one dropping before start keeps the belt at rest', async (t) => {
  for (const name of Object.keys(PERMISSIVES)) {
    const { belt, deliver, advance, release: r } = await rig(t, { initialSpeedMPerS: 0.1 });
    belt.setPermissive(name, false);
    t.equal(belt.speedMPerS, 0, `${name}: stopped`);
    await deliver(signed(r({ params: { speedMPerS: 0.1 } })));
    t.equal(belt.received.at(-1)?.accepted, false, `${name}: set_speed refused`);
    await advance(50);
    t.equal(belt.speedMPerS, 0, `${name}: still at rest`);
  }
  const { belt } = await rig(t, { initialSpeedMPerS: 0.2, permissives: { ...PERMISSIVES, estopReleased: false } });
  t.equal(belt.speedMPerS, 0, 'constructed with the e-stop pressed: at rest');
  t.equal(belt.safeStopped, true);
});

t.test('the heartbeat watchdog stops the belt at its deadline; a returning heartbeat does not restart it', async (t) => {
  const timeoutMs = 100;
  const { belt, deliver, advance, release: r, heartbeat } = await rig(t, { heartbeatTimeoutMs: timeoutMs });
  // The bus delivers on setImmediate, in order: one more setImmediate after publishing means it was delivered.
  const beat = async (): Promise<void> => {
    await heartbeat();
    await new Promise((resolve) => setImmediate(resolve));
  };
  await deliver(signed(r({ params: { speedMPerS: 0.2, rampMPerS2: 0.5 } })));
  for (let i = 0; i < 10; i++) {
    await advance(50);
    await beat();
  }
  t.equal(belt.safeStopped, false, 'no safe stop while heartbeats flow');
  t.equal(belt.speedMPerS, 0.2);

  // Silence: 100 ms after the last beat the stop ramp starts (1 m/s^2), so 50 ms later the belt is at 0.15.
  await advance(timeoutMs + 50);
  t.equal(belt.safeStopped, true, 'the watchdog tripped');
  t.match(belt.safeStopReason ?? '', /no heartbeat for 100 ms/);
  t.ok(near(belt.speedMPerS, 0.2 - STOP_DECEL * 0.05), `stop ramp began at the deadline (${belt.speedMPerS})`);
  await advance(500);
  t.equal(belt.speedMPerS, 0);

  await deliver(signed(r({ params: { speedMPerS: 0.1 } })));
  t.equal(belt.received.at(-1)?.accepted, false, 'no start while the interlock is silent');
  t.match(belt.received.at(-1)?.problem ?? '', /safe-stopped \(no heartbeat/);

  await beat();
  t.equal(belt.safeStopped, false, 'the heartbeat clears the safe stop');
  await advance(50);
  t.equal(belt.speedMPerS, 0, 'the old setpoint did not come back');
  await deliver(signed(r({ params: { speedMPerS: 0.1 } })));
  t.equal(belt.received.at(-1)?.accepted, true, 'a new command is accepted once heartbeats are back');
});

t.test('with no heartbeat ever, the watchdog trips counting from start', async (t) => {
  const { belt, advance } = await rig(t, { heartbeatTimeoutMs: 30, initialSpeedMPerS: 0.1 });
  await advance(30);
  t.equal(belt.safeStopped, false, 'not at the deadline itself, although no heartbeat ever came');
  t.equal(belt.setpointMPerS, 0.1);
  await advance(1);
  t.equal(belt.safeStopped, true, 'tripped once the deadline passed');
  t.match(belt.safeStopReason ?? '', /no heartbeat/);
  t.equal(belt.setpointMPerS, 0);
});

t.test('state is published periodically, in the documented shape, and the interlock parses it', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const { declarations } = cell.load();
  const conveyor = declarations.devices.get(DEVICE) as ConveyorDeclaration;
  // The driver signs with conveyor-1's key as the demo cell declares it, so the interlock's own check applies.
  const declaredKey = cell.driverKeys.get(DEVICE);
  if (declaredKey === undefined) throw new Error('the demo cell declares no driver key for conveyor-1');
  const { states, rawStates, deliver, release: r, advance, clock } = await rig(t, { driverKey: declaredKey });
  /** What the interlock makes of a published state: verified with the cell's declared driver keys, then parsed. */
  const interlockParse = (raw: string): ReturnType<typeof parseDeviceState> => {
    const check = verifyDeviceReport(raw, { kind: 'state', deviceId: DEVICE, keys: declarations.driverKeys, nowMs: clock.ms, lastSeq: undefined });
    return check.ok ? parseDeviceState(conveyor, JSON.stringify(check.claims.body)) : { ok: false, problem: check.problem };
  };
  await waitFor(() => states.length >= 3, 'three state messages', WAIT_MS, 2);
  const first = states[0];
  t.same(Object.keys(first ?? {}).sort(), ['lastCommandId', 'permissives', 'running', 'safeStopped', 'speedMPerS', 'timeMs']);
  t.same(first, { speedMPerS: 0, permissives: PERMISSIVES, running: false, safeStopped: false, lastCommandId: null, timeMs: first?.timeMs });
  const parsed = interlockParse(rawStates[0] ?? '');
  t.ok(parsed.ok, 'the demo cell\'s conveyor-1 accepts the driver\'s state');

  const move = r({ params: { speedMPerS: 0.1, rampMPerS2: 0.5 } });
  await deliver(signed(move));
  await advance(100);
  const at = clock.ms;
  await waitFor(() => states.some((s) => s.timeMs >= at && s.lastCommandId === move.commandId), 'a running state naming the command', WAIT_MS, 2);
  const running = states.find((s) => s.timeMs >= at && s.lastCommandId === move.commandId);
  t.equal(running?.running, true);
  t.ok(near(running?.speedMPerS ?? NaN, 0.05), 'state shows the ramped speed');
  const parsedRunning = interlockParse(rawStates[states.indexOf(running as ConveyorStateMessage)] ?? '');
  t.ok(parsedRunning.ok, 'a running state parses too');
});

t.test('a failing bus is logged once and does not stop the driver; stop is idempotent and releases everything', async (t) => {
  const { belt, bus, logs, states, deliver, release: r } = await rig(t);
  bus.failPublish = true;
  await waitFor(() => bus.refused >= 5, 'several refused state publishes', WAIT_MS, 2);
  t.equal(logs.filter((l) => l.includes('state publish failed')).length, 1, 'logged once per outage');
  t.ok(logs.every((l) => l.startsWith(`conveyor-driver[${DEVICE}]: `)), 'logs are namespaced');
  bus.failPublish = false;
  const count = states.length;
  await waitFor(() => states.length > count, 'publishing to recover', WAIT_MS, 2);
  t.ok(logs.some((l) => l.includes('state publish recovered')));

  await deliver(signed(r({ params: { speedMPerS: 0.1 } })));
  t.equal(belt.beltRunning, true);
  await belt.stop();
  await belt.stop();
  t.equal(belt.running, false);
  t.equal(belt.beltRunning, false, 'stopping the driver stops the belt');
  t.equal(belt.speedMPerS, 0);
  t.equal(bus.subscriberCount, 1, 'only the test\'s own state subscription is left');
  const received = belt.received.length;
  await bus.publish(topics.actuatorCommand(DEVICE), signed(r()));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(belt.received.length, received, 'nothing received after stop');
});

t.test('options that cannot describe a conveyor are refused at construction', async (t) => {
  const base = { deviceId: DEVICE, transport: new InMemoryBus(), interlockPublicKey: interlockKeys.publicKey, driverKey, defaultRampMPerS2: DEFAULT_RAMP };
  t.throws(() => new SimulatedConveyor({ ...base, deviceId: 'belt/#' }), /invalid device id/);
  t.throws(() => new SimulatedConveyor({ ...base, defaultRampMPerS2: 0 }), /defaultRampMPerS2/);
  t.throws(() => new SimulatedConveyor({ ...base, defaultRampMPerS2: NaN }), /defaultRampMPerS2/);
  t.throws(() => new SimulatedConveyor({ ...base, stopDecelerationMPerS2: -1 }), /stopDecelerationMPerS2/);
  t.throws(() => new SimulatedConveyor({ ...base, initialSpeedMPerS: Infinity }), /initialSpeedMPerS/);
  t.throws(() => new SimulatedConveyor({ ...base, heartbeatTimeoutMs: -1 }), /heartbeatTimeoutMs/);
  t.throws(() => new SimulatedConveyor({ ...base, permissives: { 'guard/closed': true } }), /invalid permissive/);
  t.throws(() => new SimulatedConveyor({ ...base, permissives: { guardClosed: 'yes' as unknown as boolean } }), /invalid permissive/);
});
