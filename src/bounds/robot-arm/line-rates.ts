// The joint rates along a move_linear's straight TCP line (fixed tool orientation): dq/dl and d2q/dl2 computed
// exactly from the Jacobian at every sample, and bounded between samples, for the joint speed and acceleration
// checks. Pure numerics on preallocated buffers; it never decides, and a rate it cannot compute is NaN, never 0.

import { choleskyFactor, choleskySubstitute, fillJacobian, type ArmChain, type ArmPose } from './kinematics.js';
import type { Finding } from './path-checks.js';

/**
 * The chord error of a function sampled at both ends of an interval of length h is at most h^2 / 8 times its largest
 * second derivative there. That derivative is estimated from the exact samples (differences of d2q/dl2), and the
 * estimate is multiplied by this factor, since the estimate itself comes from samples.
 */
export const CURVATURE_SAFETY_FACTOR = 2;

/** Per-sample dq/dl (rad/m) and d2q/dl2 (rad/m^2) along one line, and their bound over the sampled path. */
export class LineRates {
  private readonly n: number;
  /** Rows 0-2: d(tcp)/dq; rows 3-5: the joint axes (angular part). Row-major 6 x n. */
  private readonly jacobian: Float64Array;
  private readonly normal: Float64Array;
  private readonly rhs: Float64Array;
  private readonly y: Float64Array;
  private readonly twist = new Float64Array(6);
  private readonly direction = new Float64Array(3);
  private readonly curvature: Float64Array;
  /** Samples of the current line: s, distance from the start (m), and per joint dq/dl and d2q/dl2. */
  private sS = new Float64Array(64);
  private lM = new Float64Array(64);
  private dqdl: Float64Array;
  private d2qdl2: Float64Array;
  private count = 0;

  constructor(chain: ArmChain) {
    const n = chain.jointCount;
    this.n = n;
    this.jacobian = new Float64Array(6 * n);
    const m = Math.min(6, n);
    this.normal = new Float64Array(m * m);
    this.rhs = new Float64Array(Math.max(6, n));
    this.y = new Float64Array(Math.max(6, n));
    this.curvature = new Float64Array(n);
    this.dqdl = new Float64Array(64 * n);
    this.d2qdl2 = new Float64Array(64 * n);
  }

  /** Starts a new line whose TCP moves along `direction` (a unit vector, cell frame). */
  reset(direction: ArrayLike<number>): void {
    this.count = 0;
    for (let i = 0; i < 3; i++) this.direction[i] = direction[i] as number;
  }

  /**
   * Adds the sample at s, `distanceM` along the line, whose pose (forward kinematics of the sample's joints) is
   * `pose`. Along the line the TCP twist per metre is [u; 0], so J dq/dl = [u; 0] and, differentiating once more,
   * J d2q/dl2 = -(dJ/dl) dq/dl: both solved exactly here (least squares for fewer than six joints, the minimum-norm
   * rates for more). SAFETY: a singular Jacobian gives NaN rates, which fail every limit.
   */
  add(s: number, distanceM: number, pose: ArmPose): void {
    const n = this.n;
    this.grow(this.count + 1);
    const k = this.count;
    this.sS[k] = s;
    this.lM[k] = distanceM;
    const dqdl = this.dqdl.subarray(k * n, (k + 1) * n);
    const d2qdl2 = this.d2qdl2.subarray(k * n, (k + 1) * n);
    fillJacobian(pose, this.n, this.jacobian);
    const t = this.twist;
    t.fill(0);
    t[0] = this.direction[0] as number;
    t[1] = this.direction[1] as number;
    t[2] = this.direction[2] as number;
    if (!this.factor() || !this.solve(t, dqdl)) {
      dqdl.fill(NaN);
      d2qdl2.fill(NaN);
    } else {
      this.jacobianRate(pose, dqdl, t);
      if (!this.solve(t, d2qdl2)) d2qdl2.fill(NaN);
    }
    this.count = k + 1;
  }

  /**
   * Records into the findings every joint speed / acceleration bound over the sampled line that is over its limit.
   * At cruise speed v and ramp a the joint acceleration is q'' = (d2q/dl2) l'^2 + (dq/dl) l'' with |l'| <= v and
   * |l''| <= a, so |d2q/dl2| v^2 + |dq/dl| a bounds it wherever the profile is (ramp, cruise, or the phase change).
   * Between two samples a and b, length h apart, each rate g is within its chord plus e = h^2 / 8 max|g''|, and the
   * bound on the chords is convex, so: max over [a, b] <= max(f(a), f(b)) + v^2 e(d2q/dl2) + a e(dq/dl).
   * SAFETY: e uses sampled estimates of g'' times CURVATURE_SAFETY_FACTOR; a line of one interval (shorter than the
   * resolution), with no curvature estimate, adds the whole change of d2q/dl2 over it instead.
   */
  recordOverLimits(
    speedMPerS: number,
    rampMPerS2: number,
    velocityLimits: readonly number[],
    accelerationLimits: readonly (number | undefined)[],
    velocity: readonly Finding[],
    acceleration: readonly Finding[],
  ): void {
    const n = this.n;
    const count = this.count;
    const v2 = speedMPerS * speedMPerS;
    if (count === 1) {
      // The line was not sampled past its start (IK failed at once, which is a reason of its own): its start only.
      for (let j = 0; j < n; j++) {
        const g1 = Math.abs(this.dqdl[j] as number), g2 = Math.abs(this.d2qdl2[j] as number);
        this.recordOne(j, 0, g1 * speedMPerS, g2 * v2 + g1 * rampMPerS2, velocityLimits, accelerationLimits, velocity, acceleration, 0);
      }
      return;
    }
    const c = this.curvature;
    for (let j = 0; j < n; j++) {
      // c[j]: the estimate of |d4q/dl4| at the interval's left end (from the slopes of d2q/dl2 on both sides); -1 none.
      c[j] = -1;
    }
    for (let i = 1; i < count; i++) {
      const h = (this.lM[i] as number) - (this.lM[i - 1] as number);
      const hNext = i + 1 < count ? (this.lM[i + 1] as number) - (this.lM[i] as number) : NaN;
      for (let j = 0; j < n; j++) {
        const a1 = this.dqdl[(i - 1) * n + j] as number, b1 = this.dqdl[i * n + j] as number;
        const a2 = this.d2qdl2[(i - 1) * n + j] as number, b2 = this.d2qdl2[i * n + j] as number;
        const slope = (b2 - a2) / h;
        let right = -1;
        if (i + 1 < count) {
          const next = ((this.d2qdl2[(i + 1) * n + j] as number) - b2) / hNext;
          right = (2 * Math.abs(next - slope)) / (h + hNext);
        }
        const left = c[j] as number;
        c[j] = right;
        // NaN in any sample makes every estimate NaN, and so the bound.
        const fourth = left < 0 && right < 0 ? NaN : Math.max(left, right);
        const e2 = count === 2 ? Math.abs(b2 - a2) : (CURVATURE_SAFETY_FACTOR * fourth * h * h) / 8;
        const e1 = (CURVATURE_SAFETY_FACTOR * Math.abs(slope) * h * h) / 8;
        const fa = Math.abs(a2) * v2 + Math.abs(a1) * rampMPerS2;
        const fb = Math.abs(b2) * v2 + Math.abs(b1) * rampMPerS2;
        const speedA = Math.abs(a1), speedB = Math.abs(b1);
        const sVelocity = speedA > speedB ? (this.sS[i - 1] as number) : (this.sS[i] as number);
        const sAcceleration = fa > fb ? (this.sS[i - 1] as number) : (this.sS[i] as number);
        this.recordOne(
          j,
          sVelocity,
          (Math.max(speedA, speedB) + e1) * speedMPerS,
          Math.max(fa, fb) + v2 * e2 + rampMPerS2 * e1,
          velocityLimits,
          accelerationLimits,
          velocity,
          acceleration,
          sAcceleration,
        );
      }
    }
  }

  private recordOne(
    j: number,
    sVelocity: number,
    velocityBound: number,
    accelerationBound: number,
    velocityLimits: readonly number[],
    accelerationLimits: readonly (number | undefined)[],
    velocity: readonly Finding[],
    acceleration: readonly Finding[],
    sAcceleration: number,
  ): void {
    // SAFETY: written so that NaN (a rate that could not be computed) is over the limit.
    if (!(velocityBound <= (velocityLimits[j] as number))) velocity[j]?.record(sVelocity, velocityBound, 'joint');
    const limit = accelerationLimits[j];
    if (limit !== undefined && !(accelerationBound <= limit)) acceleration[j]?.record(sAcceleration, accelerationBound, 'joint');
  }

  private grow(size: number): void {
    if (size <= this.sS.length) return;
    const capacity = Math.max(size, this.sS.length * 2);
    const widen = (from: Float64Array, per: number): Float64Array<ArrayBuffer> => {
      const to = new Float64Array(capacity * per);
      to.set(from);
      return to;
    };
    this.sS = widen(this.sS, 1);
    this.lM = widen(this.lM, 1);
    this.dqdl = widen(this.dqdl, this.n);
    this.d2qdl2 = widen(this.d2qdl2, this.n);
  }

  /**
   * Into `out` (6 entries): -(dJ/dl) w for joint rates w = dq/dl. Joint j's axis z_j and origin o_j move with the
   * joints before it: dz_j = W_j x z_j with W_j = sum_{i<j} w_i z_i, do_j = sum_{i<j} w_i z_i x (o_j - o_i); the TCP
   * moves along u. So d/dl [z_j x (p - o_j); z_j] = [dz_j x (p - o_j) + z_j x (u - do_j); dz_j].
   */
  private jacobianRate(pose: ArmPose, w: Float64Array, out: Float64Array): void {
    const n = this.n;
    const P = pose.points;
    const A = pose.axes;
    const tcp = pose.tcpIndex * 3;
    const ux = this.direction[0] as number, uy = this.direction[1] as number, uz = this.direction[2] as number;
    let wx = 0, wy = 0, wz = 0;
    let bx = 0, by = 0, bz = 0, cx = 0, cy = 0, cz = 0;
    for (let j = 0; j < n; j++) {
      const k = j * 3;
      const zx = A[k] as number, zy = A[k + 1] as number, zz = A[k + 2] as number;
      const ox = P[k] as number, oy = P[k + 1] as number, oz = P[k + 2] as number;
      let vx = 0, vy = 0, vz = 0;
      for (let i = 0; i < j; i++) {
        const m = i * 3;
        const wi = w[i] as number;
        const ax = A[m] as number, ay = A[m + 1] as number, az = A[m + 2] as number;
        const rx = ox - (P[m] as number), ry = oy - (P[m + 1] as number), rz = oz - (P[m + 2] as number);
        vx += wi * (ay * rz - az * ry);
        vy += wi * (az * rx - ax * rz);
        vz += wi * (ax * ry - ay * rx);
      }
      const dzx = wy * zz - wz * zy, dzy = wz * zx - wx * zz, dzz = wx * zy - wy * zx;
      const rx = (P[tcp] as number) - ox, ry = (P[tcp + 1] as number) - oy, rz = (P[tcp + 2] as number) - oz;
      const qx = ux - vx, qy = uy - vy, qz = uz - vz;
      const lx = dzy * rz - dzz * ry + (zy * qz - zz * qy);
      const ly = dzz * rx - dzx * rz + (zz * qx - zx * qz);
      const lz = dzx * ry - dzy * rx + (zx * qy - zy * qx);
      const wj = w[j] as number;
      bx += wj * lx; by += wj * ly; bz += wj * lz;
      cx += wj * dzx; cy += wj * dzy; cz += wj * dzz;
      wx += wj * zx; wy += wj * zy; wz += wj * zz;
    }
    out[0] = -bx; out[1] = -by; out[2] = -bz;
    out[3] = -cx; out[4] = -cy; out[5] = -cz;
  }

  /** Factors J J^T (six or more joints) or J^T J (fewer) of the current Jacobian; false when it is singular. */
  private factor(): boolean {
    const n = this.n;
    const J = this.jacobian;
    const A = this.normal;
    if (n >= 6) {
      for (let r = 0; r < 6; r++) {
        for (let c = r; c < 6; c++) {
          let sum = 0;
          for (let j = 0; j < n; j++) sum += (J[r * n + j] as number) * (J[c * n + j] as number);
          A[r * 6 + c] = sum;
          A[c * 6 + r] = sum;
        }
      }
      return choleskyFactor(A, 6);
    }
    for (let a = 0; a < n; a++) {
      for (let b = a; b < n; b++) {
        let sum = 0;
        for (let r = 0; r < 6; r++) sum += (J[r * n + a] as number) * (J[r * n + b] as number);
        A[a * n + b] = sum;
        A[b * n + a] = sum;
      }
    }
    return choleskyFactor(A, n);
  }

  /** Solves J x = t (6 rows): x = J^T (J J^T)^-1 t for six or more joints, (J^T J)^-1 J^T t for fewer. */
  private solve(t: Float64Array, x: Float64Array): boolean {
    const n = this.n;
    const J = this.jacobian;
    const y = this.y;
    if (n >= 6) {
      choleskySubstitute(this.normal, t, y, 6);
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let r = 0; r < 6; r++) sum += (J[r * n + j] as number) * (y[r] as number);
        x[j] = sum;
      }
    } else {
      const rhs = this.rhs;
      for (let a = 0; a < n; a++) {
        let sum = 0;
        for (let r = 0; r < 6; r++) sum += (J[r * n + a] as number) * (t[r] as number);
        rhs[a] = sum;
      }
      choleskySubstitute(this.normal, rhs, x, n);
    }
    for (let j = 0; j < n; j++) if (!Number.isFinite(x[j] as number)) return false;
    return true;
  }
}
