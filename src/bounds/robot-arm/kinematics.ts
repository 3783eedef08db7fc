// Forward kinematics (standard DH) and damped-least-squares inverse kinematics for a serial arm, in the cell frame.
// Pure numerics on preallocated buffers (no allocation per call); it never judges whether a pose is safe.

import type { ArmKinematics } from '../../core/kinds/robot-arm.js';

/** A declaration's chain compiled once: DH constants as typed arrays, the base transform, the reach bounds. */
export interface ArmChain {
  readonly jointCount: number;
  readonly a: Float64Array;
  readonly d: Float64Array;
  readonly cosAlpha: Float64Array;
  readonly sinAlpha: Float64Array;
  readonly thetaOffset: Float64Array;
  /** Base rotation (row-major 3x3) and position in the cell frame. */
  readonly baseRotation: Float64Array;
  readonly basePosition: Float64Array;
  readonly tool: Float64Array;
  /**
   * reachM[j]: an upper bound on the distance from joint j's axis to any point that joint j moves (later frame
   * origins and the TCP). A joint step dq moves any body point by at most sum_j |dq_j| * reachM[j].
   */
  readonly reachM: Float64Array;
}

export function compileChain(kinematics: ArmKinematics): ArmChain {
  const n = kinematics.dh.length;
  const chain = {
    jointCount: n,
    a: new Float64Array(n),
    d: new Float64Array(n),
    cosAlpha: new Float64Array(n),
    sinAlpha: new Float64Array(n),
    thetaOffset: new Float64Array(n),
    baseRotation: new Float64Array(9),
    basePosition: new Float64Array(kinematics.basePositionM),
    tool: new Float64Array(kinematics.toolOffsetM),
    reachM: new Float64Array(n),
  };
  kinematics.dh.forEach((row, i) => {
    chain.a[i] = row.aM;
    chain.d[i] = row.dM;
    chain.cosAlpha[i] = Math.cos(row.alphaRad);
    chain.sinAlpha[i] = Math.sin(row.alphaRad);
    chain.thetaOffset[i] = row.thetaOffsetRad;
  });
  const cy = Math.cos(kinematics.baseYawRad);
  const sy = Math.sin(kinematics.baseYawRad);
  chain.baseRotation.set([cy, -sy, 0, sy, cy, 0, 0, 0, 1]);
  // Each DH step moves by d along one axis then a along another: at most hypot(a, d) from where it started.
  let reach = Math.hypot(kinematics.toolOffsetM[0], kinematics.toolOffsetM[1], kinematics.toolOffsetM[2]);
  for (let j = n - 1; j >= 0; j--) {
    reach += Math.hypot(chain.a[j] as number, chain.d[j] as number);
    chain.reachM[j] = reach;
  }
  return chain;
}

/**
 * The result of forward kinematics, reused between calls. Point k (0..n) is the origin of DH frame k, which lies on
 * the axis of joint k (frame 0 is the base frame, frame n the flange); point n + 1 is the TCP. All in the cell frame.
 */
export class ArmPose {
  readonly points: Float64Array;
  /** z axis of frame k (k = 0..n): the axis of joint k for k < n; frame n's z is the tool axis. */
  readonly axes: Float64Array;
  /** Rotation of the flange (and tool) frame, row-major; column 2 is the tool axis. */
  readonly rotation = new Float64Array(9);
  /** cos and sin of each joint's DH angle (q_j + theta offset) that the points were computed from. */
  readonly cosTheta: Float64Array;
  readonly sinTheta: Float64Array;

  constructor(readonly jointCount: number) {
    this.points = new Float64Array((jointCount + 2) * 3);
    this.axes = new Float64Array((jointCount + 1) * 3);
    this.cosTheta = new Float64Array(jointCount);
    this.sinTheta = new Float64Array(jointCount);
  }

  get tcpIndex(): number {
    return this.jointCount + 1;
  }
}

/** Fills `pose` for joint positions `q` (radians). Non-finite q gives non-finite points, which every check refuses. */
/**
 * The geometric Jacobian of the TCP at `pose` into `J` (6 x n, row-major): columns [z_j x (p_tcp - o_j); z_j] for the
 * n revolute joints.
 */
export function fillJacobian(pose: ArmPose, n: number, J: Float64Array): void {
  const P = pose.points;
  const tcp = pose.tcpIndex * 3;
  for (let j = 0; j < n; j++) {
    const k = j * 3;
    const zx = pose.axes[k] as number, zy = pose.axes[k + 1] as number, zz = pose.axes[k + 2] as number;
    const rx = (P[tcp] as number) - (P[k] as number), ry = (P[tcp + 1] as number) - (P[k + 1] as number), rz = (P[tcp + 2] as number) - (P[k + 2] as number);
    J[j] = zy * rz - zz * ry;
    J[n + j] = zz * rx - zx * rz;
    J[2 * n + j] = zx * ry - zy * rx;
    J[3 * n + j] = zx;
    J[4 * n + j] = zy;
    J[5 * n + j] = zz;
  }
}

export function forwardKinematics(chain: ArmChain, q: ArrayLike<number>, pose: ArmPose): void {
  for (let i = 0; i < chain.jointCount; i++) setJointAngle(chain, pose, i, q[i] as number);
  forwardKinematicsFromAngles(chain, pose);
}

/** Sets joint i's angle in `pose` (its cos and sin) for joint position qi, ready for forwardKinematicsFromAngles. */
export function setJointAngle(chain: ArmChain, pose: ArmPose, i: number, qi: number): void {
  const theta = qi + (chain.thetaOffset[i] as number);
  pose.cosTheta[i] = Math.cos(theta);
  pose.sinTheta[i] = Math.sin(theta);
}

/**
 * Fills `pose` from the joint angles already set in it (setJointAngle), so that a caller sampling a path computes
 * the trigonometry of a joint that does not move only once. Same arithmetic as forwardKinematics.
 */
export function forwardKinematicsFromAngles(chain: ArmChain, pose: ArmPose): void {
  const R = chain.baseRotation;
  let r00 = R[0] as number, r01 = R[1] as number, r02 = R[2] as number;
  let r10 = R[3] as number, r11 = R[4] as number, r12 = R[5] as number;
  let r20 = R[6] as number, r21 = R[7] as number, r22 = R[8] as number;
  let px = chain.basePosition[0] as number, py = chain.basePosition[1] as number, pz = chain.basePosition[2] as number;
  const points = pose.points;
  const axes = pose.axes;
  points[0] = px; points[1] = py; points[2] = pz;
  axes[0] = r02; axes[1] = r12; axes[2] = r22;
  const n = chain.jointCount;
  for (let i = 0; i < n; i++) {
    const ct = pose.cosTheta[i] as number;
    const st = pose.sinTheta[i] as number;
    const ca = chain.cosAlpha[i] as number;
    const sa = chain.sinAlpha[i] as number;
    const a = chain.a[i] as number;
    const d = chain.d[i] as number;
    // p += R * (a ct, a st, d)
    const tx = a * ct, ty = a * st;
    px += r00 * tx + r01 * ty + r02 * d;
    py += r10 * tx + r11 * ty + r12 * d;
    pz += r20 * tx + r21 * ty + r22 * d;
    // R = R * [[ct, -st ca, st sa], [st, ct ca, -ct sa], [0, sa, ca]]
    const b01 = -st * ca, b02 = st * sa, b11 = ct * ca, b12 = -ct * sa;
    const n00 = r00 * ct + r01 * st, n01 = r00 * b01 + r01 * b11 + r02 * sa, n02 = r00 * b02 + r01 * b12 + r02 * ca;
    const n10 = r10 * ct + r11 * st, n11 = r10 * b01 + r11 * b11 + r12 * sa, n12 = r10 * b02 + r11 * b12 + r12 * ca;
    const n20 = r20 * ct + r21 * st, n21 = r20 * b01 + r21 * b11 + r22 * sa, n22 = r20 * b02 + r21 * b12 + r22 * ca;
    r00 = n00; r01 = n01; r02 = n02;
    r10 = n10; r11 = n11; r12 = n12;
    r20 = n20; r21 = n21; r22 = n22;
    const k = (i + 1) * 3;
    points[k] = px; points[k + 1] = py; points[k + 2] = pz;
    axes[k] = r02; axes[k + 1] = r12; axes[k + 2] = r22;
  }
  const tx = chain.tool[0] as number, ty = chain.tool[1] as number, tz = chain.tool[2] as number;
  const t = (n + 1) * 3;
  points[t] = px + r00 * tx + r01 * ty + r02 * tz;
  points[t + 1] = py + r10 * tx + r11 * ty + r12 * tz;
  points[t + 2] = pz + r20 * tx + r21 * ty + r22 * tz;
  const rot = pose.rotation;
  rot[0] = r00; rot[1] = r01; rot[2] = r02;
  rot[3] = r10; rot[4] = r11; rot[5] = r12;
  rot[6] = r20; rot[7] = r21; rot[8] = r22;
}

/**
 * |dp/ds| of body point `index` when the joints move by `dq` per unit s (the positional Jacobian times dq), for the
 * pose last computed into `pose`. Joint j moves the point only if the point lies beyond frame j.
 */
export function pointSpeed(pose: ArmPose, index: number, dq: ArrayLike<number>): number {
  const points = pose.points;
  const axes = pose.axes;
  const px = points[index * 3] as number, py = points[index * 3 + 1] as number, pz = points[index * 3 + 2] as number;
  const joints = Math.min(index, pose.jointCount);
  let vx = 0, vy = 0, vz = 0;
  for (let j = 0; j < joints; j++) {
    const w = dq[j] as number;
    const k = j * 3;
    const zx = axes[k] as number, zy = axes[k + 1] as number, zz = axes[k + 2] as number;
    const rx = px - (points[k] as number), ry = py - (points[k + 1] as number), rz = pz - (points[k + 2] as number);
    vx += w * (zy * rz - zz * ry);
    vy += w * (zz * rx - zx * rz);
    vz += w * (zx * ry - zy * rx);
  }
  return Math.sqrt(vx * vx + vy * vy + vz * vz);
}

/** An upper bound on how far any body point moves when the joints go from q0 to q1 along a straight joint line. */
export function displacementBound(chain: ArmChain, q0: ArrayLike<number>, q1: ArrayLike<number>): number {
  let bound = 0;
  for (let j = 0; j < chain.jointCount; j++) bound += Math.abs((q1[j] as number) - (q0[j] as number)) * (chain.reachM[j] as number);
  return bound;
}

/**
 * An upper bound on how far any body point of any pose q lies from the same point of q + d, for every d with
 * |d_j| <= |dq_j|, whatever the signs: sum_j |dq_j| * reachM[j] (each joint turns the points beyond it by at most
 * its angle times their distance from its axis, in any configuration).
 */
export function jointBoxBound(chain: ArmChain, dq: ArrayLike<number>): number {
  let bound = 0;
  for (let j = 0; j < chain.jointCount; j++) bound += Math.abs(dq[j] as number) * (chain.reachM[j] as number);
  return bound;
}

export interface IkOptions {
  /** Position error (m) and orientation error (rad) within which the solution counts as converged. */
  readonly positionToleranceM: number;
  readonly orientationToleranceRad: number;
  readonly maxIterations: number;
  /** Damping of the least-squares step; larger is steadier near singularities and slower to converge. */
  readonly damping: number;
}

export const DEFAULT_IK: IkOptions = { positionToleranceM: 1e-9, orientationToleranceRad: 1e-9, maxIterations: 60, damping: 1e-2 };

/** Scratch buffers for one IK solver; reuse one per chain. */
export class IkSolver {
  readonly pose: ArmPose;
  private readonly jacobian: Float64Array;
  private readonly normal = new Float64Array(36);
  private readonly error = new Float64Array(6);
  private readonly y = new Float64Array(6);

  constructor(readonly chain: ArmChain, readonly options: IkOptions = DEFAULT_IK) {
    this.pose = new ArmPose(chain.jointCount);
    this.jacobian = new Float64Array(6 * chain.jointCount);
  }

  /**
   * Moves `q` (in place, from its current value as the start guess) until the TCP is at `target` with the flange
   * rotation `rotation` (row-major). True when converged within tolerance; false leaves q at the last iterate.
   */
  solve(q: Float64Array, target: ArrayLike<number>, rotation: ArrayLike<number>): boolean {
    const { chain, pose, jacobian: J, normal: A, error: e, y } = this;
    const n = chain.jointCount;
    const tcp = pose.tcpIndex * 3;
    const lambda2 = this.options.damping * this.options.damping;
    for (let iteration = 0; iteration <= this.options.maxIterations; iteration++) {
      forwardKinematics(chain, q, pose);
      const P = pose.points;
      const R = pose.rotation;
      e[0] = (target[0] as number) - (P[tcp] as number);
      e[1] = (target[1] as number) - (P[tcp + 1] as number);
      e[2] = (target[2] as number) - (P[tcp + 2] as number);
      // Orientation error: 0.5 * sum over the frame's columns of (current x wanted); zero when they coincide.
      let ox = 0, oy = 0, oz = 0;
      for (let c = 0; c < 3; c++) {
        const ax = R[c] as number, ay = R[3 + c] as number, az = R[6 + c] as number;
        const bx = rotation[c] as number, by = rotation[3 + c] as number, bz = rotation[6 + c] as number;
        ox += ay * bz - az * by;
        oy += az * bx - ax * bz;
        oz += ax * by - ay * bx;
      }
      e[3] = 0.5 * ox;
      e[4] = 0.5 * oy;
      e[5] = 0.5 * oz;
      const positionError = Math.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
      const orientationError = Math.sqrt(e[3] * e[3] + e[4] * e[4] + e[5] * e[5]);
      // SAFETY: written so that a NaN error never counts as converged.
      if (positionError <= this.options.positionToleranceM && orientationError <= this.options.orientationToleranceRad) return true;
      if (!Number.isFinite(positionError) || !Number.isFinite(orientationError) || iteration === this.options.maxIterations) return false;
      fillJacobian(pose, n, J);
      // A = J J^T + lambda^2 I (6x6, symmetric positive definite), solve A y = e, step dq = J^T y.
      for (let r = 0; r < 6; r++) {
        for (let c = r; c < 6; c++) {
          let sum = r === c ? lambda2 : 0;
          for (let j = 0; j < n; j++) sum += (J[r * n + j] as number) * (J[c * n + j] as number);
          A[r * 6 + c] = sum;
          A[c * 6 + r] = sum;
        }
      }
      if (!choleskySolve(A, e, y, 6)) return false;
      for (let j = 0; j < n; j++) {
        let step = 0;
        for (let r = 0; r < 6; r++) step += (J[r * n + j] as number) * (y[r] as number);
        q[j] = (q[j] as number) + step;
      }
    }
    return false;
  }
}

/**
 * Solves A x = b for an m x m symmetric positive definite A (row-major; overwritten with its Cholesky factor).
 * False when A is not positive definite (singular, or NaN): the caller must not use x.
 */
export function choleskySolve(A: Float64Array, b: ArrayLike<number>, x: Float64Array, m: number): boolean {
  if (!choleskyFactor(A, m)) return false;
  choleskySubstitute(A, b, x, m);
  return true;
}

/** Overwrites the m x m symmetric A with its Cholesky factor L (lower triangle); false when A is not positive definite. */
export function choleskyFactor(A: Float64Array, m: number): boolean {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = A[i * m + j] as number;
      for (let k = 0; k < j; k++) sum -= (A[i * m + k] as number) * (A[j * m + k] as number);
      if (i === j) {
        if (!(sum > 0)) return false;
        A[i * m + i] = Math.sqrt(sum);
      } else {
        A[i * m + j] = sum / (A[j * m + j] as number);
      }
    }
  }
  return true;
}

/** Solves L L^T x = b for the factor L that choleskyFactor left in A. */
export function choleskySubstitute(L: Float64Array, b: ArrayLike<number>, x: Float64Array, m: number): void {
  for (let i = 0; i < m; i++) {
    let sum = b[i] as number;
    for (let k = 0; k < i; k++) sum -= (L[i * m + k] as number) * (x[k] as number);
    x[i] = sum / (L[i * m + i] as number);
  }
  for (let i = m - 1; i >= 0; i--) {
    let sum = x[i] as number;
    for (let k = i + 1; k < m; k++) sum -= (L[k * m + i] as number) * (x[k] as number);
    x[i] = sum / (L[i * m + i] as number);
  }
}
