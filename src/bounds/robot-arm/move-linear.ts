// move_linear for robot arms: TCP speed and acceleration, measurements, then the straight TCP line by IK sample by
// sample (joint ranges, derived joint speeds and accelerations, max step, workspace, orientation). It allows or
// denies; it never edits a command. Every comparison is written so that NaN fails it.

import type { ArmDeclaration, ArmMoveLinear, ArmState } from '../../core/kinds/robot-arm.js';
import { limitIn, type Mode } from '../../core/kinds/kind-spec.js';
import { reason, type Reason } from '../../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../../core/verdict.js';
import type { ReleaseUnderWay } from '../kind-bounds.js';
import { compiledArm, type CompiledArm } from './compiled-arm.js';
import { fmt } from './format.js';
import type { ArmPose } from './kinematics.js';
import { measurementReasons } from './measurements.js';
import { pathOutcomeReasons, pathRunOut, stepReason, type MovingRunOut } from './move-shared.js';
import { checkPoseWorkspace, Finding, findingReason, workspaceReasons } from './path-checks.js';
import { velocityStateReasons } from './run-out.js';
import { sampleLinearPath } from './swept-path.js';

/**
 * move_linear from the state position: TCP speed and acceleration, measurements, then the straight TCP line by IK
 * sample by sample: joint ranges, derived joint velocities and accelerations, max step, workspace, orientation.
 */
export function checkArmMoveLinear(device: ArmDeclaration, move: ArmMoveLinear, state: ArmState, mode: Mode, underWay?: ReleaseUnderWay): StageResult {
  const arm = compiledArm(device);
  if (arm === undefined) {
    return denyWith(reason('BOUNDS_NOT_DECLARED', `${device.id} declares no kinematics, so a linear move cannot be checked`, { ruleId: `${device.id}/kinematics` }));
  }
  const reasons: Reason[] = [];
  const speed = move.speedMPerS;
  const speedLimit = device.tcp.speedMaxMPerS === undefined ? undefined : limitIn(device.tcp.speedMaxMPerS, mode);
  // Without a declared TCP speed limit the speed must still be a positive number; its joint speeds are checked below.
  if (!(speed > 0 && speed <= (speedLimit ?? Infinity))) {
    reasons.push(
      reason('BOUNDS_TCP_SPEED', `TCP speed ${speed} m/s is not within (0, ${speedLimit ?? 'unlimited'}] m/s (${mode})`, {
        ruleId: `${device.id}/tcp/speed/${mode}`,
        path: '/params/speedMPerS',
        ...(speedLimit === undefined ? {} : { limit: speedLimit }),
        actual: speed,
        unit: 'm/s',
      }),
    );
  }
  const accelerationLimit = device.tcp.accelerationMaxMPerS2;
  const acceleration = move.accelerationMPerS2;
  if (acceleration !== undefined) {
    const limit = accelerationLimit === undefined ? undefined : limitIn(accelerationLimit, mode);
    if (limit === undefined || !(acceleration > 0 && acceleration <= limit)) {
      reasons.push(
        reason(
          'BOUNDS_TCP_ACCELERATION',
          limit === undefined ? `the command gives a TCP acceleration but ${device.id} declares no TCP acceleration limit` : `TCP acceleration ${acceleration} m/s^2 exceeds the ${mode} limit ${limit} m/s^2`,
          { ruleId: `${device.id}/tcp/acceleration${limit === undefined ? '' : `/${mode}`}`, path: '/params/accelerationMPerS2', ...(limit === undefined ? {} : { limit }), actual: acceleration, unit: 'm/s^2' },
        ),
      );
    }
  }
  measurementReasons(device, state, mode, move.payloadKg, reasons);
  const velocityProblems = velocityStateReasons(device, state);
  for (const problem of velocityProblems) reasons.push(problem);
  const target = move.positionM;
  if (target.length !== 3 || !target.every((v) => Number.isFinite(v))) {
    reasons.push(reason('BOUNDS_IK_UNREACHABLE', 'the target position is not three finite coordinates', { ruleId: `${device.id}/kinematics`, path: '/params/positionM' }));
    return denyWith(...reasons);
  }
  // Absent acceleration: the driver ramps with the declared reduced-mode TCP acceleration (within every mode's
  // limit). An invalid one is already a reason above; the joint ramps are then derived from the default too.
  const validAcceleration = acceleration !== undefined && acceleration > 0 && Number.isFinite(acceleration) ? acceleration : undefined;
  const rampMPerS2 = validAcceleration ?? (accelerationLimit === undefined ? 0 : accelerationLimit.reduced);
  // SAFETY: with velocities that are not finite the run-out is unknown; the state reason above already denies.
  if (velocityProblems.length > 0) return denyWith(...reasons);
  const runOut = pathRunOut(arm, state, reasons, underWay);
  linearPathReasons(arm, state.positionsRad, target, speed > 0 && Number.isFinite(speed) ? speed : undefined, rampMPerS2, mode, runOut, reasons);
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}

/**
 * The straight TCP line by IK: joint ranges, derived joint speeds and accelerations, max step, and the workspace
 * widened by the run-out (its margin bounds where the line starts; see docs/declarations.md on what it does not bound).
 */
function linearPathReasons(
  arm: CompiledArm,
  q0: readonly number[],
  target: readonly number[],
  speed: number | undefined,
  rampMPerS2: number,
  mode: Mode,
  runOut: MovingRunOut | undefined,
  reasons: Reason[],
): void {
  const device = arm.device;
  const n = device.joints.length;
  const findings = arm.findings;
  findings.reset(arm, 0, runOut);
  const position = device.joints.map(() => new Finding(true));
  const velocity = device.joints.map(() => new Finding(true));
  const accelerationFindings = device.joints.map(() => new Finding(true));
  const worstPosition = new Float64Array(n);
  const travel = new Float64Array(n);
  const velocityLimits = device.joints.map((j) => limitIn(j.velocityMaxRadPerS, mode));
  const accelerationLimits = device.joints.map((j) => (j.accelerationMaxRadPerS2 === undefined ? undefined : limitIn(j.accelerationMaxRadPerS2, mode)));
  const rates = arm.lineRates;
  const tcp = arm.pose.tcpIndex * 3;
  // Joint rates are followed only along a line of some length; one of length 0 moves no joint.
  let lengthM = 0;
  let distanceM = 0;
  const outcome = sampleLinearPath(arm, q0, target, (s, q, pose: ArmPose, _qPrev, stepM, movedM) => {
    checkPoseWorkspace(arm, pose, s, findings, movedM);
    for (let j = 0; j < n; j++) {
      const joint = device.joints[j] as ArmDeclaration['joints'][number];
      const qj = q[j] as number;
      // SAFETY: every sample's joint positions, including the start, must lie in range.
      if (!(qj >= joint.positionMinRad && qj <= joint.positionMaxRad)) {
        if (position[j]?.record(s, Math.max(joint.positionMinRad - qj, qj - joint.positionMaxRad), 'joint')) worstPosition[j] = qj;
      }
      travel[j] = Math.max(travel[j] as number, Math.abs(qj - (q0[j] as number)));
    }
    if (s === 0) {
      const ux = (target[0] as number) - (pose.points[tcp] as number);
      const uy = (target[1] as number) - (pose.points[tcp + 1] as number);
      const uz = (target[2] as number) - (pose.points[tcp + 2] as number);
      lengthM = Math.hypot(ux, uy, uz);
      if (lengthM > 0) rates.reset([ux / lengthM, uy / lengthM, uz / lengthM]);
    }
    distanceM += stepM;
    // The rates are exact at every sample, the first and the last included (where the old backward differences
    // fell short); recordOverLimits bounds them between samples.
    if (lengthM > 0 && speed !== undefined) rates.add(s, distanceM, pose);
    return true;
  });
  if (lengthM > 0 && speed !== undefined) rates.recordOverLimits(speed, rampMPerS2, velocityLimits, accelerationLimits, velocity, accelerationFindings);
  const path = '/params/positionM';
  device.joints.forEach((joint, j) => {
    const f = position[j] as Finding;
    if (f.hit) {
      const actual = worstPosition[j] as number;
      const below = actual < joint.positionMinRad;
      reasons.push(
        reason('BOUNDS_JOINT_POSITION', `joint ${joint.name} reaches ${fmt(actual, 4)} rad ${f.span}, ${below ? 'below its min' : 'above its max'} ${fmt(below ? joint.positionMinRad : joint.positionMaxRad, 4)} rad`, {
          ruleId: `${device.id}/joints/${joint.name}/position`,
          path,
          limit: below ? joint.positionMinRad : joint.positionMaxRad,
          actual,
          unit: 'rad',
        }),
      );
    }
  });
  device.joints.forEach((joint, j) => {
    const f = velocity[j] as Finding;
    if (f.hit) {
      reasons.push(
        findingReason('BOUNDS_JOINT_VELOCITY', f, `at ${speed} m/s along the line joint ${joint.name} needs`, {
          ruleId: `${device.id}/joints/${joint.name}/velocity/${mode}`,
          path: '/params/speedMPerS',
          limit: velocityLimits[j] as number,
          unit: 'rad/s',
        }),
      );
    }
  });
  device.joints.forEach((joint, j) => {
    const f = accelerationFindings[j] as Finding;
    if (f.hit) {
      reasons.push(
        findingReason('BOUNDS_JOINT_ACCELERATION', f, `along the line joint ${joint.name} needs`, {
          ruleId: `${device.id}/jointDynamics/${joint.name}/acceleration/${mode}`,
          path: '/params/speedMPerS',
          limit: accelerationLimits[j] as number,
          unit: 'rad/s^2',
        }),
      );
    }
  });
  if (device.maxStepRad !== undefined) {
    const limit = limitIn(device.maxStepRad, mode);
    for (let j = 0; j < n; j++) if (!((travel[j] as number) <= limit)) reasons.push(stepReason(device, j, travel[j] as number, limit, mode, path));
  }
  workspaceReasons(arm, findings, path, reasons);
  pathOutcomeReasons(device, outcome, path, reasons);
}
