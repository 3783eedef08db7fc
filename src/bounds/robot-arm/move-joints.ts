// move_joints for robot arms: target count and ranges, joint velocity and acceleration, measurements, max step,
// then the swept joint line (workspace, tool orientation, TCP speed), skipping the samples proven clear. It allows
// or denies; it never edits a command. Every comparison is written so that NaN fails it.

import type { ArmDeclaration, ArmMoveJoints, ArmState } from '../../core/kinds/robot-arm.js';
import { limitIn, type Mode } from '../../core/kinds/kind-spec.js';
import { reason, type Reason } from '../../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../../core/verdict.js';
import type { ReleaseUnderWay } from '../kind-bounds.js';
import { compiledArm, type CompiledArm } from './compiled-arm.js';
import { fmt } from './format.js';
import { displacementBound, pointSpeed } from './kinematics.js';
import { measurementReasons } from './measurements.js';
import { pathOutcomeReasons, pathRunOut, stepReason, type MovingRunOut } from './move-shared.js';
import { checkPoseWorkspace, Finding, findingReason, workspaceReasons, workspaceSamplesProven } from './path-checks.js';
import { velocityStateReasons } from './run-out.js';
import { jointPathIntervals, sampleJointPath, samplesProven } from './swept-path.js';

/**
 * move_joints from the state position: target count and ranges, velocity and acceleration (each joint's limit, as
 * any joint may lead), measurements, then - only for a valid target - the max step and the swept path, widened by
 * the run-out of an arm that is still moving or has a release under way (`underWay`).
 */
export function checkArmMoveJoints(device: ArmDeclaration, move: ArmMoveJoints, state: ArmState, mode: Mode, underWay?: ReleaseUnderWay): StageResult {
  const reasons: Reason[] = [];
  const joints = device.joints;
  if (move.positionsRad.length !== joints.length) {
    return denyWith(
      reason('BOUNDS_JOINT_COUNT', `${move.positionsRad.length} joint targets given, ${device.id} has ${joints.length} joints`, {
        ruleId: `${device.id}/joints`,
        path: '/params/positionsRad',
        limit: joints.length,
        actual: move.positionsRad.length,
      }),
    );
  }
  let targetValid = true;
  for (let index = 0; index < joints.length; index++) {
    const joint = joints[index] as ArmDeclaration['joints'][number];
    const target = move.positionsRad[index] as number;
    // SAFETY: written as "not inside" so that NaN (which fails every comparison) is outside.
    if (!(target >= joint.positionMinRad && target <= joint.positionMaxRad)) {
      targetValid = false;
      const below = target < joint.positionMinRad;
      reasons.push(
        reason(
          'BOUNDS_JOINT_POSITION',
          `joint ${joint.name} target ${target} rad is ${below ? 'below' : 'above'} its ${below ? 'min' : 'max'} ${below ? joint.positionMinRad : joint.positionMaxRad} rad`,
          {
            ruleId: `${device.id}/joints/${joint.name}/position`,
            path: `/params/positionsRad/${index}`,
            limit: below ? joint.positionMinRad : joint.positionMaxRad,
            actual: target,
            unit: 'rad',
          },
        ),
      );
    }
  }
  const velocity = move.velocityRadPerS;
  let velocityValid = true;
  for (const joint of joints) {
    // The leading joint moves at the commanded speed and, with the arm possibly still moving when the command
    // arrives, any joint may lead: each joint's limit applies to the commanded speed.
    const limit = limitIn(joint.velocityMaxRadPerS, mode);
    if (!(velocity > 0 && velocity <= limit)) {
      velocityValid = false;
      reasons.push(
        reason('BOUNDS_JOINT_VELOCITY', `velocity ${velocity} rad/s exceeds joint ${joint.name}'s ${mode} limit ${limit} rad/s`, {
          ruleId: `${device.id}/joints/${joint.name}/velocity/${mode}`,
          path: '/params/velocityRadPerS',
          limit,
          actual: velocity,
          unit: 'rad/s',
        }),
      );
    }
  }
  const acceleration = move.accelerationRadPerS2;
  // Absent: the driver ramps with the declared reduced-mode acceleration, which is within every mode's limit.
  if (acceleration !== undefined) {
    for (const joint of joints) {
      if (joint.accelerationMaxRadPerS2 === undefined) {
        reasons.push(
          reason('BOUNDS_JOINT_ACCELERATION', `the command gives an acceleration but joint ${joint.name} declares no acceleration limit (jointDynamics)`, {
            ruleId: `${device.id}/jointDynamics`,
            path: '/params/accelerationRadPerS2',
          }),
        );
        break;
      }
      const limit = limitIn(joint.accelerationMaxRadPerS2, mode);
      if (!(acceleration > 0 && acceleration <= limit)) {
        reasons.push(
          reason('BOUNDS_JOINT_ACCELERATION', `acceleration ${acceleration} rad/s^2 exceeds joint ${joint.name}'s ${mode} limit ${fmt(limit)} rad/s^2`, {
            ruleId: `${device.id}/jointDynamics/${joint.name}/acceleration/${mode}`,
            path: '/params/accelerationRadPerS2',
            limit,
            actual: acceleration,
            unit: 'rad/s^2',
          }),
        );
      }
    }
  }
  measurementReasons(device, state, mode, move.payloadKg, reasons);
  const velocityProblems = velocityStateReasons(device, state);
  for (const problem of velocityProblems) reasons.push(problem);
  // SAFETY: a target outside its range (or not a number) is denied on that alone: a path toward it describes motion
  // the arm must never make, so its step, speed and workspace numbers would only add noise to the reasons.
  if (!targetValid) return denyWith(...reasons);

  const q0 = state.positionsRad;
  const q1 = move.positionsRad;
  if (device.maxStepRad !== undefined) {
    const limit = limitIn(device.maxStepRad, mode);
    for (let j = 0; j < q1.length; j++) {
      const travel = Math.abs((q1[j] as number) - (q0[j] as number));
      if (!(travel <= limit)) reasons.push(stepReason(device, j, travel, limit, mode, `/params/positionsRad/${j}`));
    }
  }
  const arm = compiledArm(device);
  // SAFETY: with velocities that are not finite the run-out is unknown; the state reason above already denies.
  if (arm !== undefined && velocityProblems.length === 0) {
    const runOut = pathRunOut(arm, state, reasons, underWay);
    jointPathReasons(arm, q0, q1, velocityValid ? velocity : undefined, mode, runOut, reasons);
  }
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}

/**
 * Slack on the TCP speed before a sample counts as proven for later ones: far above the rounding of |J dq| / T
 * (about 1e-15 relative), far below any speed limit that matters.
 */
const SPEED_SLACK_M_PER_S = 1e-9;

/**
 * An upper bound on how much |dp_tcp/ds| = |sum_j dq_j z_j x (p_tcp - o_j)| changes per unit s along the joint line
 * q0 -> q1 (dq = q1 - q0). Term j changes by at most |dq_j| (|dz_j| |p_tcp - o_j| + |d(p_tcp - o_j)|): the axis z_j is
 * turned by the joints before it (at most W_j = sum_{i<j} |dq_i| per unit s), |p_tcp - o_j| <= reachM[j], and the TCP
 * and o_j each move at most D = displacementBound per unit s.
 */
function tcpSpeedChangeBound(arm: CompiledArm, q0: readonly number[], q1: readonly number[]): number {
  const reach = arm.chain.reachM;
  const moved = displacementBound(arm.chain, q0, q1);
  let turned = 0;
  let bound = 0;
  for (let j = 0; j < arm.chain.jointCount; j++) {
    const step = Math.abs((q1[j] as number) - (q0[j] as number));
    bound += step * (turned * (reach[j] as number) + 2 * moved);
    turned += step;
  }
  return bound;
}

/**
 * The swept joint line: workspace and orientation at every sample (widened by the run-out of a moving arm), and the
 * TCP speed |J dq| / T. Appends its reasons to `reasons`.
 */
function jointPathReasons(
  arm: CompiledArm,
  q0: readonly number[],
  q1: readonly number[],
  velocity: number | undefined,
  mode: Mode,
  runOut: MovingRunOut | undefined,
  reasons: Reason[],
): void {
  const device = arm.device;
  const findings = arm.findings;
  const speed = new Finding(true);
  const speedLimit = device.tcp.speedMaxMPerS === undefined ? undefined : limitIn(device.tcp.speedMaxMPerS, mode);
  let leading = 0;
  // The tool axis turns by at most sum |dq_j| over the whole line, so by that over N between two samples.
  let totalTurnRad = 0;
  for (let j = 0; j < q1.length; j++) {
    const travel = Math.abs((q1[j] as number) - (q0[j] as number));
    leading = Math.max(leading, travel);
    totalTurnRad += travel;
  }
  // T = max |dq| / v is the shortest time the move can take; with any ramp ds/dt stays at or below 1 / T, so
  // |dp/ds| / T bounds the TCP speed at that sample. No motion (leading 0) means no speed to check.
  const durationS = velocity === undefined || leading === 0 ? undefined : leading / velocity;
  const checkSpeed = speedLimit !== undefined && durationS !== undefined;
  const tcpIndex = arm.pose.tcpIndex;
  const dq = arm.scratch.dq;
  const intervals = jointPathIntervals(arm, q0, q1);
  const turnStepRad = totalTurnRad / intervals;
  findings.reset(arm, turnStepRad / 2, runOut);
  // How much the TCP speed can change per interval (m/s), so that a sample well under the limit proves the next ones.
  const speedStep = checkSpeed ? tcpSpeedChangeBound(arm, q0, q1) / intervals / (durationS as number) : 0;
  const outcome = sampleJointPath(
    arm,
    q0,
    q1,
    (s, _q, pose, steps, stepM) => {
      // Every zone is measured afresh at a computed pose (moved "Infinity": no room carried over), so that the
      // least room, and with it the samples proven ahead, is the real one, not one used up since an earlier pose.
      checkPoseWorkspace(arm, pose, s, findings, Infinity);
      const proven = workspaceSamplesProven(findings, stepM, turnStepRad);
      if (!checkSpeed) return proven;
      const tcpSpeed = pointSpeed(pose, tcpIndex, dq) / (durationS as number);
      if (!(tcpSpeed <= (speedLimit as number))) speed.record(s, tcpSpeed, 'tcp');
      return Math.min(proven, samplesProven((speedLimit as number) - tcpSpeed - SPEED_SLACK_M_PER_S, speedStep));
    },
    intervals,
  );
  const path = '/params/positionsRad';
  pathOutcomeReasons(device, outcome, path, reasons);
  workspaceReasons(arm, findings, path, reasons);
  if (speed.hit && speedLimit !== undefined) {
    reasons.push(
      findingReason('BOUNDS_TCP_SPEED', speed, `with the leading joint at ${velocity} rad/s the TCP moves at`, {
        ruleId: `${device.id}/tcp/speed/${mode}`,
        path: '/params/velocityRadPerS',
        limit: speedLimit,
        unit: 'm/s',
      }),
    );
  }
}

