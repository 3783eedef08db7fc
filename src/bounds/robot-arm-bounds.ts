// Bounds for robot arms: joint limits, step per command, measured effort / force / payload, and the whole swept
// path (keep-in, keep-out, tool orientation, TCP speed, IK for linear moves) against fresh live state.
// It allows or denies; it never edits a command. Every comparison is written so that NaN fails it.

import type { ArmDeclaration, ArmMoveJoints, ArmMoveLinear, ArmState } from '../core/kinds/robot-arm.js';
import { limitIn, type Mode } from '../core/kinds/kind-spec.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { KindBounds, ReleaseUnderWay } from './kind-bounds.js';
import { enteredZones, isMoving, occupiedZones, validPositions } from './robot-arm/cell-zones.js';
import { compiledArm, type CompiledArm } from './robot-arm/compiled-arm.js';
import { fmt } from './robot-arm/format.js';
import { displacementBound, pointSpeed, type ArmPose } from './robot-arm/kinematics.js';
import { measurementReasons } from './robot-arm/measurements.js';
import { checkPoseWorkspace, Finding, findingReason, workspaceReasons, workspaceSamplesProven } from './robot-arm/path-checks.js';
import { armRunOut, velocityStateReasons, type ArmRunOut } from './robot-arm/run-out.js';
import { jointPathIntervals, MAX_PATH_SAMPLES, sampleJointPath, sampleLinearPath, samplesProven, type SampleOutcome } from './robot-arm/swept-path.js';

type MovingRunOut = Extract<ArmRunOut, { ok: true }>;

// ---- run-out and path outcomes, shared by both moves ----

/** Whether the path checks have anything a run-out widens: workspace zones or a tool orientation cone. */
function pathWidensByRunOut(arm: CompiledArm): boolean {
  return arm.keepIn.length > 0 || arm.keepOut.length > 0 || arm.device.tcp.orientation !== undefined;
}

/**
 * The run-out the path checks widen their zones by: undefined at rest or when nothing on the path depends on it.
 * With `underWay` the arm is never at rest (see armRunOut): the path may start anywhere within the run-out.
 * SAFETY: when it cannot be bounded and the path depends on it, the reason is appended and the command is denied.
 */
function pathRunOut(arm: CompiledArm, state: ArmState, reasons: Reason[], underWay: ReleaseUnderWay | undefined): MovingRunOut | undefined {
  if (!pathWidensByRunOut(arm)) return undefined;
  const runOut = armRunOut(arm, state, underWay);
  if (runOut.ok) return runOut.marginM > 0 ? runOut : undefined;
  // A velocity that is not finite is already reported by velocityStateReasons; anything else is reported here.
  if (runOut.reason.code !== 'BOUNDS_STATE_INVALID') reasons.push(runOut.reason);
  return undefined;
}

function stepReason(device: ArmDeclaration, index: number, travel: number, limit: number, mode: Mode, path: string): Reason {
  const joint = device.joints[index];
  return reason('BOUNDS_JOINT_STEP', `joint ${joint?.name ?? index} would move ${fmt(travel)} rad from its state position, over the ${mode} max step ${fmt(limit)} rad`, {
    ruleId: `${device.id}/maxStep/${mode}`,
    path,
    limit,
    actual: travel,
    unit: 'rad',
  });
}

function pathOutcomeReasons(device: ArmDeclaration, outcome: SampleOutcome, path: string, reasons: Reason[]): void {
  if (outcome.ok) return;
  if (outcome.why === 'too-long') {
    reasons.push(
      reason('BOUNDS_ARM_PATH_TOO_LONG', `the path needs ${outcome.samples} samples at the declared resolution; at most ${MAX_PATH_SAMPLES} are checked (split the move)`, {
        ruleId: `${device.id}/workspace/resolution`,
        path,
        limit: MAX_PATH_SAMPLES,
        actual: outcome.samples,
      }),
    );
    return;
  }
  reasons.push(reason('BOUNDS_IK_UNREACHABLE', `the straight line cannot be followed at s=${fmt(outcome.s)}: ${outcome.detail}`, { ruleId: `${device.id}/kinematics`, path }));
}

// ---- move_joints ----

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

// ---- move_linear ----

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
// ---- the kind ----

export const ROBOT_ARM_BOUNDS: KindBounds<ArmDeclaration, ArmState> = {
  check(device, command, context) {
    const positions = context.state.positionsRad;
    // SAFETY: the state parser already refuses these; checked again because a wrong state here means a wrong path.
    if (!validPositions(device, positions)) {
      return denyWith(reason('BOUNDS_STATE_INVALID', `state of ${device.id} does not give ${device.joints.length} finite joint positions`));
    }
    // SAFETY: with its last release not yet reported finished the arm is checked as moving at its declared maximum.
    const { state, mode, underWay } = context;
    if (command.action === 'move_joints') return checkArmMoveJoints(device, command.params as unknown as ArmMoveJoints, state, mode, underWay);
    if (command.action === 'move_linear') return checkArmMoveLinear(device, command.params as unknown as ArmMoveLinear, state, mode, underWay);
    return denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on robot_arm ${device.id}`, { ruleId: device.id }));
  },
  // SAFETY: without kinematics the arm's place in the cell is unknown, so a shared zone it is listed in is treated
  // as occupied by it and entered by every move: fail closed. Unknown motion counts as moving, and a moving arm
  // occupies every zone it may reach within its run-out.
  occupancy: (device, state, zones) => ({ zoneIds: occupiedZones(device, state, zones), moving: isMoving(state) }),
  zonesEntered: enteredZones,
};
