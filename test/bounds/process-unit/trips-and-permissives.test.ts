// Permissives that gate start, and latched trips: latching from a measured condition and from a trip the device
// reports, everything but the safe state denied while latched, reset refused while the condition holds, and a
// released reset clearing the latch. Runs the kind directly, and the whole pipeline (real Cedar) where it matters.

import t from 'tap';
import { observeDeviceState, recordRelease } from '../../../src/bounds/bounds.js';
import { checkProcessUnit, PROCESS_UNIT_BOUNDS } from '../../../src/bounds/process-unit-bounds.js';
import { observeRefusedProcessState, processMemory } from '../../../src/bounds/process-unit/process-memory.js';
import type { DeviceMemory, KindCommand } from '../../../src/bounds/kind-bounds.js';
import type { ObservedState } from '../../../src/core/device-state.js';
import type { ProcessUnitState } from '../../../src/core/kinds/process-unit.js';
import type { StageResult } from '../../../src/core/verdict.js';
import { MemoryReplayGuard } from '../../../src/envelope/replay-guard.js';
import { BoundsMemory, evaluateCommand, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { assertReasons, BAR, cell, context, loaded, NOW, PCT, pump, restState, RPM, runningState, type Expected } from './fixtures.js';

const START: KindCommand = { action: 'start', params: {} };
const reset = (trip: string): KindCommand => ({ action: 'reset_trip', params: { trip } });
const setSpeed = (rpm: number): KindCommand => ({ action: 'set_setpoint', params: { name: 'pump_speed', value: rpm * RPM, unit: 'rad/s' } });

/** The kind as the interlock drives it: observe every state, then check; `release` calls the released hook. */
class Unit {
  readonly memory: DeviceMemory = new Map();
  state: ProcessUnitState = runningState();
  nowMs = NOW;
  see(state: ProcessUnitState, atMs = this.nowMs): this {
    this.state = state;
    this.nowMs = atMs;
    PROCESS_UNIT_BOUNDS.observe?.(pump, state, this.memory, atMs);
    return this;
  }
  check(command: KindCommand): StageResult {
    return checkProcessUnit(pump, command, context(this.state, { memory: this.memory, nowMs: this.nowMs }));
  }
  release(command: KindCommand): void {
    PROCESS_UNIT_BOUNDS.released?.(pump, command, this.memory, this.nowMs);
  }
}

const permissive = (id: string, extra: Partial<Expected> = {}): Expected => ({ code: 'BOUNDS_PROCESS_PERMISSIVE', ruleId: `pump-1/permissives/${id}`, path: '/action', ...extra });

t.test('permissives gate start: at the limit holds, just beyond or unknown does not', async (t) => {
  const cases: { name: string; measurements: Record<string, number | boolean>; expected: Expected[] }[] = [
    { name: 'all hold (at rest, suction open, tank at 2 m)', measurements: {}, expected: [] },
    { name: 'suction valve limit switch open = false', measurements: { suction_valve_open: false }, expected: [permissive('suction_open')] },
    { name: 'suction pressure exactly 0.2 bar', measurements: { suction_pressure: 0.2 * BAR }, expected: [] },
    { name: 'suction pressure 1 Pa under 0.2 bar', measurements: { suction_pressure: 0.2 * BAR - 1 }, expected: [permissive('suction_pressure_min', { limit: 0.2 * BAR, actual: 0.2 * BAR - 1, unit: 'Pa' })] },
    { name: 'suction pressure NaN (unknown: no actual)', measurements: { suction_pressure: NaN }, expected: [permissive('suction_pressure_min', { limit: 0.2 * BAR, unit: 'Pa' })] },
    { name: 'suction pressure +Infinity is not a measurement', measurements: { suction_pressure: Infinity }, expected: [permissive('suction_pressure_min')] },
    { name: 'suction pressure -0 (gauge) is below 0.2 bar', measurements: { suction_pressure: -0 }, expected: [permissive('suction_pressure_min', { actual: 0 })] },
    { name: 'tank level exactly 0.5 m', measurements: { tank_level: 0.5 }, expected: [] },
    { name: 'tank level just under 0.5 m', measurements: { tank_level: 0.5 - 1e-9 }, expected: [permissive('tank_level_min', { limit: 0.5, actual: 0.5 - 1e-9, unit: 'm' })] },
    { name: 'discharge valve exactly 10 % (atMost)', measurements: { discharge_valve_position: 10 * PCT }, expected: [] },
    { name: 'discharge valve just over 10 %', measurements: { discharge_valve_position: 10 * PCT + 1e-9 }, expected: [permissive('discharge_throttled', { limit: 0.1, unit: 'fraction' })] },
    { name: 'limit switch reported as 1 instead of true', measurements: { suction_valve_open: 1 }, expected: [permissive('suction_open')] },
    {
      name: 'everything wrong at once: every permissive, in file order',
      measurements: { suction_valve_open: false, suction_pressure: 0, tank_level: 0.3, discharge_valve_position: 1 },
      expected: [permissive('suction_open'), permissive('suction_pressure_min'), permissive('tank_level_min'), permissive('discharge_throttled')],
    },
  ];
  for (const c of cases) assertReasons(t, checkProcessUnit(pump, START, context(restState({ measurements: c.measurements }))), c.expected, c.name);

  // A measurement missing from the state does not hold (the state parser refuses such a message; checked anyway).
  const { suction_pressure: _dropped, ...rest } = restState().measurements;
  const missing = checkProcessUnit(pump, START, context({ ...restState(), measurements: rest }));
  assertReasons(t, missing, [permissive('suction_pressure_min')], 'suction pressure missing');
  t.match(missing.reasons[0]?.message ?? '', /missing from the state/);
});

t.test('a trip latches the moment a state shows it, and stays latched when the condition clears', async (t) => {
  const high = { code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/high_discharge_pressure', path: '/action', limit: 8 * BAR, unit: 'Pa' } as const;
  const cases: { name: string; pressurePa: number; latches: boolean }[] = [
    { name: '1 Pa under 8 bar', pressurePa: 8 * BAR - 1, latches: false },
    { name: 'exactly 8 bar (inclusive)', pressurePa: 8 * BAR, latches: true },
    { name: 'far over', pressurePa: 50 * BAR, latches: true },
    { name: 'NaN (cannot be read) latches', pressurePa: NaN, latches: true },
  ];
  for (const c of cases) {
    const unit = new Unit().see(runningState({ measurements: { discharge_pressure: c.pressurePa } }));
    // The very next state is back to normal (the pump stopped at rest): a latch does not care.
    unit.see(restState(), NOW + 100);
    const expected: Expected[] = c.latches ? [{ ...high, ...(Number.isNaN(c.pressurePa) ? {} : { actual: c.pressurePa }) }] : [];
    assertReasons(t, unit.check(setSpeed(600)), expected, `${c.name}: set_setpoint afterwards`);
    assertReasons(t, unit.check(START), expected, `${c.name}: start afterwards`);
  }

  // Tank at exactly 0.2 m latches low_tank_level (atMost, inclusive); the tank permissive also fails for start.
  const dry = new Unit().see(restState({ measurements: { tank_level: 0.2 } }));
  assertReasons(
    t,
    dry.check(START),
    [
      { code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/low_tank_level', limit: 0.2, actual: 0.2, unit: 'm' },
      permissive('tank_level_min', { actual: 0.2 }),
    ],
    'low tank latches and fails the permissive',
  );
});

t.test('a trip the device reports is honoured, including ids the declaration does not know', async (t) => {
  const unit = new Unit().see(runningState({ trips: ['pressure_switch_high'] }));
  const expected: Expected[] = [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/state/trips/pressure_switch_high', path: '/action' }];
  assertReasons(t, unit.check(setSpeed(1200)), expected, 'set_setpoint while the device reports a trip');
  // The device forgets its trip (rebooted, at rest): the interlock's latch still holds.
  unit.see(restState(), NOW + 50);
  assertReasons(t, unit.check(START), expected, 'start after the report vanished');
  // A declared trip id reported by the device uses the declared rule.
  const declared = new Unit().see(restState({ trips: ['low_tank_level'] }));
  assertReasons(t, declared.check(START), [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/low_tank_level' }], 'declared id from the device');
  // Check alone latches too (a caller that forgot observe still cannot pass a tripped state).
  const noObserve = checkProcessUnit(pump, setSpeed(1200), context(runningState({ measurements: { discharge_pressure: 9 * BAR } })));
  assertReasons(t, noObserve, [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/high_discharge_pressure', actual: 9 * BAR }], 'check without observe');
});

t.test('reset: refused while the condition holds or cannot be read, and for a trip not latched', async (t) => {
  const unit = new Unit().see(runningState({ measurements: { discharge_pressure: 9 * BAR } }));
  const active = (actual?: number): Expected => ({
    code: 'BOUNDS_TRIP_ACTIVE',
    ruleId: 'pump-1/trips/high_discharge_pressure',
    path: '/params/trip',
    limit: 8 * BAR,
    unit: 'Pa',
    ...(actual === undefined ? {} : { actual }),
  });
  assertReasons(t, unit.check(reset('high_discharge_pressure')), [active(9 * BAR)], 'pressure still 9 bar');
  unit.see(runningState({ measurements: { discharge_pressure: 8 * BAR } }), NOW + 10);
  assertReasons(t, unit.check(reset('high_discharge_pressure')), [active(8 * BAR)], 'pressure exactly at the trip point');
  const { discharge_pressure: _gone, ...rest } = runningState().measurements;
  unit.state = { ...runningState(), measurements: rest };
  assertReasons(t, unit.check(reset('high_discharge_pressure')), [active()], 'pressure unknown');
  unit.see(runningState({ measurements: { discharge_pressure: 8 * BAR - 1 } }), NOW + 20);
  assertReasons(t, unit.check(reset('high_discharge_pressure')), [], '1 Pa under: reset may pass');
  assertReasons(
    t,
    unit.check(reset('low_tank_level')),
    [{ code: 'BOUNDS_TRIP_NOT_LATCHED', ruleId: 'pump-1/trips/low_tank_level', path: '/params/trip' }],
    'a trip that is not latched',
  );
  assertReasons(t, unit.check(reset('made_up')), [{ code: 'BOUNDS_TRIP_NOT_LATCHED', ruleId: 'pump-1/state/trips/made_up' }], 'an unknown trip');
});

t.test('the latch clears only when an allowed reset is released; the condition returning latches again', async (t) => {
  const unit = new Unit().see(runningState({ measurements: { discharge_pressure: 9 * BAR } }));
  unit.see(runningState(), NOW + 100);
  t.equal(unit.check(reset('high_discharge_pressure')).verdict, 'allow', 'the reset is allowed');
  t.equal(unit.check(setSpeed(1200)).verdict, 'deny', 'allowing a reset is not releasing it');
  unit.release(reset('high_discharge_pressure'));
  assertReasons(t, unit.check(setSpeed(1200)), [], 'after the release, setpoints pass again');
  assertReasons(t, unit.check(START), [permissive('discharge_throttled')], 'start is judged on its permissives again (the valve is 40 % open)');
  unit.see(runningState({ measurements: { discharge_pressure: 8.5 * BAR } }), NOW + 200);
  unit.see(runningState(), NOW + 300);
  assertReasons(t, unit.check(setSpeed(1200)), [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/high_discharge_pressure', actual: 8.5 * BAR }], 'a new excursion latches again');
});

t.test('two trips: each is reset on its own; commands pass only when both are reset', async (t) => {
  const unit = new Unit().see(restState({ measurements: { discharge_pressure: 9 * BAR, tank_level: 0.1 } }));
  unit.see(restState(), NOW + 100);
  const both = unit.check(setSpeed(0));
  t.same(both.reasons.map((r) => r.ruleId), ['pump-1/trips/high_discharge_pressure', 'pump-1/trips/low_tank_level'], 'both latched, in file order');
  t.equal(unit.check(reset('low_tank_level')).verdict, 'allow', 'reset of one while the other is latched');
  unit.release(reset('low_tank_level'));
  assertReasons(t, unit.check(setSpeed(0)), [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/high_discharge_pressure' }], 'the other is still latched');
  unit.release(reset('high_discharge_pressure'));
  assertReasons(t, unit.check(setSpeed(0)), [], 'both reset');
});

t.test('a device-reported trip: reset refused while the device still reports it, passes once it does not', async (t) => {
  const activeReport: Expected = { code: 'BOUNDS_TRIP_ACTIVE', ruleId: 'pump-1/state/trips/pressure_switch_high', path: '/params/trip' };
  const unit = new Unit().see(runningState({ trips: ['pressure_switch_high'] }));
  const refused = unit.check(reset('pressure_switch_high'));
  assertReasons(t, refused, [activeReport], 'the device still reports its own trip');
  t.match(refused.reasons[0]?.message ?? '', /device still reports it/);
  // A declared trip the device reports: its condition is clear here (4 bar), the report alone refuses the reset.
  const declared = new Unit().see(runningState({ trips: ['high_discharge_pressure'] }));
  assertReasons(
    t,
    declared.check(reset('high_discharge_pressure')),
    [{ code: 'BOUNDS_TRIP_ACTIVE', ruleId: 'pump-1/trips/high_discharge_pressure', path: '/params/trip', limit: 8 * BAR, unit: 'Pa' }],
    'a declared trip the device reports, its measurement clear',
  );
  // Both at once: one reason, naming both.
  const both = new Unit().see(runningState({ trips: ['high_discharge_pressure'], measurements: { discharge_pressure: 9 * BAR } }));
  const bothResult = both.check(reset('high_discharge_pressure'));
  assertReasons(t, bothResult, [{ code: 'BOUNDS_TRIP_ACTIVE', actual: 9 * BAR }], 'condition holds and reported');
  t.match(bothResult.reasons[0]?.message ?? '', /still holds.*device still reports it/);

  // The device cleared its own trip: the interlock's latch still holds until a reset of it is released.
  unit.see(runningState(), NOW + 20);
  assertReasons(t, unit.check(setSpeed(1200)), [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/state/trips/pressure_switch_high' }], 'latched after the report vanished');
  t.equal(unit.check(reset('pressure_switch_high')).verdict, 'allow', 'the reset passes now');
  unit.release(reset('pressure_switch_high'));
  assertReasons(t, unit.check(setSpeed(1200)), [], 'reset');
  // A report after the reset is a new trip: it latches again, and outlives the report.
  unit.see(runningState({ trips: ['pressure_switch_high'] }), NOW + 40);
  unit.see(runningState(), NOW + 60);
  assertReasons(t, unit.check(setSpeed(1200)), [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/state/trips/pressure_switch_high' }], 'a new report latches again');
});

t.test('a refused state message still latches what it shows of a trip, and never becomes a state', async (t) => {
  const high = { code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/high_discharge_pressure', path: '/action', limit: 8 * BAR, unit: 'Pa' } as const;
  const low = { code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/trips/low_tank_level', path: '/action', limit: 0.2, unit: 'm' } as const;
  const wire = (measurements: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => {
    const { kind: _kind, ...rest } = restState();
    return { ...rest, measurements: { ...restState().measurements, ...measurements }, timeMs: 1, ...extra };
  };
  const { discharge_pressure: _dp, ...withoutPressure } = restState().measurements;
  const { tank_level: _tl, ...withoutTank } = restState().measurements;
  const cases: { name: string; message: unknown; expected: Expected[] }[] = [
    { name: 'no discharge_pressure', message: { ...wire({}), measurements: withoutPressure }, expected: [high] },
    { name: 'discharge_pressure as a string', message: wire({ discharge_pressure: '8.8e5' }), expected: [high] },
    { name: 'discharge_pressure null', message: wire({ discharge_pressure: null }), expected: [high] },
    { name: '8.8 bar, refused for a missing tank_level (which latches too)', message: { ...wire({ discharge_pressure: 8.8 * BAR }), measurements: { ...withoutTank, discharge_pressure: 8.8 * BAR } }, expected: [{ ...high, actual: 8.8 * BAR }, low] },
    { name: '8.8 bar, refused for a missing setpoint', message: { ...wire({ discharge_pressure: 8.8 * BAR }), setpoints: { pump_speed: 0, suction_valve: 1 } }, expected: [{ ...high, actual: 8.8 * BAR }] },
    { name: '8.8 bar, refused for an undeclared field', message: wire({ discharge_pressure: 8.8 * BAR }, { colour: 'red' }), expected: [{ ...high, actual: 8.8 * BAR }] },
    { name: 'exactly 8 bar, refused for running: "yes"', message: wire({ discharge_pressure: 8 * BAR }, { running: 'yes' }), expected: [{ ...high, actual: 8 * BAR }] },
    { name: '7.9 bar, refused for an undeclared field: nothing shows a trip', message: wire({ discharge_pressure: 7.9 * BAR }, { colour: 'red' }), expected: [] },
    { name: 'a device trip in a refused message', message: wire({}, { trips: ['pressure_switch_high', 7, 'bad id!'], colour: 'red' }), expected: [{ code: 'BOUNDS_TRIP_LATCHED', ruleId: 'pump-1/state/trips/pressure_switch_high' }] },
    { name: 'measurements an array', message: wire({}, { measurements: [8.8 * BAR] }), expected: [high, low] },
    { name: 'not JSON (undefined): no trip measurement can be read', message: undefined, expected: [high, low] },
    { name: 'JSON null', message: null, expected: [high, low] },
  ];
  for (const c of cases) {
    const memory: DeviceMemory = new Map();
    observeRefusedProcessState(pump, c.message, memory, NOW);
    // The next valid state is normal: what the refused message latched holds.
    PROCESS_UNIT_BOUNDS.observe?.(pump, restState(), memory, NOW + 20);
    const result = checkProcessUnit(pump, START, context(restState(), { memory, nowMs: NOW + 20 }));
    assertReasons(t, result, c.expected, c.name);
    if (c.expected.length > 0) t.match(result.reasons[0]?.message ?? '', /in a refused state message/, `${c.name}: the reason says where it latched`);
  }
  // A refused message reporting more trip ids than a valid one may carry latches as many as a valid one could.
  const flood: DeviceMemory = new Map();
  observeRefusedProcessState(pump, wire({}, { trips: Array.from({ length: 100 }, (_, i) => `t${i}`) }), flood, NOW);
  t.equal(processMemory(flood).latched.size, 32, 'at most 32 device trips from one message');
});

t.test('through the pipeline (real Cedar): while latched, go_safe and stop pass for any agent; the rest is denied', async (t) => {
  const bounds = new BoundsMemory();
  let observed: ObservedState = { state: restState({ measurements: { discharge_pressure: 9 * BAR } }), receivedAtMs: NOW };
  const pipeline = { cell: loaded, replay: new MemoryReplayGuard(() => NOW), states: { latest: () => observed }, releases: NO_RELEASES, bounds };
  // What the interlock does on a state message.
  observeDeviceState(pump, observed.state, bounds, NOW);
  observed = { state: restState(), receivedAtMs: NOW };
  observeDeviceState(pump, observed.state, bounds, NOW);

  const planner = cell.signer('planner-1', () => NOW);
  const trainee = cell.signer('trainee-1', () => NOW);
  const observer = cell.signer('observer-1', () => NOW);
  const decide = (token: string) => evaluateCommand({ token, topicDeviceId: 'pump-1' }, pipeline, NOW);
  const codes = (token: string) => decide(token).reasons.map((r) => [r.code, r.ruleId ?? null]);

  t.same(codes(planner.sign('pump-1', 'set_setpoint', { name: 'pump_speed', value: 600 * RPM, unit: 'rad/s' })), [['BOUNDS_TRIP_LATCHED', 'pump-1/trips/high_discharge_pressure']], 'set_setpoint denied');
  t.same(codes(planner.sign('pump-1', 'start', {})), [['BOUNDS_TRIP_LATCHED', 'pump-1/trips/high_discharge_pressure']], 'start denied');
  for (const [who, signer] of [['planner-1 (scope 4)', planner], ['observer-1 (scope 1, never actuates)', observer]] as const) {
    for (const action of ['go_safe', 'stop']) {
      const decision = decide(signer.sign('pump-1', action, {}));
      t.equal(decision.verdict, 'allow', `${action} by ${who} while latched`);
      t.same(decision.reasons.map((r) => r.code), ['SAFE_STATE_COMMAND']);
    }
  }
  // Only scope 4 may reset (policy), and only once the condition cleared (bounds): here it has.
  const byTrainee = decide(trainee.sign('pump-1', 'reset_trip', { trip: 'high_discharge_pressure' }));
  t.equal(byTrainee.verdict, 'deny', 'a scope-2 agent may not reset');
  t.same(byTrainee.reasons.map((r) => [r.code, r.ruleId]), [['POLICY_FORBIDDEN', 'process-reset-trip-below-scope-4-forbidden']]);
  const command = { action: 'reset_trip', params: { trip: 'high_discharge_pressure' } };
  const byPlanner = decide(planner.sign('pump-1', command.action, command.params));
  t.equal(byPlanner.verdict, 'allow', 'the planner may reset once the pressure is down');
  // What the interlock does once the reset is recorded and published.
  recordRelease(pump, command, bounds, NOW);
  t.equal(decide(planner.sign('pump-1', 'set_setpoint', { name: 'pump_speed', value: 600 * RPM, unit: 'rad/s' })).verdict, 'allow', 'set_setpoint passes again');
  t.same(codes(planner.sign('pump-1', 'set_setpoint', { name: 'pump_speed', value: 600, unit: 'rpm' })), [['BOUNDS_SETPOINT_UNIT', 'pump-1/setpoints/pump_speed/unit']], 'rpm in the command is refused');
  t.same(codes(planner.sign('pump-1', 'set_setpoint', { name: 'pump_speed', value: '600', unit: 'rad/s' })), [['COMMAND_INVALID_PARAMS', null]], 'a numeric string is not a number');
});
