// The run-out of a moving arm: a command is decided against a state up to maxStateAge old, and the arm then needs
// its stopping distance, so every zone check along the path is widened by how far the body can have moved. At rest
// nothing changes; moving, the margin is computed here independently from the declaration and compared with the
// engine's; unknown speeds use the declared maxima; NaN speeds deny; the margin is sound for every sign of motion.

import fc from 'fast-check';
import t from 'tap';
import { checkArmMoveJoints, checkArmMoveLinear, ROBOT_ARM_BOUNDS } from '../../../src/bounds/robot-arm-bounds.js';
import { ArmPose, compileChain, forwardKinematics, IkSolver } from '../../../src/bounds/robot-arm/kinematics.js';
import type { Zone } from '../../../src/core/declarations.js';
import type { ArmDeclaration, ArmMoveJoints, ArmState } from '../../../src/core/kinds/robot-arm.js';
import type { StageResult } from '../../../src/core/verdict.js';
import { makeTestCell } from '../../helpers/test-cell.js';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const arm = cell.load().declarations.devices.get('arm-1') as ArmDeclaration;
const kinematics = arm.kinematics as NonNullable<ArmDeclaration['kinematics']>;
const workspace = arm.workspace as NonNullable<ArmDeclaration['workspace']>;

const WORK = [0, -1.571, 1.571, -1.571, -1.571, 0]; // tool pointing down over the pick area, TCP z about 1.088
const PLANE_Z = 0.76; // the demo's table-surface keep-out plane
const CLEARANCE_M = workspace.marginM + workspace.resolutionM / 2;
const ZEROS = [0, 0, 0, 0, 0, 0];

// ---- an independent model of the run-out, from the declaration's numbers ----

/** reach_j: |tool| + sum over DH rows i >= j of hypot(a_i, d_i), the farthest any later point can be from axis j. */
const REACH_M = kinematics.dh.map((_, j) =>
  kinematics.dh.slice(j).reduce((sum, row) => sum + Math.hypot(row.aM, row.dM), Math.hypot(...kinematics.toolOffsetM)),
);
/** dq_j = |v| T + v^2 / (2 a), a = the joint's reduced (smaller) acceleration: the driver's default ramp. */
function jointRunOutRad(device: ArmDeclaration, j: number, speedRadPerS: number): number {
  const v = Math.abs(speedRadPerS);
  const a = device.joints[j]?.accelerationMaxRadPerS2?.reduced as number;
  return v * (device.maxStateAgeMs / 1000) + (v * v) / (2 * a);
}
function expectedMarginM(device: ArmDeclaration, speeds: readonly number[]): number {
  return speeds.reduce((sum, v, j) => sum + jointRunOutRad(device, j, v) * (REACH_M[j] as number), 0);
}
const DECLARED_MAX = arm.joints.map((j) => j.velocityMaxRadPerS.normal);

// ---- a start pose just clear of the table plane ----

const chain = compileChain(kinematics);
const pose = new ArmPose(arm.joints.length);
forwardKinematics(chain, WORK, pose);
const tcp = pose.tcpIndex * 3;
const WORK_TCP = [pose.points[tcp] as number, pose.points[tcp + 1] as number, pose.points[tcp + 2] as number];
/** The TCP 5 mm above the plane's clearance, tool still pointing down: allowed at rest, with little room to spare. */
const LOW_Z = PLANE_Z + CLEARANCE_M + 0.005;
/** The joints that put the TCP at height z over WORK's TCP, tool still pointing down. */
function poseAtHeight(z: number): number[] {
  const q = Float64Array.from(WORK);
  if (!new IkSolver(chain).solve(q, [WORK_TCP[0] as number, WORK_TCP[1] as number, z], pose.rotation)) throw new Error(`no IK for z = ${z}`);
  return [...q];
}
const LOW = poseAtHeight(LOW_Z);
/** A 0.01 rad turn of the base: the TCP sweeps a few mm sideways at the same height. */
const NUDGE: ArmMoveJoints = { positionsRad: LOW.map((v, j) => (j === 0 ? v + 0.01 : v)), velocityRadPerS: 0.2 };
/** 0.1 rad/s on the base: a margin of a few cm, more than the 5 mm to spare, less than the keep-in floor's 6.5 cm. */
const BASE_SLOW = [0.1, 0, 0, 0, 0, 0];

const at = (positionsRad: readonly number[], extra: Partial<ArmState> = {}): ArmState => ({ kind: 'robot_arm', positionsRad, ...extra });
const joints = (state: ArmState, device: ArmDeclaration = arm, move: ArmMoveJoints = NUDGE): StageResult => checkArmMoveJoints(device, move, state, 'normal');
const codes = (result: StageResult): [string, string | undefined][] => result.reasons.map((r) => [r.code, r.ruleId]);
const KEEP_OUT_TABLE: [string, string] = ['BOUNDS_KEEP_OUT', 'arm-1/workspace/keepOut/table-surface'];

t.test('at rest near a keep-out zone: allowed exactly as before, whichever way rest is reported', async (t) => {
  // Proves the fix changes nothing for an arm at rest: moving false, zero velocities (with or without the flag)
  // all give the same allow, with no margin added to the clearance.
  const rest = joints(at(LOW, { moving: false }));
  t.same(rest, { verdict: 'allow', reasons: [] }, 'moving: false');
  t.same(joints(at(LOW, { moving: false, velocitiesRadPerS: ZEROS })), rest, 'moving false and zero velocities');
  t.same(joints(at(LOW, { velocitiesRadPerS: ZEROS })), rest, 'zero velocities, no flag');
  t.same(joints(at(LOW, { velocitiesRadPerS: [-0, 0, -0, 0, 0, 0] })), rest, '-0 is no speed');
  // And a target 1 mm inside the clearance is denied at rest with the plain clearance, as before the run-out.
  const lower = joints(at(LOW, { moving: false }), arm, { positionsRad: poseAtHeight(PLANE_Z + CLEARANCE_M - 0.001), velocityRadPerS: 0.2 });
  t.same(codes(lower), [KEEP_OUT_TABLE]);
  t.equal(lower.reasons[0]?.limit, CLEARANCE_M, 'the limit is margin + resolution / 2, nothing more');
  t.notMatch(lower.reasons[0]?.message ?? '', /run-out/);
});

t.test('the same move from a moving arm is denied because of the run-out, and the reason says the margin', async (t) => {
  // Proves the widening: 0.1 rad/s on the base gives the margin below (independent model), which the 5 mm of
  // spare clearance cannot absorb; the reason carries the widened limit and names the speed, age and margin.
  const speeds = BASE_SLOW;
  const margin = expectedMarginM(arm, speeds);
  t.ok(margin > 0.005, `the margin (${margin.toFixed(4)} m) exceeds the 5 mm to spare`);
  const result = joints(at(LOW, { moving: true, velocitiesRadPerS: speeds }));
  t.same(codes(result), [KEEP_OUT_TABLE]);
  const r = result.reasons[0];
  t.ok(Math.abs((r?.limit ?? NaN) - (CLEARANCE_M + margin)) < 1e-12, `limit = clearance + margin (${r?.limit})`);
  t.equal(r?.unit, 'm');
  t.ok(Math.abs((r?.actual ?? NaN) - 0.005 - CLEARANCE_M) < 1e-6, 'actual: where the TCP really is above the plane');
  t.match(r?.message ?? '', new RegExp(`comes within the ${margin.toFixed(4)} m run-out of keep-out table-surface`));
  t.match(r?.message ?? '', /joint base at 0\.100 rad\/s, reported; state up to 250 ms old/);
  // The sign of the speed does not matter: the bound takes |v|.
  t.same(joints(at(LOW, { moving: true, velocitiesRadPerS: [-0.1, 0, 0, 0, 0, 0] })), result, 'moving the other way');
  // A speed too small to matter: 0.001 rad/s is well under a millimetre of margin, so the move is allowed again.
  t.same(joints(at(LOW, { moving: true, velocitiesRadPerS: [0.001, 0, 0, 0, 0, 0] })).verdict, 'allow', 'a creeping arm');
});

t.test('moving but speeds unknown: each joint is taken at its declared normal-mode maximum', async (t) => {
  // Proves the fail-closed default: no velocities and the flag not false (or true with every speed 0) is treated
  // as every joint at its top speed, and the reason says the speeds were assumed, not reported.
  const margin = expectedMarginM(arm, DECLARED_MAX);
  const states: [string, ArmState][] = [
    ['positions only', at(LOW)],
    ['moving: true, no velocities', at(LOW, { moving: true })],
    ['moving: true with every velocity 0 (contradicts itself)', at(LOW, { moving: true, velocitiesRadPerS: ZEROS })],
  ];
  for (const [name, state] of states) {
    const result = joints(state);
    t.equal(result.verdict, 'deny', name);
    const keepOut = result.reasons.find((r) => r.ruleId === KEEP_OUT_TABLE[1]);
    t.ok(Math.abs((keepOut?.limit ?? NaN) - (CLEARANCE_M + margin)) < 1e-9, `${name}: limit = clearance + declared-max margin`);
    t.match(keepOut?.message ?? '', /its declared maximum, no velocities reported/, `${name}: says the speeds were assumed`);
  }
});

t.test('a velocity that is not finite denies, with or without kinematics, and makes the arm\'s place unknown', async (t) => {
  // Proves NaN / ±Infinity never pass: the state is invalid for motion (a number that cannot bound a run-out).
  const { kinematics: _k, workspace: _w, ...blindFields } = arm;
  const blind: ArmDeclaration = blindFields;
  const zones = new Map<string, Zone>([['anywhere', { id: 'anywhere', shape: { type: 'box', min: [0, 0, 0], max: [0.1, 0.1, 0.1] } }]]);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const state = at(LOW, { moving: true, velocitiesRadPerS: [0, 0, bad, 0, 0, 0] });
    for (const [name, device] of [['with kinematics', arm], ['without kinematics', blind]] as const) {
      const result = joints(state, device);
      t.same(codes(result), [['BOUNDS_STATE_INVALID', 'arm-1/state/velocitiesRadPerS']], `${bad}, ${name}`);
      t.match(result.reasons[0]?.message ?? '', /joint elbow moving at .* rad\/s, not a finite speed/);
      t.equal(result.reasons[0]?.unit, 'rad/s');
    }
    const linear = checkArmMoveLinear(arm, { positionM: [WORK_TCP[0] as number, WORK_TCP[1] as number, 1.0], speedMPerS: 0.1 }, state, 'normal');
    t.same(codes(linear), [['BOUNDS_STATE_INVALID', 'arm-1/state/velocitiesRadPerS']], `${bad}: move_linear too`);
    t.same(ROBOT_ARM_BOUNDS.occupancy(arm, state, zones).zoneIds, 'unknown', `${bad}: occupancy unknown`);
    t.same(ROBOT_ARM_BOUNDS.zonesEntered(arm, { action: 'move_joints', params: { ...NUDGE } }, state, zones), 'unknown', `${bad}: zones entered unknown`);
  }
  t.same(codes(joints(at(LOW, { velocitiesRadPerS: [0, 0, 0] }))), [['BOUNDS_STATE_INVALID', 'arm-1/state/velocitiesRadPerS']], 'three velocities for six joints');
});

t.test('the margin scales with maxStateAge: the speed is held for as long as the state may be old', async (t) => {
  // Proves the first term of the formula: with the braking term fixed, the margin grows by |v| * dT * reach.
  const speeds = [0.05, 0, 0, 0, 0, 0];
  const limitAt = (maxStateAgeMs: number): number => {
    const device: ArmDeclaration = { ...arm, maxStateAgeMs };
    const result = joints(at(LOW, { moving: true, velocitiesRadPerS: speeds }), device);
    t.same(codes(result), [KEEP_OUT_TABLE], `maxStateAge ${maxStateAgeMs} ms: denied`);
    t.match(result.reasons[0]?.message ?? '', new RegExp(`state up to ${maxStateAgeMs} ms old`));
    return result.reasons[0]?.limit ?? NaN;
  };
  const [l100, l250, l500] = [limitAt(100), limitAt(250), limitAt(500)];
  const perSecond = 0.05 * (REACH_M[0] as number); // m of margin per second of state age
  t.ok(Math.abs(l250 - l100 - 0.15 * perSecond) < 1e-12, '150 ms more: |v| * 0.15 s * reach more margin');
  t.ok(Math.abs(l500 - l250 - 0.25 * perSecond) < 1e-12, '250 ms more: |v| * 0.25 s * reach more margin');
  t.ok(Math.abs(l500 - CLEARANCE_M - expectedMarginM({ ...arm, maxStateAgeMs: 500 }, speeds)) < 1e-12, 'and matches the model');
});

t.test('a moving joint without a declared deceleration: the run-out cannot be bounded, so the path is denied', async (t) => {
  // Proves the fail-closed rule for jointDynamics left out: no stopping distance, no margin, no allow while moving;
  // at rest nothing depends on it and the move is allowed as before.
  const noDynamics: ArmDeclaration = { ...arm, joints: arm.joints.map(({ accelerationMaxRadPerS2: _a, effortMaxNm: _e, ...joint }) => joint) };
  const moving = joints(at(LOW, { moving: true, velocitiesRadPerS: [0, 0.1, 0, 0, 0, 0] }), noDynamics);
  t.same(codes(moving), [['BOUNDS_ARM_RUN_OUT_UNBOUNDED', 'arm-1/jointDynamics/shoulder/acceleration']]);
  t.equal(moving.reasons[0]?.actual, 0.1);
  t.equal(moving.reasons[0]?.unit, 'rad/s');
  t.match(moving.reasons[0]?.message ?? '', /joint shoulder declares no acceleration to brake with/);
  t.same(joints(at(LOW, { moving: false }), noDynamics), { verdict: 'allow', reasons: [] }, 'at rest: allowed');
  // With nothing on the path that a margin widens (no workspace, no cone), a moving arm is not denied for it.
  const { workspace: _w, ...bare } = noDynamics;
  const { orientation: _o, ...coneless } = noDynamics.tcp;
  const bareArm: ArmDeclaration = { ...bare, tcp: coneless };
  t.same(joints(at(LOW, { moving: true }), bareArm).verdict, 'allow', 'no zones, no cone: nothing to widen');
  const zones = new Map<string, Zone>([['z', { id: 'z', shape: { type: 'box', min: [5, 5, 0], max: [6, 6, 1] } }]]);
  t.same(ROBOT_ARM_BOUNDS.occupancy(noDynamics, at(LOW, { moving: true }), zones).zoneIds, 'unknown', 'its place in the cell is unknown');
});

t.test('move_linear from a moving arm is widened the same way', async (t) => {
  // Proves the widening is not only for joint moves: a horizontal 2 cm line at the low height is allowed at rest
  // and denied from an arm moving at 0.1 rad/s, with the run-out in the reason.
  const line = { positionM: [(WORK_TCP[0] as number) - 0.02, WORK_TCP[1] as number, LOW_Z], speedMPerS: 0.1 };
  t.same(checkArmMoveLinear(arm, line, at(LOW, { moving: false }), 'normal'), { verdict: 'allow', reasons: [] }, 'at rest');
  const moving = checkArmMoveLinear(arm, line, at(LOW, { moving: true, velocitiesRadPerS: BASE_SLOW }), 'normal');
  t.same(codes(moving), [KEEP_OUT_TABLE]);
  t.match(moving.reasons[0]?.message ?? '', /run-out of keep-out table-surface/);
});

t.test('the tool cone is narrowed by how far the run-out can turn the tool axis', async (t) => {
  // Proves the orientation check is widened too: a cone 0.01 rad wider than the tool's current tilt passes at rest;
  // moving, the axis may turn by the sum of the joint run-outs, so it is denied and the reason says so.
  const { workspace: _w, ...noWorkspace } = arm;
  const tilt = Math.acos(-(pose.rotation[8] as number)); // angle from straight down, cell frame
  const device: ArmDeclaration = { ...noWorkspace, tcp: { ...arm.tcp, orientation: { axis: [0, 0, -1], maxAngleRad: tilt + 0.01 } } };
  const still = { positionsRad: WORK, velocityRadPerS: 0.2 };
  t.same(checkArmMoveJoints(device, still, at(WORK, { moving: false }), 'normal'), { verdict: 'allow', reasons: [] }, 'at rest');
  const moving = checkArmMoveJoints(device, still, at(WORK, { moving: true, velocitiesRadPerS: [0.2, 0, 0, 0, 0, 0] }), 'normal');
  t.same(codes(moving), [['BOUNDS_TCP_ORIENTATION', 'arm-1/tcp/orientation']]);
  t.match(moving.reasons[0]?.message ?? '', new RegExp(`and ${jointRunOutRad(arm, 0, 0.2).toFixed(4)} rad the tool axis may turn in the run-out`));
});

t.test('occupancy and zones entered are widened by the run-out too', async (t) => {
  // Proves shared zones see the run-out: a cell zone 3.8 cm under the TCP is outside the 2 cm margin at rest but
  // within margin + run-out of an arm moving at 0.2 rad/s; the path's entered zones grow the same way.
  const top = (WORK_TCP[2] as number) - 0.038;
  const below: Zone = { id: 'below', shape: { type: 'box', min: [1.3, 0.9, 0.8], max: [1.7, 1.4, top] } };
  const zones = new Map([[below.id, below]]);
  const rest = at(WORK, { moving: false });
  const moving = at(WORK, { moving: true, velocitiesRadPerS: [0.2, 0, 0, 0, 0, 0] });
  t.same(ROBOT_ARM_BOUNDS.occupancy(arm, rest, zones), { zoneIds: [], moving: false }, 'at rest: outside');
  t.same(ROBOT_ARM_BOUNDS.occupancy(arm, moving, zones), { zoneIds: ['below'], moving: true }, 'moving: within the run-out');
  const nudge = { action: 'move_joints', params: { positionsRad: WORK.map((v, j) => (j === 0 ? v + 0.01 : v)), velocityRadPerS: 0.2 } };
  t.same(ROBOT_ARM_BOUNDS.zonesEntered(arm, nudge, rest, zones), [], 'at rest: the path stays out');
  t.same(ROBOT_ARM_BOUNDS.zonesEntered(arm, nudge, moving, zones), ['below'], 'moving: the widened path enters');
  t.same(ROBOT_ARM_BOUNDS.zonesEntered(arm, { action: 'stop', params: {} }, moving, zones), ['below'], 'stop: where it may brake to');
});

t.test('property: every pose within the run-out box is within the margin, whatever the signs', async (t) => {
  // Proves the bound the widening relies on: for q' = q + d with |d_j| <= dq_j (any signs), every checked body
  // point of q' lies within sum dq_j * reach_j of the same point of q. Checked by forward kinematics here.
  const a = new ArmPose(arm.joints.length);
  const b = new ArmPose(arm.joints.length);
  const speed = fc.double({ min: -3, max: 3, noNaN: true });
  const unit = fc.double({ min: -1, max: 1, noNaN: true });
  fc.assert(
    fc.property(fc.tuple(...WORK.map(() => fc.double({ min: -3, max: 3, noNaN: true }))), fc.tuple(...WORK.map(() => speed)), fc.tuple(...WORK.map(() => unit)), (q, speeds, fractions) => {
      const margin = expectedMarginM(arm, speeds);
      const moved = q.map((v, j) => v + (fractions[j] as number) * jointRunOutRad(arm, j, speeds[j] as number));
      forwardKinematics(chain, q, a);
      forwardKinematics(chain, moved, b);
      for (let k = 0; k < a.points.length; k += 3) {
        const distance = Math.hypot((a.points[k] as number) - (b.points[k] as number), (a.points[k + 1] as number) - (b.points[k + 1] as number), (a.points[k + 2] as number) - (b.points[k + 2] as number));
        if (!(distance <= margin + 1e-12)) return false;
      }
      return true;
    }),
    { numRuns: 500, seed: 20261122 },
  );
  t.pass('every sampled pose stayed within the margin');
});
