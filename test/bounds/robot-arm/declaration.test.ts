// The arm declaration as loaded from the demo YAML: every new section converted to SI (DH, base, tool, dynamics,
// TCP limits, workspace, max step), broken declarations refused with file, JSON pointer and reason, the
// fail-closed default for stateMustReport, and state messages with the new measurement fields.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { ArmDeclaration } from '../../../src/core/kinds/robot-arm.js';
import { loadCell } from '../../../src/declarations/load.js';
import { parseDeviceState } from '../../../src/interlock/state-store.js';
import { DEMO_CELL, makeTestCell } from '../../helpers/test-cell.js';

const DEG = Math.PI / 180;
const YAML = readFileSync(join(DEMO_CELL, 'devices', 'arm-1.yaml'), 'utf8');

function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`fixture text not found: ${from}`);
  return text.replace(from, to);
}

function load(yaml: string): ReturnType<typeof loadCell> {
  const cell = makeTestCell({ 'devices/arm-1.yaml': yaml });
  try {
    return loadCell(cell.cellDir);
  } finally {
    cell.cleanup();
  }
}

const demo = load(YAML);
if (!demo.ok) throw new Error(`the demo cell does not load: ${JSON.stringify(demo.problems)}`);
const arm = demo.cell.declarations.devices.get('arm-1') as ArmDeclaration;

const near = (a: number | undefined, b: number): boolean => a !== undefined && Math.abs(a - b) < 1e-12;

t.test('the demo arm converts every section to SI units', async (t) => {
  const k = arm.kinematics;
  t.ok(k !== undefined, 'kinematics');
  t.same(k?.dh.map((r) => [r.aM, r.dM]), [[0, 0.1625], [-0.425, 0], [-0.3922, 0], [0, 0.1333], [0, 0.0997], [0, 0.0996]], 'DH lengths in m');
  t.ok(k?.dh.every((r, i) => near(r.alphaRad, [90, 0, 0, 90, -90, 0][i] as number * DEG) && r.thetaOffsetRad === 0), 'DH alpha from degrees');
  t.same(k?.basePositionM, [1, 1, 0.75]);
  t.ok(near(k?.baseYawRad, Math.PI), 'base yaw 180 deg');
  t.same(k?.toolOffsetM, [0, 0, 0.15]);
  t.ok(near(arm.joints[0]?.accelerationMaxRadPerS2?.normal, 300 * DEG) && near(arm.joints[0]?.accelerationMaxRadPerS2?.reduced, 150 * DEG), 'base acceleration');
  t.same(arm.joints.map((j) => j.effortMaxNm?.normal), [120, 120, 120, 24, 24, 24], 'efforts in N*m');
  t.same(arm.tcp.speedMaxMPerS, { normal: 1.5, reduced: 0.25 });
  t.same(arm.tcp.accelerationMaxMPerS2, { normal: 1.2, reduced: 0.5 });
  t.same(arm.tcp.forceMaxN, { normal: 120, reduced: 90 });
  t.same(arm.tcp.orientation?.axis, [0, 0, -1]);
  t.ok(near(arm.tcp.orientation?.maxAngleRad, 100 * DEG), 'cone 100 deg');
  t.equal(arm.tcp.payloadMaxKg, 3);
  t.ok(near(arm.workspace?.resolutionM, 0.01) && near(arm.workspace?.marginM, 0.02), 'resolution 10 mm, margin 20 mm');
  t.same(arm.workspace?.bodyPoints, [
    { name: 'elbow', index: 2 },
    { name: 'wrist1', index: 3 },
    { name: 'wrist2', index: 4 },
    { name: 'wrist3', index: 5 },
    { name: 'flange', index: 6 },
    { name: 'tcp', index: 7 },
  ]);
  t.same(arm.workspace?.keepIn.map((z) => z.id), ['table-envelope']);
  t.same(arm.workspace?.keepOut.map((z) => [z.id, z.shape.type]), [['table-surface', 'plane'], ['operator-station', 'box'], ['overhead-camera', 'sphere']]);
  t.ok(near(arm.maxStepRad?.normal, 90 * DEG) && near(arm.maxStepRad?.reduced, 45 * DEG), 'max step');
  t.same(arm.stateMustReport, []);
});

t.test('units other than the demo ones convert too (rad, mm, cm, g)', async (t) => {
  let yaml = edit(YAML, 'lengthUnit: m\n    angleUnit: deg', 'lengthUnit: mm\n    angleUnit: rad');
  yaml = edit(yaml, '{ joint: shoulder, a: -0.425,  d: 0,      alpha: 0 }', '{ joint: shoulder, a: -425,  d: 0,      alpha: 0 }');
  yaml = edit(yaml, '{ joint: base,     a: 0,       d: 0.1625, alpha: 90 }', '{ joint: base,     a: 0,       d: 162.5, alpha: 1.5, theta: 0.25 }');
  yaml = edit(yaml, 'tool: { offset: [0, 0, 0.15], unit: m }', 'tool: { offset: [0, 0, 15], unit: cm }');
  yaml = edit(yaml, 'payload: { max: 3, unit: kg }', 'payload: { max: 2500, unit: g }');
  const result = load(yaml);
  t.ok(result.ok, 'loads');
  if (!result.ok) return;
  const converted = result.cell.declarations.devices.get('arm-1') as ArmDeclaration;
  t.ok(near(converted.kinematics?.dh[0]?.dM, 0.1625) && near(converted.kinematics?.dh[1]?.aM, -0.425), 'mm to m');
  t.equal(converted.kinematics?.dh[0]?.alphaRad, 1.5);
  t.equal(converted.kinematics?.dh[0]?.thetaOffsetRad, 0.25);
  t.ok(near(converted.kinematics?.toolOffsetM[2], 0.15), 'cm to m');
  t.equal(converted.tcp.payloadMaxKg, 2.5);
});

t.test('without stateMustReport, every measurement a declared bound reads is required (fail closed)', async (t) => {
  const result = load(edit(YAML, 'stateMustReport: []\n', ''));
  t.ok(result.ok);
  if (!result.ok) return;
  t.same((result.cell.declarations.devices.get('arm-1') as ArmDeclaration).stateMustReport, ['effortsNm', 'toolForceN', 'payloadKg']);
});

t.test('broken arm declarations are refused with the file, the JSON pointer and why', async (t) => {
  const cases: { name: string; yaml: string; path: string; message: RegExp }[] = [
    {
      name: 'a DH row for the wrong joint',
      yaml: edit(YAML, '{ joint: elbow,    a: -0.3922', '{ joint: wrist1,   a: -0.3922'),
      path: '/kinematics/dh/rows/2/joint',
      message: /joint 2 is "elbow"/,
    },
    { name: 'a DH row missing', yaml: edit(YAML, '      - { joint: wrist3,   a: 0,       d: 0.0996, alpha: 0 }\n', ''), path: '/kinematics/dh/rows', message: /5 DH rows for 6 joints/ },
    { name: 'a length unit for an angle', yaml: edit(YAML, 'angleUnit: deg', 'angleUnit: mm'), path: '/kinematics/dh/angleUnit', message: /allowed values/ },
    { name: 'a base without a yaw', yaml: edit(YAML, ', yaw: { value: 180, unit: deg } }', ' }'), path: '/kinematics/base', message: /yaw/ },
    { name: 'a body point that is not a joint', yaml: edit(YAML, 'bodyPoints: [elbow,', 'bodyPoints: [knee,'), path: '/workspace/bodyPoints/0', message: /"knee"/ },
    { name: 'no tcp among the body points', yaml: edit(YAML, 'flange, tcp]', 'flange]'), path: '/workspace/bodyPoints', message: /tcp/ },
    { name: 'a plane without a normal direction', yaml: edit(YAML, 'normal: [0, 0, 1]', 'normal: [0, 0, 0]'), path: '/workspace/keepOut/0/plane/normal', message: /no length/ },
    { name: 'a cone axis of zero length', yaml: edit(YAML, 'axis: [0, 0, -1]', 'axis: [0, 0, 0]'), path: '/tcp/orientation/axis', message: /no length/ },
    { name: 'a cone of 180 degrees (allows everything)', yaml: edit(YAML, 'maxAngle: { value: 100, unit: deg }', 'maxAngle: { value: 180, unit: deg }'), path: '/tcp/orientation/maxAngle', message: /narrower/ },
    { name: 'a joint missing from jointDynamics', yaml: edit(YAML, '  wrist3:   { acceleration', '  wristX:   { acceleration'), path: '/jointDynamics', message: /"wrist3" is not listed/ },
    { name: 'jointDynamics for an undeclared joint', yaml: edit(YAML, '  wrist3:   { acceleration', '  wristX:   { acceleration'), path: '/jointDynamics/wristX', message: /no joint "wristX"/ },
    {
      name: 'a reduced acceleration looser than normal',
      yaml: edit(YAML, 'base:     { acceleration: { normal: 300, reduced: 150', 'base:     { acceleration: { normal: 300, reduced: 350'),
      path: '/jointDynamics/base/acceleration',
      message: /reduced .* must not exceed normal/,
    },
    { name: 'a workspace without kinematics', yaml: YAML.replace(/\nkinematics:\n(?: {2}.*\n|\n)*?(?=tcp:)/, '\n'), path: '/workspace', message: /needs kinematics/ },
    {
      name: 'a keep-in box thinner than twice the clearance',
      yaml: edit(YAML, 'box: { min: [0.1, 0.1, 0.7], max: [1.9, 1.9, 1.95], unit: m }', 'box: { min: [0.1, 0.1, 0.7], max: [1.9, 1.9, 0.74], unit: m }'),
      path: '/workspace/keepIn/0',
      message: /too small/,
    },
    { name: 'a zone id used twice', yaml: edit(YAML, '- id: overhead-camera', '- id: table-surface'), path: '/workspace/keepOut/2/id', message: /used twice/ },
    { name: 'a zero resolution', yaml: edit(YAML, 'resolution: { value: 10, unit: mm }', 'resolution: { value: 0, unit: mm }'), path: '/workspace/resolution/value', message: /> 0/ },
    { name: 'an unknown measurement', yaml: edit(YAML, 'stateMustReport: []', 'stateMustReport: [torque]'), path: '/stateMustReport/0', message: /allowed values/ },
    { name: 'a shape with two forms', yaml: edit(YAML, 'sphere: { center: [1.0, 1.0, 2.05], radius: 0.15, unit: m }', 'sphere: { center: [1.0, 1.0, 2.05], radius: 0.15, unit: m }\n      box: { min: [0, 0, 0], max: [1, 1, 1], unit: m }'), path: '/workspace/keepOut/2', message: /allowed forms|must match exactly one/ },
  ];
  for (const c of cases) {
    const result = load(c.yaml);
    t.equal(result.ok, false, `${c.name}: refused`);
    const problems = result.ok ? [] : result.problems;
    t.ok(
      problems.some((p) => p.file === 'devices/arm-1.yaml' && p.path === c.path && c.message.test(p.message)),
      `${c.name}: problem at ${c.path} ${String(c.message)}`,
      { found: problems },
    );
  }
});

t.test('state messages: the new measurement fields are read; wrong lengths and negative magnitudes are refused', async (t) => {
  const home = [0, -1.571, 1.571, -1.571, -1.571, 0];
  const full = { positionsRad: home, velocitiesRadPerS: [0, 0, 0, 0, 0, 0], moving: false, safeStopped: false, lastCommandId: null, effortsNm: [1, -2, 3, 0, 0, 0], toolForceN: 4, payloadKg: 1.5 };
  const parsed = parseDeviceState(arm, JSON.stringify(full));
  t.ok(parsed.ok, 'a full message');
  if (parsed.ok) {
    t.same(parsed.observed.state, { kind: 'robot_arm', ...full });
  }
  const bare = parseDeviceState(arm, JSON.stringify({ positionsRad: home }));
  t.ok(bare.ok && !('effortsNm' in bare.observed.state), 'positions only: the optional fields stay absent, not zero');
  const cases: { name: string; message: Record<string, unknown>; problem: RegExp }[] = [
    { name: '5 efforts', message: { positionsRad: home, effortsNm: [0, 0, 0, 0, 0] }, problem: /5 effortsNm/ },
    { name: '7 velocities', message: { positionsRad: home, velocitiesRadPerS: [0, 0, 0, 0, 0, 0, 0] }, problem: /7 velocitiesRadPerS/ },
    { name: 'a negative tool force', message: { positionsRad: home, toolForceN: -1 }, problem: /toolForceN/ },
    { name: 'a negative payload', message: { positionsRad: home, payloadKg: -0.5 }, problem: /payloadKg/ },
    { name: 'a string effort', message: { positionsRad: home, effortsNm: [0, 0, 0, 0, 0, '1'] }, problem: /must be number/ },
  ];
  for (const c of cases) {
    const result = parseDeviceState(arm, JSON.stringify(c.message));
    t.equal(result.ok, false, `${c.name}: refused`);
    if (!result.ok) t.match(result.problem, c.problem, c.name);
  }
});
