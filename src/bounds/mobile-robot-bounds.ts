// Bounds for mobile robots: speed, turn-rate, acceleration and duration limits per mode, localization, step size,
// then the swept footprint against keep-out areas, speed zones and people. It allows or denies; it never edits.

import { limitIn, type Mode } from '../core/kinds/kind-spec.js';
import type { MobileRobotDeclaration, MobileRobotState } from '../core/kinds/mobile-robot.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { KindBounds, KindCheckContext, KindCommand } from './kind-bounds.js';
import { keepOutReasons, separationReasons, speedZoneReasons, zonesTouched } from './mobile-robot/area-checks.js';
import { asNumber, atTopSpeed, motionOf, type Motion } from './mobile-robot/motion.js';

/** Reasons the state cannot place the robot: non-finite pose or velocity (the schema refuses them; checked again). */
export function mobileStateReasons(device: MobileRobotDeclaration, state: MobileRobotState): Reason[] {
  const { pose, velocity } = state;
  const values = [pose.xM, pose.yM, pose.yawRad, velocity.linearMPerS, velocity.angularRadPerS];
  // SAFETY: a NaN pose would make every distance NaN; refused here with its own reason rather than as geometry.
  if (values.every((v) => typeof v === 'number' && Number.isFinite(v))) return [];
  return [reason('BOUNDS_STATE_INVALID', `state of ${device.id} does not give a finite pose and velocity`, { ruleId: `${device.id}/state` })];
}

/** Localization must be reported ok, with an age no greater than the declared maximum. */
export function localizationReasons(device: MobileRobotDeclaration, state: MobileRobotState): Reason[] {
  const ruleId = `${device.id}/localization`;
  const maxAgeMs = device.localization.maxAgeMs;
  const localization = state.localization;
  if (localization === undefined) return [reason('BOUNDS_LOCALIZATION', `${device.id} reports no localization`, { ruleId })];
  if (localization.ok !== true) return [reason('BOUNDS_LOCALIZATION', `${device.id} reports its localization is not ok`, { ruleId })];
  if (localization.ageMs === undefined) {
    return [reason('BOUNDS_LOCALIZATION', `${device.id} reports no localization age, so it cannot be shown fresh`, { ruleId, limit: maxAgeMs, unit: 'ms' })];
  }
  const ageMs = localization.ageMs;
  // SAFETY: NaN and negative ages are not fresh.
  if (!(ageMs >= 0 && ageMs <= maxAgeMs)) {
    return [reason('BOUNDS_LOCALIZATION', `localization of ${device.id} is ${ageMs} ms old, limit ${maxAgeMs} ms`, { ruleId, limit: maxAgeMs, actual: ageMs, unit: 'ms' })];
  }
  return [];
}

function limitReason(code: Reason['code'], what: string, ruleId: string, path: string, limit: number, actual: number, unit: string, mode?: Mode): Reason {
  const inMode = mode === undefined ? '' : ` ${mode}`;
  return reason(code, `${what} ${actual} ${unit} is outside its${inMode} limit ${limit} ${unit}`, { ruleId, path, limit, actual, unit });
}

/** An optional acceleration: absent means the robot's default ramp (configured at or below the reduced limit). */
function accelerationReasons(device: MobileRobotDeclaration, params: Readonly<Record<string, unknown>>, mode: Mode): Reason[] {
  const reasons: Reason[] = [];
  const fields = [
    { field: 'accelerationMPerS2', limit: device.limits.linearAccelerationMPerS2, name: 'linearAcceleration', unit: 'm/s^2', what: 'acceleration' },
    { field: 'angularAccelerationRadPerS2', limit: device.limits.angularAccelerationRadPerS2, name: 'angularAcceleration', unit: 'rad/s^2', what: 'angular acceleration' },
  ] as const;
  for (const { field, limit, name, unit, what } of fields) {
    if (!Object.hasOwn(params, field)) continue;
    const actual = asNumber(params[field]);
    const max = limitIn(limit, mode);
    // SAFETY: zero or negative would mean "never reach the speed" or a sign mix-up; NaN fails both comparisons.
    if (!(actual > 0 && actual <= max)) {
      reasons.push(limitReason('BOUNDS_BASE_ACCELERATION', what, `${device.id}/limits/${name}/${mode}`, `/params/${field}`, max, actual, unit, mode));
    }
  }
  return reasons;
}

function setVelocityLimitReasons(device: MobileRobotDeclaration, params: Readonly<Record<string, unknown>>, mode: Mode): Reason[] {
  const reasons: Reason[] = [];
  const linear = asNumber(params['linearMPerS']);
  const angular = asNumber(params['angularRadPerS']);
  const durationMs = asNumber(params['durationMs']);
  const linearMax = limitIn(device.limits.linearSpeedMPerS, mode);
  const angularMax = limitIn(device.limits.angularSpeedRadPerS, mode);
  // Either direction: reversing is as fast as driving forwards.
  if (!(Math.abs(linear) <= linearMax)) {
    reasons.push(limitReason('BOUNDS_BASE_SPEED', 'linear speed', `${device.id}/limits/linearSpeed/${mode}`, '/params/linearMPerS', linearMax, linear, 'm/s', mode));
  }
  if (!(Math.abs(angular) <= angularMax)) {
    reasons.push(limitReason('BOUNDS_BASE_TURN_RATE', 'turn rate', `${device.id}/limits/angularSpeed/${mode}`, '/params/angularRadPerS', angularMax, angular, 'rad/s', mode));
  }
  // SAFETY: a velocity command always ends; zero, negative, NaN or beyond the declared maximum is refused.
  if (!(durationMs > 0 && durationMs <= device.limits.maxVelocityDurationMs)) {
    reasons.push(limitReason('BOUNDS_VELOCITY_DURATION', 'duration', `${device.id}/limits/maxVelocityDuration`, '/params/durationMs', device.limits.maxVelocityDurationMs, durationMs, 'ms'));
  }
  return [...reasons, ...accelerationReasons(device, params, mode)];
}

function pathLimitReasons(device: MobileRobotDeclaration, action: string, params: Readonly<Record<string, unknown>>, mode: Mode): Reason[] {
  const reasons: Reason[] = [];
  const speed = asNumber(params['speedMPerS']);
  const max = limitIn(device.limits.linearSpeedMPerS, mode);
  if (!(speed > 0 && speed <= max)) {
    reasons.push(limitReason('BOUNDS_BASE_SPEED', 'speed', `${device.id}/limits/linearSpeed/${mode}`, '/params/speedMPerS', max, speed, 'm/s', mode));
  }
  const waypoints: unknown = params['waypoints'];
  if (action === 'follow_path' && Array.isArray(waypoints) && !(waypoints.length <= device.limits.maxWaypoints)) {
    reasons.push(
      reason('BOUNDS_PATH_TOO_LONG', `follow_path has ${waypoints.length} waypoints, limit ${device.limits.maxWaypoints}`, {
        ruleId: `${device.id}/limits/maxWaypoints`,
        path: '/params/waypoints',
        limit: device.limits.maxWaypoints,
        actual: waypoints.length,
      }),
    );
  }
  return [...reasons, ...accelerationReasons(device, params, mode)];
}

/** Max step per command, measured from the pose in the current state (not from the last goal), at the farthest target. */
function goalDistanceReasons(device: MobileRobotDeclaration, motion: Motion): Reason[] {
  const x0 = motion.xs[0] as number;
  const y0 = motion.ys[0] as number;
  let farthestM = -Infinity;
  let farthest = 0;
  for (let i = 1; i < motion.xs.length; i++) {
    const dx = (motion.xs[i] as number) - x0;
    const dy = (motion.ys[i] as number) - y0;
    const distanceM = Math.sqrt(dx * dx + dy * dy);
    if (!(distanceM <= farthestM)) {
      farthestM = distanceM;
      farthest = i - 1;
    }
  }
  const maxM = device.limits.maxGoalDistanceM;
  // SAFETY: `!(d <= max)` also denies a NaN distance.
  if (motion.xs.length < 2 || farthestM <= maxM) return [];
  return [
    reason('BOUNDS_GOAL_TOO_FAR', `${motion.pointer(farthest) === '/params' ? 'the target' : `waypoint ${farthest}`} is ${farthestM} m from the current pose, limit ${maxM} m`, {
      ruleId: `${device.id}/limits/maxGoalDistance`,
      path: motion.pointer(farthest),
      limit: maxM,
      actual: farthestM,
      unit: 'm',
    }),
  ];
}

/** Every limit for one non-safe-state command; exported so tests can call it with values the envelope never lets through. */
export function checkMobileRobotCommand(
  device: MobileRobotDeclaration,
  command: KindCommand,
  context: Pick<KindCheckContext<MobileRobotState>, 'state' | 'mode' | 'people' | 'underWay'>,
): StageResult {
  const { mode, people } = context;
  // SAFETY: with its last release not yet reported finished the robot is checked as driving at its top speed.
  const state = context.underWay === undefined ? context.state : atTopSpeed(device, context.state);
  const { action, params } = command;
  let reasons: Reason[];
  switch (action) {
    case 'stop':
      // Stopping is always safe; the stage passes it before asking the kind, and so does the kind.
      return PASS;
    case 'set_velocity':
      reasons = setVelocityLimitReasons(device, params, mode);
      break;
    case 'go_to':
    case 'follow_path':
      reasons = pathLimitReasons(device, action, params, mode);
      break;
    default:
      return denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${action} on mobile_robot ${device.id}`, { ruleId: device.id }));
  }

  const stateProblems = mobileStateReasons(device, state);
  const localization = stateProblems.length > 0 ? [] : localizationReasons(device, state);
  reasons.push(...stateProblems, ...localization);
  // Without a trusted pose there is nothing to measure from: the deny above already says why.
  if (stateProblems.length > 0 || localization.length > 0) return denyWith(...reasons);

  const built = motionOf(device, action, params, state);
  if (built === undefined || !built.ok) {
    reasons.push(...(built?.reasons ?? []));
    // SAFETY: a motion that could not be built is never an allow, even if no limit above said why.
    if (reasons.length === 0) reasons.push(reason('BOUNDS_BASE_TARGET_INVALID', `${action} on ${device.id} describes no motion that can be checked`, { ruleId: `${device.id}/target`, path: '/params' }));
    return denyWith(...reasons);
  }
  const motion = built.motion;
  reasons.push(...goalDistanceReasons(device, motion));
  // A zero-speed set_velocity can only bring the robot to rest (a disc turning in place sweeps nothing), as stop does.
  if (!motion.stationary) {
    reasons.push(...keepOutReasons(device, motion), ...speedZoneReasons(device, motion, mode), ...separationReasons(device, motion, people));
  }
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}

/** Where the robot is known to be: a valid state with good localization, or nowhere (unknown). */
function placeable(device: MobileRobotDeclaration, state: MobileRobotState): boolean {
  return mobileStateReasons(device, state).length === 0 && localizationReasons(device, state).length === 0;
}

export const MOBILE_ROBOT_BOUNDS: KindBounds<MobileRobotDeclaration, MobileRobotState> = {
  check: (device, command, context) => checkMobileRobotCommand(device, command, context),
  occupancy(device, state, zones) {
    const { linearMPerS, angularRadPerS } = state.velocity;
    // SAFETY: `!(x === 0)` counts NaN as moving, so a broken state never looks settled.
    const moving = state.moving || !(linearMPerS === 0) || !(angularRadPerS === 0);
    if (!placeable(device, state)) return { zoneIds: 'unknown', moving };
    const here = motionOf(device, 'stop', {}, state);
    if (here === undefined || !here.ok) return { zoneIds: 'unknown', moving };
    // The footprint now, without the run-out: where the robot is, not where it may brake to.
    return { zoneIds: zonesTouched(device, { ...here.motion, firstExtraM: 0 }, zones), moving };
  },
  zonesEntered(device, command, state, zones, underWay) {
    if (!placeable(device, state)) return 'unknown';
    // SAFETY: a release under way may have it driving at its top speed: the run-out widens where the path starts.
    const built = motionOf(device, command.action, command.params, underWay === undefined ? state : atTopSpeed(device, state));
    if (built === undefined || !built.ok) return 'unknown';
    return zonesTouched(device, built.motion, zones);
  },
};
