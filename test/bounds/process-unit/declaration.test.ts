// The process_unit declaration and state message: pump-1.yaml converts to the SI numbers computed here with this
// file's own factors; every kind of declaration mistake is a load problem naming file, path and line; and state
// messages that do not match the declaration are refused before they can become state.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { loadCell } from '../../../src/declarations/load.js';
import { parseDeviceState } from '../../../src/interlock/state-store.js';
import type { ProcessUnitState } from '../../../src/core/kinds/process-unit.js';
import { DEMO_CELL, makeTestCell } from '../../helpers/test-cell.js';
import { pump } from './fixtures.js';

const YAML_TEXT = readFileSync(join(DEMO_CELL, 'devices', 'pump-1.yaml'), 'utf8');

/** Factors to SI written out here, for the units pump-1.yaml uses. */
const FACTOR: Record<string, number> = { rpm: (2 * Math.PI) / 60, '%': 0.01, bar: 1e5, m: 1, s: 1000, ms: 1 };
const si = (q: { value: number; unit: string }): number => {
  const factor = FACTOR[q.unit];
  if (factor === undefined) throw new Error(`test has no factor for ${q.unit}`);
  return q.value * factor;
};

t.test('pump-1.yaml converts to SI: every setpoint, permissive, trip and the safe state', async (t) => {
  const raw = parse(YAML_TEXT) as {
    setpoints: { name: string; range: { min: number; max: number; unit: string }; max?: { normal: number; reduced: number; unit: string }; maxRate: { value: number; unit: string; per: { value: number; unit: string } }; maxStep: { value: number; unit: string } }[];
    permissives: { id: string; atLeast?: { value: number; unit: string }; atMost?: { value: number; unit: string }; equals?: boolean }[];
    trips: { id: string; atLeast?: { value: number; unit: string }; atMost?: { value: number; unit: string } }[];
    safeState: { running: boolean; setpoints: Record<string, { value: number; unit: string }> };
  };
  const near = (a: number | undefined, b: number, what: string): void => void t.ok(a !== undefined && Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} ≈ ${b}`);
  t.same(pump.setpoints.map((s) => s.name), raw.setpoints.map((s) => s.name));
  raw.setpoints.forEach((r, i) => {
    const s = pump.setpoints[i];
    near(s?.min, si({ value: r.range.min, unit: r.range.unit }), `${r.name} min`);
    near(s?.max, si({ value: r.range.max, unit: r.range.unit }), `${r.name} max`);
    if (r.max !== undefined) {
      near(s?.modeMax?.normal, si({ value: r.max.normal, unit: r.max.unit }), `${r.name} normal max`);
      near(s?.modeMax?.reduced, si({ value: r.max.reduced, unit: r.max.unit }), `${r.name} reduced max`);
    } else t.equal(s?.modeMax, undefined, `${r.name} has no mode max`);
    near(s?.maxStep, si(r.maxStep), `${r.name} maxStep`);
    near((s?.maxRate.amount ?? NaN) / (s?.maxRate.perMs ?? NaN), si({ value: r.maxRate.value, unit: r.maxRate.unit }) / si(r.maxRate.per), `${r.name} maxRate per ms`);
  });
  t.same(pump.permissives.map((p) => p.id), raw.permissives.map((p) => p.id));
  raw.permissives.forEach((r, i) => {
    const p = pump.permissives[i];
    if (r.equals !== undefined) t.same(p, { id: r.id, measurement: p?.measurement, test: 'equals', expected: r.equals });
    else near(p !== undefined && p.test !== 'equals' ? p.limit : undefined, si((r.atLeast ?? r.atMost) as { value: number; unit: string }), `permissive ${r.id}`);
  });
  raw.trips.forEach((r, i) => {
    const p = pump.trips[i];
    t.equal(p?.test, r.atLeast !== undefined ? 'atLeast' : 'atMost', `trip ${r.id} test`);
    near(p !== undefined && p.test !== 'equals' ? p.limit : undefined, si((r.atLeast ?? r.atMost) as { value: number; unit: string }), `trip ${r.id}`);
  });
  t.equal(pump.safeState.running, raw.safeState.running);
  for (const [name, q] of Object.entries(raw.safeState.setpoints)) near(pump.safeState.setpoints[name], si(q), `safe ${name}`);
});

t.test('declaration mistakes are load problems with file, path and line; nothing loads partially', async (t) => {
  const cases: { name: string; from: string; to: string; path: string; message: RegExp }[] = [
    { name: 'a state unit other than the internal SI unit', from: 'stateUnit: Pa', to: 'stateUnit: bar', path: '/measurements/0/stateUnit', message: /allowed values: "Pa"/ },
    { name: 'a length unit for a speed range', from: 'range: { min: 0, max: 2900, unit: rpm }', to: 'range: { min: 0, max: 2900, unit: mm }', path: '/setpoints/0/range/unit', message: /"rpm"/ },
    { name: 'temperature (affine, unsupported)', from: 'dimension: angularVelocity\n    measurement: pump_speed', to: 'dimension: temperature\n    measurement: pump_speed', path: '/setpoints/0/dimension', message: /allowed values/ },
    { name: 'equals on a quantity', from: 'measurement: suction_valve_open\n    equals: true', to: 'measurement: tank_level\n    equals: true', path: '/permissives/0/equals', message: /boolean measurements/ },
    { name: 'atLeast on a boolean', from: 'measurement: tank_level\n    atLeast: { value: 0.5, unit: m }', to: 'measurement: suction_valve_open\n    atLeast: { value: 0.5, unit: m }', path: '/permissives/2/atLeast', message: /use equals/ },
    { name: 'a condition unit of the wrong dimension', from: 'atLeast: { value: 0.2, unit: bar }', to: 'atLeast: { value: 0.2, unit: m }', path: '/permissives/1/atLeast/unit', message: /not a pressure unit/ },
    { name: 'atLeast and atMost together', from: 'atLeast: { value: 0.2, unit: bar }', to: 'atLeast: { value: 0.2, unit: bar }\n    atMost: { value: 2, unit: bar }', path: '/permissives/1', message: /Exactly one of atLeast/ },
    { name: 'a condition with no test', from: '    atLeast: { value: 0.2, unit: bar }\n', to: '', path: '/permissives/1', message: /allowed forms/ },
    { name: 'a condition on an undeclared measurement', from: 'measurement: discharge_pressure\n    atLeast', to: 'measurement: outlet_pressure\n    atLeast', path: '/trips/0/measurement', message: /no measurement "outlet_pressure"/ },
    { name: 'a safe state without every setpoint', from: "    discharge_valve: { value: 0, unit: '%' }\n", to: '', path: '/safeState/setpoints', message: /no safe value for setpoint "discharge_valve"/ },
    { name: 'a safe value outside its range', from: "suction_valve: { value: 100, unit: '%' }", to: "suction_valve: { value: 120, unit: '%' }", path: '/safeState/setpoints/suction_valve/value', message: /outside/ },
    { name: 'a safe value for an unknown setpoint', from: "    discharge_valve: { value: 0, unit: '%' }\n", to: "    discharge_valve: { value: 0, unit: '%' }\n    bypass_valve: { value: 0, unit: '%' }\n", path: '/safeState/setpoints/bypass_valve', message: /no setpoint "bypass_valve"/ },
    { name: 'a setpoint tied to an undeclared measurement', from: 'measurement: discharge_valve_position\n    range', to: 'measurement: discharge_valve_pos\n    range', path: '/setpoints/2/measurement', message: /no measurement/ },
    { name: 'a setpoint tied to a measurement of another dimension', from: 'measurement: discharge_valve_position\n    range', to: 'measurement: tank_level\n    range', path: '/setpoints/2/measurement', message: /not a ratio/ },
    { name: 'a mode maximum above the range', from: 'max: { normal: 2900, reduced: 1450, unit: rpm }', to: 'max: { normal: 3000, reduced: 1450, unit: rpm }', path: '/setpoints/0/max', message: /must not exceed range.max/ },
    { name: 'reduced looser than normal', from: 'max: { normal: 2900, reduced: 1450, unit: rpm }', to: 'max: { normal: 1000, reduced: 1450, unit: rpm }', path: '/setpoints/0/max', message: /reduced .* must not exceed normal/ },
    { name: 'an inverted range', from: 'range: { min: 0, max: 2900, unit: rpm }', to: 'range: { min: 2900, max: 0, unit: rpm }', path: '/setpoints/0/range', message: /less than max/ },
    { name: 'a setpoint name used twice', from: '  - name: suction_valve\n', to: '  - name: pump_speed\n', path: '/setpoints/1/name', message: /used twice/ },
    { name: 'a trip id used twice', from: 'id: low_tank_level', to: 'id: high_discharge_pressure', path: '/trips/1/id', message: /used twice/ },
    { name: 'a zero rate window', from: 'per: { value: 1, unit: s } }  # the drive', to: 'per: { value: 0, unit: s } }  # the drive', path: '/setpoints/0/maxRate/per/value', message: /> 0/ },
    { name: 'a zero maxStep', from: 'maxStep: { value: 600, unit: rpm }', to: 'maxStep: { value: 0, unit: rpm }', path: '/setpoints/0/maxStep/value', message: /> 0/ },
    { name: 'a setpoint without maxRate', from: "    maxRate: { value: 50, unit: '%', per: { value: 1, unit: s } }\n", to: '', path: '/setpoints/1', message: /missing required field "maxRate"/ },
  ];
  for (const c of cases) {
    t.ok(YAML_TEXT.includes(c.from), `${c.name}: the edit applies`);
    const edited = makeTestCell({ 'devices/pump-1.yaml': YAML_TEXT.replace(c.from, c.to) });
    try {
      const result = loadCell(edited.cellDir);
      t.equal(result.ok, false, `${c.name}: refused`);
      if (result.ok) continue;
      const problem = result.problems.find((p) => p.path === c.path);
      t.ok(problem !== undefined, `${c.name}: a problem at ${c.path} (got ${result.problems.map((p) => `${p.path}: ${p.message}`).join('; ')})`);
      t.equal(problem?.file, 'devices/pump-1.yaml', `${c.name}: file`);
      t.match(problem?.message ?? '', c.message, `${c.name}: message`);
      t.type(problem?.line, 'number', `${c.name}: line`);
    } finally {
      edited.cleanup();
    }
  }
});

t.test('state messages: every declared measurement and setpoint, finite and of the right type, nothing else', async (t) => {
  const good = {
    measurements: {
      suction_pressure: 39000,
      discharge_pressure: 400000,
      discharge_flow: 0.015,
      tank_level: 2,
      pump_speed: 125.6,
      suction_valve_position: 1,
      discharge_valve_position: 0.4,
      suction_valve_open: true,
    },
    setpoints: { pump_speed: 125.6, suction_valve: 1, discharge_valve: 0.4 },
    running: true,
    trips: [] as string[],
  };
  const parsed = parseDeviceState(pump, JSON.stringify({ ...good, safeStopped: false, lastCommandId: 'c-1', timeMs: 1, people: [[1, 2]] }));
  t.equal(parsed.ok, true, 'a complete message');
  if (parsed.ok) {
    const state = parsed.observed.state as ProcessUnitState;
    t.equal(state.measurements['pump_speed'], 125.6);
    t.equal(state.lastCommandId, 'c-1');
    t.equal(Object.hasOwn(state.measurements, 'constructor'), false, 'no prototype keys');
  }
  const cases: { name: string; message: string; problem: RegExp }[] = [
    { name: 'a measurement missing', message: JSON.stringify({ ...good, measurements: { ...good.measurements, tank_level: undefined } }), problem: /lacks measurement "tank_level"/ },
    { name: 'an undeclared measurement', message: JSON.stringify({ ...good, measurements: { ...good.measurements, bearing_temp: 80 } }), problem: /"bearing_temp"/ },
    { name: 'a prototype key as a measurement', message: JSON.stringify({ ...good, measurements: { ...good.measurements, constructor: 1 } }), problem: /"constructor"/ },
    { name: 'a number for the limit switch', message: JSON.stringify({ ...good, measurements: { ...good.measurements, suction_valve_open: 1 } }), problem: /true or false/ },
    { name: 'a boolean for a pressure', message: JSON.stringify({ ...good, measurements: { ...good.measurements, discharge_pressure: true } }), problem: /finite number in Pa/ },
    { name: 'Infinity (1e400)', message: JSON.stringify(good).replace('"discharge_pressure":400000', '"discharge_pressure":1e400'), problem: /must be number|finite/ },
    { name: 'a numeric string', message: JSON.stringify({ ...good, measurements: { ...good.measurements, tank_level: '2' } }), problem: /must be number/ },
    { name: 'a setpoint missing', message: JSON.stringify({ ...good, setpoints: { pump_speed: 1, suction_valve: 1 } }), problem: /setpoint "discharge_valve"/ },
    { name: 'an undeclared setpoint', message: JSON.stringify({ ...good, setpoints: { ...good.setpoints, bypass: 0 } }), problem: /"bypass"/ },
    { name: 'no running flag', message: JSON.stringify({ ...good, running: undefined }), problem: /running/ },
    { name: 'no trips list (a driver must say "none")', message: JSON.stringify({ ...good, trips: undefined }), problem: /trips/ },
    { name: 'a trip id that is not an identifier', message: JSON.stringify({ ...good, trips: ['high pressure!'] }), problem: /pattern/ },
    { name: 'an unknown top-level field', message: JSON.stringify({ ...good, temperature: 20 }), problem: /temperature/ },
  ];
  for (const c of cases) {
    const result = parseDeviceState(pump, c.message);
    t.equal(result.ok, false, c.name);
    if (!result.ok) t.match(result.problem, c.problem, c.name);
  }
});
