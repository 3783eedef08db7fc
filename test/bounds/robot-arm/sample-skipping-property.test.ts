// A move_joints path is no longer computed at every sample: samples proven clear (each body point's bounding sphere
// clear of every zone, the tool axis' turn within the cone, the TCP speed's change within its limit) are skipped.
// That may never change a decision. Random paths of the demo arm, with a zone, a cone and a speed limit placed right
// at the boundary of a random sample (just inside, on, or just outside it), must give exactly the reasons, in order,
// and the entered cell zones of joint-path-reference.ts, which computes every sample.

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { checkArmMoveJoints, ROBOT_ARM_BOUNDS } from '../../../src/bounds/robot-arm-bounds.js';
import { compiledArm } from '../../../src/bounds/robot-arm/compiled-arm.js';
import { ArmPose, forwardKinematics, pointSpeed } from '../../../src/bounds/robot-arm/kinematics.js';
import { armRunOut } from '../../../src/bounds/robot-arm/run-out.js';
import { jointPathIntervals, MAX_PATH_SAMPLES } from '../../../src/bounds/robot-arm/swept-path.js';
import { ROUNDING_SLACK_M } from '../../../src/bounds/robot-arm/workspace.js';
import type { Mode } from '../../../src/core/kinds/kind-spec.js';
import type { ArmDeclaration, ArmState, ArmZoneShape } from '../../../src/core/kinds/robot-arm.js';
import type { Zone, ZoneShape } from '../../../src/core/zones.js';
import { makeTestCell } from '../../helpers/test-cell.js';
import { JOINT_PATH_CODES, referenceEnteredZones, referenceJointPathReasons } from './joint-path-reference.js';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load().declarations;
const demoArm = loaded.devices.get('arm-1') as ArmDeclaration;
const demoWorkspace = demoArm.workspace as NonNullable<ArmDeclaration['workspace']>;
const demoCompiled = compiledArm(demoArm);
if (demoCompiled === undefined) throw new Error('the demo arm has kinematics');
const n = demoArm.joints.length;

const SEEDS = [
  [0, -1.571, 1.571, -1.571, -1.571, 0],
  [0.8, -1.2, 1.9, -2.2, -1.571, 0.3],
  [-0.5, -1.9, 2.0, -1.7, -1.571, 0],
  [0.3, -1.2, 1.4, -1.571, -1.571, 0.2],
];

/** How far past the boundary: exactly on it, within rounding of it, or a little either side. */
const offset = fc.oneof(
  fc.constantFrom(0, ROUNDING_SLACK_M, -ROUNDING_SLACK_M, 1e-12, -1e-12, 1e-7, -1e-7),
  fc.double({ min: -3e-3, max: 3e-3, noNaN: true }),
  fc.double({ min: -0.05, max: 0.05, noNaN: true }),
);
const unit = fc.tuple(fc.double({ min: -1, max: 1, noNaN: true }), fc.double({ min: -1, max: 1, noNaN: true }), fc.double({ min: -1, max: 1, noNaN: true })).map(([x, y, z]) => {
  const length = Math.hypot(x, y, z);
  return length > 1e-3 ? ([x / length, y / length, z / length] as const) : ([0, 0, 1] as const);
});

const cases = fc.record({
  seed: fc.integer({ min: 0, max: SEEDS.length - 1 }),
  start: fc.array(fc.double({ min: -0.4, max: 0.4, noNaN: true }), { minLength: n, maxLength: n }),
  // Short and long moves, and joints that stay put (their angles are computed once).
  step: fc.array(fc.oneof(fc.constant(0), fc.double({ min: -0.05, max: 0.05, noNaN: true }), fc.double({ min: -0.9, max: 0.9, noNaN: true })), { minLength: n, maxLength: n }),
  // Where on the path (0..1) the boundaries are placed, and for which body point.
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  peak: fc.boolean(),
  body: fc.nat(),
  shape: fc.constantFrom('sphere', 'plane', 'box', 'prism'),
  // Which rules get a boundary at the sample (the others keep the demo arm's).
  placed: fc.constantFrom('zone', 'cone', 'speed', 'all'),
  direction: unit,
  zoneOffset: offset,
  coneOffset: offset,
  speedOffset: offset,
  velocity: fc.double({ min: 0.05, max: 2.5, noNaN: true }),
  // A moving arm widens every zone by its run-out and narrows the cone.
  moving: fc.option(fc.array(fc.double({ min: -0.3, max: 0.3, noNaN: true }), { minLength: n, maxLength: n }), { nil: undefined }),
  mode: fc.constantFrom<Mode>('normal', 'reduced'),
});

type Case = typeof cases extends fc.Arbitrary<infer T> ? T : never;

/** A zone of `kind` whose boundary is `distance` from point p, away from p along `u` (inside it when negative). */
function zoneAt(kind: string, p: readonly number[], u: readonly [number, number, number], distance: number): ArmZoneShape {
  const [px, py, pz] = p as [number, number, number];
  switch (kind) {
    case 'sphere': {
      const radiusM = 0.05;
      return { type: 'sphere', center: [px + u[0] * (distance + radiusM), py + u[1] * (distance + radiusM), pz + u[2] * (distance + radiusM)], radiusM };
    }
    case 'plane':
      // Inside is where (x - point) . normal <= 0: the point p is `distance` outside it along -u.
      return { type: 'plane', point: [px + u[0] * distance, py + u[1] * distance, pz + u[2] * distance], normal: [-u[0], -u[1], -u[2]] };
    case 'box': {
      // The face nearest p along the axis u leans on most, `distance` from p; 0.2 m deep and wide.
      const axis = Math.abs(u[0]) >= Math.abs(u[1]) && Math.abs(u[0]) >= Math.abs(u[2]) ? 0 : Math.abs(u[1]) >= Math.abs(u[2]) ? 1 : 2;
      const sign = (u[axis] as number) >= 0 ? 1 : -1;
      const min = [px - 0.1, py - 0.1, pz - 0.1];
      const max = [px + 0.1, py + 0.1, pz + 0.1];
      const face = (p[axis] as number) + sign * distance;
      min[axis] = sign > 0 ? face : face - 0.2;
      max[axis] = sign > 0 ? face + 0.2 : face;
      return { type: 'box', min: min as [number, number, number], max: max as [number, number, number] };
    }
    default: {
      // A triangle in the floor plane with one edge `distance` from p's (x, y) across u's floor direction.
      const h = Math.hypot(u[0], u[1]) > 1e-6 ? [u[0] / Math.hypot(u[0], u[1]), u[1] / Math.hypot(u[0], u[1])] : [1, 0];
      const [hx, hy] = h as [number, number];
      const cx = px + hx * distance;
      const cy = py + hy * distance;
      return {
        type: 'prism',
        polygon: [
          [cx - hy * 0.1, cy + hx * 0.1],
          [cx + hy * 0.1, cy - hx * 0.1],
          [cx + hx * 0.15, cy + hy * 0.15],
        ],
        zMinM: pz - 0.1,
        zMaxM: pz + 0.1,
      };
    }
  }
}

interface Built {
  readonly arm: ArmDeclaration;
  readonly state: ArmState;
  readonly q1: number[];
  readonly zones: Map<string, Zone>;
}

/** The demo arm with a keep-out zone, a cone and a TCP speed limit each at the boundary of one sample of the path. */
function build(c: Case): Built | undefined {
  const q0 = (SEEDS[c.seed] as number[]).map((v, j) => v + (c.start[j] as number));
  const q1 = q0.map((v, j) => v + (c.step[j] as number));
  if (!demoArm.joints.every((joint, j) => (q1[j] as number) >= joint.positionMinRad && (q1[j] as number) <= joint.positionMaxRad)) return undefined;
  const state: ArmState = c.moving === undefined ? { kind: 'robot_arm', positionsRad: q0, moving: false } : { kind: 'robot_arm', positionsRad: q0, velocitiesRadPerS: c.moving, moving: true };
  const runOut = armRunOut(demoCompiled as NonNullable<typeof demoCompiled>, state);
  if (!runOut.ok) return undefined;
  const intervals = jointPathIntervals(demoCompiled as NonNullable<typeof demoCompiled>, q0, q1);
  if (!(intervals <= MAX_PATH_SAMPLES)) return undefined;
  let leading = 0;
  let turn = 0;
  for (let j = 0; j < n; j++) {
    const travel = Math.abs((q1[j] as number) - (q0[j] as number));
    leading = Math.max(leading, travel);
    turn += travel;
  }
  const dq = q1.map((v, j) => v - (q0[j] as number));
  const durationS = leading / c.velocity;
  const axis = demoArm.tcp.orientation?.axis ?? [0, 0, -1];
  const body = demoWorkspace.bodyPoints[c.body % demoWorkspace.bodyPoints.length] as (typeof demoWorkspace.bodyPoints)[number];
  // Each sample's pose as the sampler computes it: the body point, the tool axis' angle, the TCP speed.
  const pose = new ArmPose(n);
  const samples = Array.from({ length: intervals + 1 }, (_, k) => {
    const s = k / intervals;
    forwardKinematics(
      (demoCompiled as NonNullable<typeof demoCompiled>).chain,
      q0.map((v, j) => (k === intervals ? (q1[j] as number) : v + s * (dq[j] as number))),
      pose,
    );
    const r = pose.rotation;
    return {
      point: [pose.points[body.index * 3], pose.points[body.index * 3 + 1], pose.points[body.index * 3 + 2]] as number[],
      angle: Math.acos(Math.min(1, Math.max(-1, (r[2] as number) * axis[0] + (r[5] as number) * axis[1] + (r[8] as number) * axis[2]))),
      speed: leading === 0 ? 0 : pointSpeed(pose, pose.tcpIndex, dq) / durationS,
    };
  });
  // At a random sample, or where each rule is tightest (the body point farthest along u, the largest angle, the
  // highest speed), so that a boundary between two visited samples is crossed only there.
  const pick = (score: (sample: (typeof samples)[number]) => number): (typeof samples)[number] => {
    if (!c.peak) return samples[Math.round(c.at * intervals)] as (typeof samples)[number];
    return samples.reduce((best, sample) => (score(sample) > score(best) ? sample : best));
  };
  const clearance = (demoCompiled as NonNullable<typeof demoCompiled>).clearanceM + runOut.marginM;
  const p = pick((sample) => (sample.point[0] as number) * c.direction[0] + (sample.point[1] as number) * c.direction[1] + (sample.point[2] as number) * c.direction[2]).point;
  const shape = zoneAt(c.shape, p, c.direction, clearance + c.zoneOffset);
  // Cone: the angle there plus what the check keeps back (half a step's turn, the run-out's turn), plus the offset.
  const angle = pick((sample) => sample.angle).angle;
  const maxAngleRad = Math.min(Math.PI, angle + turn / intervals / 2 + (runOut.marginM > 0 ? runOut.turnRad : 0) + c.coneOffset);
  // TCP speed there for the commanded speed, plus the offset (both modes get the same limit).
  const speedLimit = Math.max(1e-6, pick((sample) => sample.speed).speed + c.speedOffset);
  const placeZone = c.placed === 'zone' || c.placed === 'all';
  const { orientation: _cone, speedMaxMPerS: _speed, ...otherTcp } = demoArm.tcp;
  const arm: ArmDeclaration = {
    ...demoArm,
    tcp: {
      ...otherTcp,
      ...(c.placed === 'cone' || c.placed === 'all' ? { orientation: { axis, maxAngleRad } } : {}),
      ...(c.placed === 'speed' || c.placed === 'all' ? { speedMaxMPerS: { normal: speedLimit, reduced: speedLimit } } : {}),
    },
    // One rule placed alone has the path to itself (no demo zone, cone or speed limit bounds how far ahead is
    // proven, so a wrong bound for that rule would skip past its boundary); all together keep the demo zones too.
    workspace:
      c.placed === 'all'
        ? { ...demoWorkspace, keepOut: [...demoWorkspace.keepOut, { id: 'placed', shape }] }
        : { ...demoWorkspace, keepIn: [], keepOut: placeZone ? [{ id: 'placed', shape }] : [] },
  };
  const zones = new Map<string, Zone>([...loaded.zones]);
  if (placeZone && shape.type !== 'plane') zones.set('placed', { id: 'placed', shape: shape as ZoneShape } as Zone);
  return { arm, state, q1, zones };
}

t.test('property: skipping proven samples gives the reasons and entered zones of checking every sample', async (t) => {
  let compared = 0;
  let denied = 0;
  const codes = new Set<string>();
  let entered = 0;
  fc.assert(
    fc.property(cases, (c) => {
      const built = build(c);
      fc.pre(built !== undefined);
      const { arm, state, q1, zones } = built as Built;
      const compiled = compiledArm(arm);
      if (compiled === undefined) return false;
      const want = referenceJointPathReasons(compiled, state, q1, c.velocity, c.mode);
      fc.pre(want !== undefined);
      const result = checkArmMoveJoints(arm, { positionsRad: q1, velocityRadPerS: c.velocity }, state, c.mode);
      const got = result.reasons.filter((r) => JOINT_PATH_CODES.has(r.code));
      const others = result.reasons.filter((r) => !JOINT_PATH_CODES.has(r.code));
      compared += 1;
      if (got.length > 0) denied += 1;
      for (const r of got) codes.add(r.code);
      // Same reasons, in the same order, to the last digit of every message; and the verdict follows from them.
      if (!isDeepStrictEqual(got, want)) return false;
      if (result.verdict !== ((want as unknown[]).length + others.length > 0 ? 'deny' : 'allow')) return false;
      const command = { action: 'move_joints', params: { positionsRad: q1, velocityRadPerS: c.velocity } };
      const gotZones = ROBOT_ARM_BOUNDS.zonesEntered(arm, command, state, zones);
      const wantZones = referenceEnteredZones(compiled, state, q1, zones);
      if (Array.isArray(wantZones)) entered += wantZones.length;
      return isDeepStrictEqual(gotZones, wantZones);
    }),
    { numRuns: 600, seed: 20261207 },
  );
  // The boundaries were hit both ways: some paths denied for each placed rule, others allowed.
  t.ok(compared >= 400, `${compared} paths compared`);
  t.ok(denied > compared / 10 && denied < compared * 0.95, `${denied} of ${compared} denied by the path`);
  for (const code of ['BOUNDS_KEEP_OUT', 'BOUNDS_TCP_ORIENTATION', 'BOUNDS_TCP_SPEED']) t.ok(codes.has(code), `${code} fired`);
  t.ok(entered > compared, `cell zones entered (${entered})`);
});
