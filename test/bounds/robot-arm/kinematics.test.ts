// Forward kinematics against poses worked out by hand for a UR5e (zero pose, base turns, the upright arm as the
// zero pose turned about the shoulder), against an independent 4x4-matrix DH product written here, the base
// placement in the cell, the Jacobian speed against finite differences, the reach bound, and IK round trips.

import fc from 'fast-check';
import t, { type Test } from 'tap';
import { ArmPose, compileChain, displacementBound, forwardKinematics, IkSolver, pointSpeed } from '../../../src/bounds/robot-arm/kinematics.js';
import type { ArmKinematics } from '../../../src/core/kinds/robot-arm.js';

const DEG = Math.PI / 180;
// Universal Robots' published UR5e DH table (m, rad).
const A = [0, -0.425, -0.3922, 0, 0, 0];
const D = [0.1625, 0, 0, 0.1333, 0.0997, 0.0996];
const ALPHA = [Math.PI / 2, 0, 0, Math.PI / 2, -Math.PI / 2, 0];
const TOOL = 0.15;

function ur5e(base: { position: [number, number, number]; yawRad: number } = { position: [0, 0, 0], yawRad: 0 }): ArmKinematics {
  return {
    dh: A.map((a, i) => ({ aM: a, dM: D[i] as number, alphaRad: ALPHA[i] as number, thetaOffsetRad: 0 })),
    basePositionM: base.position,
    baseYawRad: base.yawRad,
    toolOffsetM: [0, 0, TOOL],
  };
}

const chain = compileChain(ur5e());
const pose = new ArmPose(6);

function points(q: readonly number[], c = chain): number[][] {
  forwardKinematics(c, q, pose);
  return Array.from({ length: 8 }, (_, k) => [pose.points[k * 3] as number, pose.points[k * 3 + 1] as number, pose.points[k * 3 + 2] as number]);
}

function close(t: Test, got: readonly number[], want: readonly number[], tolerance: number, name: string): void {
  const error = Math.hypot(...got.map((v, i) => v - (want[i] as number)));
  t.ok(error <= tolerance, `${name}: [${got.map((v) => v.toFixed(6))}] vs [${want.map((v) => v.toFixed(6))}] (error ${error})`);
}

t.test('UR5e zero pose, worked out by hand: the arm lies along -x, the wrist offsets along -y, the tool points -y', async (t) => {
  const p = points([0, 0, 0, 0, 0, 0]);
  close(t, p[0] as number[], [0, 0, 0], 1e-12, 'base frame origin');
  close(t, p[1] as number[], [0, 0, 0.1625], 1e-12, 'shoulder: d1 up');
  close(t, p[2] as number[], [-0.425, 0, 0.1625], 1e-12, 'elbow: a2 along x');
  close(t, p[3] as number[], [-0.8172, 0, 0.1625], 1e-12, 'wrist1: a2 + a3');
  close(t, p[4] as number[], [-0.8172, -0.1333, 0.1625], 1e-12, 'wrist2: d4 sideways');
  close(t, p[5] as number[], [-0.8172, -0.1333, 0.1625 - 0.0997], 1e-12, 'wrist3: d5 down');
  close(t, p[6] as number[], [-0.8172, -0.2329, 0.0628], 1e-12, 'flange: UR5e zero-pose flange (-0.8172, -0.2329, 0.0628)');
  close(t, p[7] as number[], [-0.8172, -0.2329 - TOOL, 0.0628], 1e-12, 'TCP: 150 mm along the flange z axis (-y)');
  close(t, [pose.rotation[2] as number, pose.rotation[5] as number, pose.rotation[8] as number], [0, -1, 0], 1e-12, 'tool axis');
});

t.test('turning the base joint turns every point about the vertical axis', async (t) => {
  const zero = points([0, 0, 0, 0, 0, 0]);
  for (const angle of [90 * DEG, -45 * DEG, 170 * DEG]) {
    const turned = points([angle, 0, 0, 0, 0, 0]);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    zero.forEach(([x, y, z], k) => close(t, turned[k] as number[], [c * (x as number) - s * (y as number), s * (x as number) + c * (y as number), z as number], 1e-12, `point ${k} at base ${angle / DEG} deg`));
  }
});

t.test('the upright arm (shoulder -90 deg) is the zero pose turned about the shoulder axis', async (t) => {
  // The shoulder axis runs through (0, 0, d1) along -y: shoulder -90 deg turns every later point by +90 deg about +y.
  const zero = points([0, 0, 0, 0, 0, 0]);
  const upright = points([0, -Math.PI / 2, 0, 0, 0, 0]);
  for (let k = 2; k < 8; k++) {
    const [x, y, z] = zero[k] as [number, number, number];
    const rz = z - 0.1625;
    close(t, upright[k] as number[], [rz * 1, y, -x * 1 + 0.1625], 1e-12, `point ${k}`);
  }
  close(t, upright[3] as number[], [0, 0, 0.1625 + 0.425 + 0.3922], 1e-12, 'wrist1 straight above the base');
});

/** An independent DH product with plain 4x4 matrices (row-major arrays), as in any robotics textbook. */
function textbookFk(q: readonly number[], yaw: number, base: readonly number[]): { tcp: number[]; z: number[] } {
  const multiply = (m: number[], n: number[]): number[] =>
    Array.from({ length: 16 }, (_, i) => [0, 1, 2, 3].reduce((sum, k) => sum + (m[Math.floor(i / 4) * 4 + k] as number) * (n[k * 4 + (i % 4)] as number), 0));
  let T = [Math.cos(yaw), -Math.sin(yaw), 0, base[0] as number, Math.sin(yaw), Math.cos(yaw), 0, base[1] as number, 0, 0, 1, base[2] as number, 0, 0, 0, 1];
  q.forEach((theta, i) => {
    const [ct, st, ca, sa] = [Math.cos(theta), Math.sin(theta), Math.cos(ALPHA[i] as number), Math.sin(ALPHA[i] as number)];
    const a = A[i] as number;
    const d = D[i] as number;
    T = multiply(T, [ct, -st * ca, st * sa, a * ct, st, ct * ca, -ct * sa, a * st, 0, sa, ca, d, 0, 0, 0, 1]);
  });
  const tool = multiply(T, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, TOOL, 0, 0, 0, 1]);
  return { tcp: [tool[3] as number, tool[7] as number, tool[11] as number], z: [T[2] as number, T[6] as number, T[10] as number] };
}

t.test('property: the TCP and tool axis agree with a textbook 4x4 DH product, with the base placed in the cell', async (t) => {
  const placed = compileChain(ur5e({ position: [1, 1, 0.75], yawRad: Math.PI }));
  const angle = fc.double({ min: -2 * Math.PI, max: 2 * Math.PI, noNaN: true });
  fc.assert(
    fc.property(fc.tuple(angle, angle, angle, angle, angle, angle), (q) => {
      forwardKinematics(placed, q, pose);
      const want = textbookFk(q, Math.PI, [1, 1, 0.75]);
      const tcp = [pose.points[21] as number, pose.points[22] as number, pose.points[23] as number];
      const z = [pose.rotation[2] as number, pose.rotation[5] as number, pose.rotation[8] as number];
      return Math.hypot(...tcp.map((v, i) => v - (want.tcp[i] as number))) < 1e-12 && Math.hypot(...z.map((v, i) => v - (want.z[i] as number))) < 1e-12;
    }),
    { numRuns: 500, seed: 11 },
  );
  t.pass('500 random poses agree');
});

t.test('non-finite joint positions give non-finite points (which every check then refuses)', async (t) => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const p = points([0, bad, 0, 0, 0, 0]);
    t.notOk((p[7] as number[]).every(Number.isFinite), `shoulder ${bad}: TCP not finite`);
  }
});

t.test('property: pointSpeed is the derivative of the point along the joint line (central differences)', async (t) => {
  const angle = fc.double({ min: -3, max: 3, noNaN: true });
  const step = fc.double({ min: -1, max: 1, noNaN: true });
  fc.assert(
    fc.property(fc.tuple(angle, angle, angle, angle, angle, angle), fc.tuple(step, step, step, step, step, step), fc.integer({ min: 2, max: 7 }), (q, dq, index) => {
      const h = 1e-6;
      const at = (s: number): number[] => {
        forwardKinematics(chain, q.map((v, j) => v + s * (dq[j] as number)), pose);
        return [pose.points[index * 3] as number, pose.points[index * 3 + 1] as number, pose.points[index * 3 + 2] as number];
      };
      const plus = at(h);
      const minus = at(-h);
      const numeric = Math.hypot(...plus.map((v, i) => (v - (minus[i] as number)) / (2 * h)));
      forwardKinematics(chain, q, pose);
      return Math.abs(pointSpeed(pose, index, dq) - numeric) < 1e-6;
    }),
    { numRuns: 300, seed: 5 },
  );
  t.pass('300 random poses and directions');
});

t.test('property: no body point moves farther than displacementBound along a joint line', async (t) => {
  const angle = fc.double({ min: -3, max: 3, noNaN: true });
  fc.assert(
    fc.property(fc.tuple(angle, angle, angle, angle, angle, angle), fc.tuple(angle, angle, angle, angle, angle, angle), (q0, q1) => {
      const bound = displacementBound(chain, q0, q1);
      const start = points(q0);
      for (let k = 1; k <= 20; k++) {
        const s = k / 20;
        const now = points(q0.map((v, j) => v + s * ((q1[j] as number) - v)));
        for (let p = 0; p < 8; p++) {
          if (Math.hypot(...(now[p] as number[]).map((v, i) => v - ((start[p] as number[])[i] as number))) > s * bound + 1e-12) return false;
        }
      }
      return true;
    }),
    { numRuns: 300, seed: 9 },
  );
  t.pass('the reach bound holds');
});

t.test('property: IK finds joints that put the TCP where FK put it, with the same tool orientation', async (t) => {
  const solver = new IkSolver(chain);
  const angle = fc.double({ min: -2.5, max: 2.5, noNaN: true });
  const nudge = fc.double({ min: -0.05, max: 0.05, noNaN: true });
  let solved = 0;
  fc.assert(
    fc.property(fc.tuple(angle, angle, angle, angle, angle, angle), fc.tuple(nudge, nudge, nudge, nudge, nudge, nudge), (q, start) => {
      forwardKinematics(chain, q, pose);
      const target = [pose.points[21] as number, pose.points[22] as number, pose.points[23] as number];
      const rotation = Float64Array.from(pose.rotation);
      const guess = Float64Array.from(q.map((v, j) => v + (start[j] as number)));
      // Near a singularity IK may fail (and the bounds then deny); when it succeeds it must be right.
      if (!solver.solve(guess, target, rotation)) return true;
      solved += 1;
      forwardKinematics(chain, guess, pose);
      const error = Math.hypot(...target.map((v, i) => v - (pose.points[21 + i] as number)));
      const turn = Math.hypot(...[0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => (pose.rotation[i] as number) - (rotation[i] as number)));
      return error < 1e-8 && turn < 1e-7;
    }),
    { numRuns: 300, seed: 3 },
  );
  t.ok(solved > 250, `IK converged from a nearby start in ${solved} of 300 cases`);
});

t.test('IK reports failure for a target out of reach and for a NaN target, never a false success', async (t) => {
  const solver = new IkSolver(chain);
  forwardKinematics(chain, [0, -1.571, 1.571, -1.571, -1.571, 0], pose);
  const rotation = Float64Array.from(pose.rotation);
  t.equal(solver.solve(Float64Array.from([0, -1.571, 1.571, -1.571, -1.571, 0]), [3, 0, 0.3], rotation), false, '3 m away');
  t.equal(solver.solve(Float64Array.from([0, -1.571, 1.571, -1.571, -1.571, 0]), [NaN, 0, 0.3], rotation), false, 'NaN');
});
