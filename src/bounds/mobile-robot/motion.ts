// Where a mobile-robot command can take the footprint: a centre line from the current pose (straight segments for
// go_to/follow_path, a disc of reach for set_velocity and stop) and how much to widen it. It never checks a limit.

import type { FollowPathParams, GoToParams, MobileRobotDeclaration, MobileRobotState, SetVelocityParams } from '../../core/kinds/mobile-robot.js';
import { reason, type Reason } from '../../core/reasons.js';
import { stoppingDistanceM } from './separation.js';

/**
 * The footprint's swept area: every disc of radius `footprint + inflation(k)` centred on segment k of the centre
 * line. One point means a single disc (segment 0 from the point to itself).
 */
export interface Motion {
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  readonly segmentCount: number;
  /** Extra widening of segment 0 only: where the robot may be before it follows the command (run-out). */
  readonly firstExtraM: number;
  /** The commanded linear speed magnitude: what speed-zone limits apply to. */
  readonly commandedSpeedMPerS: number;
  /** The fastest the robot may drive during the command (commanded or current): what S_p is computed for. */
  readonly peakSpeedMPerS: number;
  /** Zero commanded speed: the command can only bring the robot to rest (or turn a disc in place), like stop. */
  readonly stationary: boolean;
  /** JSON pointer of the command field behind segment k. */
  pointer(segment: number): string;
  /** Words for segment k in a reason message. */
  describe(segment: number): string;
}

/** A number as given, or NaN for anything else (a direct caller's "0.5" must not pass a numeric comparison). */
export function asNumber(value: unknown): number {
  return typeof value === 'number' ? value : NaN;
}

export type MotionResult = { readonly ok: true; readonly motion: Motion } | { readonly ok: false; readonly reasons: readonly Reason[] };

/**
 * How far the robot may be from its reported pose when it starts on a new command: the state may be up to
 * maxStateAge old, during which it kept its reported speed, and then it may have to brake to a standstill first.
 */
export function runOutM(device: MobileRobotDeclaration, state: MobileRobotState): number {
  const speed = Math.abs(state.velocity.linearMPerS);
  return speed * (device.maxStateAgeMs / 1000) + stoppingDistanceM(device.separation.stopping, speed);
}

/**
 * The state as the checks see it while a release to the robot is not yet reported finished: the same pose, driving
 * at no less than its declared normal top speed (direction kept, forwards when at rest). Every check grows with the
 * current speed (run-out, set_velocity reach, separation at the peak speed), so none gets looser than the state alone.
 */
export function atTopSpeed(device: MobileRobotDeclaration, state: MobileRobotState): MobileRobotState {
  const { linearMPerS, angularRadPerS } = state.velocity;
  // SAFETY: a NaN speed stays NaN (Math.max keeps it), so the state checks still refuse it.
  const linear = Math.max(Math.abs(linearMPerS), device.limits.linearSpeedMPerS.normal);
  const angular = Math.max(Math.abs(angularRadPerS), device.limits.angularSpeedRadPerS.normal);
  return {
    ...state,
    velocity: { linearMPerS: linearMPerS < 0 ? -linear : linear, angularRadPerS: angularRadPerS < 0 ? -angular : angular },
    moving: true,
  };
}

function single(device: MobileRobotDeclaration, state: MobileRobotState, extraM: number, commanded: number, peak: number, what: string): Motion {
  return {
    xs: Float64Array.of(state.pose.xM),
    ys: Float64Array.of(state.pose.yM),
    segmentCount: 1,
    firstExtraM: extraM,
    commandedSpeedMPerS: commanded,
    peakSpeedMPerS: peak,
    stationary: commanded === 0,
    pointer: () => '/params',
    describe: () => `${what} (anywhere within ${round(extraM)} m of the current pose)`,
  };
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

function velocityMotion(device: MobileRobotDeclaration, state: MobileRobotState, params: SetVelocityParams): MotionResult {
  const commanded = Math.abs(asNumber(params.linearMPerS));
  const durationMs = asNumber(params.durationMs);
  // Checked by the limits; a non-finite value has no reach, and the limit reasons already deny it.
  if (!Number.isFinite(commanded) || !Number.isFinite(durationMs)) return { ok: false, reasons: [] };
  const current = Math.abs(state.velocity.linearMPerS);
  const peak = Math.max(commanded, current);
  const lagS = device.maxStateAgeMs / 1000;
  // The direction of travel is not predicted (a twist's arc depends on ramps the interlock cannot see): the robot
  // is somewhere within the distance it can cover, so a disc of that radius is checked, whatever the heading.
  const reach =
    commanded === 0
      ? runOutM(device, state)
      : current * lagS + peak * (durationMs / 1000) + stoppingDistanceM(device.separation.stopping, peak);
  return { ok: true, motion: single(device, state, reach, commanded, peak, 'the set_velocity reach') };
}

function invalidTarget(message: string, path: string, ruleId: string): MotionResult {
  return { ok: false, reasons: [reason('BOUNDS_BASE_TARGET_INVALID', message, { ruleId, path })] };
}

function pathMotion(
  device: MobileRobotDeclaration,
  state: MobileRobotState,
  targets: { xs: Float64Array; ys: Float64Array },
  speedMPerS: unknown,
  pointer: (segment: number) => string,
  describe: (segment: number) => string,
): MotionResult {
  const speed = Math.abs(asNumber(speedMPerS));
  if (!Number.isFinite(speed)) return { ok: false, reasons: [] };
  const n = targets.xs.length + 1;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  xs[0] = state.pose.xM;
  ys[0] = state.pose.yM;
  xs.set(targets.xs, 1);
  ys.set(targets.ys, 1);
  return {
    ok: true,
    motion: {
      xs,
      ys,
      segmentCount: n - 1,
      firstExtraM: runOutM(device, state),
      commandedSpeedMPerS: speed,
      peakSpeedMPerS: Math.max(speed, Math.abs(state.velocity.linearMPerS)),
      // A path always moves: its speed must be > 0 (the limit check), so nothing here is skipped as "stationary".
      stationary: false,
      pointer,
      describe,
    },
  };
}

/**
 * The motion of a command from the robot's current state. Coordinates that are not finite are refused here
 * (BOUNDS_BASE_TARGET_INVALID); a non-finite speed or duration gives no motion and no reason (the limit checks
 * deny it). `undefined` for an action that is not a motion of this kind.
 */
export function motionOf(device: MobileRobotDeclaration, action: string, params: Readonly<Record<string, unknown>>, state: MobileRobotState): MotionResult | undefined {
  switch (action) {
    case 'stop': {
      const runOut = runOutM(device, state);
      return { ok: true, motion: single(device, state, runOut, 0, Math.abs(state.velocity.linearMPerS), 'braking to a stop') };
    }
    case 'set_velocity':
      return velocityMotion(device, state, params as unknown as SetVelocityParams);
    case 'go_to': {
      const goTo = params as unknown as GoToParams;
      const ruleId = `${device.id}/target`;
      // SAFETY: typeof guards a direct caller's string or missing field; isFinite refuses NaN and ±Infinity.
      if (!(typeof goTo.xM === 'number' && Number.isFinite(goTo.xM) && typeof goTo.yM === 'number' && Number.isFinite(goTo.yM))) {
        return invalidTarget(`go_to target (${String(goTo.xM)}, ${String(goTo.yM)}) is not a pair of finite numbers`, '/params', ruleId);
      }
      if (goTo.yawRad !== undefined && !(typeof goTo.yawRad === 'number' && Number.isFinite(goTo.yawRad))) {
        return invalidTarget(`go_to heading ${String(goTo.yawRad)} is not a finite number`, '/params/yawRad', ruleId);
      }
      return pathMotion(device, state, { xs: Float64Array.of(goTo.xM), ys: Float64Array.of(goTo.yM) }, goTo.speedMPerS, () => '/params', () => 'the straight line to the target');
    }
    case 'follow_path': {
      const path = params as unknown as FollowPathParams;
      const ruleId = `${device.id}/target`;
      const waypoints: unknown = path.waypoints;
      if (!Array.isArray(waypoints) || waypoints.length === 0) return invalidTarget('follow_path has no waypoints', '/params/waypoints', ruleId);
      const xs = new Float64Array(waypoints.length);
      const ys = new Float64Array(waypoints.length);
      let firstBad = -1;
      let bad = 0;
      // Indexed, not forEach: a sparse array's holes must count as invalid, not be skipped.
      for (let i = 0; i < waypoints.length; i++) {
        const point: unknown = waypoints[i];
        const ok = Array.isArray(point) && point.length === 2 && typeof point[0] === 'number' && typeof point[1] === 'number' && Number.isFinite(point[0]) && Number.isFinite(point[1]);
        if (!ok) {
          bad++;
          if (firstBad < 0) firstBad = i;
          continue;
        }
        xs[i] = point[0] as number;
        ys[i] = point[1] as number;
      }
      if (bad > 0) {
        const more = bad > 1 ? ` (and ${bad - 1} more)` : '';
        return invalidTarget(`waypoint ${firstBad}${more} is not a pair of finite numbers [x, y]`, `/params/waypoints/${firstBad}`, ruleId);
      }
      return pathMotion(
        device,
        state,
        { xs, ys },
        path.speedMPerS,
        (segment) => `/params/waypoints/${segment}`,
        (segment) => `segment ${segment} (${segment === 0 ? 'from the current pose' : `from waypoint ${segment - 1}`} to waypoint ${segment})`,
      );
    }
    default:
      return undefined;
  }
}
