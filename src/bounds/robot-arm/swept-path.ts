// Samples the path an arm command sweeps, so that every body point moves at most the declared resolution between
// two samples: a straight joint-space line for move_joints, a straight TCP line (by IK) for move_linear.
// It only produces poses; what is allowed is decided by the caller. Bounded work: too many samples is an outcome.

import { displacementBound, forwardKinematics, forwardKinematicsFromAngles, setJointAngle, type ArmPose } from './kinematics.js';
import type { CompiledArm } from './compiled-arm.js';

/** More samples than this and the path is refused rather than checked (bounded decision time). */
export const MAX_PATH_SAMPLES = 5000;

/**
 * Called for samples in order of s; `pose` holds the forward kinematics of `q` (read it, never recompute it: the
 * sampler keeps the angles of joints that do not move in it). `steps` is the number of intervals since the previous
 * sample visited (0 at s = 0) and `stepM` bounds how far any body point moves in one interval, so no body point moved
 * more than steps * stepM since then. Returns how many of the following samples its checks are proven to pass (see
 * samplesProven): those are not visited. A negative number stops the path there.
 */
export type JointSampleVisitor = (s: number, q: Float64Array, pose: ArmPose, steps: number, stepM: number) => number;

/**
 * How many of the following samples a check is proven to pass when it has `room` left (in its own unit, after its
 * rounding slack) and can use up at most `perStep` of it per interval: sample i intervals on passes while
 * i * perStep < room. 0 for no room (or NaN), Infinity when nothing is used up.
 * SAFETY: written so that a NaN room proves nothing.
 */
export function samplesProven(room: number, perStep: number): number {
  if (!(room > 0)) return 0;
  if (!(perStep > 0)) return perStep === 0 ? Infinity : 0;
  return Math.ceil(room / perStep) - 1;
}

export type SampleOutcome =
  | { readonly ok: true; readonly samples: number }
  | { readonly ok: false; readonly why: 'too-long'; readonly samples: number }
  | { readonly ok: false; readonly why: 'ik'; readonly s: number; readonly detail: string };

/** How many intervals a joint line q0 -> q1 needs: every body point moves at most `resolutionM` per interval. */
export function jointPathIntervals(arm: CompiledArm, q0: ArrayLike<number>, q1: ArrayLike<number>): number {
  const bound = displacementBound(arm.chain, q0, q1);
  // SAFETY: a NaN or infinite bound must not turn into "one interval"; it is reported as too long.
  if (!Number.isFinite(bound)) return Infinity;
  return Math.max(1, Math.ceil(bound / arm.resolutionM));
}

/**
 * move_joints: q(s) = q0 + s (q1 - q0), s = k / N for k = 0..N (both ends included), N = `intervals` (by default
 * jointPathIntervals; a caller that needs N first passes it). Samples that the visitor proved to pass are not
 * visited: a body point moves at most stepM per interval, so a point found far enough from every zone bounds where
 * it can be for the next samples (a bounding sphere of radius i * stepM) without computing them. Leaves the joint
 * step q1 - q0 in arm.scratch.dq for the caller (TCP speed is |J dq| / T).
 */
export function sampleJointPath(
  arm: CompiledArm,
  q0: ArrayLike<number>,
  q1: ArrayLike<number>,
  visit: JointSampleVisitor,
  intervals: number = jointPathIntervals(arm, q0, q1),
): SampleOutcome {
  const { chain, pose } = arm;
  const n = chain.jointCount;
  const { q, dq } = arm.scratch;
  for (let j = 0; j < n; j++) {
    dq[j] = (q1[j] as number) - (q0[j] as number);
    // A joint that does not move has the same angle at every sample: its cos and sin are computed once.
    if (dq[j] === 0) setJointAngle(chain, pose, j, q0[j] as number);
  }
  if (!(intervals <= MAX_PATH_SAMPLES)) return { ok: false, why: 'too-long', samples: intervals };
  // Every interval moves the joints by dq / N, so no body point by more than this.
  const stepM = displacementBound(chain, q0, q1) / intervals;
  let previous = 0;
  for (let k = 0; k <= intervals; ) {
    const s = k / intervals;
    for (let j = 0; j < n; j++) {
      const step = dq[j] as number;
      // The last sample is the target itself, not q0 + 1 * dq (which may differ in the last bit).
      const qj = k === intervals ? (q1[j] as number) : (q0[j] as number) + s * step;
      q[j] = qj;
      if (step !== 0) setJointAngle(chain, pose, j, qj);
    }
    forwardKinematicsFromAngles(chain, pose);
    const proven = visit(s, q, pose, k - previous, stepM);
    if (proven < 0) return { ok: true, samples: k + 1 };
    previous = k;
    // SAFETY: only a number of samples proven to pass is skipped; NaN skips none (the next sample is visited).
    k += proven >= 1 ? 1 + Math.floor(Math.min(proven, intervals)) : 1;
  }
  return { ok: true, samples: intervals + 1 };
}

/**
 * Called for every accepted sample of a linear move. `qPrev` is the previous sample's joints, `stepM` the TCP
 * distance from it and `movedM` a bound on how far any body point moved from it (0 and q itself at s = 0).
 */
export type LinearSampleVisitor = (s: number, q: Float64Array, pose: ArmPose, qPrev: Float64Array, stepM: number, movedM: number) => boolean;

/** A step is halved at most this many times to keep the body points within the resolution. */
const MAX_REFINEMENTS = 6;

/**
 * move_linear: the TCP from where q0 puts it to `targetM` on a straight line with the start's tool orientation.
 * Each sample's joints come from damped-least-squares IK started at the previous sample, so the joint path is
 * followed continuously; steps are refined until every body point moves at most the resolution between samples.
 */
export function sampleLinearPath(arm: CompiledArm, q0: ArrayLike<number>, targetM: ArrayLike<number>, visit: LinearSampleVisitor): SampleOutcome {
  const n = arm.chain.jointCount;
  const { q, qPrev, rate, rotation, start, target, point } = arm.scratch;
  for (let j = 0; j < n; j++) q[j] = q0[j] as number;
  forwardKinematics(arm.chain, q, arm.pose);
  const tcp = arm.pose.tcpIndex * 3;
  for (let i = 0; i < 3; i++) {
    start[i] = arm.pose.points[tcp + i] as number;
    target[i] = targetM[i] as number;
  }
  rotation.set(arm.pose.rotation);
  const lengthM = Math.hypot((target[0] as number) - (start[0] as number), (target[1] as number) - (start[1] as number), (target[2] as number) - (start[2] as number));
  // SAFETY: a non-finite length (NaN target) can never be sampled; it is refused as too long, not skipped.
  if (!Number.isFinite(lengthM)) return { ok: false, why: 'too-long', samples: Infinity };
  const nominal = Math.max(1, Math.ceil(lengthM / arm.resolutionM));
  if (nominal > MAX_PATH_SAMPLES) return { ok: false, why: 'too-long', samples: nominal };
  qPrev.set(q);
  if (!visit(0, q, arm.pose, qPrev, 0, 0)) return { ok: true, samples: 1 };
  let samples = 1;
  let s = 0;
  const nominalStep = 1 / nominal;
  const smallestStep = nominalStep / 2 ** MAX_REFINEMENTS;
  let step = nominalStep;
  rate.fill(0);
  while (s < 1) {
    const sNext = s + step >= 1 - 1e-12 ? 1 : s + step;
    for (let i = 0; i < 3; i++) point[i] = (start[i] as number) + sNext * ((target[i] as number) - (start[i] as number));
    // Start IK where the joints were heading (the last step's rate); the result is checked, not trusted, below.
    for (let j = 0; j < n; j++) q[j] = (qPrev[j] as number) + (rate[j] as number) * (sNext - s);
    if (!arm.ik.solve(q, point, rotation)) {
      return { ok: false, why: 'ik', s: sNext, detail: `no joint solution within ${arm.ik.options.positionToleranceM} m / ${arm.ik.options.orientationToleranceRad} rad` };
    }
    const moved = displacementBound(arm.chain, qPrev, q);
    // How much the step could change for the body points to move about 90% of the resolution.
    const fit = moved > 0 ? (0.9 * arm.resolutionM) / moved : 2;
    if (moved <= arm.resolutionM) {
      samples += 1;
      if (samples > MAX_PATH_SAMPLES) return { ok: false, why: 'too-long', samples };
      if (!visit(sNext, q, arm.ik.pose, qPrev, (sNext - s) * lengthM, moved)) return { ok: true, samples };
      for (let j = 0; j < n; j++) rate[j] = ((q[j] as number) - (qPrev[j] as number)) / (sNext - s);
      qPrev.set(q);
      s = sNext;
      step = Math.min(nominalStep, step * Math.min(2, Math.max(1, fit)));
      continue;
    }
    // The joints jumped farther than the resolution allows for this TCP step: near a singularity or a branch
    // change. Smaller steps, down to a bound; a jump that does not shrink with the step is a discontinuous path.
    if (step <= smallestStep) {
      return { ok: false, why: 'ik', s: sNext, detail: `the joints jump (body points move up to ${moved.toFixed(4)} m for a TCP step of ${(step * lengthM).toExponential(2)} m): singular or discontinuous` };
    }
    step = Math.max(smallestStep, step * Math.max(0.1, Math.min(0.5, fit)));
  }
  return { ok: true, samples };
}
