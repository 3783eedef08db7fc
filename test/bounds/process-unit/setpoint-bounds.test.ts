// Setpoint bounds of the demo pump (pump-1.yaml): range and mode maximum at, just inside and just beyond their
// edges, non-finite values, wrong units, step from every reference (last release, reported setpoint, measured
// value), rate since the last release, runs of small steps, missing measurements, and the stage preconditions
// (stale state, reduced mode for a scope-3 agent) through checkBounds.

import t from 'tap';
import { checkBounds } from '../../../src/bounds/bounds.js';
import { checkProcessUnit, PROCESS_UNIT_BOUNDS } from '../../../src/bounds/process-unit-bounds.js';
import { recordProcessRelease } from '../../../src/bounds/process-unit/process-memory.js';
import type { DeviceMemory } from '../../../src/bounds/kind-bounds.js';
import type { ObservedState } from '../../../src/core/device-state.js';
import type { ProcessSetpoint, ProcessUnitState } from '../../../src/core/kinds/process-unit.js';
import type { StageResult } from '../../../src/core/verdict.js';
import { BoundsMemory, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { assertReasons, context, loaded, NOW, pump, PCT, restState, RPM, runningState, scope3, verified, type Expected } from './fixtures.js';

function setpoint(name: string): ProcessSetpoint {
  const found = pump.setpoints.find((s) => s.name === name);
  if (found === undefined) throw new Error(`pump-1 has no setpoint ${name}`);
  return found;
}
const SPEED = setpoint('pump_speed');
const VALVE = setpoint('discharge_valve');
const set = (name: string, value: number, unit: string) => ({ action: 'set_setpoint', params: { name, value, unit } });

/** A state where the pump speed is settled at `speed` (reported setpoint and measurement equal). */
function speedSettledAt(speed: number): ProcessUnitState {
  return runningState({ measurements: { pump_speed: speed }, setpoints: { pump_speed: speed } });
}

t.test('the declared limits are the YAML numbers in SI (rpm, %, per second)', async (t) => {
  t.equal(SPEED.unit, 'rad/s');
  t.ok(Math.abs(SPEED.max - 2900 * RPM) < 1e-12, 'range max 2900 rpm');
  t.equal(SPEED.min, 0);
  t.ok(Math.abs((SPEED.modeMax?.reduced ?? NaN) - 1450 * RPM) < 1e-12, 'reduced max 1450 rpm');
  t.ok(Math.abs(SPEED.maxStep - 600 * RPM) < 1e-12, 'maxStep 600 rpm');
  t.ok(Math.abs(SPEED.maxRate.amount / SPEED.maxRate.perMs - (600 * RPM) / 1000) < 1e-15, 'maxRate 600 rpm/s');
  t.equal(VALVE.unit, 'fraction');
  t.ok(Math.abs(VALVE.maxStep - 20 * PCT) < 1e-15, 'valve maxStep 20 %');
  t.ok(Math.abs(VALVE.maxRate.amount / VALVE.maxRate.perMs - (10 * PCT) / 1000) < 1e-15, 'valve maxRate 10 %/s');
});

t.test('range and mode maximum: at the edges allowed, 1e-9 beyond denied, non-finite denied', async (t) => {
  const rule = 'pump-1/setpoints/pump_speed';
  const max = SPEED.max;
  const range = (limit: number, actual: number): Expected => ({ code: 'BOUNDS_SETPOINT_RANGE', ruleId: `${rule}/range`, path: '/params/value', limit, actual, unit: 'rad/s' });
  const modeMax = (mode: string, limit: number, actual: number): Expected => ({ code: 'BOUNDS_SETPOINT_MODE_MAX', ruleId: `${rule}/max/${mode}`, path: '/params/value', limit, actual, unit: 'rad/s' });
  const step = (actual: number): Expected => ({ code: 'BOUNDS_SETPOINT_STEP', ruleId: `${rule}/maxStep`, path: '/params/value', limit: SPEED.maxStep, actual, unit: 'rad/s' });
  const reduced = SPEED.modeMax?.reduced as number;
  const cases: { name: string; value: number; at: number; mode?: 'normal' | 'reduced'; expected: Expected[] }[] = [
    { name: 'exactly at max (2900 rpm)', value: max, at: max, expected: [] },
    { name: 'max + 1e-9 (range and the normal max both fire)', value: max + 1e-9, at: max, expected: [range(max, max + 1e-9), modeMax('normal', max, max + 1e-9)] },
    { name: 'just under max', value: max - 1e-9, at: max, expected: [] },
    { name: 'exactly at min (0)', value: 0, at: 0, expected: [] },
    { name: '-0 is the same speed as 0', value: -0, at: 0, expected: [] },
    { name: 'min - 1e-9', value: -1e-9, at: 0, expected: [range(0, -1e-9)] },
    { name: 'NaN fails every bound', value: NaN, at: max, expected: [range(max, NaN), modeMax('normal', max, NaN), step(NaN)] },
    { name: '+Infinity', value: Infinity, at: max, expected: [range(max, Infinity), modeMax('normal', max, Infinity), step(Infinity)] },
    { name: '-Infinity', value: -Infinity, at: 0, expected: [range(0, -Infinity), step(Infinity)] },
    { name: 'reduced: exactly 1450 rpm', value: reduced, at: reduced, mode: 'reduced', expected: [] },
    { name: 'reduced: 1450 rpm + 1e-9', value: reduced + 1e-9, at: reduced, mode: 'reduced', expected: [modeMax('reduced', reduced, reduced + 1e-9)] },
    { name: 'normal: 1450 rpm + 1e-9 is fine', value: reduced + 1e-9, at: reduced, mode: 'normal', expected: [] },
    { name: '2900 (rpm) written into the rad/s field', value: 2900, at: max, expected: [range(max, 2900), modeMax('normal', max, 2900), step(2900 - max)] },
  ];
  for (const c of cases) {
    assertReasons(t, checkProcessUnit(pump, set('pump_speed', c.value, 'rad/s'), context(speedSettledAt(c.at), { mode: c.mode ?? 'normal' })), c.expected, c.name);
  }
  // The valve in percent written into the fraction field.
  assertReasons(
    t,
    checkProcessUnit(pump, set('discharge_valve', 40, 'fraction'), context(runningState())),
    [
      { code: 'BOUNDS_SETPOINT_RANGE', ruleId: 'pump-1/setpoints/discharge_valve/range', limit: 1, actual: 40, unit: 'fraction' },
      { code: 'BOUNDS_SETPOINT_MODE_MAX', ruleId: 'pump-1/setpoints/discharge_valve/max/normal', limit: 1, actual: 40 },
      { code: 'BOUNDS_SETPOINT_STEP', ruleId: 'pump-1/setpoints/discharge_valve/maxStep', limit: VALVE.maxStep, actual: 40 - 0.4 },
    ],
    '40 (%) into the fraction field',
  );
});

t.test('the unit field must be the setpoint\'s internal SI unit; unknown setpoints are denied', async (t) => {
  const cases: { name: string; command: ReturnType<typeof set>; expected: Expected[] }[] = [
    { name: 'the right number in rpm', command: set('pump_speed', 1200, 'rpm'), expected: [{ code: 'BOUNDS_SETPOINT_UNIT', ruleId: 'pump-1/setpoints/pump_speed/unit', path: '/params/unit' }] },
    { name: 'percent for a fraction', command: set('discharge_valve', 40, '%'), expected: [{ code: 'BOUNDS_SETPOINT_UNIT', ruleId: 'pump-1/setpoints/discharge_valve/unit', path: '/params/unit' }] },
    { name: 'bar for a speed', command: set('pump_speed', 1, 'bar'), expected: [{ code: 'BOUNDS_SETPOINT_UNIT', path: '/params/unit' }] },
    { name: 'unit case matters', command: set('pump_speed', 1200 * RPM, 'RAD/S'), expected: [{ code: 'BOUNDS_SETPOINT_UNIT', path: '/params/unit' }] },
    { name: 'a setpoint the unit does not have', command: set('impeller_pitch', 1, 'rad'), expected: [{ code: 'BOUNDS_SETPOINT_UNKNOWN', ruleId: 'pump-1/setpoints', path: '/params/name' }] },
    { name: 'a prototype key as a name', command: set('constructor', 1, 'fraction'), expected: [{ code: 'BOUNDS_SETPOINT_UNKNOWN', path: '/params/name' }] },
    { name: 'the same speed in rad/s', command: set('pump_speed', 1200 * RPM, 'rad/s'), expected: [] },
  ];
  for (const c of cases) assertReasons(t, checkProcessUnit(pump, c.command, context(runningState())), c.expected, c.name);
});

t.test('step: measured from the last release, the reported setpoint and the measured value', async (t) => {
  const rule = 'pump-1/setpoints/pump_speed/maxStep';
  const stepBy = (actual: number): Expected => ({ code: 'BOUNDS_SETPOINT_STEP', ruleId: rule, path: '/params/value', limit: SPEED.maxStep, actual, unit: 'rad/s' });
  const atRest = restState();
  const cases: { name: string; value: number; state: ProcessUnitState; memory?: DeviceMemory; expected: Expected[] }[] = [
    // At rest: the measured and reported speed are 0, so a start-up speed is one step from 0.
    { name: 'exactly maxStep (600 rpm) from rest', value: 600 * RPM, state: atRest, expected: [] },
    { name: 'maxStep + 1e-9 from rest (one reason: both references are 0)', value: 600 * RPM + 1e-9, state: atRest, expected: [stepBy(600 * RPM + 1e-9)] },
    { name: 'just under maxStep from rest', value: 600 * RPM - 1e-9, state: atRest, expected: [] },
    {
      // The device reports the old setpoint 1200 rpm, but the pump is not turning: 1200 rpm would act as a step.
      name: 'a setpoint far from the measured value is a step',
      value: 1200 * RPM,
      state: restState({ setpoints: { pump_speed: 1200 * RPM } }),
      expected: [stepBy(1200 * RPM)],
    },
    {
      name: 'the device reports a setpoint far from the command (e.g. reset to 0 by its own trip)',
      value: 1200 * RPM,
      state: runningState({ setpoints: { pump_speed: 0 } }),
      expected: [stepBy(1200 * RPM)],
    },
    {
      name: 'far from the last released value (released long ago, so the rate allows it)',
      value: 1200 * RPM,
      state: runningState(),
      memory: released('pump_speed', 0, NOW - 3_600_000),
      expected: [stepBy(1200 * RPM)],
    },
  ];
  for (const c of cases) {
    assertReasons(t, checkProcessUnit(pump, set('pump_speed', c.value, 'rad/s'), context(c.state, c.memory === undefined ? {} : { memory: c.memory })), c.expected, c.name);
  }
});

/** A device memory in which `name` was released with `value` at `atMs` (through the kind's released hook). */
function released(name: string, value: number, atMs: number): DeviceMemory {
  const memory: DeviceMemory = new Map();
  recordProcessRelease(pump, { action: 'set_setpoint', params: { name, value, unit: 'x' } }, memory, atMs);
  return memory;
}

t.test('rate: the change since the last release must fit maxRate for the time since then', async (t) => {
  const rule = 'pump-1/setpoints/pump_speed/maxRate';
  // Released 0 rpm 500 ms ago: 300 rpm is allowed (600 rpm/s); the pump is still at 0 (measured), so the step
  // from it (300 rpm) is inside maxStep and only the rate decides.
  const elapsedMs = 500;
  const allowed = (SPEED.maxRate.amount * elapsedMs) / SPEED.maxRate.perMs;
  t.ok(Math.abs(allowed - 300 * RPM) < 1e-12, 'allowed change is 300 rpm');
  const rate = (actual: number, limit = allowed): Expected => ({ code: 'BOUNDS_SETPOINT_RATE', ruleId: rule, path: '/params/value', limit, actual, unit: 'rad/s' });
  const cases: { name: string; value: number; releasedAt: number; nowMs?: number; expected: Expected[] }[] = [
    { name: 'exactly the rate', value: allowed, releasedAt: NOW - elapsedMs, expected: [] },
    { name: 'just under the rate', value: allowed - 1e-9, releasedAt: NOW - elapsedMs, expected: [] },
    { name: 'just over the rate', value: allowed + 1e-9, releasedAt: NOW - elapsedMs, expected: [rate(allowed + 1e-9)] },
    { name: 'the same step 1 ms after the release', value: allowed, releasedAt: NOW - 1, expected: [rate(allowed, SPEED.maxRate.amount / SPEED.maxRate.perMs)] },
    { name: 'any change at the instant of the release', value: 1e-9, releasedAt: NOW, expected: [rate(1e-9, 0)] },
    { name: 'no change at the instant of the release', value: 0, releasedAt: NOW, expected: [] },
    { name: 'a release "in the future" (clock went back) allows no change, not even none', value: 0, releasedAt: NOW + 10, expected: [rate(0, 0)] },
    { name: 'NaN now', value: 0, releasedAt: NOW - elapsedMs, nowMs: NaN, expected: [{ code: 'BOUNDS_SETPOINT_RATE', ruleId: rule }] },
  ];
  for (const c of cases) {
    const memory = released('pump_speed', 0, c.releasedAt);
    const result = checkProcessUnit(pump, set('pump_speed', c.value, 'rad/s'), context(restState(), { memory, nowMs: c.nowMs ?? NOW }));
    assertReasons(t, result, c.expected, c.name);
  }

  // The interlock's release log (lastRelease) is a reference too, even when the kind's memory is empty.
  const viaLog = checkProcessUnit(pump, set('pump_speed', allowed + 1e-6, 'rad/s'), context(restState(), {
    lastRelease: { commandId: 'c1', action: 'set_setpoint', params: { name: 'pump_speed', value: 0, unit: 'rad/s' }, releasedAtMs: NOW - elapsedMs },
  }));
  assertReasons(t, viaLog, [rate(allowed + 1e-6)], 'rate against the release log');
  const otherSetpoint = checkProcessUnit(pump, set('pump_speed', allowed + 1e-6, 'rad/s'), context(restState(), {
    lastRelease: { commandId: 'c1', action: 'set_setpoint', params: { name: 'discharge_valve', value: 0, unit: 'fraction' }, releasedAtMs: NOW - 1 },
  }));
  assertReasons(t, otherSetpoint, [], 'a release of another setpoint is not a reference');
});

/**
 * Drives a run of set_setpoint commands through the kind as the interlock would: each allowed one is released
 * (released hook), and the valve follows it at once. Returns the decisions and the last released value.
 */
function run(stepFraction: number, everyMs: number, count: number): { results: StageResult[]; lastValue: number; elapsedMs: number } {
  const memory: DeviceMemory = new Map();
  let position = 0.4;
  const results: StageResult[] = [];
  for (let i = 1; i <= count; i++) {
    const nowMs = NOW + i * everyMs;
    const state = runningState({ measurements: { discharge_valve_position: position }, setpoints: { discharge_valve: position } });
    const command = set('discharge_valve', position + stepFraction, 'fraction');
    PROCESS_UNIT_BOUNDS.observe?.(pump, state, memory, nowMs);
    const result = checkProcessUnit(pump, command, context(state, { memory, nowMs }));
    results.push(result);
    if (result.verdict === 'allow') {
      PROCESS_UNIT_BOUNDS.released?.(pump, command, memory, nowMs);
      position = command.params.value;
    }
  }
  return { results, lastValue: position, elapsedMs: count * everyMs };
}

t.test('many small steps: each inside maxStep, together faster than maxRate, are caught', async (t) => {
  // 2 % every 100 ms is 20 %/s, twice the valve's 10 %/s; each step is a tenth of maxStep (20 %).
  const fast = run(0.02, 100, 50);
  const denied = fast.results.filter((r) => r.verdict === 'deny');
  t.ok(denied.length >= 25, `at least every other step is denied (${denied.length} of 50)`);
  t.ok(denied.every((r) => r.reasons.every((x) => x.code === 'BOUNDS_SETPOINT_RATE' && x.ruleId === 'pump-1/setpoints/discharge_valve/maxRate')), 'every deny is the rate');
  // Over the whole run the valve moved no faster than the rate (plus the first step, which had no release before it).
  const moved = fast.lastValue - 0.4;
  const budget = 0.02 + (VALVE.maxRate.amount * fast.elapsedMs) / VALVE.maxRate.perMs;
  t.ok(moved <= budget + 1e-9, `moved ${moved.toFixed(4)} within the rate budget ${budget.toFixed(4)}`);
  t.ok(moved < 0.02 * 50, 'far less than the 100 % the agent asked for');

  // 0.9 % every 100 ms (90 % of the rate): every step passes.
  const slow = run(0.009, 100, 50);
  t.equal(slow.results.filter((r) => r.verdict === 'deny').length, 0, 'steps under the rate all pass');
  t.ok(Math.abs(slow.lastValue - (0.4 + 0.45)) < 1e-9, 'the valve reached 85 %');
});

t.test('go_safe counts as a release of every safe setpoint: reopening afterwards ramps from the safe value', async (t) => {
  const memory: DeviceMemory = new Map();
  PROCESS_UNIT_BOUNDS.released?.(pump, { action: 'go_safe', params: {} }, memory, NOW - 500);
  // The device closed the discharge valve; 5 % is within maxStep of it but needs 500 ms at 10 %/s.
  const closed = restState();
  const at = (nowMs: number, value: number) => checkProcessUnit(pump, set('discharge_valve', value, 'fraction'), context(closed, { memory, nowMs }));
  assertReasons(t, at(NOW, 0.05), [], '5 % 500 ms after go_safe (exactly the rate)');
  assertReasons(t, at(NOW, 0.06), [{ code: 'BOUNDS_SETPOINT_RATE', ruleId: 'pump-1/setpoints/discharge_valve/maxRate', limit: 0.05, actual: 0.06, unit: 'fraction' }], '6 % 500 ms after go_safe');
  // stop leaves the setpoints as they are, so it is not a release of any of them.
  const afterStop: DeviceMemory = new Map();
  PROCESS_UNIT_BOUNDS.released?.(pump, { action: 'stop', params: {} }, afterStop, NOW - 1);
  assertReasons(t, checkProcessUnit(pump, set('discharge_valve', 0.2, 'fraction'), context(closed, { memory: afterStop })), [], 'stop is no setpoint release');
});

t.test('missing or non-finite references: the step cannot be checked, so it is denied', async (t) => {
  const rule = 'pump-1/setpoints/pump_speed/maxStep';
  const without = (state: ProcessUnitState, field: 'measurements' | 'setpoints', name: string): ProcessUnitState => {
    const copy = { ...state[field] } as Record<string, number | boolean>;
    delete copy[name];
    return { ...state, [field]: copy };
  };
  const cases: { name: string; state: ProcessUnitState; expected: Expected[] }[] = [
    { name: 'measurement pump_speed missing', state: without(runningState(), 'measurements', 'pump_speed'), expected: [{ code: 'BOUNDS_MEASUREMENT_MISSING', ruleId: rule, path: '/params/value' }] },
    { name: 'measurement pump_speed NaN', state: runningState({ measurements: { pump_speed: NaN } }), expected: [{ code: 'BOUNDS_MEASUREMENT_MISSING', ruleId: rule }] },
    { name: 'measurement pump_speed Infinity', state: runningState({ measurements: { pump_speed: Infinity } }), expected: [{ code: 'BOUNDS_MEASUREMENT_MISSING', ruleId: rule }] },
    { name: 'measurement pump_speed a boolean', state: runningState({ measurements: { pump_speed: true } }), expected: [{ code: 'BOUNDS_MEASUREMENT_MISSING', ruleId: rule }] },
    { name: 'reported setpoint missing', state: without(runningState(), 'setpoints', 'pump_speed'), expected: [{ code: 'BOUNDS_MEASUREMENT_MISSING', ruleId: rule }] },
    { name: 'reported setpoint NaN', state: runningState({ setpoints: { pump_speed: NaN } }), expected: [{ code: 'BOUNDS_MEASUREMENT_MISSING', ruleId: rule }] },
  ];
  for (const c of cases) assertReasons(t, checkProcessUnit(pump, set('pump_speed', 1200 * RPM, 'rad/s'), context(c.state)), c.expected, c.name);
});

t.test('through checkBounds: stale state, reduced mode for a scope-3 agent, normal for scope 4', async (t) => {
  const at = (receivedAtMs: number, state: ProcessUnitState = runningState()): ObservedState => ({ state, receivedAtMs });
  const bounds = (command: ReturnType<typeof verified>, observed: ObservedState | undefined) =>
    checkBounds({ command, declarations: loaded.declarations, states: { latest: () => observed }, releases: NO_RELEASES, memory: new BoundsMemory(), nowMs: NOW });
  const to1500 = { name: 'pump_speed', value: 1500 * RPM, unit: 'rad/s' };
  const maxAge = pump.maxStateAgeMs;
  t.equal(maxAge, 500);

  assertReasons(t, bounds(verified('set_setpoint', to1500), at(NOW - maxAge)), [], 'state exactly maxStateAge old');
  assertReasons(t, bounds(verified('set_setpoint', to1500), at(NOW - maxAge - 1)), [{ code: 'BOUNDS_STATE_STALE', ruleId: 'pump-1/maxStateAge', limit: maxAge, actual: maxAge + 1, unit: 'ms' }], 'stale by 1 ms');
  assertReasons(t, bounds(verified('set_setpoint', to1500), undefined), [{ code: 'BOUNDS_STATE_MISSING', ruleId: 'pump-1/maxStateAge' }], 'no state');
  assertReasons(t, bounds(verified('start', {}), at(NOW + 1)), [{ code: 'BOUNDS_STATE_STALE' }], 'state from the future');

  const normal = bounds(verified('set_setpoint', to1500), at(NOW));
  assertReasons(t, normal, [], 'scope 4: 1500 rpm is allowed');
  t.equal(normal.mode, 'normal');
  const reduced = bounds(verified('set_setpoint', to1500, scope3), at(NOW));
  assertReasons(t, reduced, [{ code: 'BOUNDS_SETPOINT_MODE_MAX', ruleId: 'pump-1/setpoints/pump_speed/max/reduced', limit: 1450 * RPM, actual: 1500 * RPM, unit: 'rad/s' }], 'scope 3: 1500 rpm is over the reduced 1450 rpm');
  t.equal(reduced.mode, 'reduced');
  assertReasons(t, bounds(verified('set_setpoint', { name: 'pump_speed', value: 1450 * RPM, unit: 'rad/s' }, scope3), at(NOW)), [], 'scope 3: exactly 1450 rpm');
  // Safe-state commands pass with no state at all.
  assertReasons(t, bounds(verified('go_safe', {}), undefined), [], 'go_safe without state');
  assertReasons(t, bounds(verified('stop', {}), at(NOW - 3_600_000)), [], 'stop with hour-old state');
  assertReasons(t, bounds(verified('open_bypass', {}), at(NOW)), [{ code: 'BOUNDS_NOT_DECLARED', ruleId: 'pump-1' }], 'an action without bounds');
});

t.test('a process unit occupies no cell zone and moves into none', async (t) => {
  t.same(PROCESS_UNIT_BOUNDS.occupancy(pump, runningState(), new Map()), { zoneIds: [], moving: false });
  t.same(PROCESS_UNIT_BOUNDS.zonesEntered(pump, set('pump_speed', 0, 'rad/s'), runningState(), new Map()), []);
});
