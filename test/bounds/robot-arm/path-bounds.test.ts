// Adversarial, table-driven tests of the arm's path and tool bounds on the demo arm (UR5e DH, demo workspace):
// paths whose endpoints are safe but whose middle is not, linear moves through the table plane and out of the
// workspace, IK that cannot follow, TCP speed (derived and commanded) at, just under and just over its limit,
// max step (also summed over commands sent before the arm moves), accelerations, efforts, force, payload and
// missing measurements, reduced mode through checkBounds for a scope-3 agent, NaN / ±Infinity / -0 everywhere.

import t from 'tap';
import { checkBounds } from '../../../src/bounds/bounds.js';
import { checkArmMoveJoints, checkArmMoveLinear, ROBOT_ARM_BOUNDS } from '../../../src/bounds/robot-arm-bounds.js';
import type { VerifiedCommand } from '../../../src/core/command.js';
import type { AgentDeclaration } from '../../../src/core/declarations.js';
import type { ObservedState } from '../../../src/core/device-state.js';
import type { ArmDeclaration, ArmMoveJoints, ArmMoveLinear, ArmState } from '../../../src/core/kinds/robot-arm.js';
import type { Reason } from '../../../src/core/reasons.js';
import type { StageResult } from '../../../src/core/verdict.js';
import { BoundsMemory, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { assertReasons, type Expected } from '../../helpers/assert-reasons.js';
import { amrReport, withAmrReport } from '../../helpers/demo-people.js';
import { makeTestCell } from '../../helpers/test-cell.js';

const NOW = 1_700_000_000_000;
const DEG = Math.PI / 180;
const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const arm = loaded.declarations.devices.get('arm-1') as ArmDeclaration;

/** Tool pointing down over the pick area; its TCP is at about (1.492, 1.133, 1.088) in the cell. */
const WORK = [0, -1.571, 1.571, -1.571, -1.571, 0];
const WORK_TCP = [1.492, 1.133, 1.088];
/** A pose the integration tests use; from WORK at 1.5 rad/s the TCP peaks at about 0.93 m/s. */
const NEAR = [0.3, -1.2, 1.4, -1.571, -1.571, 0.2];

/** An arm state; at rest unless `extra` says otherwise (positions alone mean motion unknown: see run-out.test.ts). */
const at = (positionsRad: readonly number[], extra: Partial<ArmState> = {}): ArmState => ({ kind: 'robot_arm', positionsRad, moving: false, ...extra });
const joints = (device: ArmDeclaration, move: ArmMoveJoints, state: ArmState = at(WORK), mode: 'normal' | 'reduced' = 'normal'): StageResult =>
  checkArmMoveJoints(device, move, state, mode);
const linear = (device: ArmDeclaration, move: ArmMoveLinear, state: ArmState = at(WORK), mode: 'normal' | 'reduced' = 'normal'): StageResult =>
  checkArmMoveLinear(device, move, state, mode);

t.test('paths whose endpoints are safe but whose middle is not are denied, naming the path fraction s', async (t) => {
  // Found by search over the demo arm: both endpoints pass on their own; the straight joint line between them does not.
  const cases: { name: string; from: number[]; to: number[]; code: Reason['code']; ruleId: string }[] = [
    { name: 'the TCP swings through the operator-station box', from: [-0.38, -0.97, 1.54, -0.58, -2.45, -0.42], to: [-1.83, -1.84, 1.94, 0.38, -3.66, 0.74], code: 'BOUNDS_KEEP_OUT', ruleId: 'arm-1/workspace/keepOut/operator-station' },
    { name: 'the TCP dips through the table plane', from: [-0.47, -0.83, 1.6, -0.82, -0.85, -0.21], to: [0.36, -0.65, 0.92, -2.13, -1.5, 0.65], code: 'BOUNDS_KEEP_OUT', ruleId: 'arm-1/workspace/keepOut/table-surface' },
    { name: 'the TCP swings out of the keep-in envelope', from: [1.34, -0.97, 0.6, -2.72, -1.19, -1.45], to: [2.28, -0.7, 1.35, -3.84, -1.7, -0.81], code: 'BOUNDS_KEEP_IN', ruleId: 'arm-1/workspace/keepIn' },
    { name: 'the tool tips up out of its cone on the way', from: [0.39, -1.38, 0.74, -2.18, -1.17, 0.1], to: [-0.91, -1.91, -0.17, -1.99, -0.18, -0.16], code: 'BOUNDS_TCP_ORIENTATION', ruleId: 'arm-1/tcp/orientation' },
  ];
  for (const c of cases) {
    assertReasons(t, joints(arm, { positionsRad: c.from, velocityRadPerS: 0.1 }, at(c.from)), [], `${c.name}: the start is safe`);
    assertReasons(t, joints(arm, { positionsRad: c.to, velocityRadPerS: 0.1 }, at(c.to)), [], `${c.name}: the target is safe`);
    const result = joints(arm, { positionsRad: c.to, velocityRadPerS: 0.1 }, at(c.from));
    assertReasons(t, result, [{ code: c.code, ruleId: c.ruleId, path: '/params/positionsRad' }], c.name);
    const s = /first at s=(\d\.\d+), worst at s=(\d\.\d+)/.exec(result.reasons[0]?.message ?? '');
    t.ok(s !== null && Number(s[1]) > 0 && Number(s[1]) < 1 && Number(s[2]) > 0 && Number(s[2]) < 1, `${c.name}: fires strictly inside the path (${result.reasons[0]?.message})`);
  }
});

t.test('linear moves: through the table plane, out of the workspace, and at the clearance (just under, just over)', async (t) => {
  const clearance = (arm.workspace?.marginM ?? NaN) + (arm.workspace?.resolutionM ?? NaN) / 2;
  const planeZ = 0.76;
  // The demo keep-in reaches past where the tool can point down; a 1.6 m table brings its +x wall within reach.
  const keepInMaxX = 1.8;
  const workspace = arm.workspace as NonNullable<ArmDeclaration['workspace']>;
  const smallTable: ArmDeclaration = { ...arm, workspace: { ...workspace, keepIn: [{ id: 'table-envelope', shape: { type: 'box', min: [0.2, 0.2, 0.7], max: [keepInMaxX, 1.8, 1.95] } }] } };
  const [x, y, z] = WORK_TCP as [number, number, number];
  const cases: { name: string; target: number[]; expected: Expected[] }[] = [
    { name: 'straight down 2 cm into the plane', target: [x, y, 0.74], expected: [{ code: 'BOUNDS_KEEP_OUT', ruleId: 'arm-1/workspace/keepOut/table-surface', path: '/params/positionM', limit: clearance, unit: 'm' }] },
    { name: 'down to 1 um above the clearance: allowed', target: [x, y, planeZ + clearance + 1e-6], expected: [] },
    { name: 'down to 1 um inside the clearance', target: [x, y, planeZ + clearance - 1e-6], expected: [{ code: 'BOUNDS_KEEP_OUT', ruleId: 'arm-1/workspace/keepOut/table-surface' }] },
    { name: 'out to the keep-in wall', target: [keepInMaxX, y, 0.9], expected: [{ code: 'BOUNDS_KEEP_IN', ruleId: 'arm-1/workspace/keepIn', path: '/params/positionM', limit: clearance, unit: 'm' }] },
    { name: 'to 1 um short of the keep-in clearance: allowed', target: [keepInMaxX - clearance - 1e-6, y, 0.9], expected: [] },
    { name: 'to 1 um past the keep-in clearance', target: [keepInMaxX - clearance + 1e-6, y, 0.9], expected: [{ code: 'BOUNDS_KEEP_IN', ruleId: 'arm-1/workspace/keepIn' }] },
    { name: 'nowhere: the current TCP (zero length)', target: [x, y, z], expected: [] },
  ];
  for (const c of cases) assertReasons(t, linear(smallTable, { positionM: c.target, speedMPerS: 0.1 }), c.expected, c.name);
  const down = linear(arm, { positionM: [x, y, 0.74], speedMPerS: 0.1 });
  // The plane is crossed (plus clearance) at z = 0.785: s = (1.088 - 0.785) / (1.088 - 0.74) = 0.87.
  t.match(down.reasons[0]?.message ?? '', /first at s=0\.87\d, worst at s=1\.000/, 'names where along the line it first and most violates');
  t.ok(Math.abs((down.reasons[0]?.actual ?? NaN) - (0.74 - planeZ)) < 1e-6, 'actual: the TCP ends 2 cm inside the keep-out side');
});

t.test('linear moves that IK cannot follow, and non-finite targets, are denied as unreachable', async (t) => {
  const far = linear(arm, { positionM: [2.6, 1.133, 1.088], speedMPerS: 0.1 });
  t.equal(far.verdict, 'deny');
  const ik = far.reasons.find((r) => r.code === 'BOUNDS_IK_UNREACHABLE');
  t.match(ik?.message ?? '', /cannot be followed at s=0\.\d+/, 'names where the line stops being followable');
  t.equal(ik?.ruleId, 'arm-1/kinematics');
  for (const bad of [NaN, Infinity, -Infinity]) {
    assertReasons(t, linear(arm, { positionM: [1.4, bad, 1.0], speedMPerS: 0.1 }), [{ code: 'BOUNDS_IK_UNREACHABLE', ruleId: 'arm-1/kinematics', path: '/params/positionM' }], `target y ${bad}`);
  }
  assertReasons(t, linear(arm, { positionM: [1.4, 1.1], speedMPerS: 0.1 }), [{ code: 'BOUNDS_IK_UNREACHABLE', path: '/params/positionM' }], 'two coordinates');
});

t.test('move_linear TCP speed and acceleration: at the limit, just over, NaN, ±Infinity, -0, zero; none declared', async (t) => {
  const up = [WORK_TCP[0] as number, WORK_TCP[1] as number, 1.1];
  const speedLimit = arm.tcp.speedMaxMPerS?.reduced as number;
  const accelerationLimit = arm.tcp.accelerationMaxMPerS2?.reduced as number;
  const speed = (speedMPerS: number): Expected[] => [{ code: 'BOUNDS_TCP_SPEED', ruleId: 'arm-1/tcp/speed/reduced', path: '/params/speedMPerS', limit: speedLimit, actual: speedMPerS, unit: 'm/s' }];
  const speedCases: { name: string; value: number; expected: Expected[] }[] = [
    { name: 'exactly the reduced limit', value: speedLimit, expected: [] },
    { name: 'limit + 1e-9', value: speedLimit + 1e-9, expected: speed(speedLimit + 1e-9) },
    { name: 'NaN', value: NaN, expected: speed(NaN) },
    { name: '+Infinity', value: Infinity, expected: speed(Infinity) },
    { name: '-Infinity', value: -Infinity, expected: speed(-Infinity) },
    { name: '-0', value: -0, expected: speed(-0) },
    { name: 'zero', value: 0, expected: speed(0) },
  ];
  for (const c of speedCases) assertReasons(t, linear(arm, { positionM: up, speedMPerS: c.value }, at(WORK), 'reduced'), c.expected, `speed ${c.name}`);
  // The normal limit in reduced mode: over the TCP limit, and the joints could not follow that fast either.
  const normalSpeed = linear(arm, { positionM: up, speedMPerS: arm.tcp.speedMaxMPerS?.normal as number }, at(WORK), 'reduced');
  t.same(normalSpeed.reasons[0] && [normalSpeed.reasons[0].code, normalSpeed.reasons[0].ruleId, normalSpeed.reasons[0].limit], ['BOUNDS_TCP_SPEED', 'arm-1/tcp/speed/reduced', speedLimit], 'the normal limit in reduced mode: TCP speed first');
  t.ok(normalSpeed.reasons.slice(1).every((r) => r.code === 'BOUNDS_JOINT_VELOCITY' || r.code === 'BOUNDS_JOINT_ACCELERATION'), 'then the joint speeds and accelerations that speed would need');
  const acceleration = (value: number): Expected[] => [{ code: 'BOUNDS_TCP_ACCELERATION', ruleId: 'arm-1/tcp/acceleration/reduced', path: '/params/accelerationMPerS2', limit: accelerationLimit, actual: value, unit: 'm/s^2' }];
  const accelerationCases: { name: string; value: number; expected: Expected[] }[] = [
    { name: 'exactly the reduced limit', value: accelerationLimit, expected: [] },
    { name: 'limit + 1e-9', value: accelerationLimit + 1e-9, expected: acceleration(accelerationLimit + 1e-9) },
    { name: 'NaN', value: NaN, expected: acceleration(NaN) },
    { name: '+Infinity', value: Infinity, expected: acceleration(Infinity) },
    { name: '-0', value: -0, expected: acceleration(-0) },
  ];
  for (const c of accelerationCases) assertReasons(t, linear(arm, { positionM: up, speedMPerS: 0.1, accelerationMPerS2: c.value }, at(WORK), 'reduced'), c.expected, `acceleration ${c.name}`);
  const { accelerationMaxMPerS2: _a, ...tcpWithout } = arm.tcp;
  assertReasons(t, linear({ ...arm, tcp: tcpWithout }, { positionM: up, speedMPerS: 0.1, accelerationMPerS2: 0.1 }), [{ code: 'BOUNDS_TCP_ACCELERATION', ruleId: 'arm-1/tcp/acceleration', path: '/params/accelerationMPerS2' }], 'an acceleration with no TCP acceleration limit declared');
});

t.test('move_linear joint limits along the line: derived joint speed, a joint leaving its range, the max step', async (t) => {
  // Tangential to the base: the base joint turns at about v / r = v / 0.51 m.
  const radius = Math.hypot(0.492, 0.133);
  const tangent = [-0.133 / radius, 0.492 / radius];
  const target = [(WORK_TCP[0] as number) + 0.2 * (tangent[0] as number), (WORK_TCP[1] as number) + 0.2 * (tangent[1] as number), WORK_TCP[2] as number];
  assertReasons(t, linear(arm, { positionM: target, speedMPerS: 0.2 }), [], 'slowly: allowed');
  const fast = linear(arm, { positionM: target, speedMPerS: 1.2 });
  const base = fast.reasons.find((r) => r.ruleId === 'arm-1/joints/base/velocity/normal');
  t.equal(base?.code, 'BOUNDS_JOINT_VELOCITY', 'fast: the base would have to turn faster than 120 deg/s');
  t.ok((base?.actual ?? NaN) > (base?.limit ?? NaN) && (base?.actual ?? NaN) < 1.2 / (radius - 0.2), `actual ${base?.actual} rad/s is about v / r`);
  t.equal(base?.path, '/params/speedMPerS');

  // wrist3 turns with the base to keep the tool's orientation: narrow its range and the line leaves it.
  const narrowWrist: ArmDeclaration = { ...arm, joints: arm.joints.map((j) => (j.name === 'wrist3' ? { ...j, positionMinRad: -0.1, positionMaxRad: 0.1 } : j)) };
  const out = linear(narrowWrist, { positionM: target, speedMPerS: 0.2 });
  assertReasons(t, out, [{ code: 'BOUNDS_JOINT_POSITION', ruleId: 'arm-1/joints/wrist3/position', path: '/params/positionM', unit: 'rad' }], 'wrist3 leaves a ±0.1 rad range');
  t.match(out.reasons[0]?.message ?? '', /first at s=0\.\d+/);
  t.equal(out.reasons[0]?.limit, 0.1, 'the crossed bound');

  const tightStep: ArmDeclaration = { ...arm, maxStepRad: { normal: 0.2, reduced: 0.2 } };
  const stepped = linear(tightStep, { positionM: target, speedMPerS: 0.2 });
  t.same([...new Set(stepped.reasons.map((r) => [r.code, r.ruleId].join(' ')))], ['BOUNDS_JOINT_STEP arm-1/maxStep/normal'], 'the joints that travel more than 0.2 rad along the line');
  t.ok(stepped.reasons.some((r) => r.message.includes('joint base')), 'the base is one of them');
});

t.test('move_joints TCP speed, derived from the synchronised motion: just under and just over the limit', async (t) => {
  // In reduced mode (0.25 m/s) at 1.5 rad/s the TCP would reach about 0.93 m/s; the TCP speed scales with v.
  const probe = joints(arm, { positionsRad: NEAR, velocityRadPerS: 1.5 }, at(WORK), 'reduced');
  assertReasons(t, probe, [{ code: 'BOUNDS_TCP_SPEED', ruleId: 'arm-1/tcp/speed/reduced', path: '/params/velocityRadPerS', limit: 0.25, unit: 'm/s' }], 'at 1.5 rad/s');
  const peak = probe.reasons[0]?.actual ?? NaN;
  t.ok(peak > 0.8 && peak < 1.0, `peak TCP speed ${peak} m/s`);
  const atLimit = (1.5 * 0.25) / peak;
  assertReasons(t, joints(arm, { positionsRad: NEAR, velocityRadPerS: atLimit * 0.999 }, at(WORK), 'reduced'), [], 'just under: 0.999 of the speed that gives 0.25 m/s');
  assertReasons(t, joints(arm, { positionsRad: NEAR, velocityRadPerS: atLimit * 1.001 }, at(WORK), 'reduced'), [{ code: 'BOUNDS_TCP_SPEED' }], 'just over: 1.001 of it');
  assertReasons(t, joints(arm, { positionsRad: NEAR, velocityRadPerS: 1.5 }, at(WORK), 'normal'), [], 'the same move in normal mode (1.5 m/s)');
  // A bad velocity is reported as a velocity; no TCP speed can be derived from it.
  const nan = joints(arm, { positionsRad: NEAR, velocityRadPerS: NaN }, at(WORK), 'reduced');
  t.same([...new Set(nan.reasons.map((r) => r.code))], ['BOUNDS_JOINT_VELOCITY'], 'NaN velocity');
  assertReasons(t, joints(arm, { positionsRad: WORK, velocityRadPerS: 2 }, at(WORK), 'reduced'), [], 'no motion: no TCP speed at all');
});

t.test('max step from the state position: at the limit, just over, -0, and per mode', async (t) => {
  const normal = arm.maxStepRad?.normal as number;
  const reduced = arm.maxStepRad?.reduced as number;
  const base = (value: number): number[] => [value, ...WORK.slice(1)];
  const step = (mode: string, limit: number, actual: number): Expected[] => [{ code: 'BOUNDS_JOINT_STEP', ruleId: `arm-1/maxStep/${mode}`, path: '/params/positionsRad/0', limit, actual, unit: 'rad' }];
  const cases: { name: string; target: number[]; mode: 'normal' | 'reduced'; expected: Expected[] }[] = [
    { name: 'exactly the normal max step', target: base(normal), mode: 'normal', expected: [] },
    { name: 'normal max step + 1e-9', target: base(normal + 1e-9), mode: 'normal', expected: step('normal', normal, normal + 1e-9) },
    { name: 'exactly the reduced max step', target: base(reduced), mode: 'reduced', expected: [] },
    { name: 'reduced max step + 1e-9', target: base(reduced + 1e-9), mode: 'reduced', expected: step('reduced', reduced, reduced + 1e-9) },
    { name: 'the normal max step in reduced mode', target: base(normal), mode: 'reduced', expected: step('reduced', reduced, normal) },
    { name: '-0 is no step at all', target: base(-0), mode: 'reduced', expected: [] },
  ];
  for (const c of cases) assertReasons(t, joints(arm, { positionsRad: c.target, velocityRadPerS: 0.2 }, at(WORK), c.mode), c.expected, c.name);
  // Measured from the state, not from the last command: the state is far from a target that is near the last one.
  const from = 0.1 + normal + 1e-6;
  assertReasons(t, joints(arm, { positionsRad: base(0.1), velocityRadPerS: 0.2 }, at(base(from))), step('normal', normal, from - 0.1), 'from where the state says the arm is');
});

const planner = loaded.declarations.agents.get('planner-1') as AgentDeclaration;
/** An agent of autonomy scope 3: the arm's modes give it the reduced limit set (scope <= 3). */
const scope3: AgentDeclaration = { kind: 'agent', id: 'assistant-3', owner: 'cell-automation-team', autonomyScope: 3 };

function throughStage(agent: AgentDeclaration, action: string, params: Record<string, unknown>, state: ArmState, memory = new BoundsMemory()): ReturnType<typeof checkBounds> {
  const command: VerifiedCommand = { commandId: `cmd-${Math.random()}`, kid: 'k', seq: 1, agent, device: arm, action, params, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 2000 };
  const observed: ObservedState = { state, receivedAtMs: NOW - 10 };
  // amr-1's scanners report nobody near the table, so the mode depends on the agent alone.
  const states = withAmrReport({ latest: (id) => (id === 'arm-1' ? observed : undefined) }, amrReport(NOW - 10));
  return checkBounds({ command, declarations: loaded.declarations, states, releases: NO_RELEASES, memory, nowMs: NOW });
}

t.test('many small steps sent before the arm moves add up and are caught (state unchanged)', async (t) => {
  const memory = new BoundsMemory();
  const verdicts: string[] = [];
  for (let k = 1; k <= 7; k++) {
    // Each command is a small step beyond the previous target; the arm has not moved, so the state stays at WORK.
    const result = throughStage(planner, 'move_joints', { positionsRad: [0.25 * k, ...WORK.slice(1)], velocityRadPerS: 0.5 }, at(WORK), memory);
    verdicts.push(`${0.25 * k}:${result.verdict}:${result.reasons.map((r) => r.code).join(',')}`);
  }
  t.same(verdicts, ['0.25:allow:', '0.5:allow:', '0.75:allow:', '1:allow:', '1.25:allow:', '1.5:allow:', '1.75:deny:BOUNDS_JOINT_STEP']);
});

t.test('reduced mode through checkBounds: a scope-3 agent gets the reduced TCP speed and max step', async (t) => {
  const fast = { positionsRad: NEAR, velocityRadPerS: 1.5 };
  const asPlanner = throughStage(planner, 'move_joints', fast, at(WORK));
  t.equal(asPlanner.verdict, 'allow', 'scope 4: normal limits');
  t.equal(asPlanner.mode, 'normal');
  const asScope3 = throughStage(scope3, 'move_joints', fast, at(WORK));
  t.equal(asScope3.mode, 'reduced');
  t.same(asScope3.reasons.map((r) => [r.code, r.ruleId]), [['BOUNDS_TCP_SPEED', 'arm-1/tcp/speed/reduced']]);
  const wide = throughStage(scope3, 'move_joints', { positionsRad: [1, ...WORK.slice(1)], velocityRadPerS: 0.1 }, at(WORK));
  t.same(wide.reasons.map((r) => [r.code, r.ruleId]), [['BOUNDS_JOINT_STEP', 'arm-1/maxStep/reduced']], '1 rad is over the reduced 45 deg');
  const linearFast = throughStage(scope3, 'move_linear', { positionM: [1.492, 1.133, 1.1], speedMPerS: 0.3 }, at(WORK));
  t.same(linearFast.reasons.map((r) => [r.code, r.ruleId]), [['BOUNDS_TCP_SPEED', 'arm-1/tcp/speed/reduced']], 'a linear move at 0.3 m/s');
});

t.test('joint acceleration (move_joints): at the limit, just over, NaN, ±Infinity, -0, absent; per mode', async (t) => {
  const slowest = (mode: 'normal' | 'reduced'): number => Math.min(...arm.joints.map((j) => (mode === 'normal' ? j.accelerationMaxRadPerS2?.normal : j.accelerationMaxRadPerS2?.reduced) as number));
  const over = (mode: 'normal' | 'reduced', value: number, names: string[]): Expected[] =>
    names.map((name) => ({ code: 'BOUNDS_JOINT_ACCELERATION', ruleId: `arm-1/jointDynamics/${name}/acceleration/${mode}`, path: '/params/accelerationRadPerS2', actual: value, unit: 'rad/s^2' }));
  const big = ['base', 'shoulder', 'elbow'];
  const all = arm.joints.map((j) => j.name);
  const cases: { name: string; value: number | undefined; mode: 'normal' | 'reduced'; expected: Expected[] }[] = [
    { name: 'absent: the driver ramps at the reduced value', value: undefined, mode: 'normal', expected: [] },
    { name: 'exactly the slowest joint limit', value: slowest('normal'), mode: 'normal', expected: [] },
    { name: 'slowest limit + 1e-9 (the three big joints)', value: slowest('normal') + 1e-9, mode: 'normal', expected: over('normal', slowest('normal') + 1e-9, big) },
    // The wrists' reduced limit equals the big joints' normal one, so only the big joints are over.
    { name: 'the normal limit in reduced mode', value: slowest('normal'), mode: 'reduced', expected: over('reduced', slowest('normal'), big) },
    { name: 'NaN', value: NaN, mode: 'normal', expected: over('normal', NaN, all) },
    { name: '+Infinity', value: Infinity, mode: 'normal', expected: over('normal', Infinity, all) },
    { name: '-Infinity', value: -Infinity, mode: 'normal', expected: over('normal', -Infinity, all) },
    { name: '-0', value: -0, mode: 'normal', expected: over('normal', -0, all) },
  ];
  for (const c of cases) {
    // 0.3 rad/s keeps the TCP under the reduced 0.25 m/s on this move, so only accelerations are in play.
    const move: ArmMoveJoints = c.value === undefined ? { positionsRad: NEAR, velocityRadPerS: 0.3 } : { positionsRad: NEAR, velocityRadPerS: 0.3, accelerationRadPerS2: c.value };
    assertReasons(t, joints(arm, move, at(WORK), c.mode), c.expected, c.name);
  }
  const { jointDynamicsFree } = { jointDynamicsFree: { ...arm, joints: arm.joints.map(({ accelerationMaxRadPerS2: _a, ...rest }) => rest) } };
  assertReasons(t, joints(jointDynamicsFree, { positionsRad: NEAR, velocityRadPerS: 0.5, accelerationRadPerS2: 1 }), [{ code: 'BOUNDS_JOINT_ACCELERATION', ruleId: 'arm-1/jointDynamics', path: '/params/accelerationRadPerS2' }], 'an acceleration with none declared');
});

t.test('measured effort, tool force and payload: at the limit, just over, NaN, ±Infinity, -0; missing measurements', async (t) => {
  const strict: ArmDeclaration = { ...arm, stateMustReport: ['effortsNm', 'toolForceN', 'payloadKg'] };
  const full = { effortsNm: [0, 0, 0, 0, 0, 0], toolForceN: 0, payloadKg: 0 };
  const efforts = (shoulder: number): number[] => [0, shoulder, 0, 0, 0, 0];
  const shoulderLimit = arm.joints[1]?.effortMaxNm?.normal as number;
  const effort = (actual: number): Expected[] => [{ code: 'BOUNDS_JOINT_EFFORT', ruleId: 'arm-1/jointDynamics/shoulder/effort/normal', limit: shoulderLimit, actual, unit: 'N*m' }];
  const force = (mode: string, limit: number, actual: number): Expected[] => [{ code: 'BOUNDS_TCP_FORCE', ruleId: `arm-1/tcp/force/${mode}`, limit, actual, unit: 'N' }];
  const payload = (actual: number, path?: string): Expected[] => [{ code: 'BOUNDS_PAYLOAD', ruleId: 'arm-1/tcp/payload', limit: 3, actual, unit: 'kg', ...(path === undefined ? {} : { path }) }];
  const cases: { name: string; state: Partial<ArmState>; payloadKg?: number; mode?: 'normal' | 'reduced'; expected: Expected[] }[] = [
    { name: 'every measurement present and zero', state: full, expected: [] },
    { name: 'efforts missing', state: { toolForceN: 0, payloadKg: 0 }, expected: [{ code: 'BOUNDS_ARM_MEASUREMENT_MISSING', ruleId: 'arm-1/stateMustReport/effortsNm' }] },
    { name: 'everything missing', state: {}, expected: ['effortsNm', 'toolForceN', 'payloadKg'].map((m) => ({ code: 'BOUNDS_ARM_MEASUREMENT_MISSING', ruleId: `arm-1/stateMustReport/${m}` }) as Expected) },
    { name: 'shoulder effort exactly at its limit', state: { ...full, effortsNm: efforts(shoulderLimit) }, expected: [] },
    { name: 'shoulder effort -limit (torque sign does not matter)', state: { ...full, effortsNm: efforts(-shoulderLimit) }, expected: [] },
    { name: 'shoulder effort limit + 1e-9', state: { ...full, effortsNm: efforts(shoulderLimit + 1e-9) }, expected: effort(shoulderLimit + 1e-9) },
    { name: 'shoulder effort -(limit + 1e-9)', state: { ...full, effortsNm: efforts(-shoulderLimit - 1e-9) }, expected: effort(shoulderLimit + 1e-9) },
    { name: 'shoulder effort NaN', state: { ...full, effortsNm: efforts(NaN) }, expected: effort(NaN) },
    { name: 'shoulder effort -Infinity', state: { ...full, effortsNm: efforts(-Infinity) }, expected: effort(Infinity) },
    { name: 'tool force at the normal limit', state: { ...full, toolForceN: 120 }, expected: [] },
    { name: 'tool force just over', state: { ...full, toolForceN: 120 + 1e-9 }, expected: force('normal', 120, 120 + 1e-9) },
    { name: 'tool force allowed in normal, over in reduced', state: { ...full, toolForceN: 100 }, mode: 'reduced', expected: force('reduced', 90, 100) },
    { name: 'tool force NaN', state: { ...full, toolForceN: NaN }, expected: force('normal', 120, NaN) },
    { name: 'state payload at the limit', state: { ...full, payloadKg: 3 }, expected: [] },
    { name: 'state payload over', state: { ...full, payloadKg: 3.5 }, expected: payload(3.5) },
    { name: 'command payload at the limit', state: full, payloadKg: 3, expected: [] },
    { name: 'command payload -0', state: full, payloadKg: -0, expected: [] },
    { name: 'command payload just over', state: full, payloadKg: 3 + 1e-9, expected: payload(3 + 1e-9, '/params/payloadKg') },
    { name: 'command payload NaN', state: full, payloadKg: NaN, expected: payload(NaN, '/params/payloadKg') },
    { name: 'command payload +Infinity', state: full, payloadKg: Infinity, expected: payload(Infinity, '/params/payloadKg') },
    { name: 'command payload negative', state: full, payloadKg: -1, expected: payload(-1, '/params/payloadKg') },
  ];
  for (const c of cases) {
    const move: ArmMoveJoints = c.payloadKg === undefined ? { positionsRad: NEAR, velocityRadPerS: 0.2 } : { positionsRad: NEAR, velocityRadPerS: 0.2, payloadKg: c.payloadKg };
    assertReasons(t, joints(strict, move, at(WORK, c.state), c.mode ?? 'normal'), c.expected, c.name);
  }
  // The demo arm relaxes the requirement explicitly: positions-only state is checked for what it does carry.
  assertReasons(t, joints(arm, { positionsRad: NEAR, velocityRadPerS: 0.2 }, at(WORK)), [], 'demo arm: positions only');
  assertReasons(t, joints(arm, { positionsRad: NEAR, velocityRadPerS: 0.2 }, at(WORK, { toolForceN: 500 })), force('normal', 120, 500), 'demo arm: a reported force is still checked');
  const { payloadMaxKg: _p, ...tcpWithout } = arm.tcp;
  assertReasons(t, joints({ ...arm, tcp: tcpWithout }, { positionsRad: NEAR, velocityRadPerS: 0.2, payloadKg: 1 }), [{ code: 'BOUNDS_PAYLOAD', ruleId: 'arm-1/tcp/payload', path: '/params/payloadKg' }], 'a payload with no payload limit declared');
});

t.test('every violation is reported, not only the first; an invalid target stops at the target', async (t) => {
  const strict: ArmDeclaration = { ...arm, stateMustReport: ['toolForceN'] };
  const result = joints(strict, { positionsRad: [-1.83, -1.84, 1.94, 0.38, -3.66, 0.74], velocityRadPerS: 3, payloadKg: 4 }, at([-0.38, -0.97, 1.54, -0.58, -2.45, -0.42]));
  t.same(
    [...new Set(result.reasons.map((r) => r.code))],
    ['BOUNDS_JOINT_VELOCITY', 'BOUNDS_ARM_MEASUREMENT_MISSING', 'BOUNDS_PAYLOAD', 'BOUNDS_KEEP_OUT'],
    'velocity, measurement, payload and the path all reported',
  );
  const invalid = joints(arm, { positionsRad: [0, 0.5, 3, 0, 0, 0], velocityRadPerS: 0.5 }, at(WORK));
  t.same(invalid.reasons.map((r) => r.ruleId), ['arm-1/joints/shoulder/position', 'arm-1/joints/elbow/position'], 'no step or path reasons for a target the arm may never reach');
});

t.test('the kind seam: bad state, no kinematics, unknown actions, an over-long path', async (t) => {
  const context = { mode: 'normal' as const, nowMs: NOW, lastRelease: undefined, people: { known: false as const, why: 'test' }, zones: new Map(), memory: new Map() };
  const check = (device: ArmDeclaration, action: string, params: Record<string, unknown>, state: ArmState): StageResult => ROBOT_ARM_BOUNDS.check(device, { action, params }, { ...context, state });
  for (const [name, positions] of [['NaN', [0, NaN, 0, 0, 0, 0]], ['Infinity', [0, 0, Infinity, 0, 0, 0]], ['five joints', [0, 0, 0, 0, 0]]] as const) {
    assertReasons(t, check(arm, 'move_joints', { positionsRad: WORK, velocityRadPerS: 0.1 }, at(positions)), [{ code: 'BOUNDS_STATE_INVALID' }], `state ${name}`);
  }
  assertReasons(t, check(arm, 'wave', {}, at(WORK)), [{ code: 'BOUNDS_NOT_DECLARED', ruleId: 'arm-1' }], 'an action the arm has no bounds for');
  const { kinematics: _k, workspace: _w, ...blind } = arm;
  const { orientation: _o, speedMaxMPerS: _s, ...tcpBlind } = arm.tcp;
  const noKinematics: ArmDeclaration = { ...blind, tcp: tcpBlind };
  assertReasons(t, check(noKinematics, 'move_linear', { positionM: WORK_TCP, speedMPerS: 0.1 }, at(WORK)), [{ code: 'BOUNDS_NOT_DECLARED', ruleId: 'arm-1/kinematics' }], 'move_linear without kinematics');
  assertReasons(t, check(noKinematics, 'move_joints', { positionsRad: NEAR, velocityRadPerS: 0.1 }, at(WORK)), [], 'move_joints without kinematics: joint checks only');
  const fine: ArmDeclaration = { ...arm, workspace: { ...(arm.workspace as NonNullable<ArmDeclaration['workspace']>), resolutionM: 1e-5 } };
  assertReasons(t, check(fine, 'move_joints', { positionsRad: NEAR, velocityRadPerS: 0.1 }, at(WORK)), [{ code: 'BOUNDS_ARM_PATH_TOO_LONG', ruleId: 'arm-1/workspace/resolution', path: '/params/positionsRad', limit: 5000 }], 'a path needing more than 5000 samples');
  assertReasons(t, check(arm, 'move_joints', { positionsRad: WORK.map((v) => (v === 0 ? -0 : v)), velocityRadPerS: 0.1 }, at(WORK)), [], '-0 targets are 0');
});
