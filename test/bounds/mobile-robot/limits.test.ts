// Adversarial tests of the mobile robot's scalar bounds: speed, turn rate, acceleration and set_velocity duration at,
// just under and just over each limit, NaN/±Infinity/-0/numeric strings, reduced mode, localization, malformed
// state, step size (max goal distance from the live pose), waypoint count, invalid targets, and load-time errors.

import t from 'tap';
import { checkBounds } from '../../../src/bounds/bounds.js';
import { checkMobileRobotCommand } from '../../../src/bounds/mobile-robot-bounds.js';
import type { PeopleView } from '../../../src/bounds/people.js';
import type { VerifiedCommand } from '../../../src/core/command.js';
import type { AgentDeclaration, DeviceDeclaration } from '../../../src/core/declarations.js';
import type { ObservedState } from '../../../src/core/device-state.js';
import type { Mode } from '../../../src/core/kinds/kind-spec.js';
import type { MobileRobotDeclaration, MobileRobotState } from '../../../src/core/kinds/mobile-robot.js';
import type { StageResult } from '../../../src/core/verdict.js';
import { loadCell } from '../../../src/declarations/load.js';
import { parseDeviceState } from '../../../src/interlock/state-store.js';
import { BoundsMemory, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { makeTestCell } from '../../helpers/test-cell.js';
import { agent, AMR_T_YAML, assertReasons, loadMobileCell, NOBODY, NOW, robotState, TINY, type Expected } from './fixtures.js';

const { amr, loaded } = loadMobileCell(t);
const DEG = Math.PI / 180;

function check(params: Record<string, unknown>, action: string, options: { state?: MobileRobotState; mode?: Mode; people?: PeopleView; device?: MobileRobotDeclaration } = {}): StageResult {
  return checkMobileRobotCommand(options.device ?? amr, { action, params }, { state: options.state ?? robotState(), mode: options.mode ?? 'normal', people: options.people ?? NOBODY });
}

t.test('the declaration is converted from the YAML units', async (t) => {
  t.equal(amr.footprintRadiusM, 0.5);
  t.same(amr.limits.linearSpeedMPerS, { normal: 1, reduced: 0.25 });
  t.equal(amr.separation.sensorUncertaintyM, 0.125, '125 mm');
  t.equal(amr.separation.positionUncertaintyM, 0.0625, '6.25 cm');
  t.equal(amr.separation.reactionTimeMs, 125);
  t.same(amr.separation.stopping, { kind: 'deceleration', decelerationMPerS2: 2 });
  t.same(amr.keepOut[0]?.polygon, [[4, -1], [5, -1], [5, 1], [4, 1]]);
  // The demo robot, as an operator wrote it (degrees, a single-limit form).
  const demo = loaded.declarations.devices.get('amr-1') as MobileRobotDeclaration;
  t.equal(demo.kind, 'mobile_robot');
  t.equal(demo.footprintRadiusM, 0.55);
  t.ok(Math.abs(demo.limits.angularSpeedRadPerS.normal - 60 * DEG) < 1e-15, '60 deg/s in rad/s');
  t.equal(demo.limits.maxVelocityDurationMs, 1000, '1 s in ms');
  t.equal(demo.localization.maxAgeMs, 500);
});

t.test('declarations an operator cannot have meant are load errors naming file and path', async (t) => {
  const cases: { name: string; yaml: string; problem: RegExp }[] = [
    { name: 'human speed below 1.6 m/s', yaml: AMR_T_YAML.replace('humanSpeed: { value: 2, unit: m/s }', 'humanSpeed: { value: 1.5, unit: m/s }'), problem: /\/separation\/humanSpeed.*at least 1.6 m\/s/ },
    { name: 'both braking deceleration and stopping time', yaml: AMR_T_YAML.replace('brakingDeceleration: { value: 2, unit: m/s^2 }', 'brakingDeceleration: { value: 2, unit: m/s^2 }\n  stoppingTime: { value: 1, unit: s }'), problem: /\/separation/ },
    { name: 'neither braking deceleration nor stopping time', yaml: AMR_T_YAML.replace('  brakingDeceleration: { value: 2, unit: m/s^2 }\n', ''), problem: /\/separation/ },
    { name: 'a self-crossing (bow-tie) keep-out', yaml: AMR_T_YAML.replace('[[4, -1], [5, -1], [5, 1], [4, 1]]', '[[4, -1], [5, 1], [5, -1], [4, 1]]'), problem: /\/keepOut\/0\/polygon\/points.*intersect itself/ },
    { name: 'a keep-out with no area', yaml: AMR_T_YAML.replace('[[4, -1], [5, -1], [5, 1], [4, 1]]', '[[4, -1], [5, -1], [6, -1]]'), problem: /\/keepOut\/0\/polygon\/points.*no area/ },
    { name: 'a repeated point', yaml: AMR_T_YAML.replace('[[4, -1], [5, -1], [5, 1], [4, 1]]', '[[4, -1], [5, -1], [5, -1], [5, 1], [4, 1]]'), problem: /\/keepOut\/0\/polygon\/points\/2.*twice/ },
    { name: 'a duplicate keep-out id', yaml: AMR_T_YAML.replace('keepOut:\n', 'keepOut:\n  - id: pillar\n    polygon: { points: [[0, 9], [1, 9], [1, 10]], unit: m }\n'), problem: /\/keepOut\/1\/id.*used twice/ },
    { name: 'a reduced speed above normal', yaml: AMR_T_YAML.replace('linearSpeed: { normal: 1, reduced: 0.25, unit: m/s }', 'linearSpeed: { normal: 1, reduced: 2, unit: m/s }'), problem: /\/limits\/linearSpeed.*reduced/ },
    { name: 'an angle unit for a length', yaml: AMR_T_YAML.replace('footprint: { radius: 0.5, unit: m }', 'footprint: { radius: 0.5, unit: deg }'), problem: /\/footprint\/unit/ },
    { name: 'a zero footprint', yaml: AMR_T_YAML.replace('footprint: { radius: 0.5, unit: m }', 'footprint: { radius: 0, unit: m }'), problem: /\/footprint\/radius/ },
    { name: 'no localization section', yaml: AMR_T_YAML.replace(/localization:\n {2}maxAge: .*\n/, ''), problem: /localization/ },
    { name: 'a waypoint limit over the schema cap', yaml: AMR_T_YAML.replace('maxWaypoints: 100', 'maxWaypoints: 5000'), problem: /\/limits\/maxWaypoints/ },
  ];
  for (const c of cases) {
    const cell = makeTestCell({ 'devices/amr-t.yaml': c.yaml });
    try {
      const result = loadCell(cell.cellDir);
      t.equal(result.ok, false, `${c.name}: refused`);
      if (!result.ok) {
        const lines = result.problems.map((p) => `${p.file} ${p.path} ${p.message}`);
        t.ok(lines.some((l) => l.startsWith('devices/amr-t.yaml') && c.problem.test(l)), `${c.name}: ${lines.join(' | ')}`);
      }
    } finally {
      cell.cleanup();
    }
  }
});

t.test('set_velocity: linear speed either direction at the limit passes; beyond, non-finite or a string is denied', async (t) => {
  const ruleId = 'amr-t/limits/linearSpeed/normal';
  const path = '/params/linearMPerS';
  const speed = (linearMPerS: unknown): StageResult => check({ linearMPerS, angularRadPerS: 0, durationMs: 500 }, 'set_velocity');
  const cases: { name: string; value: unknown; expected: Expected[] }[] = [
    { name: 'exactly +limit', value: 1, expected: [] },
    { name: 'exactly -limit (reversing)', value: -1, expected: [] },
    { name: 'just under', value: 1 - TINY, expected: [] },
    { name: 'zero', value: 0, expected: [] },
    { name: '-0', value: -0, expected: [] },
    { name: 'just over', value: 1 + TINY, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, limit: 1, actual: 1 + TINY, unit: 'm/s' }] },
    { name: 'just over in reverse', value: -1 - TINY, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, limit: 1, actual: -1 - TINY, unit: 'm/s' }] },
    // The reach of 300 m/s is reported too: every violation, not only the first.
    { name: 'mm/s written as m/s (300)', value: 300, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, limit: 1, actual: 300 }, { code: 'BOUNDS_KEEP_OUT_AREA' }, { code: 'BOUNDS_SPEED_ZONE' }] },
    { name: 'NaN', value: NaN, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: NaN }] },
    { name: '+Infinity', value: Infinity, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: Infinity }] },
    { name: '-Infinity', value: -Infinity, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: -Infinity }] },
    { name: 'numeric string "0.5"', value: '0.5', expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: NaN }] },
    { name: 'missing', value: undefined, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: NaN }] },
  ];
  for (const c of cases) assertReasons(t, speed(c.value), c.expected, c.name);
});

t.test('set_velocity: turn rate, duration and accelerations at and beyond their limits', async (t) => {
  const base = { linearMPerS: 0.5, angularRadPerS: 0, durationMs: 500 };
  const turn = 'amr-t/limits/angularSpeed/normal';
  const duration = 'amr-t/limits/maxVelocityDuration';
  const accel = 'amr-t/limits/linearAcceleration/normal';
  const angAccel = 'amr-t/limits/angularAcceleration/normal';
  const cases: { name: string; params: Record<string, unknown>; expected: Expected[] }[] = [
    { name: 'turn rate exactly +limit', params: { angularRadPerS: 1 }, expected: [] },
    { name: 'turn rate exactly -limit', params: { angularRadPerS: -1 }, expected: [] },
    { name: 'turn rate -0', params: { angularRadPerS: -0 }, expected: [] },
    { name: 'turn rate just over', params: { angularRadPerS: 1 + TINY }, expected: [{ code: 'BOUNDS_BASE_TURN_RATE', ruleId: turn, path: '/params/angularRadPerS', limit: 1, actual: 1 + TINY, unit: 'rad/s' }] },
    { name: 'turn rate in deg/s (57.3 for 1 rad/s)', params: { angularRadPerS: 57.3 }, expected: [{ code: 'BOUNDS_BASE_TURN_RATE', ruleId: turn, actual: 57.3 }] },
    { name: 'turn rate NaN', params: { angularRadPerS: NaN }, expected: [{ code: 'BOUNDS_BASE_TURN_RATE', ruleId: turn, actual: NaN }] },
    { name: 'turn rate -Infinity', params: { angularRadPerS: -Infinity }, expected: [{ code: 'BOUNDS_BASE_TURN_RATE', ruleId: turn, actual: -Infinity }] },
    { name: 'duration exactly the max', params: { durationMs: 1000 }, expected: [] },
    { name: 'duration just under', params: { durationMs: 1000 - TINY }, expected: [] },
    { name: 'duration just over', params: { durationMs: 1000 + 2 ** -10 }, expected: [{ code: 'BOUNDS_VELOCITY_DURATION', ruleId: duration, path: '/params/durationMs', limit: 1000, actual: 1000 + 2 ** -10, unit: 'ms' }] },
    { name: 'duration in seconds meant as ms is fine (1)', params: { durationMs: 1 }, expected: [] },
    { name: 'duration zero (no end defined)', params: { durationMs: 0 }, expected: [{ code: 'BOUNDS_VELOCITY_DURATION', ruleId: duration, actual: 0 }] },
    { name: 'duration -0', params: { durationMs: -0 }, expected: [{ code: 'BOUNDS_VELOCITY_DURATION', ruleId: duration, actual: -0 }] },
    { name: 'duration negative', params: { durationMs: -5 }, expected: [{ code: 'BOUNDS_VELOCITY_DURATION', ruleId: duration, actual: -5 }] },
    { name: 'duration +Infinity (a twist with no end)', params: { durationMs: Infinity }, expected: [{ code: 'BOUNDS_VELOCITY_DURATION', ruleId: duration, actual: Infinity }] },
    { name: 'duration NaN', params: { durationMs: NaN }, expected: [{ code: 'BOUNDS_VELOCITY_DURATION', ruleId: duration, actual: NaN }] },
    { name: 'acceleration exactly the limit', params: { accelerationMPerS2: 1 }, expected: [] },
    { name: 'acceleration just over', params: { accelerationMPerS2: 1 + TINY }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: accel, path: '/params/accelerationMPerS2', limit: 1, actual: 1 + TINY, unit: 'm/s^2' }] },
    { name: 'acceleration zero (never reaches the speed)', params: { accelerationMPerS2: 0 }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: accel, actual: 0 }] },
    { name: 'acceleration -0', params: { accelerationMPerS2: -0 }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: accel, actual: -0 }] },
    { name: 'acceleration NaN', params: { accelerationMPerS2: NaN }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: accel, actual: NaN }] },
    { name: 'acceleration +Infinity', params: { accelerationMPerS2: Infinity }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: accel, actual: Infinity }] },
    { name: 'angular acceleration exactly the limit', params: { angularAccelerationRadPerS2: 2 }, expected: [] },
    { name: 'angular acceleration just over', params: { angularAccelerationRadPerS2: 2 + TINY }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: angAccel, path: '/params/angularAccelerationRadPerS2', limit: 2, actual: 2 + TINY, unit: 'rad/s^2' }] },
    { name: 'angular acceleration as a string', params: { angularAccelerationRadPerS2: '1' }, expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: angAccel, actual: NaN }] },
    {
      name: 'every violation at once is reported, in a stable order',
      params: { linearMPerS: 2, angularRadPerS: 2, durationMs: 2000, accelerationMPerS2: 2, angularAccelerationRadPerS2: 3 },
      expected: [
        { code: 'BOUNDS_BASE_SPEED' },
        { code: 'BOUNDS_BASE_TURN_RATE' },
        { code: 'BOUNDS_VELOCITY_DURATION' },
        { code: 'BOUNDS_BASE_ACCELERATION', ruleId: accel },
        { code: 'BOUNDS_BASE_ACCELERATION', ruleId: angAccel },
        // 2 m/s for 2 s reaches 5 m: the pillar (4 m away) and the slow zone are within it.
        { code: 'BOUNDS_KEEP_OUT_AREA', ruleId: 'amr-t/keepOut/pillar', limit: 5.5, actual: 4 },
        { code: 'BOUNDS_SPEED_ZONE', ruleId: 'amr-t/speedZones/slow/normal', limit: 0.5, actual: 2 },
      ],
    },
  ];
  for (const c of cases) assertReasons(t, check({ ...base, ...c.params }, 'set_velocity'), c.expected, c.name);
});

t.test('go_to and follow_path speed: (0, limit] passes; 0, -0, negative, beyond, non-finite, strings are denied', async (t) => {
  const ruleId = 'amr-t/limits/linearSpeed/normal';
  const path = '/params/speedMPerS';
  const values: { name: string; value: unknown; expected: Expected[] }[] = [
    { name: 'exactly the limit', value: 1, expected: [] },
    { name: 'smallest positive', value: Number.MIN_VALUE, expected: [] },
    { name: 'just over', value: 1 + TINY, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, limit: 1, actual: 1 + TINY, unit: 'm/s' }] },
    { name: 'zero', value: 0, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: 0 }] },
    { name: '-0', value: -0, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: -0 }] },
    { name: 'negative', value: -0.5, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: -0.5 }] },
    { name: 'NaN', value: NaN, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: NaN }] },
    { name: '+Infinity', value: Infinity, expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: Infinity }] },
    { name: 'numeric string', value: '0.5', expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId, path, actual: NaN }] },
  ];
  for (const c of values) {
    assertReasons(t, check({ xM: -1, yM: 0, speedMPerS: c.value }, 'go_to'), c.expected, `go_to ${c.name}`);
    assertReasons(t, check({ waypoints: [[-1, 0], [-1, -1]], speedMPerS: c.value }, 'follow_path'), c.expected, `follow_path ${c.name}`);
  }
  assertReasons(t, check({ xM: -1, yM: 0, speedMPerS: 0.5, accelerationMPerS2: 1 + TINY }, 'go_to'), [{ code: 'BOUNDS_BASE_ACCELERATION', path: '/params/accelerationMPerS2', limit: 1 }], 'go_to acceleration over');
  assertReasons(t, check({ xM: -1, yM: 0, speedMPerS: 0.5, accelerationMPerS2: 1 }, 'go_to'), [], 'go_to acceleration at the limit');
});

/** A planner's command to amr-t through the whole bounds stage, with amr-t's state (and its people report). */
function stage(action: string, params: Record<string, unknown>, by: AgentDeclaration, observed: Partial<ObservedState> & { state?: MobileRobotState } = {}): ReturnType<typeof checkBounds> {
  const device = amr as DeviceDeclaration;
  const command: VerifiedCommand = { commandId: 'cmd-1', kid: 'k', seq: 1, agent: by, device, action, params, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 2000 };
  const state: ObservedState = { state: robotState(), receivedAtMs: NOW - 10, people: [], ...observed };
  return checkBounds({ command, declarations: loaded.declarations, states: { latest: (id) => (id === 'amr-t' ? state : undefined) }, releases: NO_RELEASES, memory: new BoundsMemory(), nowMs: NOW });
}

t.test('reduced mode: a scope-3 agent gets the reduced speed, turn and zone limits; scope 4 the normal ones', async (t) => {
  const cases: { name: string; by: number; action: string; params: Record<string, unknown>; mode: Mode; expected: Expected[] }[] = [
    { name: 'scope 3 at the reduced speed', by: 3, action: 'go_to', params: { xM: -2, yM: 0, speedMPerS: 0.25 }, mode: 'reduced', expected: [] },
    { name: 'scope 3 just over the reduced speed', by: 3, action: 'go_to', params: { xM: -2, yM: 0, speedMPerS: 0.25 + TINY }, mode: 'reduced', expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId: 'amr-t/limits/linearSpeed/reduced', limit: 0.25, actual: 0.25 + TINY }] },
    { name: 'scope 4 at the normal speed', by: 4, action: 'go_to', params: { xM: -2, yM: 0, speedMPerS: 1 }, mode: 'normal', expected: [] },
    { name: 'scope 3 at the normal speed', by: 3, action: 'go_to', params: { xM: -2, yM: 0, speedMPerS: 1 }, mode: 'reduced', expected: [{ code: 'BOUNDS_BASE_SPEED', ruleId: 'amr-t/limits/linearSpeed/reduced', limit: 0.25 }] },
    { name: 'scope 3 turning at the reduced rate', by: 3, action: 'set_velocity', params: { linearMPerS: 0, angularRadPerS: 0.5, durationMs: 100 }, mode: 'reduced', expected: [] },
    { name: 'scope 3 turning just over the reduced rate', by: 3, action: 'set_velocity', params: { linearMPerS: 0, angularRadPerS: -0.5 - TINY, durationMs: 100 }, mode: 'reduced', expected: [{ code: 'BOUNDS_BASE_TURN_RATE', ruleId: 'amr-t/limits/angularSpeed/reduced', limit: 0.5 }] },
    { name: 'scope 3 accelerating at the reduced limit', by: 3, action: 'set_velocity', params: { linearMPerS: 0.25, angularRadPerS: 0, durationMs: 100, accelerationMPerS2: 0.5 }, mode: 'reduced', expected: [] },
    { name: 'scope 3 accelerating at the normal limit', by: 3, action: 'set_velocity', params: { linearMPerS: 0.25, angularRadPerS: 0, durationMs: 100, accelerationMPerS2: 1 }, mode: 'reduced', expected: [{ code: 'BOUNDS_BASE_ACCELERATION', ruleId: 'amr-t/limits/linearAcceleration/reduced', limit: 0.5 }] },
    // Into the slow zone (y 4..6): reduced limit 0.25 m/s there, the same as the reduced base limit.
    { name: 'scope 3 into the slow zone at its reduced limit', by: 3, action: 'go_to', params: { xM: 0, yM: 5, speedMPerS: 0.25 }, mode: 'reduced', expected: [] },
    { name: 'scope 4 into the slow zone at its normal limit', by: 4, action: 'go_to', params: { xM: 0, yM: 5, speedMPerS: 0.5 }, mode: 'normal', expected: [] },
    { name: 'scope 4 into the slow zone just over', by: 4, action: 'go_to', params: { xM: 0, yM: 5, speedMPerS: 0.5 + TINY }, mode: 'normal', expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: 'amr-t/speedZones/slow/normal', limit: 0.5, actual: 0.5 + TINY, unit: 'm/s' }] },
  ];
  for (const c of cases) {
    const result = stage(c.action, c.params, agent(c.by));
    assertReasons(t, result, c.expected, c.name);
    t.equal(result.mode, c.mode, `${c.name}: checked in ${c.mode}`);
  }
});

t.test('localization: must be reported ok with an age within maxAge; otherwise every motion is denied', async (t) => {
  const ruleId = 'amr-t/localization';
  const go = { xM: -1, yM: 0, speedMPerS: 0.5 };
  const with_ = (localization: MobileRobotState['localization'] | undefined): MobileRobotState => {
    const { localization: _drop, ...rest } = robotState();
    return localization === undefined ? rest : { ...rest, localization };
  };
  const cases: { name: string; state: MobileRobotState; expected: Expected[] }[] = [
    { name: 'ok, age 0', state: with_({ ok: true, ageMs: 0 }), expected: [] },
    { name: 'ok, age exactly maxAge', state: with_({ ok: true, ageMs: 500 }), expected: [] },
    { name: 'ok, age just over', state: with_({ ok: true, ageMs: 500 + TINY }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId, limit: 500, actual: 500 + TINY, unit: 'ms' }] },
    { name: 'ok, an hour old', state: with_({ ok: true, ageMs: 3_600_000 }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId, actual: 3_600_000 }] },
    { name: 'ok, negative age', state: with_({ ok: true, ageMs: -1 }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId, actual: -1 }] },
    { name: 'ok, NaN age', state: with_({ ok: true, ageMs: NaN }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId, actual: NaN }] },
    { name: 'ok, Infinity age', state: with_({ ok: true, ageMs: Infinity }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId, actual: Infinity }] },
    { name: 'ok but no age', state: with_({ ok: true }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId, limit: 500 }] },
    { name: 'not ok, fresh', state: with_({ ok: false, ageMs: 10 }), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId }] },
    { name: 'no localization reported', state: with_(undefined), expected: [{ code: 'BOUNDS_LOCALIZATION', ruleId }] },
  ];
  for (const c of cases) {
    assertReasons(t, check(go, 'go_to', { state: c.state }), c.expected, `go_to, ${c.name}`);
    assertReasons(t, check({ linearMPerS: 0, angularRadPerS: 0.2, durationMs: 100 }, 'set_velocity', { state: c.state }), c.expected, `turn in place, ${c.name}`);
  }
  // A speed violation is still reported next to the localization one.
  assertReasons(t, check({ ...go, speedMPerS: 2 }, 'go_to', { state: with_(undefined) }), [{ code: 'BOUNDS_BASE_SPEED' }, { code: 'BOUNDS_LOCALIZATION' }], 'both reported');
  // Stop needs no localization.
  assertReasons(t, check({}, 'stop', { state: with_(undefined) }), [], 'stop');
});

t.test('state messages: localization is optional in the message (so its absence is a specific deny), pose and velocity are not', async (t) => {
  const ok = (message: unknown): boolean => parseDeviceState(amr, JSON.stringify(message)).ok;
  const pose = { xM: 1, yM: 2, yawRad: 0 };
  const velocity = { linearMPerS: 0, angularRadPerS: 0 };
  t.ok(ok({ pose, velocity }), 'no localization parses');
  t.ok(ok({ pose, velocity, localization: { ok: true, ageMs: 5 }, moving: false, safeStopped: false, lastCommandId: null, people: [[1, 2]], timeMs: 1 }), 'everything');
  t.notOk(ok({ velocity }), 'no pose');
  t.notOk(ok({ pose }), 'no velocity');
  t.notOk(ok({ pose: { xM: 1, yM: 2 }, velocity }), 'no yaw');
  t.notOk(ok({ pose: { ...pose, xM: '1' }, velocity }), 'a string coordinate');
  t.notOk(ok({ pose, velocity, localization: { ok: true, ageMs: -1 } }), 'a negative age');
  t.notOk(ok({ pose, velocity, odometry: {} }), 'an unknown field');
  t.notOk(parseDeviceState(amr, '{"pose":{"xM":1e400,"yM":0,"yawRad":0},"velocity":{"linearMPerS":0,"angularRadPerS":0}}').ok, 'Infinity (1e400)');
  const parsed = parseDeviceState(amr, JSON.stringify({ pose, velocity, localization: { ok: true } }));
  t.same(parsed.ok && parsed.observed.state, { kind: 'mobile_robot', pose, velocity, localization: { ok: true }, moving: false, safeStopped: false, lastCommandId: null });
});

t.test('a state with a non-finite pose or velocity (only reachable by a direct call) is BOUNDS_STATE_INVALID', async (t) => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const states: [string, MobileRobotState][] = [
      ['x', { ...robotState(), pose: { xM: bad, yM: 0, yawRad: 0 } }],
      ['yaw', { ...robotState(), pose: { xM: 0, yM: 0, yawRad: bad } }],
      ['speed', { ...robotState(), velocity: { linearMPerS: bad, angularRadPerS: 0 } }],
    ];
    for (const [field, state] of states) {
      assertReasons(t, check({ xM: -1, yM: 0, speedMPerS: 0.5 }, 'go_to', { state }), [{ code: 'BOUNDS_STATE_INVALID', ruleId: 'amr-t/state' }], `${field} ${bad}`);
    }
  }
});

t.test('people unknown: every command that moves is denied; a zero-speed set_velocity (turn in place) is not', async (t) => {
  const unknown: PeopleView = { known: false, why: 'no state from people source amr-t' };
  const ruleId = 'amr-t/separation';
  assertReasons(t, check({ xM: -1, yM: 0, speedMPerS: 0.1 }, 'go_to', { people: unknown }), [{ code: 'BOUNDS_PEOPLE_UNKNOWN', ruleId, path: '/params' }], 'go_to slowly');
  assertReasons(t, check({ waypoints: [[-1, 0]], speedMPerS: 0.1 }, 'follow_path', { people: unknown }), [{ code: 'BOUNDS_PEOPLE_UNKNOWN', ruleId, path: '/params/waypoints/0' }], 'follow_path');
  assertReasons(t, check({ linearMPerS: -0.05, angularRadPerS: 0, durationMs: 100 }, 'set_velocity', { people: unknown }), [{ code: 'BOUNDS_PEOPLE_UNKNOWN', ruleId }], 'creeping backwards');
  assertReasons(t, check({ linearMPerS: 0, angularRadPerS: 0.5, durationMs: 100 }, 'set_velocity', { people: unknown }), [], 'turning in place');
  assertReasons(t, check({ linearMPerS: -0, angularRadPerS: 0, durationMs: 100 }, 'set_velocity', { people: unknown }), [], '-0 speed');
  // Through the stage: amr-t is the people source; a state without a people field means people are unknown.
  const { people: _none, ...noPeople } = { state: robotState(), receivedAtMs: NOW - 10, people: [] };
  const checked = checkBounds({
    command: { commandId: 'c', kid: 'k', seq: 1, agent: agent(4), device: amr, action: 'go_to', params: { xM: -1, yM: 0, speedMPerS: 0.5 }, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 1000 },
    declarations: loaded.declarations,
    states: { latest: (id) => (id === 'amr-t' ? noPeople : undefined) },
    releases: NO_RELEASES,
    memory: new BoundsMemory(),
    nowMs: NOW,
  });
  assertReasons(t, checked, [{ code: 'BOUNDS_PEOPLE_UNKNOWN', ruleId }], 'through checkBounds');
  t.match(checked.reasons[0]?.message ?? '', /people source amr-t sent no people field/);
});

t.test('max goal distance: measured from the pose in the current state, at the farthest waypoint', async (t) => {
  const ruleId = 'amr-t/limits/maxGoalDistance';
  const cases: { name: string; action: string; params: Record<string, unknown>; state?: MobileRobotState; expected: Expected[] }[] = [
    { name: 'go_to exactly 8 m', action: 'go_to', params: { xM: -8, yM: 0, speedMPerS: 1 }, expected: [] },
    { name: 'go_to just over 8 m', action: 'go_to', params: { xM: -8 - 2 ** -40, yM: 0, speedMPerS: 1 }, expected: [{ code: 'BOUNDS_GOAL_TOO_FAR', ruleId, path: '/params', limit: 8, actual: 8 + 2 ** -40, unit: 'm' }] },
    { name: 'go_to 8 m from a robot at (-3, -3)', action: 'go_to', params: { xM: -3, yM: -11, speedMPerS: 1 }, state: robotState({ x: -3, y: -3 }), expected: [] },
    { name: 'path: the farthest waypoint is named', action: 'follow_path', params: { waypoints: [[-3, 0], [-9, 0], [-4, 0]], speedMPerS: 1 }, expected: [{ code: 'BOUNDS_GOAL_TOO_FAR', ruleId, path: '/params/waypoints/1', actual: 9 }] },
    { name: 'path: a long zigzag within the radius is not a step problem', action: 'follow_path', params: { waypoints: [[-7, 0], [0, -3], [-7, -3], [0, 0]], speedMPerS: 1 }, expected: [] },
  ];
  for (const c of cases) assertReasons(t, check(c.params, c.action, c.state === undefined ? {} : { state: c.state }), c.expected, c.name);
});

t.test('many small go_to steps before the robot moves add up: each is measured from the live pose, not the last goal', async (t) => {
  const verdicts: string[] = [];
  for (let step = 1; step <= 9; step++) verdicts.push(stage('go_to', { xM: -step, yM: 0, speedMPerS: 1 }, agent(4)).verdict);
  t.same(verdicts, ['allow', 'allow', 'allow', 'allow', 'allow', 'allow', 'allow', 'allow', 'deny'], 'the 9th 1 m step from (0, 0) is 9 m away');
  // Once the state shows the robot at (-8, 0), the same target is one step away.
  t.equal(stage('go_to', { xM: -9, yM: 0, speedMPerS: 1 }, agent(4), { state: robotState({ x: -8, y: 0 }) }).verdict, 'allow');
});

t.test('waypoint count: maxWaypoints passes, one more is BOUNDS_PATH_TOO_LONG', async (t) => {
  const zigzag = (n: number): number[][] => Array.from({ length: n }, (_, i) => [-(i % 4), i % 2 === 0 ? 1 : -1]);
  assertReasons(t, check({ waypoints: zigzag(100), speedMPerS: 0.5 }, 'follow_path'), [], '100 waypoints');
  assertReasons(t, check({ waypoints: zigzag(101), speedMPerS: 0.5 }, 'follow_path'), [{ code: 'BOUNDS_PATH_TOO_LONG', ruleId: 'amr-t/limits/maxWaypoints', path: '/params/waypoints', limit: 100, actual: 101 }], '101 waypoints');
});

t.test('targets and waypoints that are not finite pairs are BOUNDS_BASE_TARGET_INVALID, never geometry on NaN', async (t) => {
  const ruleId = 'amr-t/target';
  const cases: { name: string; action: string; params: Record<string, unknown>; expected: Expected[] }[] = [
    { name: 'go_to x NaN', action: 'go_to', params: { xM: NaN, yM: 0, speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', ruleId, path: '/params' }] },
    { name: 'go_to y +Infinity', action: 'go_to', params: { xM: 0, yM: Infinity, speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', ruleId }] },
    { name: 'go_to x as a string', action: 'go_to', params: { xM: '-1', yM: 0, speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', ruleId }] },
    { name: 'go_to yaw NaN', action: 'go_to', params: { xM: -1, yM: 0, yawRad: NaN, speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', ruleId, path: '/params/yawRad' }] },
    { name: 'go_to -0 target is an ordinary point', action: 'go_to', params: { xM: -0, yM: -0, yawRad: -0, speedMPerS: 0.5 }, expected: [] },
    { name: 'path with a NaN waypoint', action: 'follow_path', params: { waypoints: [[-1, 0], [NaN, 0], [-2, -Infinity]], speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', ruleId, path: '/params/waypoints/1' }] },
    { name: 'path with a one-number waypoint', action: 'follow_path', params: { waypoints: [[-1]], speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', path: '/params/waypoints/0' }] },
    // eslint-disable-next-line no-sparse-arrays
    { name: 'path with a hole (sparse array)', action: 'follow_path', params: { waypoints: [[-1, 0], , [-2, 0]], speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', path: '/params/waypoints/1' }] },
    { name: 'empty path', action: 'follow_path', params: { waypoints: [], speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', path: '/params/waypoints' }] },
    { name: 'no path at all', action: 'follow_path', params: { speedMPerS: 0.5 }, expected: [{ code: 'BOUNDS_BASE_TARGET_INVALID', path: '/params/waypoints' }] },
    { name: 'an invalid target and a bad speed: both said', action: 'go_to', params: { xM: NaN, yM: 0, speedMPerS: 5 }, expected: [{ code: 'BOUNDS_BASE_SPEED' }, { code: 'BOUNDS_BASE_TARGET_INVALID' }] },
  ];
  for (const c of cases) assertReasons(t, check(c.params, c.action), c.expected, c.name);
  const many = check({ waypoints: [[NaN, 0], [NaN, 0], [NaN, 0]], speedMPerS: 0.5 }, 'follow_path');
  t.match(many.reasons[0]?.message ?? '', /waypoint 0 \(and 2 more\)/, 'one reason counts the rest');
});

t.test('actions: stop always passes a direct check; an unknown action has no bounds', async (t) => {
  assertReasons(t, check({}, 'stop', { state: { ...robotState(), pose: { xM: NaN, yM: 0, yawRad: 0 } } }), [], 'stop with a broken state');
  assertReasons(t, check({}, 'dance'), [{ code: 'BOUNDS_NOT_DECLARED', ruleId: 'amr-t' }], 'unknown action');
});
