// An independent reference for the joint rates along a move_linear, for the line acceleration tests (not a test
// file). Only the engine's forward kinematics is reused; the IK (Newton on a central-difference Jacobian of that
// forward kinematics, own Gaussian elimination) and the derivatives (central differences on a fine grid extended one
// step past both ends of the line, so the ends get centred differences too) are written here.

import { ArmPose, forwardKinematics, type ArmChain } from '../../../src/bounds/robot-arm/kinematics.js';

/** The TCP position and the flange rotation (row-major) for joints q. */
function toolPose(chain: ArmChain, pose: ArmPose, q: readonly number[]): { p: number[]; r: number[] } {
  forwardKinematics(chain, q, pose);
  const t = pose.tcpIndex * 3;
  return { p: [pose.points[t] as number, pose.points[t + 1] as number, pose.points[t + 2] as number], r: Array.from(pose.rotation) };
}

/** Position error and half the sum of column cross products (zero when the rotations agree). */
function poseError(chain: ArmChain, pose: ArmPose, q: readonly number[], p: readonly number[], r: readonly number[]): number[] {
  const now = toolPose(chain, pose, q);
  const e = [0, 1, 2].map((i) => (p[i] as number) - (now.p[i] as number));
  let ox = 0, oy = 0, oz = 0;
  for (let c = 0; c < 3; c++) {
    const [ax, ay, az] = [now.r[c], now.r[3 + c], now.r[6 + c]] as [number, number, number];
    const [bx, by, bz] = [r[c], r[3 + c], r[6 + c]] as [number, number, number];
    ox += 0.5 * (ay * bz - az * by);
    oy += 0.5 * (az * bx - ax * bz);
    oz += 0.5 * (ax * by - ay * bx);
  }
  return [...e, ox, oy, oz];
}

/** Solves the square system M x = y by Gaussian elimination with partial pivoting. */
function solveSquare(M: number[][], y: number[]): number[] {
  const n = y.length;
  const m = M.map((row, i) => [...row, y[i] as number]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs((m[r] as number[])[c] as number) > Math.abs((m[p] as number[])[c] as number)) p = r;
    [m[c], m[p]] = [m[p] as number[], m[c] as number[]];
    const pivot = m[c] as number[];
    for (let r = c + 1; r < n; r++) {
      const row = m[r] as number[];
      const f = (row[c] as number) / (pivot[c] as number);
      for (let k = c; k <= n; k++) row[k] = (row[k] as number) - f * (pivot[k] as number);
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    const row = m[r] as number[];
    let sum = row[n] as number;
    for (let k = r + 1; k < n; k++) sum -= (row[k] as number) * (x[k] as number);
    x[r] = sum / (row[r] as number);
  }
  return x;
}

/** Newton from `guess` to the joints that put the TCP at p with rotation r; undefined when it does not converge. */
function solvePose(chain: ArmChain, pose: ArmPose, guess: readonly number[], p: readonly number[], r: readonly number[]): number[] | undefined {
  const q = [...guess];
  const h = 1e-7;
  for (let iteration = 0; iteration < 40; iteration++) {
    const e = poseError(chain, pose, q, p, r);
    if (Math.hypot(...e) < 1e-13) return q;
    const J: number[][] = [0, 1, 2, 3, 4, 5].map(() => []);
    for (let j = 0; j < q.length; j++) {
      const plus = [...q];
      plus[j] = (plus[j] as number) + h;
      const minus = [...q];
      minus[j] = (minus[j] as number) - h;
      const ep = poseError(chain, pose, plus, p, r);
      const em = poseError(chain, pose, minus, p, r);
      for (let row = 0; row < 6; row++) (J[row] as number[])[j] = -((ep[row] as number) - (em[row] as number)) / (2 * h);
    }
    const step = solveSquare(J, e);
    for (let j = 0; j < q.length; j++) q[j] = (q[j] as number) + (step[j] as number);
  }
  return Math.hypot(...poseError(chain, pose, q, p, r)) < 1e-11 ? q : undefined;
}

/** dq/dl and d2q/dl2 at grid points l = k h, k = 0..N, along the line from where q0 puts the TCP to `target`. */
export interface ReferenceRates {
  readonly lengthM: number;
  readonly s: number[];
  readonly dqdl: number[][];
  readonly d2qdl2: number[][];
}

/** The reference rates on a grid of step about `stepM`; undefined when Newton cannot follow the line. */
export function referenceRates(chain: ArmChain, q0: readonly number[], target: readonly number[], stepM: number): ReferenceRates | undefined {
  const pose = new ArmPose(chain.jointCount);
  const start = toolPose(chain, pose, q0);
  const lengthM = Math.hypot(...[0, 1, 2].map((i) => (target[i] as number) - (start.p[i] as number)));
  const u = [0, 1, 2].map((i) => ((target[i] as number) - (start.p[i] as number)) / lengthM);
  const N = Math.max(4, Math.ceil(lengthM / stepM));
  const h = lengthM / N;
  const at = (k: number): number[] => start.p.map((x, i) => x + k * h * (u[i] as number));
  // qs[k + 1] holds grid point k, for k = -1..N+1.
  const qs: number[][] = [];
  const before = solvePose(chain, pose, q0, at(-1), start.r);
  if (before === undefined) return undefined;
  qs[0] = before;
  let q: readonly number[] = q0;
  for (let k = 0; k <= N + 1; k++) {
    const next = k === 0 ? [...q0] : solvePose(chain, pose, q, at(k), start.r);
    if (next === undefined) return undefined;
    qs[k + 1] = next;
    q = next;
  }
  const s: number[] = [], dqdl: number[][] = [], d2qdl2: number[][] = [];
  for (let k = 0; k <= N; k++) {
    const a = qs[k] as number[], b = qs[k + 1] as number[], c = qs[k + 2] as number[];
    s.push(k / N);
    dqdl.push(b.map((_, j) => ((c[j] as number) - (a[j] as number)) / (2 * h)));
    d2qdl2.push(b.map((bj, j) => ((c[j] as number) - 2 * bj + (a[j] as number)) / (h * h)));
  }
  return { lengthM, s, dqdl, d2qdl2 };
}

/** The peak over the grid of |d2q/dl2| v^2 + |dq/dl| a for joint j, and the s where it is reached. */
export function referencePeak(rates: ReferenceRates, j: number, speedMPerS: number, rampMPerS2: number): { peak: number; s: number } {
  let peak = -Infinity;
  let s = NaN;
  rates.s.forEach((sk, k) => {
    const value = Math.abs((rates.d2qdl2[k] as number[])[j] as number) * speedMPerS * speedMPerS + Math.abs((rates.dqdl[k] as number[])[j] as number) * rampMPerS2;
    if (value > peak) {
      peak = value;
      s = sk;
    }
  });
  return { peak, s };
}

/** The speed at which joint j's reference peak is `wanted` (bisection; the peak grows with the speed). */
export function speedForPeak(rates: ReferenceRates, j: number, rampMPerS2: number, wanted: number, maxSpeed: number): number {
  let low = 0;
  let high = maxSpeed;
  for (let i = 0; i < 80; i++) {
    const mid = (low + high) / 2;
    if (referencePeak(rates, j, mid, rampMPerS2).peak < wanted) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}
