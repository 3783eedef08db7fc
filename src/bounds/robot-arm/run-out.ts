// How far a moving arm may already be from the joint positions its state reports when a command takes effect: the
// state may be up to maxStateAge old, and then every joint needs its stopping distance. It never checks a limit;
// the path checks widen their zones by the margin it gives. An arm at rest has none, so nothing changes for it.

import type { ArmDeclaration, ArmState } from '../../core/kinds/robot-arm.js';
import { reason, type Reason } from '../../core/reasons.js';
import type { ReleaseUnderWay } from '../kind-bounds.js';
import type { CompiledArm } from './compiled-arm.js';
import { fmt } from './format.js';
import { jointBoxBound } from './kinematics.js';

/**
 * Where the joint speeds of a run-out came from. 'release under way': a release the arm has not yet reported
 * finished, so each joint at the larger of its reported speed and its declared maximum.
 */
export type SpeedSource = 'reported' | 'declared maximum' | 'release under way';

export type ArmRunOut =
  | {
      readonly ok: true;
      /** How far any body point may be from where the reported positions put it (m); 0 at rest. */
      readonly marginM: number;
      /** How far the tool axis may have turned (rad): at most the sum of the joints' run-outs. */
      readonly turnRad: number;
      readonly source: SpeedSource;
      /** The joint with the largest run-out, its speed and its run-out. */
      readonly joint: string;
      readonly speedRadPerS: number;
      readonly jointRunOutRad: number;
      readonly maxStateAgeMs: number;
      /** With source 'release under way': why (which command is not yet reported finished). */
      readonly underWay?: string;
    }
  | { readonly ok: false; readonly reason: Reason };

const AT_REST: ArmRunOut = Object.freeze({ ok: true, marginM: 0, turnRad: 0, source: 'reported', joint: '', speedRadPerS: 0, jointRunOutRad: 0, maxStateAgeMs: 0 });

/**
 * Reasons the state's velocities cannot be used: a count other than the joints' or a value that is not finite.
 * Empty when they are absent or valid. Checked for every motion, with or without kinematics.
 */
export function velocityStateReasons(device: ArmDeclaration, state: ArmState): Reason[] {
  const velocities = state.velocitiesRadPerS;
  if (velocities === undefined) return [];
  if (velocities.length !== device.joints.length) {
    return [
      reason('BOUNDS_STATE_INVALID', `state of ${device.id} gives ${velocities.length} joint velocities, the arm has ${device.joints.length} joints`, {
        ruleId: `${device.id}/state/velocitiesRadPerS`,
        limit: device.joints.length,
        actual: velocities.length,
      }),
    ];
  }
  for (let j = 0; j < velocities.length; j++) {
    const v = velocities[j] as number;
    // SAFETY: a NaN or infinite speed gives no run-out to widen the path by, so the state is unusable for motion.
    if (!Number.isFinite(v)) {
      return [
        reason('BOUNDS_STATE_INVALID', `state of ${device.id} reports joint ${device.joints[j]?.name ?? j} moving at ${v} rad/s, not a finite speed`, {
          ruleId: `${device.id}/state/velocitiesRadPerS`,
          actual: v,
          unit: 'rad/s',
        }),
      ];
    }
  }
  return [];
}

/**
 * The run-out of the arm in `state`. Per joint, dq_j = |v_j| * maxStateAge + v_j^2 / (2 a_j): the speed held for
 * as long as the state may be old, then braking at a_j (brakingRadPerS2). The margin is sum_j dq_j * reach_j, a
 * bound on how far any body point of a pose within q +- dq lies from the same point of q (jointBoxBound).
 *
 * Speeds: the reported velocities; none reported and `moving` not false, or `moving` true with every reported
 * velocity 0 (a state that contradicts itself), each joint's declared normal-mode maximum. At rest (every velocity
 * exactly 0 or none reported, and `moving` not true; or `moving` false and no velocities) the margin is 0.
 * With `underWay` (a release the arm has not reported finished): never at rest, each joint at the larger of its
 * reported speed and its declared maximum, so the margin is never smaller than without it.
 * Not ok (a reason) for a velocity that is not finite, and for a moving joint without a declared deceleration.
 */
export function armRunOut(arm: CompiledArm, state: ArmState, underWay?: ReleaseUnderWay): ArmRunOut {
  const device = arm.device;
  const velocities = state.velocitiesRadPerS;
  let reported = velocities !== undefined;
  if (velocities !== undefined) {
    const invalid = velocityStateReasons(device, state);
    if (invalid.length > 0) return { ok: false, reason: invalid[0] as Reason };
    let anyMoving = false;
    for (let j = 0; j < velocities.length; j++) if (velocities[j] !== 0) anyMoving = true;
    if (!anyMoving) {
      if (state.moving !== true && underWay === undefined) return AT_REST;
      reported = false; // SAFETY: "moving" with every speed 0: the speeds say nothing, so assume the fastest.
    }
  } else if (state.moving === false && underWay === undefined) {
    return AT_REST;
  }
  const n = device.joints.length;
  const lagS = device.maxStateAgeMs / 1000;
  const runOut = arm.scratch.runOut;
  let turnRad = 0;
  let worst = -1;
  let worstSpeed = 0;
  for (let j = 0; j < n; j++) {
    const reportedSpeed = reported ? Math.abs((velocities as readonly number[])[j] as number) : (arm.velocityMaxRadPerS[j] as number);
    // SAFETY: a release not yet reported finished may be driving the joint at up to its declared maximum, whatever
    // a state sent before it arrived says; the larger speed keeps the margin at least what the state alone gives.
    const speed = underWay === undefined ? reportedSpeed : Math.max(reportedSpeed, arm.velocityMaxRadPerS[j] as number);
    if (speed === 0) {
      runOut[j] = 0;
      continue;
    }
    const braking = arm.brakingRadPerS2[j] as number;
    const joint = device.joints[j] as ArmDeclaration['joints'][number];
    // SAFETY: without a deceleration the joint's stopping distance is unknown, so no margin is wide enough.
    if (!(braking > 0)) {
      return {
        ok: false,
        reason: reason(
          'BOUNDS_ARM_RUN_OUT_UNBOUNDED',
          `${device.id} ${underWay === undefined ? 'is' : `may be (${underWay.why})`} moving (joint ${joint.name} at ${underWay !== undefined ? `up to ${fmt(speed)}` : reported ? fmt(speed) : `up to its declared ${fmt(speed)}`} rad/s) and joint ${joint.name} declares no acceleration to brake with (jointDynamics), so its run-out cannot be bounded`,
          { ruleId: `${device.id}/jointDynamics/${joint.name}/acceleration`, actual: speed, unit: 'rad/s' },
        ),
      };
    }
    const dq = speed * lagS + (speed * speed) / (2 * braking);
    runOut[j] = dq;
    turnRad += dq;
    if (worst < 0 || dq > (runOut[worst] as number)) {
      worst = j;
      worstSpeed = speed;
    }
  }
  if (worst < 0) return AT_REST; // every declared maximum speed is 0: the arm cannot move
  const marginM = jointBoxBound(arm.chain, runOut);
  // SAFETY: a speed so large that the margin overflows bounds nothing. The value goes in the message only: a reason
  // with a non-finite number cannot be recorded (the audit log refuses what JSON cannot carry), so the deny would
  // go unrecorded.
  if (!Number.isFinite(marginM)) {
    return {
      ok: false,
      reason: reason('BOUNDS_ARM_RUN_OUT_UNBOUNDED', `${device.id} reports joint speeds whose run-out is not a finite distance (${marginM} m)`, {
        ruleId: `${device.id}/runOut`,
      }),
    };
  }
  const joint = device.joints[worst] as ArmDeclaration['joints'][number];
  return {
    ok: true,
    marginM,
    turnRad,
    source: underWay !== undefined ? 'release under way' : reported ? 'reported' : 'declared maximum',
    joint: joint.name,
    speedRadPerS: worstSpeed,
    jointRunOutRad: runOut[worst] as number,
    maxStateAgeMs: device.maxStateAgeMs,
    ...(underWay === undefined ? {} : { underWay: underWay.why }),
  };
}

/** "the arm is moving (joint base at 0.500 rad/s, reported; state up to 250 ms old: 0.1420 rad run-out)" */
export function describeRunOut(runOut: Extract<ArmRunOut, { ok: true }>): string {
  const run = `state up to ${runOut.maxStateAgeMs} ms old: ${fmt(runOut.jointRunOutRad, 4)} rad run-out`;
  if (runOut.source === 'release under way') {
    return `the arm may be moving (${runOut.underWay ?? 'a release not yet reported finished'}: joint ${runOut.joint} at up to ${fmt(runOut.speedRadPerS)} rad/s; ${run})`;
  }
  const speeds = runOut.source === 'reported' ? 'reported' : 'its declared maximum, no velocities reported';
  return `the arm is moving (joint ${runOut.joint} at ${fmt(runOut.speedRadPerS)} rad/s, ${speeds}; ${run})`;
}
