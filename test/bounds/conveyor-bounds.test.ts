// Adversarial unit tests for the conveyor bounds: speed (forward, reverse, per mode), ramp, reversal only from
// standstill, step per command (against the measured speed and the last released setpoint), permissives, and the
// live-state preconditions. A property test cross-checks every allow against limits computed here from the YAML,
// independently of the engine's loader and unit table. Real demo-cell declarations; fixed clock; no sockets.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { parse } from 'yaml';
import { checkBounds } from '../../src/bounds/bounds.js';
import { checkConveyorSetSpeed, CONVEYOR_BOUNDS } from '../../src/bounds/conveyor-bounds.js';
import type { VerifiedCommand } from '../../src/core/command.js';
import type { AgentDeclaration } from '../../src/core/declarations.js';
import type { LastRelease, ObservedState, ReleaseView } from '../../src/core/device-state.js';
import type { ConveyorDeclaration, ConveyorState } from '../../src/core/kinds/conveyor.js';
import type { Mode } from '../../src/core/kinds/kind-spec.js';
import type { StageResult } from '../../src/core/verdict.js';
import { loadCell } from '../../src/declarations/load.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { parseDeviceState } from '../../src/interlock/state-store.js';
import { BoundsMemory, evaluateCommand, NO_RELEASES } from '../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { assertReasons, type Expected } from '../helpers/assert-reasons.js';

const NOW = 1_700_000_000_000;
const ID = 'conveyor-1';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const conveyor = loaded.declarations.devices.get(ID) as ConveyorDeclaration;

// The YAML as an operator wrote it, read here without the engine's loader or unit table.
interface YamlModeLimit {
  normal: number;
  reduced: number;
  unit: string;
}
const yaml = parse(readFileSync(join(DEMO_CELL, 'devices', `${ID}.yaml`), 'utf8')) as {
  maxStateAge: { value: number; unit: string };
  maxSpeed: YamlModeLimit;
  reverse: { allowed: boolean; maxSpeed: YamlModeLimit };
  maxRamp: YamlModeLimit;
  minRamp: { value: number; unit: string };
  standstill: { value: number; unit: string };
  maxStep: { value: number; unit: string };
  permissives: string[];
};
const TO_SI: Record<string, number> = { 'm/s': 1, 'mm/s': 0.001, 'm/s^2': 1 };
const si = (value: number, unit: string): number => {
  const factor = TO_SI[unit];
  if (factor === undefined) throw new Error(`test does not know unit ${unit}`);
  return value * factor;
};
if (yaml.maxStateAge.unit !== 'ms' || !yaml.reverse.allowed) throw new Error('test expects maxStateAge in ms and reverse allowed');
const LIMITS = {
  forward: { normal: si(yaml.maxSpeed.normal, yaml.maxSpeed.unit), reduced: si(yaml.maxSpeed.reduced, yaml.maxSpeed.unit) },
  reverse: { normal: si(yaml.reverse.maxSpeed.normal, yaml.reverse.maxSpeed.unit), reduced: si(yaml.reverse.maxSpeed.reduced, yaml.reverse.maxSpeed.unit) },
  ramp: { normal: si(yaml.maxRamp.normal, yaml.maxRamp.unit), reduced: si(yaml.maxRamp.reduced, yaml.maxRamp.unit) },
  minRamp: si(yaml.minRamp.value, yaml.minRamp.unit),
  standstill: si(yaml.standstill.value, yaml.standstill.unit),
  step: si(yaml.maxStep.value, yaml.maxStep.unit),
  maxStateAgeMs: yaml.maxStateAge.value,
} as const;
const PERMISSIVES = yaml.permissives;
const ALL_TRUE = Object.fromEntries(PERMISSIVES.map((name) => [name, true]));

function state(speedMPerS: number, permissives: Record<string, boolean> = ALL_TRUE): ConveyorState {
  return { kind: 'conveyor', speedMPerS, permissives, running: speedMPerS !== 0, safeStopped: false, lastCommandId: null };
}

/** The last release: a set_speed at `setpoint`, a stop, or nothing. */
function lastRelease(setpoint: number | 'stop' | undefined, action?: string): LastRelease | undefined {
  if (setpoint === undefined) return undefined;
  if (setpoint === 'stop') return { commandId: 'cmd-prev', action: 'stop', params: {}, releasedAtMs: NOW - 100 };
  return { commandId: 'cmd-prev', action: action ?? 'set_speed', params: { speedMPerS: setpoint }, releasedAtMs: NOW - 100 };
}

interface Situation {
  readonly measured?: number;
  readonly setpoint?: number | 'stop';
  readonly mode?: Mode;
  readonly permissives?: Record<string, boolean>;
  readonly device?: ConveyorDeclaration;
}

function check(params: Record<string, unknown>, s: Situation = {}): StageResult {
  return checkConveyorSetSpeed(s.device ?? conveyor, params, {
    mode: s.mode ?? 'normal',
    state: state(s.measured ?? 0, s.permissives ?? ALL_TRUE),
    lastRelease: lastRelease(s.setpoint),
  });
}

const SPEED = '/params/speedMPerS';
const speedRule = (mode: Mode): string => `${ID}/maxSpeed/${mode}`;
const reverseRule = (mode: Mode): string => `${ID}/reverse/maxSpeed/${mode}`;
const stepMeasured = (actual: number): Expected => ({ code: 'BOUNDS_CONVEYOR_STEP', ruleId: `${ID}/maxStep/measured`, path: SPEED, limit: LIMITS.step, actual, unit: 'm/s' });
const stepSetpoint = (actual: number): Expected => ({ code: 'BOUNDS_CONVEYOR_STEP', ruleId: `${ID}/maxStep/lastRelease`, path: SPEED, limit: LIMITS.step, actual, unit: 'm/s' });

t.test('limits were converted from the YAML (standstill written in mm/s)', async (t) => {
  t.same(conveyor.maxSpeedMPerS, LIMITS.forward);
  t.same(conveyor.reverse, { allowed: true, maxSpeedMPerS: LIMITS.reverse });
  t.same(conveyor.maxRampMPerS2, LIMITS.ramp);
  t.ok(Math.abs(conveyor.standstillMPerS - 0.01) < 1e-15, 'standstill 10 mm/s = 0.01 m/s');
  t.equal(conveyor.maxStepMPerS, LIMITS.step);
  t.same(conveyor.permissives, PERMISSIVES);
  t.equal(conveyor.maxStateAgeMs, LIMITS.maxStateAgeMs);
});

t.test('declaration problems in a conveyor file are reported with path and reason; the cell does not load', async (t) => {
  const base = readFileSync(join(DEMO_CELL, 'devices', `${ID}.yaml`), 'utf8');
  const reverseBlock = 'reverse:\n  allowed: true\n  maxSpeed: { normal: 0.15, reduced: 0.1, unit: m/s }\n';
  const cases: { name: string; from: string; to: string; path: string; message: RegExp }[] = [
    { name: 'reverse omitted (must be decided explicitly)', from: reverseBlock, to: '', path: '', message: /missing required field "reverse"/ },
    { name: 'reverse not allowed but a reverse maxSpeed given', from: '  allowed: true\n', to: '  allowed: false\n', path: '/reverse/maxSpeed', message: /must not be given/ },
    { name: 'reverse allowed without a maxSpeed', from: reverseBlock, to: 'reverse: { allowed: true }\n', path: '/reverse', message: /reverse.maxSpeed is required/ },
    { name: 'standstill at the reduced speed limit', from: 'standstill: { value: 10, unit: mm/s }', to: 'standstill: { value: 0.1, unit: m/s }', path: '/standstill', message: /below the reduced reverse maxSpeed/ },
    { name: 'reduced looser than normal', from: 'maxSpeed: { normal: 0.5, reduced: 0.25, unit: m/s }', to: 'maxSpeed: { normal: 0.5, reduced: 0.6, unit: m/s }', path: '/maxSpeed', message: /reduced \(0.6\) must not exceed normal/ },
    { name: 'a ramp in a speed unit', from: 'unit: m/s^2 }', to: 'unit: m/s }', path: '/maxRamp/unit', message: /allowed values/ },
    { name: 'a speed in an unknown unit', from: 'reduced: 0.25, unit: m/s }', to: 'reduced: 0.25, unit: km/h }', path: '/maxSpeed/unit', message: /allowed values/ },
    { name: 'maxStep of zero', from: 'maxStep: { value: 0.2', to: 'maxStep: { value: 0', path: '/maxStep/value', message: /must be > 0/ },
    { name: 'a permissive listed twice', from: '  - downstreamReady', to: '  - guardClosed', path: '/permissives', message: /duplicate/ },
    { name: 'a permissive name with a slash', from: '  - downstreamReady', to: '  - downstream/ready', path: '/permissives/2', message: /pattern/ },
    { name: 'permissives omitted', from: 'permissives:\n  - guardClosed ', to: 'xpermissives:\n  - guardClosed ', path: '', message: /missing required field "permissives"/ },
  ];
  for (const c of cases) {
    if (!base.includes(c.from)) throw new Error(`${c.name}: the edit no longer applies to the demo file`);
    const broken = makeTestCell({ [`devices/${ID}.yaml`]: base.replace(c.from, c.to) });
    try {
      const result = loadCell(broken.cellDir);
      t.equal(result.ok, false, `${c.name}: refused`);
      const problems = result.ok ? [] : result.problems.filter((p) => p.file === `devices/${ID}.yaml`);
      t.ok(
        problems.some((p) => p.path === c.path && c.message.test(p.message)),
        `${c.name}: ${c.path} ${String(c.message)} (got ${JSON.stringify(problems.map((p) => [p.path, p.message]))})`,
      );
    } finally {
      broken.cleanup();
    }
  }
  const forwardOnly = makeTestCell({ [`devices/${ID}.yaml`]: base.replace(reverseBlock, 'reverse: { allowed: false }\n') });
  try {
    const result = loadCell(forwardOnly.cellDir);
    t.ok(result.ok && result.cell.declarations.devices.get(ID)?.kind === 'conveyor', 'reverse: { allowed: false } loads');
    if (result.ok) t.same((result.cell.declarations.devices.get(ID) as ConveyorDeclaration).reverse, { allowed: false });
  } finally {
    forwardOnly.cleanup();
  }
});

t.test('speed: at, just under and just over each limit; -0; NaN, ±Infinity, numeric strings (direct)', async (t) => {
  const fwd = LIMITS.forward.normal;
  const rev = LIMITS.reverse.normal;
  // Each case starts next to its target (measured and last setpoint) so that only the speed limit is in play.
  const cases: { name: string; params: Record<string, unknown>; near: number; expected: Expected[] }[] = [
    // Proves the forward limit is inclusive.
    { name: 'exactly forward max', params: { speedMPerS: fwd }, near: fwd - 0.05, expected: [] },
    { name: 'forward max - 1e-9', params: { speedMPerS: fwd - 1e-9 }, near: fwd - 0.05, expected: [] },
    // Proves the smallest excess is denied, never slowed to the limit.
    { name: 'forward max + 1e-9', params: { speedMPerS: fwd + 1e-9 }, near: fwd - 0.05, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('normal'), path: SPEED, limit: fwd, actual: fwd + 1e-9, unit: 'm/s' }] },
    { name: 'zero at standstill', params: { speedMPerS: 0 }, near: 0, expected: [] },
    // Proves -0 is standstill, not reverse.
    { name: '-0 at standstill', params: { speedMPerS: -0 }, near: 0, expected: [] },
    { name: 'exactly reverse max', params: { speedMPerS: -rev }, near: -rev + 0.05, expected: [] },
    { name: 'reverse max - 1e-9 (slower)', params: { speedMPerS: -rev + 1e-9 }, near: -rev + 0.05, expected: [] },
    { name: 'reverse max + 1e-9 (faster)', params: { speedMPerS: -rev - 1e-9 }, near: -rev + 0.05, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: reverseRule('normal'), path: SPEED, limit: -rev, actual: -rev - 1e-9, unit: 'm/s' }] },
    // Proves NaN fails the speed check (and is not also reported as a reversal or a step).
    { name: 'NaN', params: { speedMPerS: NaN }, near: 0, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('normal'), path: SPEED, limit: fwd, actual: NaN, unit: 'm/s' }] },
    { name: '+Infinity', params: { speedMPerS: Infinity }, near: 0.4, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('normal'), actual: Infinity }, stepMeasured(Infinity), stepSetpoint(Infinity)] },
    { name: '-Infinity', params: { speedMPerS: -Infinity }, near: -0.1, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: reverseRule('normal'), limit: -rev, actual: -Infinity }, stepMeasured(Infinity), stepSetpoint(Infinity)] },
    // Proves a numeric string never reaches a comparison ("0.3" <= 0.5 is true in JavaScript).
    { name: 'numeric string "0.3"', params: { speedMPerS: '0.3' }, near: 0.3, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('normal'), actual: NaN }] },
    { name: 'null', params: { speedMPerS: null }, near: 0, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', actual: NaN }] },
    { name: 'missing speedMPerS', params: {}, near: 0, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', actual: NaN }] },
    // Proves a value in the wrong unit scale (mm/s typed into the m/s field) lands far outside the limits.
    { name: '400 (mm/s typed as m/s)', params: { speedMPerS: 400 }, near: 0.4, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', actual: 400 }, stepMeasured(399.6), stepSetpoint(399.6)] },
  ];
  for (const c of cases) assertReasons(t, check(c.params, { measured: c.near, setpoint: c.near }), c.expected, c.name);
});

t.test('speed in reduced mode uses the reduced limits and names them', async (t) => {
  const fwd = LIMITS.forward.reduced;
  const rev = LIMITS.reverse.reduced;
  const cases: { name: string; speed: number; near: number; expected: Expected[] }[] = [
    { name: 'exactly reduced forward max', speed: fwd, near: fwd - 0.05, expected: [] },
    { name: 'reduced forward max + 1e-9', speed: fwd + 1e-9, near: fwd - 0.05, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('reduced'), limit: fwd, actual: fwd + 1e-9, unit: 'm/s' }] },
    // Proves the normal limit is not what applies in reduced mode.
    { name: 'normal forward max in reduced', speed: LIMITS.forward.normal, near: LIMITS.forward.normal - 0.05, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('reduced'), limit: fwd }] },
    { name: 'exactly reduced reverse max', speed: -rev, near: -rev + 0.05, expected: [] },
    { name: 'reduced reverse max + 1e-9', speed: -rev - 1e-9, near: -rev + 0.05, expected: [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: reverseRule('reduced'), limit: -rev, actual: -rev - 1e-9 }] },
  ];
  for (const c of cases) assertReasons(t, check({ speedMPerS: c.speed }, { mode: 'reduced', measured: c.near, setpoint: c.near }), c.expected, c.name);
});

t.test('reverse not allowed: any negative speed is denied, -0 is not reverse', async (t) => {
  const forwardOnly: ConveyorDeclaration = { ...conveyor, reverse: { allowed: false } };
  const rule = { code: 'BOUNDS_CONVEYOR_REVERSE_NOT_ALLOWED', ruleId: `${ID}/reverse/allowed`, path: SPEED, limit: 0, unit: 'm/s' } as const;
  const cases: { name: string; speed: number; expected: Expected[] }[] = [
    { name: '-0', speed: -0, expected: [] },
    { name: '+0.1', speed: 0.1, expected: [] },
    { name: 'smallest negative double', speed: -Number.MIN_VALUE, expected: [{ ...rule, actual: -Number.MIN_VALUE }] },
    { name: '-0.05 from standstill', speed: -0.05, expected: [{ ...rule, actual: -0.05 }] },
    { name: '-Infinity', speed: -Infinity, expected: [{ ...rule, actual: -Infinity }, stepMeasured(Infinity)] },
  ];
  for (const c of cases) assertReasons(t, check({ speedMPerS: c.speed }, { device: forwardOnly }), c.expected, c.name);
});

t.test('ramp: absent, at, just under and just over the mode limit and minRamp; 0, -0, negative, NaN, ±Infinity, strings', async (t) => {
  const RAMP = '/params/rampMPerS2';
  const rule = (mode: Mode, actual: number): Expected => ({ code: 'BOUNDS_CONVEYOR_RAMP', ruleId: `${ID}/maxRamp/${mode}`, path: RAMP, limit: LIMITS.ramp[mode], actual, unit: 'm/s^2' });
  const slow = (actual: number): Expected => ({ code: 'BOUNDS_CONVEYOR_RAMP', ruleId: `${ID}/minRamp`, path: RAMP, limit: LIMITS.minRamp, actual, unit: 'm/s^2' });
  const cases: { name: string; ramp: unknown; mode: Mode; expected: Expected[] }[] = [
    { name: 'exactly the normal limit', ramp: LIMITS.ramp.normal, mode: 'normal', expected: [] },
    { name: 'normal limit - 1e-9', ramp: LIMITS.ramp.normal - 1e-9, mode: 'normal', expected: [] },
    // Proves a ramp above the limit is denied, never reduced to it.
    { name: 'normal limit + 1e-9', ramp: LIMITS.ramp.normal + 1e-9, mode: 'normal', expected: [rule('normal', LIMITS.ramp.normal + 1e-9)] },
    { name: 'exactly the reduced limit in reduced', ramp: LIMITS.ramp.reduced, mode: 'reduced', expected: [] },
    { name: 'the normal limit in reduced', ramp: LIMITS.ramp.normal, mode: 'reduced', expected: [rule('reduced', LIMITS.ramp.normal)] },
    // Proves the declared minimum: a crawl, zero and negative ramps are denied against minRamp (never raised to it).
    { name: 'exactly minRamp', ramp: LIMITS.minRamp, mode: 'normal', expected: [] },
    { name: 'minRamp - 1e-9', ramp: LIMITS.minRamp - 1e-9, mode: 'normal', expected: [slow(LIMITS.minRamp - 1e-9)] },
    { name: 'a crawl of 1e-6 m/s^2', ramp: 1e-6, mode: 'reduced', expected: [slow(1e-6)] },
    { name: 'zero', ramp: 0, mode: 'normal', expected: [slow(0)] },
    { name: '-0', ramp: -0, mode: 'normal', expected: [slow(-0)] },
    { name: 'negative', ramp: -0.1, mode: 'normal', expected: [slow(-0.1)] },
    { name: 'NaN', ramp: NaN, mode: 'normal', expected: [rule('normal', NaN)] },
    { name: '+Infinity', ramp: Infinity, mode: 'normal', expected: [rule('normal', Infinity)] },
    { name: '-Infinity', ramp: -Infinity, mode: 'normal', expected: [slow(-Infinity)] },
    { name: 'numeric string "0.1"', ramp: '0.1', mode: 'normal', expected: [rule('normal', NaN)] },
    // undefined present as a key is not "absent": the driver would not see a number.
    { name: 'undefined given explicitly', ramp: undefined, mode: 'normal', expected: [rule('normal', NaN)] },
  ];
  for (const c of cases) assertReasons(t, check({ speedMPerS: 0.1, rampMPerS2: c.ramp }, { mode: c.mode }), c.expected, c.name);
  // Proves an absent ramp passes in both modes (the driver then uses the reduced limit, safe in either).
  assertReasons(t, check({ speedMPerS: 0.1 }, { mode: 'normal' }), [], 'absent, normal');
  assertReasons(t, check({ speedMPerS: 0.1 }, { mode: 'reduced' }), [], 'absent, reduced');
});

t.test('reversal only from standstill: against the measured speed and the last released setpoint', async (t) => {
  const ss = LIMITS.standstill;
  const measuredRule = (actual: number): Expected => ({ code: 'BOUNDS_CONVEYOR_REVERSAL', ruleId: `${ID}/reversal/measured`, path: SPEED, limit: ss, actual, unit: 'm/s' });
  const setpointRule = (actual: number): Expected => ({ code: 'BOUNDS_CONVEYOR_REVERSAL', ruleId: `${ID}/reversal/lastRelease`, path: SPEED, limit: 0, actual, unit: 'm/s' });
  const cases: { name: string; speed: number; measured: number; setpoint?: number | 'stop'; expected: Expected[] }[] = [
    { name: 'reverse from rest, nothing released yet', speed: -0.1, measured: 0, expected: [] },
    { name: 'reverse from rest after a stop', speed: -0.1, measured: 0, setpoint: 'stop', expected: [] },
    { name: 'reverse from rest after set_speed 0', speed: -0.1, measured: 0, setpoint: 0, expected: [] },
    // Proves the standstill threshold is inclusive, from either side.
    { name: 'reverse with measured exactly +standstill', speed: -0.1, measured: ss, expected: [] },
    { name: 'forward with measured exactly -standstill', speed: 0.1, measured: -ss, expected: [] },
    { name: 'reverse with measured standstill + 1e-9', speed: -0.1, measured: ss + 1e-9, expected: [measuredRule(ss + 1e-9)] },
    { name: 'forward while running in reverse at -0.05', speed: 0.1, measured: -0.05, expected: [measuredRule(0.05)] },
    // Proves even the slowest reverse command is a reversal while moving.
    { name: 'reverse at -1e-9 while running at 0.05', speed: -1e-9, measured: 0.05, expected: [measuredRule(0.05)] },
    // Proves a tiny speed cannot hide a reversal by underflowing a product of speeds to -0.
    { name: 'forward at 5e-324 while running in reverse at -0.05', speed: Number.MIN_VALUE, measured: -0.05, expected: [measuredRule(0.05)] },
    { name: 'zero while running (not a direction)', speed: 0, measured: 0.1, expected: [] },
    { name: '-0 while running (not a direction)', speed: -0, measured: 0.1, setpoint: 0.1, expected: [] },
    { name: 'same direction, faster', speed: 0.15, measured: 0.05, setpoint: 0.05, expected: [] },
    // Proves a belt still ramping towards a released forward setpoint cannot be reversed while it reads ~0.
    { name: 'reverse at rest while a forward setpoint is released', speed: -0.1, measured: 0, setpoint: 0.1, expected: [setpointRule(0.1)] },
    { name: 'reverse while moving and a forward setpoint is released', speed: -0.1, measured: 0.05, setpoint: 0.05, expected: [measuredRule(0.05), setpointRule(0.05)] },
    // Proves the standstill band is for measurements only: a released setpoint inside it still runs its way, so a
    // reversal needs a stop or 0 released first (0.006 forward, the belt reading 0.006, then -0.05 was released).
    { name: 'reverse after a tiny forward setpoint the belt reached', speed: -0.05, measured: 0.006, setpoint: 0.006, expected: [setpointRule(0.006)] },
    { name: 'reverse after a forward setpoint exactly at standstill', speed: -0.1, measured: 0, setpoint: ss, expected: [setpointRule(ss)] },
    { name: 'forward after a tiny reverse setpoint', speed: 0.176, measured: -0.004, setpoint: -0.004, expected: [setpointRule(0.004)] },
    { name: 'reverse after the smallest forward setpoint', speed: -0.01, measured: 0, setpoint: Number.MIN_VALUE, expected: [setpointRule(Number.MIN_VALUE)] },
    { name: 'reverse after a released -0', speed: -0.1, measured: 0, setpoint: -0, expected: [] },
  ];
  for (const c of cases) assertReasons(t, check({ speedMPerS: c.speed }, { measured: c.measured, ...(c.setpoint === undefined ? {} : { setpoint: c.setpoint }) }), c.expected, c.name);
});

t.test('step per command: against the measured speed and against the last released setpoint', async (t) => {
  const step = LIMITS.step;
  const cases: { name: string; speed: number; measured: number; setpoint?: number | 'stop'; expected: Expected[] }[] = [
    // Proves the step limit is inclusive.
    { name: 'exactly maxStep from rest', speed: step, measured: 0, expected: [] },
    { name: 'maxStep - 1e-9 from rest', speed: step - 1e-9, measured: 0, expected: [] },
    { name: 'maxStep + 1e-9 from rest', speed: step + 1e-9, measured: 0, expected: [stepMeasured(step + 1e-9)] },
    { name: 'exactly maxStep from rest after a stop', speed: step, measured: 0, setpoint: 'stop', expected: [] },
    { name: 'full speed from rest after a stop', speed: 0.5, measured: 0, setpoint: 'stop', expected: [stepMeasured(0.5), stepSetpoint(0.5)] },
    // Slowing down is a step too: stop is the one unconditional way down.
    { name: 'set 0 from 0.5 measured', speed: 0, measured: 0.5, setpoint: 0.5, expected: [stepMeasured(0.5), stepSetpoint(0.5)] },
    // Proves the setpoint check: the belt is still slowing from 0.5 towards a released 0.1; 0.4 is near the
    // measured speed but 0.3 above the setpoint just released.
    { name: 'jump from a setpoint the belt has not reached', speed: 0.4, measured: 0.3, setpoint: 0.1, expected: [stepSetpoint(Math.abs(0.4 - 0.1))] },
    { name: 'a small step after set_speed 0', speed: 0.1, measured: 0, setpoint: 0, expected: [] },
  ];
  for (const c of cases) assertReasons(t, check({ speedMPerS: c.speed }, { measured: c.measured, ...(c.setpoint === undefined ? {} : { setpoint: c.setpoint }) }), c.expected, c.name);

  // An unreadable last release (not a conveyor action) is not a known setpoint: it denies, never passes.
  const unreadable = checkConveyorSetSpeed(conveyor, { speedMPerS: 0.1 }, { mode: 'normal', state: state(0), lastRelease: lastRelease(0, 'move_joints') });
  assertReasons(t, unreadable, [{ code: 'BOUNDS_CONVEYOR_REVERSAL', ruleId: `${ID}/reversal/lastRelease`, actual: NaN }, { ...stepSetpoint(NaN) }], 'last release of another action');
  const garbled = checkConveyorSetSpeed(conveyor, { speedMPerS: 0.1 }, { mode: 'normal', state: state(0), lastRelease: { commandId: 'x', action: 'set_speed', params: { speedMPerS: '0' }, releasedAtMs: NOW } });
  t.equal(garbled.verdict, 'deny', 'a last set_speed with a string speed is not a known setpoint');
});

t.test('permissives: each false, each missing, all false, non-boolean', async (t) => {
  const rule = (name: string): Expected => ({ code: 'BOUNDS_CONVEYOR_PERMISSIVE', ruleId: `${ID}/permissives/${name}`, path: '/action' });
  assertReasons(t, check({ speedMPerS: 0.1 }, { permissives: ALL_TRUE }), [], 'all true');
  for (const name of PERMISSIVES) {
    assertReasons(t, check({ speedMPerS: 0.1 }, { permissives: { ...ALL_TRUE, [name]: false } }), [rule(name)], `${name} false`);
    const { [name]: _dropped, ...without } = ALL_TRUE;
    const missing = check({ speedMPerS: 0.1 }, { permissives: without });
    assertReasons(t, missing, [rule(name)], `${name} missing`);
    t.match(missing.reasons[0]?.message ?? '', /not reported/, `${name} missing: says so`);
    // Proves only a real `true` permits (a driver sending 1 or "true" does not close a guard).
    assertReasons(t, check({ speedMPerS: 0.1 }, { permissives: { ...ALL_TRUE, [name]: 1 as unknown as boolean } }), [rule(name)], `${name} = 1`);
  }
  const allFalse = Object.fromEntries(PERMISSIVES.map((name) => [name, false]));
  assertReasons(t, check({ speedMPerS: 0.1 }, { permissives: allFalse }), PERMISSIVES.map(rule), 'all false: every one reported, in declared order');
  // Proves a permissive inherited from Object.prototype is not "reported".
  const proto = checkConveyorSetSpeed({ ...conveyor, permissives: ['constructor'] }, { speedMPerS: 0.1 }, { mode: 'normal', state: state(0, {}), lastRelease: undefined });
  assertReasons(t, proto, [rule('constructor')], 'inherited property');
  // Every violation at once: permissive, speed, ramp, reversal and step.
  const all = check({ speedMPerS: -1, rampMPerS2: 9 }, { measured: 0.3, setpoint: 0.3, permissives: { ...ALL_TRUE, guardClosed: false } });
  t.same(
    all.reasons.map((r) => r.ruleId),
    [`${ID}/permissives/guardClosed`, reverseRule('normal'), `${ID}/maxRamp/normal`, `${ID}/reversal/measured`, `${ID}/reversal/lastRelease`, `${ID}/maxStep/measured`, `${ID}/maxStep/lastRelease`],
    'every violation is reported, not only the first',
  );
});

t.test('a non-finite measured speed in the state denies (direct)', async (t) => {
  for (const measured of [NaN, Infinity, -Infinity]) {
    const result = checkConveyorSetSpeed(conveyor, { speedMPerS: 0 }, { mode: 'normal', state: state(measured), lastRelease: undefined });
    assertReasons(t, result, [{ code: 'BOUNDS_STATE_INVALID', ruleId: `${ID}/state/speedMPerS` }], `measured ${measured}`);
  }
});

t.test('state messages: a missing declared permissive or a malformed field is refused when parsed', async (t) => {
  const good = { speedMPerS: 0.1, permissives: ALL_TRUE, running: true, safeStopped: false, lastCommandId: null, timeMs: 1 };
  const parsed = parseDeviceState(conveyor, JSON.stringify(good));
  t.ok(parsed.ok, 'a well-formed state');
  if (parsed.ok) t.same(parsed.observed.state, { kind: 'conveyor', speedMPerS: 0.1, permissives: ALL_TRUE, running: true, safeStopped: false, lastCommandId: null });
  const extra = parseDeviceState(conveyor, JSON.stringify({ ...good, permissives: { ...ALL_TRUE, lightCurtainClear: false } }));
  t.ok(extra.ok, 'an undeclared permissive is accepted');
  if (extra.ok && extra.observed.state.kind === 'conveyor') t.same(extra.observed.state.permissives, ALL_TRUE, 'and not kept: only declared permissives gate');
  const { guardClosed: _g, ...noGuard } = ALL_TRUE;
  const cases: { name: string; message: string; problem: RegExp }[] = [
    { name: 'a declared permissive missing', message: JSON.stringify({ ...good, permissives: noGuard }), problem: /lacks declared permissive\(s\) guardClosed/ },
    { name: 'no permissives object', message: JSON.stringify({ ...good, permissives: undefined }), problem: /permissives/ },
    { name: 'a string permissive', message: JSON.stringify({ ...good, permissives: { ...ALL_TRUE, guardClosed: 'true' } }), problem: /must be boolean/ },
    { name: 'a permissive name with a slash', message: JSON.stringify({ ...good, permissives: { ...ALL_TRUE, 'a/b': true } }), problem: /permissives must match pattern/ },
    { name: 'a string speed', message: JSON.stringify({ ...good, speedMPerS: '0.1' }), problem: /must be number/ },
    { name: 'an infinite speed (1e400)', message: JSON.stringify(good).replace('"speedMPerS":0.1', '"speedMPerS":1e400'), problem: /must be number/ },
    { name: 'no speed', message: JSON.stringify({ ...good, speedMPerS: undefined }), problem: /speedMPerS/ },
    { name: 'no running flag', message: JSON.stringify({ ...good, running: undefined }), problem: /running/ },
    { name: 'an unknown field', message: JSON.stringify({ ...good, torque: 1 }), problem: /torque/ },
  ];
  for (const c of cases) {
    const result = parseDeviceState(conveyor, c.message);
    t.equal(result.ok, false, c.name);
    if (!result.ok) t.match(result.problem, c.problem, c.name);
  }
});

// ---- Through the whole bounds stage (rate, freshness, mode, kind check) ----

const planner = loaded.declarations.agents.get('planner-1') as AgentDeclaration;
/** A scope-3 agent: the default mode policy gives it the reduced limits (src/bounds/modes.ts). */
const scope3: AgentDeclaration = { ...planner, id: 'scope3-agent', autonomyScope: 3 };

function verified(action: string, params: Record<string, unknown>, agent: AgentDeclaration = planner, seq = 1): VerifiedCommand {
  return {
    commandId: `cmd-${String(seq).padStart(8, '0')}`,
    kid: 'planner-1-k1',
    seq,
    agent,
    device: conveyor,
    action,
    params,
    safeState: action === 'stop',
    issuedAtMs: NOW,
    expiresAtMs: NOW + 2000,
  };
}

function observed(speedMPerS: number, ageMs = 10, permissives: Record<string, boolean> = ALL_TRUE): ObservedState {
  return { state: state(speedMPerS, permissives), receivedAtMs: NOW - ageMs };
}

/** amr-1's scanners, the cell's people source, see nobody near the belt: the mode depends on the agent alone. */
const NOBODY_NEAR = amrReport(NOW - 10);

function bounds(command: VerifiedCommand, obs: ObservedState | undefined, releases: ReleaseView = NO_RELEASES, memory = new BoundsMemory()) {
  return checkBounds({ command, declarations: loaded.declarations, states: withAmrReport({ latest: (id) => (id === ID ? obs : undefined) }, NOBODY_NEAR), releases, memory, nowMs: NOW });
}

t.test('checkBounds: missing and stale state deny set_speed; stop passes without state', async (t) => {
  const rule = `${ID}/maxStateAge`;
  const max = LIMITS.maxStateAgeMs;
  const move = verified('set_speed', { speedMPerS: 0.1 });
  const cases: { name: string; obs: ObservedState | undefined; expected: Expected[] }[] = [
    { name: 'no state at all', obs: undefined, expected: [{ code: 'BOUNDS_STATE_MISSING', ruleId: rule }] },
    { name: 'exactly maxStateAge old', obs: observed(0, max), expected: [] },
    { name: 'maxStateAge + 1 ms', obs: observed(0, max + 1), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId: rule, limit: max, actual: max + 1, unit: 'ms' }] },
    { name: 'from the future', obs: observed(0, -1), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId: rule, actual: -1 }] },
    { name: 'NaN receive time', obs: { ...observed(0), receivedAtMs: NaN }, expected: [{ code: 'BOUNDS_STATE_STALE', ruleId: rule }] },
  ];
  for (const c of cases) assertReasons(t, bounds(move, c.obs), c.expected, c.name);
  assertReasons(t, bounds(verified('stop', {}), undefined), [], 'stop with no state');
  assertReasons(t, bounds(verified('stop', {}), observed(0.5, 10, { ...ALL_TRUE, guardClosed: false })), [], 'stop with the guard open');
  assertReasons(t, bounds(verified('jog', {}), observed(0)), [{ code: 'BOUNDS_NOT_DECLARED', ruleId: ID }], 'an action without bounds');
});

t.test('checkBounds: a scope-3 agent gets the reduced limits; a scope-4 agent the normal ones', async (t) => {
  const speed = 0.3; // above reduced (0.25), below normal (0.5)
  const reduced = bounds(verified('set_speed', { speedMPerS: speed }, scope3), observed(0.2));
  assertReasons(t, reduced, [{ code: 'BOUNDS_CONVEYOR_SPEED', ruleId: speedRule('reduced'), limit: LIMITS.forward.reduced, actual: speed, unit: 'm/s' }], 'scope 3, 0.3 m/s');
  t.equal(reduced.mode, 'reduced');
  const normal = bounds(verified('set_speed', { speedMPerS: speed }), observed(0.2));
  assertReasons(t, normal, [], 'scope 4, 0.3 m/s');
  t.equal(normal.mode, 'normal');
  const ramp = bounds(verified('set_speed', { speedMPerS: 0.2, rampMPerS2: LIMITS.ramp.normal }, scope3), observed(0.2));
  assertReasons(t, ramp, [{ code: 'BOUNDS_CONVEYOR_RAMP', ruleId: `${ID}/maxRamp/reduced`, limit: LIMITS.ramp.reduced }], 'scope 3, the normal ramp');
});

t.test('many small steps released before the belt catches up together exceed maxStep', async (t) => {
  // The belt reads 0 throughout (it has not started to move yet); each allowed command is released.
  const released = new Map<string, LastRelease>();
  const releases: ReleaseView = { last: (id) => released.get(id) };
  const memory = new BoundsMemory();
  const outcomes: string[] = [];
  [0.1, 0.2, 0.3].forEach((speedMPerS, i) => {
    const command = verified('set_speed', { speedMPerS }, planner, i + 1);
    const result = bounds(command, observed(0), releases, memory);
    outcomes.push(`${speedMPerS}:${result.verdict}`);
    if (result.verdict === 'allow') released.set(ID, { commandId: command.commandId, action: 'set_speed', params: command.params, releasedAtMs: NOW });
    if (speedMPerS === 0.3) {
      // Each step is 0.1 from the last released setpoint, so only the measured-speed check can see the sum.
      assertReasons(t, result, [stepMeasured(0.3)], '0.3 after 0.1 and 0.2 with the belt still at rest');
    }
  });
  t.same(outcomes, ['0.1:allow', '0.2:allow', '0.3:deny']);
  // Once the belt has caught up, the same command is fine.
  assertReasons(t, bounds(verified('set_speed', { speedMPerS: 0.3 }, planner, 9), observed(0.2), releases, memory), [], '0.3 once the belt runs at 0.2');
});

t.test('occupancy and zonesEntered: a conveyor is in no zone and enters none; moving from speed or running', async (t) => {
  const zones = loaded.declarations.zones;
  t.same(CONVEYOR_BOUNDS.occupancy(conveyor, state(0), zones), { zoneIds: [], moving: false });
  t.same(CONVEYOR_BOUNDS.occupancy(conveyor, { ...state(0), running: true }, zones), { zoneIds: [], moving: true }, 'running with the belt still at rest');
  t.same(CONVEYOR_BOUNDS.occupancy(conveyor, { ...state(LIMITS.standstill), running: false }, zones), { zoneIds: [], moving: false }, 'at the standstill threshold');
  t.same(CONVEYOR_BOUNDS.occupancy(conveyor, { ...state(-0.02), running: false }, zones), { zoneIds: [], moving: true }, 'creeping in reverse');
  t.same(CONVEYOR_BOUNDS.occupancy(conveyor, { ...state(NaN), running: false }, zones), { zoneIds: [], moving: true }, 'NaN speed counts as moving');
  t.same(CONVEYOR_BOUNDS.zonesEntered(conveyor, { action: 'set_speed', params: { speedMPerS: 0.5 } }, state(0), zones), []);
});

t.test('through the pipeline: policy, params schema and bounds for a signed set_speed', async (t) => {
  const obs = observed(0);
  const context = { cell: loaded, replay: new MemoryReplayGuard(() => NOW), states: withAmrReport({ latest: (id: string) => (id === ID ? obs : undefined) }, NOBODY_NEAR), releases: NO_RELEASES, bounds: new BoundsMemory() };
  const signers = new Map(['planner-1', 'trainee-1', 'observer-1'].map((agent) => [agent, cell.signer(agent, () => NOW)]));
  const send = (agent: string, action: string, params: Record<string, unknown>) =>
    evaluateCommand({ token: (signers.get(agent) ?? cell.signer(agent)).sign(ID, action, params), topicDeviceId: ID }, context, NOW);
  const cases: { name: string; agent: string; action: string; params: Record<string, unknown>; verdict: string; codes: string[] }[] = [
    { name: 'planner, in bounds', agent: 'planner-1', action: 'set_speed', params: { speedMPerS: 0.2, rampMPerS2: 0.25 }, verdict: 'allow', codes: [] },
    { name: 'planner, too fast', agent: 'planner-1', action: 'set_speed', params: { speedMPerS: 0.6 }, verdict: 'deny', codes: ['BOUNDS_CONVEYOR_SPEED', 'BOUNDS_CONVEYOR_STEP'] },
    { name: 'numeric string speed', agent: 'planner-1', action: 'set_speed', params: { speedMPerS: '0.2' }, verdict: 'deny', codes: ['COMMAND_INVALID_PARAMS'] },
    // A ramp outside [minRamp, maxRamp] is a bounds matter, named with the declared range (docs/reason-codes.md: BOUNDS_CONVEYOR_RAMP).
    { name: 'ramp 0', agent: 'planner-1', action: 'set_speed', params: { speedMPerS: 0.2, rampMPerS2: 0 }, verdict: 'deny', codes: ['BOUNDS_CONVEYOR_RAMP'] },
    { name: 'ramp 1e-6 (a crawl)', agent: 'planner-1', action: 'set_speed', params: { speedMPerS: 0.2, rampMPerS2: 1e-6 }, verdict: 'deny', codes: ['BOUNDS_CONVEYOR_RAMP'] },
    { name: 'unknown param', agent: 'planner-1', action: 'set_speed', params: { speedMPerS: 0.2, clamp: true }, verdict: 'deny', codes: ['COMMAND_INVALID_PARAMS'] },
    // Scope 2: the cell's @approval permit and the built-in scope 2 rule both hold it for a person.
    { name: 'trainee (scope 2) is held for approval', agent: 'trainee-1', action: 'set_speed', params: { speedMPerS: 0.1 }, verdict: 'hold', codes: ['POLICY_APPROVAL_REQUIRED', 'POLICY_APPROVAL_REQUIRED'] },
    { name: 'observer (scope 1) never actuates', agent: 'observer-1', action: 'set_speed', params: { speedMPerS: 0.1 }, verdict: 'deny', codes: ['POLICY_SCOPE_OBSERVE_ONLY'] },
    { name: 'stop from the trainee', agent: 'trainee-1', action: 'stop', params: {}, verdict: 'allow', codes: ['SAFE_STATE_COMMAND'] },
  ];
  for (const c of cases) {
    const decision = send(c.agent, c.action, c.params);
    t.equal(decision.verdict, c.verdict, `${c.name}: verdict`);
    t.same(decision.reasons.map((r) => r.code), c.codes, `${c.name}: codes`);
  }
});

// ---- Property: every allow is safe by a checker written here from the YAML ----

interface Scenario {
  agentScope: 3 | 4;
  measured: number;
  last: number | 'stop' | undefined;
  speed: unknown;
  ramp: unknown;
  permissives: Record<string, boolean>;
  ageMs: number;
}

/** Independent oracle: the YAML's numbers, this file's units, the rules, written without the engine. */
function safeByYaml(s: Scenario): boolean {
  const tol = 1e-9;
  const mode: Mode = s.agentScope <= 3 ? 'reduced' : 'normal';
  if (!(s.ageMs >= 0 && s.ageMs <= LIMITS.maxStateAgeMs)) return false;
  if (!PERMISSIVES.every((name) => s.permissives[name] === true)) return false;
  if (typeof s.speed !== 'number' || !Number.isFinite(s.speed)) return false;
  const v = s.speed;
  if (v > 0 && v > LIMITS.forward[mode] + tol) return false;
  if (v < 0 && -v > LIMITS.reverse[mode] + tol) return false;
  if (s.ramp !== undefined && (typeof s.ramp !== 'number' || !(s.ramp >= LIMITS.minRamp - tol) || s.ramp > LIMITS.ramp[mode] + tol)) return false;
  const direction = (x: number): number => (Math.abs(x) <= LIMITS.standstill + tol ? 0 : Math.sign(x));
  const commanded = Math.sign(v);
  const setpoint = s.last === 'stop' ? 0 : s.last;
  // A direction change needs the belt at rest (a measurement within standstill) and no release running the other
  // way (a setpoint is exact: any non-zero setpoint has a direction).
  if (commanded !== 0 && direction(s.measured) === -commanded) return false;
  if (commanded !== 0 && setpoint !== undefined && Math.sign(setpoint) === -commanded) return false;
  if (Math.abs(v - s.measured) > LIMITS.step + tol) return false;
  if (setpoint !== undefined && Math.abs(v - setpoint) > LIMITS.step + tol) return false;
  return true;
}

function runScenario(s: Scenario): ReturnType<typeof checkBounds> {
  const agent = s.agentScope === 3 ? scope3 : planner;
  const params: Record<string, unknown> = s.ramp === undefined ? { speedMPerS: s.speed } : { speedMPerS: s.speed, rampMPerS2: s.ramp };
  const release = s.last === undefined ? undefined : lastRelease(s.last);
  return bounds(verified('set_speed', params, agent), observed(s.measured, s.ageMs, s.permissives), { last: () => release });
}

t.test('property: every allow is within the YAML limits (computed here), and clearly safe commands are allowed', async (t) => {
  const edge = (values: number[], spread = 1e-6): fc.Arbitrary<number> => fc.constantFrom(...values).chain((e) => fc.double({ min: e - spread, max: e + spread, noNaN: true }));
  const speedEdges = [0, LIMITS.forward.normal, LIMITS.forward.reduced, -LIMITS.reverse.normal, -LIMITS.reverse.reduced, LIMITS.standstill, -LIMITS.standstill];
  const speed = fc.oneof(
    { weight: 8, arbitrary: fc.double({ min: -0.3, max: 0.7, noNaN: true }) },
    { weight: 3, arbitrary: edge(speedEdges) },
    { weight: 1, arbitrary: fc.constantFrom(-0, 0, NaN, Infinity, -Infinity, '0.2', null, 200) },
    { weight: 1, arbitrary: fc.double() },
  );
  const measured = fc.oneof(
    { weight: 6, arbitrary: fc.double({ min: -0.2, max: 0.6, noNaN: true }) },
    { weight: 3, arbitrary: edge([0, LIMITS.standstill, -LIMITS.standstill], 1e-3) },
  );
  const last = fc.oneof(fc.constant(undefined), fc.constant('stop' as const), fc.double({ min: -0.2, max: 0.6, noNaN: true }), edge([0, LIMITS.standstill, -LIMITS.standstill], 1e-3));
  const ramp = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.double({ min: -0.1, max: 0.7, noNaN: true }) },
    { weight: 2, arbitrary: edge([LIMITS.ramp.normal, LIMITS.ramp.reduced, LIMITS.minRamp]) },
    { weight: 1, arbitrary: fc.constantFrom(0, -0, NaN, Infinity, '0.1') },
  );
  const permissives = fc.oneof(
    { weight: 6, arbitrary: fc.constant(ALL_TRUE) },
    { weight: 2, arbitrary: fc.record(Object.fromEntries(PERMISSIVES.map((name) => [name, fc.boolean()]))) },
    { weight: 1, arbitrary: fc.subarray(PERMISSIVES).map((kept) => Object.fromEntries(kept.map((name) => [name, true]))) },
  );
  const ageMs = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: LIMITS.maxStateAgeMs }) }, { weight: 1, arbitrary: fc.integer({ min: -50, max: 2 * LIMITS.maxStateAgeMs }) });
  const scenario = fc.record({ agentScope: fc.constantFrom(3 as const, 4 as const), measured, last, speed, ramp, permissives, ageMs }) as fc.Arbitrary<Scenario>;

  let allows = 0;
  fc.assert(
    fc.property(scenario, (s) => {
      const result = runScenario(s);
      if (result.verdict === 'allow') {
        allows += 1;
        return safeByYaml(s) && result.reasons.length === 0;
      }
      // A deny always says why, with the rule that fired.
      return result.verdict === 'deny' && result.reasons.length > 0 && result.reasons.every((r) => typeof r.ruleId === 'string');
    }),
    { numRuns: 5000, seed: 20240602 },
  );
  t.ok(allows > 300, `the property exercised allows too (${allows})`);

  // The converse, with a margin: a command the YAML clearly allows is not denied (no false blocks).
  const m = 1e-6;
  const clearlySafe = fc
    .record({
      agentScope: fc.constantFrom(3 as const, 4 as const),
      measured: fc.double({ min: 0, max: 0.2, noNaN: true }),
      delta: fc.double({ min: -LIMITS.step + m, max: LIMITS.step - m, noNaN: true }),
      ramp: fc.option(fc.double({ min: LIMITS.minRamp + m, max: LIMITS.ramp.reduced - m, noNaN: true }), { nil: undefined }),
      ageMs: fc.integer({ min: 0, max: LIMITS.maxStateAgeMs }),
    })
    .map((r) => ({ ...r, speed: Math.min(Math.max(r.measured + r.delta, 0), LIMITS.forward.reduced - m) }));
  fc.assert(
    fc.property(clearlySafe, (r) => {
      const s: Scenario = { agentScope: r.agentScope, measured: r.measured, last: r.measured, speed: r.speed, ramp: r.ramp, permissives: ALL_TRUE, ageMs: r.ageMs };
      return runScenario(s).verdict === 'allow';
    }),
    { numRuns: 2000, seed: 11 },
  );
});
