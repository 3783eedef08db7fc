// Simulated driver for a mobile robot (unicycle model): ramps, straight path segments, state with people, watchdog.
// It must never move on a command it did not itself verify as released by the interlock for this device.

import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DriverRuntime, positiveFinite, type DriverOptions, type DriverProfile, type Outcome, type ReceivedRelease } from './driver-runtime.js';
import type { SimulatedPeople } from './people.js';

export type { ReceivedRelease } from './driver-runtime.js';

export interface RobotPose {
  readonly xM: number;
  readonly yM: number;
  readonly yawRad: number;
}

/**
 * How the robot moves when a command leaves it open. The interlock assumes these: default ramps at or below the
 * device's reduced limits, braking at the declared deceleration.
 */
export interface MobileRobotDynamics {
  /** Linear ramp when a command carries no accelerationMPerS2; default 0.5 m/s^2. */
  readonly defaultAccelerationMPerS2?: number;
  /** Angular ramp when a set_velocity carries none; default 1 rad/s^2. */
  readonly defaultAngularAccelerationRadPerS2?: number;
  /** Turn rate for turning in place on a path; default 0.5 rad/s. */
  readonly turnRateRadPerS?: number;
  /** Braking for stop, the watchdog, the end of a set_velocity and before a new path; default 1.2 m/s^2. */
  readonly brakingDecelerationMPerS2?: number;
  /** Angular braking; default 2 rad/s^2. */
  readonly angularBrakingRadPerS2?: number;
}

/** The common options (driver-runtime.ts); the watchdog brakes the robot to a stop. */
export interface SimulatedMobileRobotOptions extends DriverOptions {
  /** Defaults to the origin, facing +x. */
  readonly initialPose?: RobotPose;
  readonly dynamics?: MobileRobotDynamics;
  /** People the robot's scanners see; published in every state message when given. */
  readonly people?: SimulatedPeople;
  /** How often a localization fix arrives while localization is good; default 100 ms. */
  readonly localizationPeriodMs?: number;
  /** How often state is published; default 50. */
  readonly statePeriodMs?: number;
  /** How often the robot is integrated and the watchdog checked, and the integration step; default 10. */
  readonly physicsPeriodMs?: number;
  /** Epoch milliseconds; used for release expiry, the watchdog, set_velocity durations and the time step. */
  readonly nowMs?: () => number;
}

/** The JSON published on `actuatorState(deviceId)`; the mobile_robot state schema. */
export interface MobileRobotStateMessage {
  readonly pose: { xM: number; yM: number; yawRad: number };
  readonly velocity: { linearMPerS: number; angularRadPerS: number };
  readonly localization: { ok: boolean; ageMs: number };
  readonly moving: boolean;
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
  readonly people?: [number, number][];
  readonly timeMs: number;
}

export const MOBILE_ROBOT_ACTIONS = ['set_velocity', 'go_to', 'follow_path', 'stop'] as const;

const MOBILE_ROBOT_PROFILE: DriverProfile = {
  className: 'SimulatedMobileRobot',
  logName: 'mobile-robot-driver',
  defaultStatePeriodMs: 50,
  safeStateActions: ['stop'],
  watchdogAction: 'braking',
  faultAction: 'braking',
};

/** What the robot is doing. A path or a twist that arrives while it moves is preceded by a brake to rest. */
type Plan =
  | { readonly kind: 'idle' }
  | { readonly kind: 'brake'; readonly then: Plan }
  | { readonly kind: 'velocity'; readonly linearMPerS: number; readonly angularRadPerS: number; readonly accelerationMPerS2: number; readonly angularAccelerationRadPerS2: number; readonly untilMs: number }
  | { readonly kind: 'path'; readonly points: readonly (readonly [number, number])[]; index: number; phase: 'turn' | 'drive'; readonly speedMPerS: number; readonly accelerationMPerS2: number; readonly finalYawRad?: number }
  | { readonly kind: 'final-turn'; readonly yawRad: number };

function positive(value: number, name: string): number {
  return positiveFinite(MOBILE_ROBOT_PROFILE.className, value, name);
}

function finite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Moves `value` toward `target` by at most `step`. */
function approach(value: number, target: number, step: number): number {
  return Math.abs(target - value) <= step ? target : value + Math.sign(target - value) * step;
}

function wrapAngle(rad: number): number {
  return Math.atan2(Math.sin(rad), Math.cos(rad));
}

export class SimulatedMobileRobot {
  readonly deviceId: string;
  readonly #runtime: DriverRuntime;
  readonly #localizationPeriodMs: number;
  readonly #people: SimulatedPeople | undefined;
  readonly #accelMPerS2: number;
  readonly #angularAccelRadPerS2: number;
  readonly #turnRateRadPerS: number;
  readonly #brakeMPerS2: number;
  readonly #angularBrakeRadPerS2: number;

  #xM: number;
  #yM: number;
  #yawRad: number;
  #linearMPerS = 0;
  #angularRadPerS = 0;
  #plan: Plan = { kind: 'idle' };
  #physicsTimeMs = 0;
  #lastFixMs = 0;
  #localizationOk = true;

  /** Throws on options that could never describe a robot; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedMobileRobotOptions) {
    this.#runtime = new DriverRuntime(options, MOBILE_ROBOT_PROFILE, {
      onStart: (nowMs) => {
        this.#physicsTimeMs = nowMs;
        this.#lastFixMs = nowMs;
      },
      integrate: (toMs) => this.#integrate(toMs),
      execute: (command, nowMs) => this.#execute(command, nowMs),
      stateAt: (timeMs) => this.#stateAt(timeMs),
      // The plan is replaced by a brake to idle, so a returning heartbeat resumes nothing.
      onWatchdog: () => this.#brakeThen({ kind: 'idle' }),
      onFault: () => this.#brakeThen({ kind: 'idle' }),
      // A driver that restarts must not pick up motion commanded before it went down.
      onStop: () => {
        this.#plan = { kind: 'idle' };
        this.#linearMPerS = 0;
        this.#angularRadPerS = 0;
      },
    });
    const pose = options.initialPose ?? { xM: 0, yM: 0, yawRad: 0 };
    if (![pose.xM, pose.yM, pose.yawRad].every(Number.isFinite)) throw new RangeError('SimulatedMobileRobot: initialPose must be finite');
    const dynamics = options.dynamics ?? {};
    this.deviceId = options.deviceId;
    this.#localizationPeriodMs = positive(options.localizationPeriodMs ?? 100, 'localizationPeriodMs');
    this.#accelMPerS2 = positive(dynamics.defaultAccelerationMPerS2 ?? 0.5, 'defaultAccelerationMPerS2');
    this.#angularAccelRadPerS2 = positive(dynamics.defaultAngularAccelerationRadPerS2 ?? 1, 'defaultAngularAccelerationRadPerS2');
    this.#turnRateRadPerS = positive(dynamics.turnRateRadPerS ?? 0.5, 'turnRateRadPerS');
    this.#brakeMPerS2 = positive(dynamics.brakingDecelerationMPerS2 ?? 1.2, 'brakingDecelerationMPerS2');
    this.#angularBrakeRadPerS2 = positive(dynamics.angularBrakingRadPerS2 ?? 2, 'angularBrakingRadPerS2');
    this.#people = options.people;
    this.#xM = pose.xM;
    this.#yM = pose.yM;
    this.#yawRad = pose.yawRad;
  }

  get pose(): RobotPose {
    return { xM: this.#xM, yM: this.#yM, yawRad: this.#yawRad };
  }

  get velocity(): { linearMPerS: number; angularRadPerS: number } {
    return { linearMPerS: this.#linearMPerS, angularRadPerS: this.#angularRadPerS };
  }

  /** Everything that arrived on the actuator topic, in arrival order, recorded before it was looked at. */
  get received(): readonly ReceivedRelease[] {
    return this.#runtime.received;
  }

  /** Accepted releases, in the order they took effect. */
  /** This run of the driver: its signed state announces it, and non-safe releases must name it. */
  get session(): string {
    return this.#runtime.session;
  }

  get executed(): readonly ReleasedCommand[] {
    return this.#runtime.executed;
  }

  get safeStopped(): boolean {
    return this.safeStopReason !== null;
  }

  get safeStopReason(): string | null {
    return this.#runtime.watchdogReason;
  }

  get moving(): boolean {
    return this.#plan.kind !== 'idle' || this.#linearMPerS !== 0 || this.#angularRadPerS !== 0;
  }

  get lastCommandId(): string | null {
    return this.#runtime.lastCommandId;
  }

  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  get running(): boolean {
    return this.#runtime.running;
  }

  /** Simulates losing (false) or regaining (true) localization: fixes stop arriving and ok turns false. */
  setLocalizationOk(ok: boolean): void {
    this.#localizationOk = ok;
    if (ok) this.#lastFixMs = this.#runtime.nowMs();
  }

  start(): Promise<void> {
    return this.#runtime.start();
  }

  /** Stops timers and subscriptions; safe to call twice. A stopped driver leaves the robot at rest. */
  stop(): Promise<void> {
    return this.#runtime.stop();
  }

  /** An admitted release, with the robot already integrated up to `nowMs`. */
  #execute(command: ReleasedCommand, nowMs: number): Outcome {
    if (command.action === 'stop') {
      this.#brakeThen({ kind: 'idle' });
    } else {
      const plan = this.#planOf(command.action, command.params, nowMs);
      if (!plan.ok) return plan;
      // SAFETY: while the interlock is silent, no new motion starts, whatever was released earlier.
      const safeStopReason = this.#runtime.watchdogReason;
      if (safeStopReason !== null) return { ok: false, problem: `safe-stopped (${safeStopReason}); ${command.action} refused` };
      // A moving robot brakes to rest first (the interlock widens the first segment by this run-out).
      this.#brakeThen(plan.plan);
    }
    return { ok: true };
  }

  /** The driver re-checks shape on its own: a signed release is authentic, not necessarily well-formed. */
  #planOf(action: string, params: Readonly<Record<string, unknown>>, nowMs: number): { ok: true; plan: Plan } | { ok: false; problem: string } {
    const optionalPositive = (name: string, fallback: number): number | undefined => {
      const value = params[name];
      if (value === undefined) return fallback;
      return finite(value) && value > 0 ? value : undefined;
    };
    switch (action) {
      case 'set_velocity': {
        const { linearMPerS, angularRadPerS, durationMs } = params;
        const accel = optionalPositive('accelerationMPerS2', this.#accelMPerS2);
        const angularAccel = optionalPositive('angularAccelerationRadPerS2', this.#angularAccelRadPerS2);
        // SAFETY: NaN compares false with every bound, so non-finite values are refused before any arithmetic.
        if (!finite(linearMPerS) || !finite(angularRadPerS) || !finite(durationMs) || durationMs <= 0 || accel === undefined || angularAccel === undefined) {
          return { ok: false, problem: 'set_velocity needs finite linearMPerS, angularRadPerS, durationMs > 0 and positive accelerations' };
        }
        return {
          ok: true,
          plan: { kind: 'velocity', linearMPerS, angularRadPerS, accelerationMPerS2: accel, angularAccelerationRadPerS2: angularAccel, untilMs: nowMs + durationMs },
        };
      }
      case 'go_to':
      case 'follow_path': {
        const speed = params['speedMPerS'];
        const accel = optionalPositive('accelerationMPerS2', this.#accelMPerS2);
        if (!finite(speed) || speed <= 0 || accel === undefined) return { ok: false, problem: `${action} needs a finite speedMPerS > 0 and a positive acceleration` };
        let points: (readonly [number, number])[];
        let finalYawRad: number | undefined;
        if (action === 'go_to') {
          const { xM, yM, yawRad } = params;
          if (!finite(xM) || !finite(yM) || (yawRad !== undefined && !finite(yawRad))) return { ok: false, problem: 'go_to needs finite xM, yM (and yawRad if given)' };
          points = [[xM, yM]];
          finalYawRad = yawRad as number | undefined;
        } else {
          const waypoints = params['waypoints'];
          if (!Array.isArray(waypoints) || waypoints.length === 0) return { ok: false, problem: 'follow_path needs waypoints' };
          points = [];
          for (let i = 0; i < waypoints.length; i++) {
            const point: unknown = waypoints[i];
            if (!Array.isArray(point) || point.length !== 2 || !finite(point[0]) || !finite(point[1])) return { ok: false, problem: `waypoint ${i} is not [x, y] in finite numbers` };
            points.push([point[0], point[1]]);
          }
        }
        const plan: Plan = { kind: 'path', points, index: 0, phase: 'turn', speedMPerS: speed, accelerationMPerS2: accel, ...(finalYawRad === undefined ? {} : { finalYawRad }) };
        return { ok: true, plan };
      }
      default:
        return { ok: false, problem: `unknown action ${JSON.stringify(action)}; this robot knows ${MOBILE_ROBOT_ACTIONS.join(', ')}` };
    }
  }

  #brakeThen(next: Plan): void {
    this.#plan = this.#linearMPerS === 0 && this.#angularRadPerS === 0 ? next : { kind: 'brake', then: next };
  }

  /** Integrates the robot up to `toMs` in steps of at most one physics period. */
  #integrate(toMs: number): void {
    // SAFETY: a clock that stands still, runs backwards or returns NaN/Infinity must produce no motion.
    if (!Number.isFinite(toMs - this.#physicsTimeMs)) return;
    while (toMs - this.#physicsTimeMs > 0) {
      const remainingMs = toMs - this.#physicsTimeMs;
      const stepMs = Math.min(this.#runtime.physicsPeriodMs, remainingMs);
      // The last step lands exactly on toMs (a + (b - a) need not equal b in floating point).
      const endMs = stepMs === remainingMs ? toMs : this.#physicsTimeMs + stepMs;
      this.#step(stepMs / 1000, endMs);
      this.#physicsTimeMs = endMs;
    }
    if (this.#localizationOk) this.#lastFixMs = Math.max(this.#lastFixMs, toMs - ((toMs - this.#lastFixMs) % this.#localizationPeriodMs));
  }

  /** One time step of dtS seconds ending at endMs. */
  #step(dtS: number, endMs: number): void {
    const plan = this.#plan;
    switch (plan.kind) {
      case 'idle':
        this.#linearMPerS = 0;
        this.#angularRadPerS = 0;
        return;
      case 'brake': {
        const v0 = this.#linearMPerS;
        const w0 = this.#angularRadPerS;
        this.#linearMPerS = approach(v0, 0, this.#brakeMPerS2 * dtS);
        this.#angularRadPerS = approach(w0, 0, this.#angularBrakeRadPerS2 * dtS);
        this.#drive((v0 + this.#linearMPerS) / 2, (w0 + this.#angularRadPerS) / 2, dtS);
        if (this.#linearMPerS === 0 && this.#angularRadPerS === 0) this.#plan = plan.then;
        return;
      }
      case 'velocity': {
        if (endMs > plan.untilMs) {
          // The twist has run its course: brake to rest (a velocity command always ends).
          this.#plan = { kind: 'brake', then: { kind: 'idle' } };
          this.#step(dtS, endMs);
          return;
        }
        const v0 = this.#linearMPerS;
        const w0 = this.#angularRadPerS;
        this.#linearMPerS = approach(v0, plan.linearMPerS, plan.accelerationMPerS2 * dtS);
        this.#angularRadPerS = approach(w0, plan.angularRadPerS, plan.angularAccelerationRadPerS2 * dtS);
        this.#drive((v0 + this.#linearMPerS) / 2, (w0 + this.#angularRadPerS) / 2, dtS);
        return;
      }
      case 'final-turn':
        this.#turnToward(plan.yawRad, dtS, () => {
          this.#plan = { kind: 'idle' };
        });
        return;
      case 'path':
        this.#stepPath(plan, dtS);
        return;
    }
  }

  /** Turn in place, then drive the straight segment to the next point, stopping on it; a disc turning sweeps nothing. */
  #stepPath(plan: Extract<Plan, { kind: 'path' }>, dtS: number): void {
    const target = plan.points[plan.index];
    if (target === undefined) {
      this.#plan = plan.finalYawRad === undefined ? { kind: 'idle' } : { kind: 'final-turn', yawRad: plan.finalYawRad };
      return;
    }
    const dx = target[0] - this.#xM;
    const dy = target[1] - this.#yM;
    const remainingM = Math.hypot(dx, dy);
    if (remainingM === 0) {
      this.#linearMPerS = 0;
      plan.index++;
      plan.phase = 'turn';
      return;
    }
    if (plan.phase === 'turn') {
      this.#turnToward(Math.atan2(dy, dx), dtS, () => {
        plan.phase = 'drive';
      });
      return;
    }
    this.#angularRadPerS = 0;
    // Trapezoidal profile: speed up at the ramp, cruise, and slow down so as to stop on the point.
    const v = Math.min(plan.speedMPerS, this.#linearMPerS + plan.accelerationMPerS2 * dtS, Math.sqrt(2 * plan.accelerationMPerS2 * remainingM));
    const stepM = v * dtS;
    if (stepM >= remainingM || v === 0) {
      this.#xM = target[0];
      this.#yM = target[1];
      this.#linearMPerS = 0;
      plan.index++;
      plan.phase = 'turn';
      return;
    }
    // Along the line to the target, which the robot is on: it stays on the segment the interlock checked.
    this.#xM += (dx / remainingM) * stepM;
    this.#yM += (dy / remainingM) * stepM;
    this.#linearMPerS = v;
  }

  #turnToward(yawRad: number, dtS: number, done: () => void): void {
    this.#linearMPerS = 0;
    const delta = wrapAngle(yawRad - this.#yawRad);
    const stepRad = this.#turnRateRadPerS * dtS;
    if (Math.abs(delta) <= stepRad) {
      this.#yawRad = wrapAngle(yawRad);
      this.#angularRadPerS = 0;
      done();
      return;
    }
    this.#yawRad = wrapAngle(this.#yawRad + Math.sign(delta) * stepRad);
    this.#angularRadPerS = Math.sign(delta) * this.#turnRateRadPerS;
  }

  /** Unicycle kinematics over dtS with a constant twist (exact arc). */
  #drive(linearMPerS: number, angularRadPerS: number, dtS: number): void {
    const yaw0 = this.#yawRad;
    const yaw1 = yaw0 + angularRadPerS * dtS;
    if (Math.abs(angularRadPerS) < 1e-9) {
      this.#xM += linearMPerS * dtS * Math.cos(yaw0);
      this.#yM += linearMPerS * dtS * Math.sin(yaw0);
    } else {
      const radius = linearMPerS / angularRadPerS;
      this.#xM += radius * (Math.sin(yaw1) - Math.sin(yaw0));
      this.#yM -= radius * (Math.cos(yaw1) - Math.cos(yaw0));
    }
    this.#yawRad = wrapAngle(yaw1);
  }

  #stateAt(timeMs: number): MobileRobotStateMessage {
    this.#people?.advanceTo(timeMs);
    return {
      pose: { xM: this.#xM, yM: this.#yM, yawRad: this.#yawRad },
      velocity: { linearMPerS: this.#linearMPerS, angularRadPerS: this.#angularRadPerS },
      localization: { ok: this.#localizationOk, ageMs: Math.max(0, timeMs - this.#lastFixMs) },
      moving: this.moving,
      safeStopped: this.safeStopped,
      lastCommandId: this.lastCommandId,
      ...(this.#people === undefined ? {} : { people: this.#people.positions() }),
      timeMs,
    };
  }
}
