// The simulated pump acts only on releases signed by the interlock for it, re-checks what it is told, goes to its
// safe state on go_safe and when the heartbeat stops, and trips itself on a pressure spike: unit tests of the driver
// alone, on an in-memory bus (test/helpers/memory-bus.ts: no sockets, no broker, no interlock). The last test drives
// it through the interlock as `interlock run` composes it (the live rig: embedded broker over TCP, SQLite audit log
// and identity store, the interlock's key), where a trip latches and is reset. Waits are for conditions, bounded
// generously, never sleeps.

import type { KeyObject } from 'node:crypto';
import t, { type Test } from 'tap';
import type { ProcessUnitDeclaration } from '../../src/core/kinds/process-unit.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { signReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { parseDeviceState } from '../../src/interlock/state-store.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { topicSet } from '../../src/transport/topics.js';
import {
  PRESSURE_SWITCH_TRIP,
  PUMP_MODEL,
  SimulatedProcessUnit,
  type ProcessStateMessage,
  type SimulatedProcessUnitOptions,
} from '../../simulator/process-unit-driver.js';
import { liveInterlock } from '../helpers/live-interlock.js';
import { InMemoryBus } from '../helpers/memory-bus.js';
import { required } from '../helpers/required.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';
import { signRawRelease } from '../helpers/tokens.js';
import { driverKeyFixture, HeartbeatSigner, reportReader } from '../helpers/driver-fixtures.js';

const DEVICE = 'pump-1';
const PHYSICS_MS = 5;
const STATE_MS = 10;
const RPM = (2 * Math.PI) / 60;
const topics = topicSet();
const interlockKeys = generateEd25519KeyPair();
const otherKeys = generateEd25519KeyPair();
const driverKey = driverKeyFixture('pump-1-driver-k1');
/** How long a wait may take before the test fails: a bound, not a sleep (a loaded 2-core machine is slow). */
const WAIT_MS = 10_000;

/** The unit's clock when a test injects one: it moves only when the test moves it. */
class TestClock {
  ms = Date.now();
  readonly now = (): number => this.ms;
}

let nextSeq = 1;
/** A release for the driver run `session` (the unit's, unless a test wants it otherwise). */
function releaseFor(session: string | null, overrides: Partial<ReleasedCommand> = {}): ReleasedCommand {
  const nowMs = Date.now();
  const seq = nextSeq++;
  return {
    commandId: `cmd-${seq}`,
    agentId: 'agent-a',
    deviceId: DEVICE,
    action: 'set_setpoint',
    params: { name: 'discharge_valve', value: 0.05, unit: 'fraction' },
    safeState: false,
    auditSeq: seq,
    auditHash: 'h'.repeat(64),
    releasedAtMs: nowMs,
    expiresAtMs: nowMs + 5000,
    session,
    ...overrides,
  };
}

const signed = (command: ReleasedCommand, key: KeyObject = interlockKeys.privateKey): string => signReleasedCommand(command, key);

/** Signs raw payload text, so a test can carry JSON that JSON.stringify would never produce (e.g. 1e999). */
function signedRaw(payloadJson: string): string {
  return signRawRelease(payloadJson, interlockKeys.privateKey);
}

interface Rig {
  readonly bus: InMemoryBus;
  readonly unit: SimulatedProcessUnit;
  /** The state bodies, each verified with the driver key on the unit's clock. */
  readonly states: ProcessStateMessage[];
  readonly logs: string[];
  /** A release for this unit's run (its session). */
  release(overrides?: Partial<ReleasedCommand>): ReleasedCommand;
  /** Publishes the interlock's next signed heartbeat, timed by the unit's clock. */
  heartbeat(): Promise<void>;
  /** Publishes and waits until the unit has recorded it; returns the record. */
  deliver(token: string): Promise<SimulatedProcessUnit['received'][number]>;
}

async function rig(t: Test, options: Partial<SimulatedProcessUnitOptions> = {}): Promise<Rig> {
  const bus = new InMemoryBus();
  const logs: string[] = [];
  const states: ProcessStateMessage[] = [];
  const clock = options.nowMs ?? Date.now;
  const reports = reportReader(DEVICE, options.driverKey ?? driverKey, clock);
  await bus.subscribe(topics.actuatorState(DEVICE), (_topic, payload) => states.push(reports.state<ProcessStateMessage>(payload)));
  const unit = new SimulatedProcessUnit({
    deviceId: DEVICE,
    transport: bus,
    interlockPublicKey: interlockKeys.publicKey,
    driverKey,
    physicsPeriodMs: PHYSICS_MS,
    statePeriodMs: STATE_MS,
    heartbeatTimeoutMs: 0,
    log: (msg) => logs.push(msg),
    ...options,
  });
  t.teardown(async () => {
    await unit.stop();
    await bus.stop();
  });
  await unit.start();
  const heartbeats = new HeartbeatSigner(interlockKeys.privateKey, clock);
  return {
    bus,
    unit,
    states,
    logs,
    release: (overrides) => releaseFor(unit.session, overrides),
    heartbeat: () => bus.publish(topics.heartbeat, heartbeats.next()),
    async deliver(token) {
      const before = unit.received.length;
      await bus.publish(topics.actuatorCommand(DEVICE), token);
      await waitFor(() => unit.received.length > before, 'the unit to record the release', WAIT_MS, 2);
      return unit.received[before] as SimulatedProcessUnit['received'][number];
    },
  };
}

const latest = (states: readonly ProcessStateMessage[]): ProcessStateMessage | undefined => states.at(-1);

t.test('state is published periodically, in SI, and parses against pump-1.yaml', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const pump = cell.load().declarations.devices.get(DEVICE) as ProcessUnitDeclaration;
  const { states } = await rig(t, { safeState: pump.safeState });
  await waitFor(() => states.length >= 3, 'three state messages', WAIT_MS, 2);
  const first = states[0] as ProcessStateMessage;
  t.same(Object.keys(first).sort(), ['lastCommandId', 'measurements', 'running', 'safeStopped', 'setpoints', 'timeMs', 'trips']);
  t.same(first.setpoints, { pump_speed: 0, suction_valve: 1, discharge_valve: 0 }, 'starts at the declared safe state');
  t.equal(first.running, false);
  t.same(first.trips, []);
  const head = (PUMP_MODEL.tankElevationM + 2) * PUMP_MODEL.densityKgPerM3 * PUMP_MODEL.gravityMPerS2;
  t.ok(Math.abs(first.measurements.suction_pressure - head) < 1, `suction pressure is the tank head in Pa (${first.measurements.suction_pressure})`);
  t.equal(first.measurements.suction_valve_open, true);
  for (let i = 1; i < states.length; i++) t.ok((states[i]?.timeMs ?? 0) >= (states[i - 1]?.timeMs ?? Infinity), 'time does not run backwards');
  const parsed = parseDeviceState(pump, JSON.stringify(first));
  t.equal(parsed.ok, true, `the interlock accepts the driver's state (${parsed.ok ? 'ok' : parsed.problem})`);
});

t.test('a release is acted on only if it is the interlock\'s, for this unit, fresh, in order and well-formed', async (t) => {
  const { unit, deliver, release } = await rig(t);
  const cases: { name: string; token: () => string; problem: RegExp }[] = [
    { name: 'signed by another key', token: () => signed(release(), otherKeys.privateKey), problem: /signature/ },
    { name: 'for another device', token: () => signed(release({ deviceId: 'pump-2' })), problem: /addressed to pump-2/ },
    { name: 'expired', token: () => signed(release({ expiresAtMs: Date.now() - 1 })), problem: /expired/ },
    { name: 'not a JWS', token: () => 'hello', problem: /./ },
    { name: 'an unknown setpoint', token: () => signed(release({ params: { name: 'bypass', value: 0, unit: 'fraction' } })), problem: /unknown setpoint/ },
    { name: 'percent instead of fraction', token: () => signed(release({ params: { name: 'discharge_valve', value: 5, unit: '%' } })), problem: /takes fraction/ },
    { name: 'rpm instead of rad/s', token: () => signed(release({ params: { name: 'pump_speed', value: 600, unit: 'rpm' } })), problem: /takes rad\/s/ },
    { name: 'beyond the physical range', token: () => signed(release({ params: { name: 'discharge_valve', value: 1.5, unit: 'fraction' } })), problem: /\[0, 1\]/ },
    { name: 'a numeric string', token: () => signed(release({ params: { name: 'discharge_valve', value: '0.5', unit: 'fraction' } })), problem: /must be a number/ },
    {
      name: 'Infinity (1e999 in the JSON)',
      token: () => signedRaw(JSON.stringify(release()).replace('"value":0.05', '"value":1e999')),
      problem: /must be a number/,
    },
    { name: 'an action the unit does not know', token: () => signed(release({ action: 'open_bypass', params: {} })), problem: /unknown action/ },
    { name: 'a "safe-state" set_setpoint', token: () => signed(release({ safeState: true, auditSeq: 0 })), problem: /only stop and go_safe/ },
  ];
  for (const c of cases) {
    const record = await deliver(c.token());
    t.equal(record.accepted, false, `${c.name}: refused`);
    t.match(record.problem ?? '', c.problem, `${c.name}: why`);
  }
  t.same(unit.executed, [], 'nothing executed');
  const good = release();
  t.equal((await deliver(signed(good))).accepted, true, 'a good release is accepted');
  t.equal((await deliver(signed(good))).accepted, false, 'the same release replayed is refused');
  t.match(unit.received.at(-1)?.problem ?? '', /replayed/);
  t.same(unit.executed.map((c) => c.commandId), [good.commandId]);
});

t.test('setpoints move the valves at stroke speed; start spins the pump up; stop and go_safe act', async (t) => {
  const { unit, states, deliver, release } = await rig(t);
  // 2000 rpm: enough head to lift against the 2.5 bar receiver (at 600 rpm the pump only churns).
  t.equal((await deliver(signed(release({ params: { name: 'pump_speed', value: 2000 * RPM, unit: 'rad/s' } })))).accepted, true);
  t.equal((await deliver(signed(release({ params: { name: 'discharge_valve', value: 0.5, unit: 'fraction' } })))).accepted, true);
  const start = release({ action: 'start', params: {} });
  t.equal((await deliver(signed(start))).accepted, true, 'start accepted');
  await waitFor(() => (latest(states)?.measurements.pump_speed ?? 0) >= 2000 * RPM - 1e-9, 'the pump to reach 2000 rpm (drive ramp 1000 rpm/s)', WAIT_MS, 2);
  await waitFor(() => (latest(states)?.measurements.discharge_valve_position ?? 0) >= 0.5, 'the discharge valve to open to 50 %', WAIT_MS, 2);
  const running = latest(states) as ProcessStateMessage;
  t.ok(running.measurements.discharge_flow > 0, `flow (${running.measurements.discharge_flow} m^3/s)`);
  t.ok(running.measurements.discharge_pressure > running.measurements.suction_pressure, 'the pump raises the pressure');
  t.equal(running.running, true);
  t.ok(states.every((s) => s.measurements.pump_speed <= 2000 * RPM + 1e-9), 'never above the setpoint');

  const stop = release({ action: 'stop', params: {}, safeState: true });
  t.equal((await deliver(signed(stop))).accepted, true, 'stop accepted');
  t.equal(unit.pumpRunning, false);
  await waitFor(() => latest(states)?.measurements.pump_speed === 0 && latest(states)?.lastCommandId === stop.commandId, 'the pump to coast to 0', WAIT_MS, 2);
  t.equal(latest(states)?.setpoints.discharge_valve, 0.5, 'stop leaves the setpoints');

  // go_safe, even without an audit record (seq 0): discharge closes, suction stays open, pump stays off.
  const safe = release({ action: 'go_safe', params: {}, safeState: true, auditSeq: 0, auditHash: '' });
  t.equal((await deliver(signed(safe))).accepted, true, 'go_safe accepted');
  await waitFor(() => latest(states)?.measurements.discharge_valve_position === 0, 'the discharge valve to close', WAIT_MS, 2);
  t.same(latest(states)?.setpoints, { pump_speed: 0, suction_valve: 1, discharge_valve: 0 });
});

t.test('the watchdog drives to the safe state; a returning heartbeat does not resume operation', async (t) => {
  // On the injected clock, with heartbeats sent by hand: on the real clock a stall longer than the timeout while
  // heartbeats "flow" tripped the watchdog spuriously.
  const clock = new TestClock();
  const timeoutMs = 150;
  const { unit, states, deliver, release, heartbeat } = await rig(t, { heartbeatTimeoutMs: timeoutMs, nowMs: clock.now });
  const advance = async (ms: number): Promise<void> => {
    clock.ms += ms;
    await waitFor(() => unit.physicsTimeMs === clock.ms, `physics to reach +${ms} ms`, WAIT_MS, 2);
  };
  // The bus delivers on setImmediate, in order: one more setImmediate after publishing means it was delivered.
  const beat = async (): Promise<void> => {
    await heartbeat();
    await new Promise((resolve) => setImmediate(resolve));
  };
  await deliver(signed(release({ params: { name: 'pump_speed', value: 300 * RPM, unit: 'rad/s' } })));
  await deliver(signed(release({ action: 'start', params: {} })));
  for (let i = 0; i < 4; i++) {
    await advance(50);
    await beat();
  }
  t.ok(unit.snapshot().measurements.pump_speed > 100 * RPM, 'the pump spun up');
  t.equal(unit.safeStopped, false, 'no safe stop while heartbeats flow');

  await advance(timeoutMs + 1);
  t.equal(unit.safeStopped, true, 'the watchdog tripped');
  t.match(unit.safeStopReason ?? '', /no heartbeat for 150 ms/);
  t.equal(unit.pumpRunning, false, 'pump off');
  await waitFor(() => latest(states)?.safeStopped === true, 'a state saying so', WAIT_MS, 2);
  t.same(latest(states)?.setpoints, { pump_speed: 0, suction_valve: 1, discharge_valve: 0 }, 'the safe state');
  const refused = await deliver(signed(release({ action: 'start', params: {} })));
  t.equal(refused.accepted, false, 'no start while the interlock is silent');
  t.match(refused.problem ?? '', /safe-stopped/);

  await beat();
  t.equal(unit.safeStopped, false, 'the heartbeat clears the safe stop');
  await advance(6 * PHYSICS_MS);
  t.equal(unit.pumpRunning, false, 'the pump did not restart by itself');
});

t.test('a pressure spike trips the driver\'s own pressure switch; reset only once the pressure is down', async (t) => {
  const { unit, states, deliver, release } = await rig(t, { pressureSwitchPa: 9e5 });
  await deliver(signed(release({ params: { name: 'pump_speed', value: 300 * RPM, unit: 'rad/s' } })));
  await deliver(signed(release({ action: 'start', params: {} })));
  unit.injectPressureSpike(10e5, 60_000);
  t.same(unit.trips, [PRESSURE_SWITCH_TRIP], 'tripped at once');
  t.equal(unit.pumpRunning, false, 'the trip stops the pump');
  await waitFor(() => latest(states)?.trips.includes(PRESSURE_SWITCH_TRIP) === true, 'a state reporting the trip', WAIT_MS, 2);
  t.ok((latest(states)?.measurements.discharge_pressure ?? 0) >= 9e5, 'and showing the pressure');
  const startRefused = await deliver(signed(release({ action: 'start', params: {} })));
  t.match(startRefused.problem ?? '', /tripped/, 'no start while tripped');
  const early = await deliver(signed(release({ action: 'reset_trip', params: { trip: PRESSURE_SWITCH_TRIP } })));
  t.match(early.problem ?? '', /still active/, 'no reset while the pressure is high');
  unit.injectPressureSpike(0, 0);
  const reset = await deliver(signed(release({ action: 'reset_trip', params: { trip: PRESSURE_SWITCH_TRIP } })));
  t.equal(reset.accepted, true, 'reset once the pressure is down');
  t.same(unit.trips, []);
  await waitFor(() => latest(states)?.trips.length === 0, 'a state without the trip', WAIT_MS, 2);
});

t.test('the pressure switch is reset at the device (a person at the pump), only once the pressure is down', async (t) => {
  const { unit, states, deliver, release } = await rig(t, { pressureSwitchPa: 9e5 });
  await deliver(signed(release({ params: { name: 'pump_speed', value: 300 * RPM, unit: 'rad/s' } })));
  await deliver(signed(release({ action: 'start', params: {} })));
  unit.injectPressureSpike(10e5, 60_000);
  t.same(unit.trips, [PRESSURE_SWITCH_TRIP]);
  t.match(unit.resetAtDevice(PRESSURE_SWITCH_TRIP), { ok: false, problem: /still active/ }, 'not while the pressure is high');
  t.same(unit.trips, [PRESSURE_SWITCH_TRIP]);
  unit.injectPressureSpike(0, 0);
  t.match(unit.resetAtDevice('high_discharge_pressure'), { ok: false, problem: /not tripped at the device/ }, 'the interlock\'s latches are not the device\'s to reset');
  t.same(unit.resetAtDevice(PRESSURE_SWITCH_TRIP), { ok: true });
  t.same(unit.trips, []);
  await waitFor(() => latest(states)?.trips.length === 0, 'a state without the trip', WAIT_MS, 2);
  t.equal(unit.pumpRunning, false, 'a reset does not restart the pump');
});

t.test('options that cannot describe the unit are refused at construction', async (t) => {
  const base = { deviceId: DEVICE, transport: new InMemoryBus(), interlockPublicKey: interlockKeys.publicKey, driverKey };
  t.throws(() => new SimulatedProcessUnit({ ...base, deviceId: 'pump/#' }), /invalid device id/);
  t.throws(() => new SimulatedProcessUnit({ ...base, safeState: { running: false, setpoints: { pump_speed: 0, suction_valve: 1 } } }), /discharge_valve/);
  t.throws(() => new SimulatedProcessUnit({ ...base, initialSetpoints: { suction_valve: 2 } }), /initialSetpoints/);
  t.throws(() => new SimulatedProcessUnit({ ...base, statePeriodMs: 0 }), /statePeriodMs/);
  t.throws(() => new SimulatedProcessUnit({ ...base, heartbeatTimeoutMs: NaN }), /heartbeatTimeoutMs/);
  t.throws(() => new SimulatedProcessUnit({ ...base, initialTankLevelM: -1 }), /initialTankLevelM/);
  // A spike before start() acts at once and does not integrate from the epoch.
  const idle = new SimulatedProcessUnit(base);
  idle.injectPressureSpike(10e5, 10);
  t.same(idle.trips, [PRESSURE_SWITCH_TRIP], 'a spike before start trips the pressure switch');
  t.throws(() => idle.injectPressureSpike(NaN, 10), /addPa/);
});

t.test('through the real interlock: a spike latches the trip, only go_safe passes, reset after the pressure is down', async (t) => {
  // The pump's own watchdog is off: the heartbeat is tested above on an injected clock, and on the real clock of a
  // loaded machine a late heartbeat would send the pump to its safe state in the middle of this test.
  const rig = await liveInterlock(t, { feed: false });
  const pump = required(rig.runtime.cell.declarations.devices.get(DEVICE), 'pump-1 in the demo cell');
  if (pump.kind !== 'process_unit') throw new Error(`pump-1 is a ${pump.kind}, not a process_unit`);
  const unit = new SimulatedProcessUnit({
    deviceId: DEVICE,
    transport: rig.client,
    interlockPublicKey: rig.runtime.interlockPublicKey,
    // The key the demo cell declares for pump-1's driver: the interlock trusts only state signed with it.
    driverKey: required(rig.cell.driverKeys.get(DEVICE), 'the driver key of pump-1 in the demo cell'),
    safeState: pump.safeState,
    statePeriodMs: 20,
    physicsPeriodMs: PHYSICS_MS,
    heartbeatTimeoutMs: 0,
  });
  t.teardown(() => unit.stop());
  await unit.start();
  await waitFor(() => rig.interlock.states.latest(DEVICE) !== undefined, 'the pump state to reach the interlock', WAIT_MS);

  const planner = rig.cell.signer('planner-1');
  const send = (action: string, params: Record<string, unknown>): Promise<DecisionEvent> => rig.send(DEVICE, planner.sign(DEVICE, action, params));
  const codes = (event: DecisionEvent): unknown[] => event.report.reasons.map((r) => [r.code, r.ruleId ?? null]);
  /** The discharge pressure in the latest state the interlock holds. */
  const pressureSeen = (): number => {
    const state = rig.interlock.states.latest(DEVICE)?.state;
    return state?.kind === 'process_unit' ? (state.measurements['discharge_pressure'] as number) : NaN;
  };

  const speed = await send('set_setpoint', { name: 'pump_speed', value: 600 * RPM, unit: 'rad/s' });
  t.equal(speed.report.verdict, 'allow', `a first speed within maxStep from rest (${JSON.stringify(codes(speed))})`);
  t.equal(speed.released, true);
  const start = await send('start', {});
  t.equal(start.report.verdict, 'allow', `start: every permissive holds (${JSON.stringify(codes(start))})`);
  await waitFor(() => unit.pumpRunning, 'the pump to run', WAIT_MS);

  unit.injectPressureSpike(8.5e5, 60_000);
  // The interlock latches on the first state it receives that shows 8 bar or more.
  await waitFor(() => pressureSeen() >= 8e5, 'the interlock to see the spike', WAIT_MS);
  unit.injectPressureSpike(0, 0);
  t.ok(unit.snapshot().measurements.discharge_pressure < 8e5, 'the pressure is back to normal on the device');
  // Waited for, so that the high state of the first spike is not still the interlock's latest when the second
  // spike is injected (a later wait for a high pressure would otherwise pass on it at once, and a normal state
  // still in flight could then reach the interlock before the reset does).
  await waitFor(() => pressureSeen() < 8e5, 'the interlock to see the pressure normal again', WAIT_MS);

  const denied = await send('set_setpoint', { name: 'pump_speed', value: 600 * RPM, unit: 'rad/s' });
  t.same(codes(denied), [['BOUNDS_TRIP_LATCHED', 'pump-1/trips/high_discharge_pressure']], 'latched although the pressure is normal again');
  t.equal(denied.released, false);
  const safe = await send('go_safe', {});
  t.equal(safe.report.verdict, 'allow', 'go_safe passes while latched');
  t.equal(safe.released, true);
  await waitFor(() => unit.executed.some((c) => c.action === 'go_safe'), 'the driver to execute go_safe', WAIT_MS);
  t.equal(unit.pumpRunning, false, 'the pump is off');

  unit.injectPressureSpike(8.5e5, 60_000);
  await waitFor(() => pressureSeen() >= 8e5, 'the interlock to see the pressure high again', WAIT_MS);
  const early = await send('reset_trip', { trip: 'high_discharge_pressure' });
  t.same(codes(early), [['BOUNDS_TRIP_ACTIVE', 'pump-1/trips/high_discharge_pressure']], 'reset denied while the pressure is high');

  unit.injectPressureSpike(0, 0);
  await waitFor(() => pressureSeen() < 8e5, 'the interlock to see the pressure down', WAIT_MS);
  const reset = await send('reset_trip', { trip: 'high_discharge_pressure' });
  t.equal(reset.report.verdict, 'allow', 'reset allowed once the pressure is down');
  t.equal(reset.released, true, 'and released');
  // go_safe released the safe setpoints, so reopening the valve now would be a rate violation; start is not.
  const after = await send('start', {});
  t.equal(after.report.verdict, 'allow', `commands pass again (${JSON.stringify(codes(after))})`);
  // The last allowed command is the barrier: the broker delivers one publisher's releases in order, so once the
  // driver has it, every earlier release has arrived too, and a release of a denied command would be among them.
  await waitFor(() => unit.executed.some((c) => c.commandId === after.report.commandId), 'the driver to execute it', WAIT_MS);
  await waitFor(() => rig.releases.some((r) => r.command.commandId === after.report.commandId), 'the outside subscriber to see the last release', WAIT_MS);
  t.ok(unit.received.every((r) => r.accepted), 'the driver accepted every release it got (all verified)');
  const allowed = ['set_setpoint', 'start', 'go_safe', 'reset_trip', 'start'];
  t.same(unit.executed.map((c) => c.action), allowed, 'exactly the allowed commands reached the pump, in order');
  t.same(
    rig.releases.map((r) => r.command.commandId),
    [speed, start, safe, reset, after].map((d) => d.report.commandId),
    'the actuator topic carried exactly those releases, in order',
  );
  t.ok(rig.releases.every((r) => r.committedBefore), 'each release arrived after its audit record was committed');
  t.same(rig.badReleases, [], 'every release verified with the interlock\'s key');
});
