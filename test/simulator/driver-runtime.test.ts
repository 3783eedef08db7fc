// The lifecycle every simulated driver shares, driven without timers or sockets: an injected clock, an interval
// scheduler the test fires by hand and a transport that delivers synchronously. Covers the watchdog, guarded
// callbacks, publish failures logged once per outage, stop/unsubscribe, and start/stop races (generations); and the
// trust boundary on the driver's side: only the interlock's own, newer, timely heartbeats feed the watchdog, state
// and outcomes go out signed with the driver's key, and a non-safe release must name this driver run.

import t, { type Test } from 'tap';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { signHeartbeat } from '../../src/dispatch/heartbeat.js';
import { signReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { topicMatches, topicSet } from '../../src/transport/topics.js';
import type { MessageHandler, Subscription, Transport } from '../../src/transport/transport.js';
import { DriverRuntime, type DeviceModel, type DriverOptions, type DriverProfile, type IntervalScheduler, type Outcome } from '../../simulator/driver-runtime.js';
import { driverKeyFixture, HeartbeatSigner, reportReader, type ReportReader } from '../helpers/driver-fixtures.js';

const DEVICE = 'dev-1';
const PHYSICS_MS = 10;
const STATE_MS = 20;
const START_MS = 1_700_000_000_000;
const topics = topicSet();
const interlockKeys = generateEd25519KeyPair();
const otherKeys = generateEd25519KeyPair();
const driverKey = driverKeyFixture('dev-1-driver-k1');

const PROFILE: DriverProfile = {
  className: 'TestDriver',
  logName: 'test-driver',
  defaultStatePeriodMs: 50,
  safeStateActions: ['stop'],
  watchdogAction: 'halted',
  faultAction: 'halting',
};

/** Settles promise callbacks (publish outcomes, unsubscribes) queued so far. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Intervals that run only when the test fires them. */
class ManualIntervals {
  readonly #active = new Set<{ periodMs: number; run: () => void }>();
  readonly every: IntervalScheduler = (periodMs, run) => {
    const entry = { periodMs, run };
    this.#active.add(entry);
    return () => void this.#active.delete(entry);
  };
  /** Periods of the intervals now scheduled, sorted. */
  get periods(): number[] {
    return [...this.#active].map((e) => e.periodMs).sort((a, b) => a - b);
  }
  /** Runs every interval of this period once, as Node's timer would. */
  fire(periodMs: number): void {
    for (const entry of [...this.#active]) if (entry.periodMs === periodMs) entry.run();
  }
}

/** A transport that delivers synchronously, can hold subscribes back, and can fail publishes and unsubscribes. */
class ScriptedTransport implements Transport {
  readonly name = 'scripted';
  /** 'ok', or how publish fails: a rejected promise, or a synchronous throw. */
  publishMode: 'ok' | 'reject' | 'throw' = 'ok';
  readonly published: { topic: string; payload: string }[] = [];
  /** While set, subscribe() waits until release() is called (a broker slow to ack). */
  holdSubscribes = false;
  /** A filter whose subscribe rejects. */
  failSubscribeTo: string | undefined;
  /** How many of the next subscribe calls reject, whatever their filter. */
  failNextSubscribes = 0;
  /** A filter whose unsubscribe rejects. */
  failUnsubscribeOf: string | undefined;
  readonly #subscribers = new Set<{ filter: string; handler: MessageHandler }>();
  /** Every handler ever subscribed, released or not: what a message already in flight would still reach. */
  readonly #everSubscribed: { filter: string; handler: MessageHandler }[] = [];
  readonly #held: (() => void)[] = [];

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  isConnected(): boolean {
    return true;
  }
  publish(topic: string, payload: Buffer | string): Promise<void> {
    if (this.publishMode === 'throw') throw new Error('socket gone');
    if (this.publishMode === 'reject') return Promise.reject(new Error('broker refused'));
    this.published.push({ topic, payload: payload.toString() });
    return Promise.resolve();
  }
  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    // Decided when called, so that a held subscribe fails or not as it would have then.
    const fail = filter === this.failSubscribeTo || this.failNextSubscribes-- > 0;
    if (this.holdSubscribes) await new Promise<void>((resolve) => this.#held.push(resolve));
    if (fail) throw new Error(`cannot subscribe to ${filter}`);
    const entry = { filter, handler };
    this.#subscribers.add(entry);
    this.#everSubscribed.push(entry);
    return {
      unsubscribe: async () => {
        this.#subscribers.delete(entry);
        if (filter === this.failUnsubscribeOf) throw new Error(`unsubscribe ${filter} failed`);
      },
    };
  }
  onConnectionChange(): () => void {
    return () => {};
  }
  /** Lets held subscribes complete, in order. */
  release(): void {
    for (const resolve of this.#held.splice(0)) resolve();
  }
  deliver(topic: string, payload: string): void {
    for (const s of [...this.#subscribers]) if (topicMatches(s.filter, topic)) s.handler(topic, Buffer.from(payload, 'utf8'));
  }
  /** Delivers to every handler ever subscribed, as a message published just before an unsubscribe would. */
  deliverInFlight(topic: string, payload: string): void {
    for (const s of this.#everSubscribed) if (topicMatches(s.filter, topic)) s.handler(topic, Buffer.from(payload, 'utf8'));
  }
  get filters(): string[] {
    return [...this.#subscribers].map((s) => s.filter).sort();
  }
}

/** A device that records what the runtime asks of it, and can be told to misbehave. */
class RecordingDevice implements DeviceModel {
  readonly calls: string[] = [];
  readonly integratedTo: number[] = [];
  failIntegrate = false;
  failStateAt = false;
  execution: 'ok' | 'refuse' | 'throw' = 'ok';
  onStart(nowMs: number): void {
    this.calls.push(`start@${nowMs - START_MS}`);
  }
  integrate(toMs: number): void {
    if (this.failIntegrate) throw new Error('integrator blew up');
    this.integratedTo.push(toMs - START_MS);
  }
  execute(command: ReleasedCommand, nowMs: number): Outcome {
    this.calls.push(`execute ${command.commandId}@${nowMs - START_MS}`);
    if (this.execution === 'throw') throw new Error('bad params');
    return this.execution === 'ok' ? { ok: true } : { ok: false, problem: 'not now' };
  }
  stateAt(timeMs: number): object {
    if (this.failStateAt) throw new Error('no state');
    return { timeMs };
  }
  onWatchdog(): void {
    this.calls.push('watchdog');
  }
  onFault(): void {
    this.calls.push('fault');
  }
  onStop(): void {
    this.calls.push('stop');
  }
}

interface Rig {
  readonly runtime: DriverRuntime;
  readonly device: RecordingDevice;
  readonly bus: ScriptedTransport;
  readonly intervals: ManualIntervals;
  readonly logs: string[];
  /** The interlock's heartbeats, timed by the runtime's clock. */
  readonly heartbeats: HeartbeatSigner;
  /** Verifies what the runtime published (its driver key, this device), on the runtime's clock. */
  readonly reports: ReportReader;
  /** Milliseconds since START_MS on the runtime's clock. */
  at(ms: number): void;
  /** The runtime's clock. */
  nowMs(): number;
  /** Delivers the interlock's next heartbeat and returns it. */
  heartbeat(): string;
  /** A release for this device and this driver run (session), with the next audit seq; not sent. */
  command(overrides?: Partial<ReleasedCommand>): ReleasedCommand;
  /** Signs `command` (default: with the interlock's key), delivers it, and returns the token. */
  deliver(command: ReleasedCommand, key?: typeof interlockKeys.privateKey): string;
  release(overrides?: Partial<ReleasedCommand>, key?: typeof interlockKeys.privateKey): ReleasedCommand;
}

/** `bus`: a transport another rig used, for a driver restarted as a new instance on the same bus. */
function rig(options: Partial<DriverOptions> = {}, profile: DriverProfile = PROFILE, bus = new ScriptedTransport()): Rig {
  let nowMs = START_MS;
  const device = new RecordingDevice();
  const intervals = new ManualIntervals();
  const logs: string[] = [];
  const runtime = new DriverRuntime(
    {
      deviceId: DEVICE,
      transport: bus,
      interlockPublicKey: interlockKeys.publicKey,
      driverKey,
      physicsPeriodMs: PHYSICS_MS,
      statePeriodMs: STATE_MS,
      heartbeatTimeoutMs: 100,
      nowMs: () => nowMs,
      log: (msg) => logs.push(msg),
      ...options,
    },
    profile,
    device,
    intervals.every,
  );
  let seq = 1;
  const heartbeats = new HeartbeatSigner(interlockKeys.privateKey, () => nowMs);
  const r: Rig = {
    runtime,
    device,
    bus,
    intervals,
    logs,
    heartbeats,
    reports: reportReader(DEVICE, driverKey, () => nowMs),
    at: (ms) => void (nowMs = START_MS + ms),
    nowMs: () => nowMs,
    heartbeat() {
      const token = heartbeats.next();
      bus.deliver(topics.heartbeat, token);
      return token;
    },
    command(overrides = {}) {
      const n = seq++;
      return {
        commandId: `cmd-${n}`,
        agentId: 'agent-a',
        deviceId: DEVICE,
        action: 'move',
        params: {},
        safeState: false,
        auditSeq: n,
        auditHash: 'h'.repeat(64),
        releasedAtMs: nowMs,
        expiresAtMs: nowMs + 5000,
        session: runtime.session,
        ...overrides,
      };
    },
    deliver(command, key = interlockKeys.privateKey) {
      const token = signReleasedCommand(command, key);
      bus.deliver(topics.actuatorCommand(DEVICE), token);
      return token;
    },
    release(overrides = {}, key = interlockKeys.privateKey) {
      const command = r.command(overrides);
      r.deliver(command, key);
      return command;
    },
  };
  return r;
}

t.test('common options: validated once, with the driver named in errors and logs', async (t) => {
  const base = { deviceId: DEVICE, transport: new ScriptedTransport(), interlockPublicKey: interlockKeys.publicKey, driverKey };
  const make = (o: Partial<DriverOptions>, profile = PROFILE): DriverRuntime => new DriverRuntime({ ...base, ...o }, profile, new RecordingDevice());
  t.throws(() => make({ deviceId: 'dev/#' }), { name: 'RangeError', message: 'TestDriver: invalid device id "dev/#"' });
  t.throws(() => make({ statePeriodMs: 0 }), /TestDriver: statePeriodMs must be a finite number > 0, got 0/);
  t.throws(() => make({ physicsPeriodMs: Infinity }), /physicsPeriodMs must be a finite number > 0/);
  t.throws(() => make({ heartbeatTimeoutMs: -1 }), /TestDriver: heartbeatTimeoutMs must be a finite number >= 0, got -1/);
  t.throws(() => make({ heartbeatTimeoutMs: NaN }), /heartbeatTimeoutMs/);
  const wholeMs = { ...PROFILE, minPeriodMs: 1 };
  t.throws(() => make({ physicsPeriodMs: 0.5 }, wholeMs), /physicsPeriodMs must be a finite number >= 1, got 0.5/);
  t.equal(make({ physicsPeriodMs: 0.5 }).physicsPeriodMs, 0.5, 'without minPeriodMs any period > 0 is taken');
  const defaults = make({});
  t.same([defaults.statePeriodMs, defaults.physicsPeriodMs, defaults.heartbeatTimeoutMs], [PROFILE.defaultStatePeriodMs, 10, 1000]);

  const { runtime, logs } = rig();
  await runtime.start();
  t.same(logs, ['test-driver[dev-1]: started (watchdog 100 ms)']);
  const noted = new DriverRuntime({ ...base, heartbeatTimeoutMs: 0, log: (m) => logs.push(m) }, PROFILE, Object.assign(new RecordingDevice(), { startNote: '6 joints' }));
  await noted.start();
  t.equal(logs.at(-1), 'test-driver[dev-1]: started (6 joints, watchdog off)');
  await noted.stop();
  await runtime.stop();
});

t.test('start subscribes to the actuator and heartbeat topics and schedules one physics and one state interval', async (t) => {
  const { runtime, device, bus, intervals } = rig();
  await runtime.start();
  t.equal(runtime.running, true);
  t.same(bus.filters, [topics.actuatorCommand(DEVICE), topics.heartbeat].sort());
  t.same(intervals.periods, [PHYSICS_MS, STATE_MS]);
  t.same(device.calls, ['start@0']);
  await runtime.start();
  t.same(intervals.periods, [PHYSICS_MS, STATE_MS], 'a second start() adds no timers');
  t.equal(bus.filters.length, 2, 'nor subscriptions');
  await runtime.stop();
});

t.test('the watchdog counts from start, trips at its deadline, and a heartbeat clears it', async (t) => {
  const { runtime, device, intervals, logs, at, heartbeat } = rig();
  at(0);
  await runtime.start();
  at(100);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, null, 'at the deadline itself nothing happens');
  at(130);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, 'no heartbeat for 100 ms');
  t.same(device.integratedTo, [100, 100, 130], 'physics up to the deadline, then the safe reaction, then on to now');
  t.same(device.calls, ['start@0', 'watchdog']);
  t.ok(logs.includes('test-driver[dev-1]: watchdog: no heartbeat for 100 ms; halted'));
  at(500);
  intervals.fire(PHYSICS_MS);
  t.same(device.calls, ['start@0', 'watchdog'], 'tripped once, not again every tick');

  heartbeat();
  t.equal(runtime.watchdogReason, null, 'the heartbeat clears it');
  t.ok(logs.includes('test-driver[dev-1]: heartbeat back; clearing safe stop (no heartbeat for 100 ms)'));
  at(590);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, null, 'the deadline now counts from that heartbeat');
  heartbeat();
  at(680);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, null, 'and from each later one');
  await runtime.stop();
});

t.test('a heartbeat that arrives after the deadline trips the watchdog first: the gap happened', async (t) => {
  const { runtime, device, at, heartbeat } = rig();
  await runtime.start();
  at(250);
  heartbeat();
  t.same(device.calls, ['start@0', 'watchdog']);
  t.same(device.integratedTo, [100, 250]);
  t.equal(runtime.watchdogReason, null, 'and is then cleared by it');
  await runtime.stop();
});

t.test('a heartbeat timeout of 0 disables the watchdog', async (t) => {
  const { runtime, device, intervals, at } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  at(60_000);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, null);
  t.notOk(device.calls.includes('watchdog'));
  await runtime.stop();
});

/**
 * The watchdog must treat `send`'s heartbeats as silence. One genuine heartbeat at +10 sets the deadline to +110;
 * `send` delivers at +60 what, had it counted, would have moved the deadline to +160. The watchdog must trip past
 * +110 all the same, the same kind of message after the trip must not clear it, and a genuine heartbeat still does.
 * `send` gets the genuine heartbeat of +10, for a test that replays it.
 */
async function heartbeatIsSilence(t: Test, send: (r: Rig, genuine: string) => void, problem: RegExp, options: Partial<DriverOptions> = {}): Promise<void> {
  const r = rig(options);
  const { runtime, device, intervals, logs, at } = r;
  await runtime.start();
  at(10);
  const genuine = r.heartbeat();
  at(60);
  send(r, genuine);
  t.same(device.integratedTo, [10], 'the ignored heartbeat did not even bring the physics up to date');
  at(111);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, 'no heartbeat for 100 ms', 'the watchdog tripped 100 ms after the last genuine heartbeat');
  t.same(device.calls, ['start@0', 'watchdog']);
  at(200);
  send(r, genuine);
  t.equal(runtime.watchdogReason, 'no heartbeat for 100 ms', 'nor does it clear the safe stop');
  const ignored = logs.filter((l) => l.startsWith('test-driver[dev-1]: heartbeat ignored: '));
  t.ok(ignored.length > 0, 'the driver logs that it ignored a heartbeat');
  for (const line of ignored) t.match(line, problem, 'and why');
  r.heartbeat();
  t.equal(runtime.watchdogReason, null, 'a genuine heartbeat still clears it');
  await runtime.stop();
}

t.test('an unsigned heartbeat is silence to the watchdog', async (t) => {
  await heartbeatIsSilence(
    t,
    (r) => {
      // The heartbeat of the unsigned protocol, and a JWS that claims "alg none".
      r.bus.deliver(topics.heartbeat, '{}');
      const header = Buffer.from(JSON.stringify({ alg: 'none', kid: 'interlock', typ: 'interlock-heartbeat+jws' })).toString('base64url');
      const body = Buffer.from(JSON.stringify({ epoch: r.heartbeats.epoch, seq: 1000, timeMs: r.nowMs() })).toString('base64url');
      r.bus.deliver(topics.heartbeat, `${header}.${body}.`);
    },
    /not a signed heartbeat/,
  );
});

t.test('a heartbeat signed by another key is silence to the watchdog', async (t) => {
  await heartbeatIsSilence(
    t,
    // Newer and timely, in the interlock's own epoch: only the key is wrong.
    (r) => r.bus.deliver(topics.heartbeat, signHeartbeat({ epoch: r.heartbeats.epoch, seq: 1000, timeMs: r.nowMs() }, otherKeys.privateKey)),
    /signature is not the interlock's/,
  );
});

t.test('a replayed heartbeat (not newer than the last accepted) is silence to the watchdog', async (t) => {
  await heartbeatIsSilence(
    t,
    (r, genuine) => {
      // The genuine heartbeat again (still within the skew); one with a fresh time but no higher seq; and one of
      // another epoch (an interlock that restarted) whose time is not later than the last accepted.
      r.bus.deliver(topics.heartbeat, genuine);
      r.bus.deliver(topics.heartbeat, signHeartbeat({ epoch: r.heartbeats.epoch, seq: 1, timeMs: r.nowMs() }, interlockKeys.privateKey));
      r.bus.deliver(topics.heartbeat, signHeartbeat({ epoch: 'another-epoch', seq: 99, timeMs: START_MS + 10 }, interlockKeys.privateKey));
    },
    /is not newer than/,
  );
});

t.test('a stale heartbeat (further than heartbeatMaxSkewMs from the driver clock) is silence to the watchdog', async (t) => {
  t.test('the default skew, 2000 ms, either way', async (t) => {
    await heartbeatIsSilence(
      t,
      (r) => {
        r.bus.deliver(topics.heartbeat, r.heartbeats.next({ timeMs: r.nowMs() - 2001 }));
        r.bus.deliver(topics.heartbeat, r.heartbeats.next({ timeMs: r.nowMs() + 2001 }));
      },
      /is more than 2000 ms from now/,
    );
  });
  t.test('a configured skew', async (t) => {
    await heartbeatIsSilence(t, (r) => r.bus.deliver(topics.heartbeat, r.heartbeats.next({ timeMs: r.nowMs() - 31 })), /is more than 30 ms from now/, { heartbeatMaxSkewMs: 30 });
  });
});

t.test('a heartbeat at the edge of the skew, and one from a restarted interlock (new epoch, later time), are taken', async (t) => {
  const { runtime, bus, intervals, heartbeats, at, nowMs } = rig({ heartbeatMaxSkewMs: 30 });
  await runtime.start();
  at(90);
  bus.deliver(topics.heartbeat, heartbeats.next({ timeMs: nowMs() - 30 }));
  at(150);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, null, 'a heartbeat exactly 30 ms old counts (deadline +190)');
  const restarted = new HeartbeatSigner(interlockKeys.privateKey, nowMs);
  t.not(restarted.epoch, heartbeats.epoch);
  at(180);
  bus.deliver(topics.heartbeat, restarted.next());
  at(270);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, null, 'the new epoch\'s first heartbeat (seq 1) counts: its time is later');
  at(281);
  intervals.fire(PHYSICS_MS);
  t.equal(runtime.watchdogReason, 'no heartbeat for 100 ms');
  await runtime.stop();
});

t.test('releases: recorded first, gated, executed with the physics brought up to receipt', async (t) => {
  const { runtime, device, logs, at, release } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  at(40);
  const good = release();
  t.same(device.integratedTo, [40], 'physics advanced to the moment of receipt before executing');
  t.same(device.calls.slice(1), [`execute ${good.commandId}@40`]);
  t.same(runtime.received.map((r) => [r.atMs - START_MS, r.accepted, r.problem, r.command?.commandId]), [[40, true, undefined, good.commandId]]);
  t.same(runtime.executed.map((c) => c.commandId), [good.commandId]);
  t.equal(runtime.lastCommandId, good.commandId);
  t.ok(logs.includes(`test-driver[dev-1]: executing move ${good.commandId} (audit seq ${good.auditSeq})`));

  release({}, otherKeys.privateKey);
  t.equal(runtime.received.at(-1)?.accepted, false, 'a forged release is refused by the gate');
  t.match(runtime.received.at(-1)?.problem ?? '', /signature/);
  t.equal(runtime.received.at(-1)?.command, undefined, 'with no command attached');
  t.equal(device.calls.length, 2, 'and never reaches the device');

  device.execution = 'refuse';
  const refused = release();
  t.same([runtime.received.at(-1)?.accepted, runtime.received.at(-1)?.problem], [false, 'not now'], 'the device can refuse');
  t.equal(runtime.received.at(-1)?.command?.commandId, refused.commandId, 'the authentic command is attached to the record');
  t.equal(runtime.lastCommandId, good.commandId, 'a refused release is not the last command');
  t.equal(runtime.executed.length, 1);
  await runtime.stop();
});

t.test('guarded callbacks: a throwing tick, state or heartbeat is logged and makes the device safe, and never escapes', async (t) => {
  const { runtime, device, intervals, logs, heartbeat } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  device.failIntegrate = true;
  t.doesNotThrow(() => intervals.fire(PHYSICS_MS), 'the physics tick does not throw into Node');
  t.doesNotThrow(() => heartbeat(), 'the heartbeat handler does not throw into the transport');
  device.failIntegrate = false;
  device.failStateAt = true;
  t.doesNotThrow(() => intervals.fire(STATE_MS));
  t.same(
    logs.filter((l) => l.includes('failed')),
    [
      'test-driver[dev-1]: physics tick failed, halting: integrator blew up',
      'test-driver[dev-1]: heartbeat failed, halting: integrator blew up',
      'test-driver[dev-1]: state publish failed, halting: no state',
    ],
  );
  t.same(device.calls.filter((c) => c === 'fault'), ['fault', 'fault', 'fault'], 'each made the device safe');
  device.failStateAt = false;
  intervals.fire(PHYSICS_MS);
  t.same(intervals.periods, [PHYSICS_MS, STATE_MS], 'the timers keep running');
  t.equal(runtime.running, true);
  await runtime.stop();
});

t.test('a release the device throws on is recorded as a driver error and makes the device safe', async (t) => {
  const { runtime, device, logs, release } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  device.execution = 'throw';
  t.doesNotThrow(() => release());
  const record = runtime.received[0];
  t.same([record?.accepted, record?.problem], [false, 'driver error: bad params']);
  t.equal(device.calls.at(-1), 'fault');
  t.ok(logs.includes('test-driver[dev-1]: release handling failed, halting: bad params'));
  t.same(runtime.executed, []);
  await runtime.stop();
});

t.test('state is published each state period, and a failing publish is logged once per outage', async (t) => {
  const { runtime, bus, intervals, logs, at, reports } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  at(20);
  intervals.fire(STATE_MS);
  await settle();
  t.same(
    bus.published.map((p) => ({ topic: p.topic, body: reports.state(p.payload) })),
    [{ topic: topics.actuatorState(DEVICE), body: { timeMs: START_MS + 20 } }],
    'the state, signed with the driver key',
  );
  const outageLogs = (): string[] => logs.filter((l) => /state publish (failed|recovered)/.test(l));

  bus.publishMode = 'reject';
  for (let i = 0; i < 3; i++) intervals.fire(STATE_MS);
  await settle();
  bus.publishMode = 'throw';
  for (let i = 0; i < 3; i++) intervals.fire(STATE_MS);
  await settle();
  t.same(outageLogs(), ['test-driver[dev-1]: state publish failed: broker refused'], 'one line for the whole outage, rejected or thrown');
  bus.publishMode = 'ok';
  intervals.fire(STATE_MS);
  intervals.fire(STATE_MS);
  await settle();
  t.same(outageLogs().slice(1), ['test-driver[dev-1]: state publish recovered'], 'and one when it recovers');
  bus.publishMode = 'throw';
  intervals.fire(STATE_MS);
  await settle();
  t.same(outageLogs().slice(2), ['test-driver[dev-1]: state publish failed: socket gone'], 'a new outage is logged again');
  t.equal(runtime.running, true, 'the driver keeps running through it');
  await runtime.stop();
});

t.test('stop cancels the timers, makes the device safe, releases every subscription, and is idempotent', async (t) => {
  const { runtime, device, bus, intervals, logs, heartbeats, command } = rig();
  await runtime.start();
  bus.failUnsubscribeOf = topics.heartbeat;
  await runtime.stop();
  t.equal(runtime.running, false);
  t.same(intervals.periods, [], 'no timers left');
  t.same(bus.filters, [], 'every subscription released, although one unsubscribe failed');
  t.ok(logs.includes(`test-driver[dev-1]: unsubscribe failed: unsubscribe ${topics.heartbeat} failed`));
  t.equal(logs.at(-1), 'test-driver[dev-1]: stopped');
  t.same(device.calls, ['start@0', 'stop']);
  await runtime.stop();
  t.same(device.calls, ['start@0', 'stop'], 'a second stop does nothing');

  // Messages already in flight when the driver stopped still reach its handlers, which ignore them.
  const integrated = device.integratedTo.length;
  // Both genuine: ignored because the driver stopped, not because they fail a check.
  bus.deliverInFlight(topics.heartbeat, heartbeats.next());
  bus.deliverInFlight(topics.actuatorCommand(DEVICE), signReleasedCommand(command(), interlockKeys.privateKey));
  t.equal(runtime.received.length, 0, 'nothing is received after stop');
  t.equal(device.integratedTo.length, integrated, 'and no heartbeat is handled');

  await runtime.start();
  t.same(intervals.periods, [PHYSICS_MS, STATE_MS], 'a restart schedules one set of timers again');
  t.equal(bus.filters.length, 2);
  await runtime.stop();
});

t.test('generations: a stop while start() awaits its subscriptions leaves nothing running', async (t) => {
  const { runtime, device, bus, intervals } = rig();
  bus.holdSubscribes = true;
  const starting = runtime.start();
  await runtime.stop();
  bus.release();
  await starting;
  await settle();
  t.equal(runtime.running, false);
  t.same(intervals.periods, [], 'no timers were started');
  t.same(bus.filters, [], 'the subscription that completed late was released');
  t.same(device.calls, ['start@0', 'stop']);
});

t.test('generations: stop and start again while the first start() is pending gives one run, not two', async (t) => {
  const { runtime, bus, intervals } = rig();
  bus.holdSubscribes = true;
  const first = runtime.start();
  await runtime.stop();
  const second = runtime.start();
  for (let i = 0; i < 4; i++) {
    bus.release();
    await settle();
  }
  await Promise.all([first, second]);
  t.equal(runtime.running, true);
  t.same(intervals.periods, [PHYSICS_MS, STATE_MS], 'exactly one physics and one state timer');
  t.same(bus.filters, [topics.actuatorCommand(DEVICE), topics.heartbeat].sort(), 'exactly one subscription per topic');
  await runtime.stop();
  t.same(intervals.periods, []);
  t.same(bus.filters, []);
});

t.test('a start() whose subscribe fails tears down its own run and rejects', async (t) => {
  const { runtime, device, bus, intervals } = rig();
  bus.failSubscribeTo = topics.heartbeat;
  await t.rejects(runtime.start(), /cannot subscribe to/);
  t.equal(runtime.running, false);
  t.same(bus.filters, [], 'the subscription it did make was released');
  t.same(intervals.periods, []);
  t.same(device.calls, ['start@0', 'stop']);
});

t.test('a superseded start() whose subscribe fails does not stop the newer run', async (t) => {
  const { runtime, bus, intervals } = rig();
  bus.holdSubscribes = true;
  bus.failNextSubscribes = 1;
  const first = runtime.start();
  const firstOutcome = first.then(
    () => 'resolved',
    (error: unknown) => String(error),
  );
  await runtime.stop();
  const second = runtime.start();
  // The first start's subscribe fails only now, while the second start is under way.
  for (let i = 0; i < 3; i++) {
    bus.release();
    await settle();
  }
  await second;
  t.match(await firstOutcome, /cannot subscribe/, 'the superseded start still reports its failure');
  t.equal(runtime.running, true, 'the newer run is untouched');
  t.same(intervals.periods, [PHYSICS_MS, STATE_MS]);
  t.same(bus.filters, [topics.actuatorCommand(DEVICE), topics.heartbeat].sort());
  await runtime.stop();
});

t.test('state and outcomes are signed with the driver key, name this driver run, and carry a rising seq', async (t) => {
  const { runtime, bus, intervals, reports, at, release } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  at(20);
  intervals.fire(STATE_MS);
  const executed = release();
  at(40);
  intervals.fire(STATE_MS);
  release({}, otherKeys.privateKey);
  t.equal(runtime.received.at(-1)?.accepted, false, 'a forged release');
  await settle();
  t.same(
    bus.published.map((p) => p.topic),
    [topics.actuatorState(DEVICE), topics.actuatorOutcome(DEVICE), topics.actuatorState(DEVICE)],
    'no outcome for a release the interlock did not sign',
  );
  const [first, outcome, second] = bus.published;
  t.same(reports.state(first?.payload ?? ''), { timeMs: START_MS + 20 });
  t.same(reports.outcome(outcome?.payload ?? ''), { commandId: executed.commandId, auditSeq: executed.auditSeq, status: 'executed', timeMs: START_MS + 20 });
  t.same(reports.state(second?.payload ?? ''), { timeMs: START_MS + 40 });
  t.same(
    reports.claims.map((c) => [c.dev, c.sid, c.iat]),
    [
      [DEVICE, runtime.session, START_MS + 20],
      [DEVICE, runtime.session, START_MS + 20],
      [DEVICE, runtime.session, START_MS + 40],
    ],
    'each about this device, from this run, at the driver\'s time',
  );
  const seqs = reports.claims.map((c) => c.seq);
  t.ok(seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] ?? Infinity)), `seq rises across state and outcomes (${seqs.join(', ')})`);
  await runtime.stop();
});

t.test('a release made for another driver run is refused, naming both runs; a safe-state release is taken whatever run it names', async (t) => {
  const { runtime, device, bus, reports, release } = rig({ heartbeatTimeoutMs: 0 });
  await runtime.start();
  const foreign = release({ session: 'another-run' });
  const refused = runtime.received.at(-1);
  t.equal(refused?.accepted, false, 'a release naming another run is refused');
  t.match(refused?.problem ?? '', /release was made for driver run another-run, this run is /);
  t.ok(refused?.problem?.includes(runtime.session), 'naming this run');
  t.equal(refused?.command?.commandId, foreign.commandId, 'the authentic command is attached to the record');
  const unbound = release({ session: null });
  t.equal(runtime.received.at(-1)?.accepted, false, 'so is a non-safe release naming no run (the interlock had no state from this run)');
  t.match(runtime.received.at(-1)?.problem ?? '', /made for driver run null/);
  t.same(device.calls, ['start@0'], 'neither reached the device');

  const foreignStop = release({ action: 'stop', safeState: true, auditSeq: 0, session: 'another-run' });
  t.equal(runtime.received.at(-1)?.accepted, true, 'a safe-state stop naming another run is taken');
  const unboundStop = release({ action: 'stop', safeState: true, session: null });
  t.equal(runtime.received.at(-1)?.accepted, true, 'and one naming no run');
  const own = release();
  t.equal(runtime.received.at(-1)?.accepted, true, 'a release naming this run is taken');
  t.same(runtime.executed.map((c) => c.commandId), [foreignStop.commandId, unboundStop.commandId, own.commandId]);

  await settle();
  const outcomes = bus.published.filter((p) => p.topic === topics.actuatorOutcome(DEVICE)).map((p) => reports.outcome(p.payload));
  t.same(
    outcomes.map((o) => [o.commandId, o.status]),
    [
      [foreign.commandId, 'refused'],
      [unbound.commandId, 'refused'],
      [foreignStop.commandId, 'executed'],
      [unboundStop.commandId, 'executed'],
      [own.commandId, 'executed'],
    ],
    'the interlock is told, in signed outcomes',
  );
  t.match(outcomes[0]?.problem ?? '', /driver run another-run/);
  await runtime.stop();
});

t.test('a release captured from one driver run is refused by the restarted driver (a new instance); a stop is still taken', async (t) => {
  const first = rig({ heartbeatTimeoutMs: 0 });
  await first.runtime.start();
  const move = first.command();
  const moveToken = first.deliver(move);
  t.equal(first.runtime.received.at(-1)?.accepted, true, 'the first run executes the move');
  const stop = first.command({ action: 'stop', safeState: true });
  const stopToken = first.deliver(stop);
  t.equal(first.runtime.received.at(-1)?.accepted, true, 'and a stop made for it');
  await first.runtime.stop();

  // The driver restarts: the same device on the same bus, a new instance that remembers no audit seq.
  const second = rig({ heartbeatTimeoutMs: 0 }, PROFILE, first.bus);
  second.at(1000);
  await second.runtime.start();
  t.not(second.runtime.session, first.runtime.session, 'a new run');
  second.bus.deliver(topics.actuatorCommand(DEVICE), moveToken);
  const replay = second.runtime.received.at(-1);
  t.equal(replay?.accepted, false, 'the captured move is refused, although its seq is above anything the new instance saw');
  t.match(replay?.problem ?? '', `release was made for driver run ${first.runtime.session}, this run is ${second.runtime.session}`);
  t.equal(replay?.command?.commandId, move.commandId);
  t.same(second.device.calls, ['start@1000'], 'nothing reached the device');

  second.bus.deliver(topics.actuatorCommand(DEVICE), stopToken);
  t.equal(second.runtime.received.at(-1)?.accepted, true, 'the stop made for the old run is still taken');
  t.same(second.runtime.executed.map((c) => c.commandId), [stop.commandId]);

  await settle();
  const outcomes = second.bus.published.filter((p) => p.topic === topics.actuatorOutcome(DEVICE)).slice(-2);
  t.same(
    outcomes.map((p) => second.reports.outcome(p.payload).status),
    ['refused', 'executed'],
    'the new run reports both',
  );
  t.same(second.reports.claims.map((c) => c.sid), [second.runtime.session, second.runtime.session], 'signed as the new run');
  await second.runtime.stop();
});
