// Property tests: for random setpoint commands, states, releases and modes, every allow is safe by an
// independent checker written here from pump-1.yaml (its own unit factors, no engine code); and for random
// sequences of states and commands, latching and reset agree with an independent latch model.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { parse } from 'yaml';
import { checkProcessUnit, PROCESS_UNIT_BOUNDS } from '../../../src/bounds/process-unit-bounds.js';
import type { DeviceMemory } from '../../../src/bounds/kind-bounds.js';
import type { Mode } from '../../../src/core/kinds/kind-spec.js';
import { DEMO_CELL } from '../../helpers/test-cell.js';
import { context, NOW, pump, restState, runningState } from './fixtures.js';

// ---- The independent checker: the YAML as an operator wrote it, converted with factors written here. ----

interface YamlQuantity {
  value: number;
  unit: string;
}
interface YamlSetpoint {
  name: string;
  dimension: string;
  measurement: string;
  range: { min: number; max: number; unit: string };
  max?: { normal: number; reduced: number; unit: string };
  maxRate: YamlQuantity & { per: YamlQuantity };
  maxStep: YamlQuantity;
}
interface YamlCondition {
  id: string;
  measurement: string;
  atLeast?: YamlQuantity;
  atMost?: YamlQuantity;
  equals?: boolean;
}
const yaml = parse(readFileSync(join(DEMO_CELL, 'devices', 'pump-1.yaml'), 'utf8')) as { setpoints: YamlSetpoint[]; trips: YamlCondition[]; permissives: YamlCondition[] };
const TO_SI: Record<string, number> = { rpm: (2 * Math.PI) / 60, '%': 0.01, bar: 1e5, m: 1, s: 1000, ms: 1 };
const SI_UNIT: Record<string, string> = { angularVelocity: 'rad/s', ratio: 'fraction' };
const si = (value: number, unit: string): number => {
  const factor = TO_SI[unit];
  if (factor === undefined) throw new Error(`no factor for ${unit}`);
  return value * factor;
};
/** Slack in the checker's favour, for the last bit of a unit factor computed two ways. */
const slack = (x: number): number => 1e-9 * Math.max(1, Math.abs(x));

function tripHolds(trip: YamlCondition, measurements: Record<string, number | boolean>): boolean {
  const v = measurements[trip.measurement];
  if (typeof v !== 'number' || !Number.isFinite(v)) return true; // unknown is tripped
  // Exact: the trip points (8 bar, 0.2 m) are exact in SI, and the latch model below must agree both ways.
  if (trip.atLeast !== undefined) return v >= si(trip.atLeast.value, trip.atLeast.unit);
  if (trip.atMost !== undefined) return v <= si(trip.atMost.value, trip.atMost.unit);
  return true;
}

interface Scenario {
  name: string;
  value: number;
  unit: string;
  mode: Mode;
  measured: number;
  reported: number;
  release: { value: number; ageMs: number } | undefined;
  dischargePa: number;
  tankM: number;
}

/** Is this set_setpoint safe to release, by the YAML? */
function safeBy(s: Scenario): boolean {
  const sp = yaml.setpoints.find((x) => x.name === s.name);
  if (sp === undefined || s.unit !== SI_UNIT[sp.dimension]) return false;
  const measurements = { discharge_pressure: s.dischargePa, tank_level: s.tankM };
  if (yaml.trips.some((trip) => tripHolds(trip, measurements))) return false;
  const v = s.value;
  if (!(v >= si(sp.range.min, sp.range.unit) - slack(v) && v <= si(sp.range.max, sp.range.unit) + slack(v))) return false;
  if (sp.max !== undefined && !(v <= si(s.mode === 'reduced' ? sp.max.reduced : sp.max.normal, sp.max.unit) + slack(v))) return false;
  const maxStep = si(sp.maxStep.value, sp.maxStep.unit);
  for (const ref of [s.measured, s.reported, ...(s.release === undefined ? [] : [s.release.value])]) {
    if (!(Math.abs(v - ref) <= maxStep + slack(maxStep))) return false;
  }
  if (s.release !== undefined) {
    const perMs = si(sp.maxRate.per.value, sp.maxRate.per.unit);
    const allowed = (si(sp.maxRate.value, sp.maxRate.unit) * s.release.ageMs) / perMs;
    if (!(s.release.ageMs >= 0 && Math.abs(v - s.release.value) <= allowed + slack(allowed))) return false;
  }
  return true;
}

// ---- Running the engine on a scenario. ----

const MEASUREMENT_OF: Record<string, string> = Object.fromEntries(yaml.setpoints.map((s) => [s.name, s.measurement]));

function engine(s: Scenario): ReturnType<typeof checkProcessUnit> {
  const memory: DeviceMemory = new Map();
  if (s.release !== undefined) {
    PROCESS_UNIT_BOUNDS.released?.(pump, { action: 'set_setpoint', params: { name: s.name, value: s.release.value, unit: s.unit } }, memory, NOW - s.release.ageMs);
  }
  const measurement = MEASUREMENT_OF[s.name];
  const state = runningState({
    measurements: { discharge_pressure: s.dischargePa, tank_level: s.tankM, ...(measurement === undefined ? {} : { [measurement]: s.measured }) },
    setpoints: yaml.setpoints.some((x) => x.name === s.name) ? { [s.name]: s.reported } : {},
  });
  PROCESS_UNIT_BOUNDS.observe?.(pump, state, memory, NOW);
  return checkProcessUnit(pump, { action: 'set_setpoint', params: { name: s.name, value: s.value, unit: s.unit } }, context(state, { memory, mode: s.mode }));
}

// ---- Generators: mostly near the edges that matter, sometimes anything. ----

const setpointArb = fc.constantFrom(...yaml.setpoints);
const scenario: fc.Arbitrary<Scenario> = setpointArb.chain((sp) => {
  const lo = si(sp.range.min, sp.range.unit);
  const hi = si(sp.range.max, sp.range.unit);
  const step = si(sp.maxStep.value, sp.maxStep.unit);
  const inRange = fc.double({ min: lo, max: hi, noNaN: true });
  const near = (x: number) => fc.double({ min: x - 1e-6, max: x + 1e-6, noNaN: true });
  return fc.record({
    name: fc.oneof({ weight: 20, arbitrary: fc.constant(sp.name) }, { weight: 1, arbitrary: fc.constantFrom('impeller', 'constructor') }),
    unit: fc.oneof({ weight: 20, arbitrary: fc.constant(SI_UNIT[sp.dimension] ?? '?') }, { weight: 1, arbitrary: fc.constantFrom('rpm', '%', 'bar', 'Pa') }),
    mode: fc.constantFrom<Mode>('normal', 'reduced'),
    measured: inRange,
    // Mostly close to the measured value (a settled loop), sometimes anywhere in range (a device that lags or reset).
    reportedOffset: fc.oneof({ weight: 4, arbitrary: fc.double({ min: -step / 2, max: step / 2, noNaN: true }) }, { weight: 1, arbitrary: fc.constant(NaN) }),
    reportedAnywhere: inRange,
    delta: fc.oneof(
      fc.double({ min: -1.5 * step, max: 1.5 * step, noNaN: true }),
      fc.constantFrom(step, -step, 0).chain(near),
      fc.double(),
    ),
    release: fc.option(fc.record({ delta: fc.double({ min: -step, max: step, noNaN: true }), ageMs: fc.oneof(fc.integer({ min: -10, max: 3000 }), fc.constant(0)) }), { freq: 3 }),
    dischargePa: fc.oneof({ weight: 4, arbitrary: fc.double({ min: 0, max: 7.9e5, noNaN: true }) }, { weight: 1, arbitrary: fc.oneof(fc.double({ min: 0, max: 10e5, noNaN: true }), near(8e5), fc.constant(8e5)) }),
    tankM: fc.oneof({ weight: 4, arbitrary: fc.double({ min: 0.3, max: 3, noNaN: true }) }, { weight: 1, arbitrary: fc.oneof(fc.double({ min: 0, max: 3, noNaN: true }), near(0.2), fc.constant(0.2)) }),
  }).map(({ delta, release, reportedOffset, reportedAnywhere, ...rest }) => ({
    ...rest,
    reported: Number.isNaN(reportedOffset) ? reportedAnywhere : Math.min(hi, Math.max(lo, rest.measured + reportedOffset)),
    // The command lands relative to the measured value, so allows (small deltas) and denies both happen.
    value: rest.measured + delta,
    release: release === null ? undefined : { value: Math.min(hi, Math.max(lo, rest.measured + release.delta)), ageMs: release.ageMs },
  }));
});

t.test('property: every allowed set_setpoint is safe by the YAML (independent checker)', async (t) => {
  let allows = 0;
  fc.assert(
    fc.property(scenario, (s) => {
      const result = engine(s);
      if (result.verdict === 'allow') {
        allows += 1;
        return result.reasons.length === 0 && safeBy(s);
      }
      return result.verdict === 'deny' && result.reasons.length > 0 && result.reasons.every((r) => r.stage === 'bounds' && typeof r.ruleId === 'string');
    }),
    { numRuns: 20000, seed: 31415 },
  );
  t.ok(allows > 2000, `allows were exercised (${allows} of 20000)`);
});

t.test('property: what is clearly safe is allowed (no false blocks inside the margins)', async (t) => {
  let checked = 0;
  fc.assert(
    fc.property(scenario, (s) => {
      const sp = yaml.setpoints.find((x) => x.name === s.name);
      if (sp === undefined || s.unit !== SI_UNIT[sp.dimension]) return true;
      // Every limit computed here, with a relative margin of 1e-9 (or slack) on the safe side of each.
      const step = si(sp.maxStep.value, sp.maxStep.unit);
      const stepsOk = [s.measured, s.reported, ...(s.release ? [s.release.value] : [])].every((r) => Math.abs(s.value - r) <= step - slack(step));
      const rateOk =
        s.release === undefined ||
        Math.abs(s.value - s.release.value) <= ((si(sp.maxRate.value, sp.maxRate.unit) * s.release.ageMs) / si(sp.maxRate.per.value, sp.maxRate.per.unit)) * (1 - 1e-9);
      const top = sp.max === undefined ? si(sp.range.max, sp.range.unit) : si(sp.max[s.mode], sp.max.unit);
      const bottom = si(sp.range.min, sp.range.unit);
      const rangeOk = s.value >= bottom + (bottom === 0 ? 0 : slack(bottom)) && s.value <= top - slack(top);
      const tripsClear = !yaml.trips.some((trip) => tripHolds(trip, { discharge_pressure: s.dischargePa, tank_level: s.tankM }));
      if (!(stepsOk && rateOk && rangeOk && tripsClear)) return true;
      checked += 1;
      return engine(s).verdict === 'allow';
    }),
    { numRuns: 20000, seed: 2718 },
  );
  t.ok(checked > 2000, `clearly safe commands were all allowed (${checked} of 20000)`);
});

// ---- Latching: random sequences against an independent latch model. ----

type Event =
  | { kind: 'state'; dischargeBar: number; tankM: number }
  | { kind: 'set' }
  | { kind: 'reset'; trip: string };

const TRIP_IDS = yaml.trips.map((trip) => trip.id);
const eventArb: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('state' as const),
      dischargeBar: fc.oneof(fc.double({ min: 0, max: 10, noNaN: true }), fc.constantFrom(7.99999, 8, 8.00001, 1)),
      tankM: fc.oneof(fc.double({ min: 0, max: 3, noNaN: true }), fc.constantFrom(0.19999, 0.2, 0.20001, 2)),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'set' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reset' as const), trip: fc.constantFrom(...TRIP_IDS, 'not_a_trip') }) },
);

t.test('property: a trip once seen stays latched until a reset is released with its condition clear', async (t) => {
  fc.assert(
    fc.property(fc.array(eventArb, { minLength: 1, maxLength: 40 }), (events) => {
      const memory: DeviceMemory = new Map();
      const latched = new Set<string>();
      let measurements: Record<string, number | boolean> = { discharge_pressure: 1e5, tank_level: 2 };
      let nowMs = NOW;
      for (const event of events) {
        nowMs += 10;
        const state = restState({ measurements });
        if (event.kind === 'state') {
          measurements = { discharge_pressure: event.dischargeBar * 1e5, tank_level: event.tankM };
          const next = restState({ measurements });
          PROCESS_UNIT_BOUNDS.observe?.(pump, next, memory, nowMs);
          for (const trip of yaml.trips) if (tripHolds(trip, measurements)) latched.add(trip.id);
          continue;
        }
        PROCESS_UNIT_BOUNDS.observe?.(pump, state, memory, nowMs);
        if (event.kind === 'set') {
          // Holding the pump speed at 0 at rest: only trips can deny it.
          const result = checkProcessUnit(pump, { action: 'set_setpoint', params: { name: 'pump_speed', value: 0, unit: 'rad/s' } }, context(state, { memory, nowMs }));
          if ((result.verdict === 'allow') !== (latched.size === 0)) return false;
          if (result.verdict === 'deny' && !result.reasons.every((r) => r.code === 'BOUNDS_TRIP_LATCHED')) return false;
        } else {
          const command = { action: 'reset_trip', params: { trip: event.trip } };
          const result = checkProcessUnit(pump, command, context(state, { memory, nowMs }));
          const trip = yaml.trips.find((x) => x.id === event.trip);
          const resettable = trip !== undefined && latched.has(trip.id) && !tripHolds(trip, measurements);
          if ((result.verdict === 'allow') !== resettable) return false;
          if (result.verdict === 'allow') {
            PROCESS_UNIT_BOUNDS.released?.(pump, command, memory, nowMs);
            latched.delete(event.trip);
          }
        }
      }
      return true;
    }),
    { numRuns: 3000, seed: 1618 },
  );
  t.pass('the engine agrees with the latch model on every step');
});
