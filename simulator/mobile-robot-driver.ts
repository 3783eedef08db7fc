// Simulated driver for a mobile robot (unicycle model): ramps, straight path segments, state with people, watchdog.
// It must never move on a command it did not itself verify as released by the interlock for this device.

import type { KeyObject } from 'node:crypto';
import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DEVICE_ID_PATTERN, topicSet, type TopicSet } from '../src/transport/topics.js';
import type { MessageHandler, Subscription, Transport } from '../src/transport/transport.js';
import type { SimulatedPeople } from './people.js';
import { ReleaseGate } from './release-gate.js';

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

export interface SimulatedMobileRobotOptions {
  readonly deviceId: string;
  readonly transport: Transport;
  /** The only key whose releases move this robot. */
  readonly interlockPublicKey: KeyObject;
  /** Defaults to the origin, facing +x. */
  readonly initialPose?: RobotPose;
  readonly dynamics?: MobileRobotDynamics;
  /** People the robot's scanners see; published in every state message when given. */
  readonly people?: SimulatedPeople;
  /** How often a localization fix arrives while localization is good; default 100 ms. */
  readonly localizationPeriodMs?: number;
  /** How often state is published; default 50. */
  readonly statePeriodMs?: number;
  /** How often the robot is integrated and the watchdog checked; default 10. */
  readonly physicsPeriodMs?: number;
  /** Brake to a stop when the heartbeat topic is silent this long; default 1000, 0 disables the watchdog. */
  readonly heartbeatTimeoutMs?: number;
  readonly topics?: TopicSet;
  /** Epoch milliseconds; used for release expiry, the watchdog, set_velocity durations and the time step. */
  readonly nowMs?: () => number;
  readonly log?: (msg: string) => void;
}

/** One message seen on the actuator command topic, accepted or not. */
export interface ReceivedRelease {
  readonly atMs: number;
  readonly token: string;
  readonly accepted: boolean;
  readonly problem?: string;
  /** Present whenever the interlock's signature checked out, including releases the driver then refused. */
  readonly command?: ReleasedCommand;
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

interface MutableRelease {
  atMs: number;
  token: string;
  accepted: boolean;
  problem?: string;
  command?: ReleasedCommand;
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly problem: string };

/** What the robot is doing. A path or a twist that arrives while it moves is preceded by a brake to rest. */
type Plan =
  | { readonly kind: 'idle' }
  | { readonly kind: 'brake'; readonly then: Plan }
  | { readonly kind: 'velocity'; readonly linearMPerS: number; readonly angularRadPerS: number; readonly accelerationMPerS2: number; readonly angularAccelerationRadPerS2: number; readonly untilMs: number }
  | { readonly kind: 'path'; readonly points: readonly (readonly [number, number])[]; index: number; phase: 'turn' | 'drive'; readonly speedMPerS: number; readonly accelerationMPerS2: number; readonly finalYawRad?: number }
  | { readonly kind: 'final-turn'; readonly yawRad: number };

function positiveFinite(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`SimulatedMobileRobot: ${name} must be a finite number > 0, got ${value}`);
  return value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
  readonly #transport: Transport;
  readonly #gate: ReleaseGate;
  readonly #topics: TopicSet;
  readonly #statePeriodMs: number;
  readonly #physicsPeriodMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #localizationPeriodMs: number;
  readonly #nowMs: () => number;
  readonly #log: (msg: string) => void;
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
  #lastHeartbeatMs = 0;
  #lastFixMs = 0;
  #localizationOk = true;
  #safeStopReason: string | null = null;
  #lastCommandId: string | null = null;
  readonly #received: MutableRelease[] = [];
  readonly #executed: ReleasedCommand[] = [];

  #running = false;
  #generation = 0;
  #subscriptions: Subscription[] = [];
  #physicsTimer: NodeJS.Timeout | undefined;
  #stateTimer: NodeJS.Timeout | undefined;
  #publishFailing = false;

  /** Throws on options that could never describe a robot; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedMobileRobotOptions) {
    if (!DEVICE_ID_PATTERN.test(options.deviceId)) throw new RangeError(`SimulatedMobileRobot: invalid device id ${JSON.stringify(options.deviceId)}`);
    const pose = options.initialPose ?? { xM: 0, yM: 0, yawRad: 0 };
    if (![pose.xM, pose.yM, pose.yawRad].every(Number.isFinite)) throw new RangeError('SimulatedMobileRobot: initialPose must be finite');
    const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 1000;
    if (!Number.isFinite(heartbeatTimeoutMs) || heartbeatTimeoutMs < 0) {
      throw new RangeError(`SimulatedMobileRobot: heartbeatTimeoutMs must be a finite number >= 0, got ${heartbeatTimeoutMs}`);
    }
    const dynamics = options.dynamics ?? {};
    this.deviceId = options.deviceId;
    this.#transport = options.transport;
    this.#gate = new ReleaseGate(options.deviceId, options.interlockPublicKey, ['stop']);
    this.#topics = options.topics ?? topicSet();
    this.#statePeriodMs = positiveFinite(options.statePeriodMs ?? 50, 'statePeriodMs');
    this.#physicsPeriodMs = positiveFinite(options.physicsPeriodMs ?? 10, 'physicsPeriodMs');
    this.#localizationPeriodMs = positiveFinite(options.localizationPeriodMs ?? 100, 'localizationPeriodMs');
    this.#heartbeatTimeoutMs = heartbeatTimeoutMs;
    this.#accelMPerS2 = positiveFinite(dynamics.defaultAccelerationMPerS2 ?? 0.5, 'defaultAccelerationMPerS2');
    this.#angularAccelRadPerS2 = positiveFinite(dynamics.defaultAngularAccelerationRadPerS2 ?? 1, 'defaultAngularAccelerationRadPerS2');
    this.#turnRateRadPerS = positiveFinite(dynamics.turnRateRadPerS ?? 0.5, 'turnRateRadPerS');
    this.#brakeMPerS2 = positiveFinite(dynamics.brakingDecelerationMPerS2 ?? 1.2, 'brakingDecelerationMPerS2');
    this.#angularBrakeRadPerS2 = positiveFinite(dynamics.angularBrakingRadPerS2 ?? 2, 'angularBrakingRadPerS2');
    this.#people = options.people;
    this.#nowMs = options.nowMs ?? (() => Date.now());
    const log = options.log ?? (() => {});
    this.#log = (msg) => log(`mobile-robot-driver[${options.deviceId}]: ${msg}`);
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
    return this.#received;
  }

  /** Accepted releases, in the order they took effect. */
  get executed(): readonly ReleasedCommand[] {
    return this.#executed;
  }

  get safeStopped(): boolean {
    return this.#safeStopReason !== null;
  }

  get safeStopReason(): string | null {
    return this.#safeStopReason;
  }

  get moving(): boolean {
    return this.#plan.kind !== 'idle' || this.#linearMPerS !== 0 || this.#angularRadPerS !== 0;
  }

  get lastCommandId(): string | null {
    return this.#lastCommandId;
  }

  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Simulates losing (false) or regaining (true) localization: fixes stop arriving and ok turns false. */
  setLocalizationOk(ok: boolean): void {
    this.#localizationOk = ok;
    if (ok) this.#lastFixMs = this.#nowMs();
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const generation = ++this.#generation;
    const nowMs = this.#nowMs();
    this.#physicsTimeMs = nowMs;
    this.#lastFixMs = nowMs;
    // The watchdog counts from start, so an interlock that never comes up still leaves the robot stopped.
    this.#lastHeartbeatMs = nowMs;
    const wanted: Array<[string, MessageHandler]> = [
      [this.#topics.actuatorCommand(this.deviceId), (_topic, payload) => this.#onRelease(payload)],
      [this.#topics.heartbeat, () => this.#onHeartbeat()],
    ];
    try {
      for (const [filter, handler] of wanted) {
        const subscription = await this.#transport.subscribe(filter, handler);
        if (generation !== this.#generation) {
          await subscription.unsubscribe();
          return;
        }
        this.#subscriptions.push(subscription);
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.#physicsTimer = setInterval(() => this.#guarded('physics tick', () => this.#advanceTo(this.#nowMs())), this.#physicsPeriodMs);
    this.#stateTimer = setInterval(() => this.#guarded('state publish', () => this.#publishState()), this.#statePeriodMs);
    this.#log(`started (watchdog ${this.#heartbeatTimeoutMs === 0 ? 'off' : `${this.#heartbeatTimeoutMs} ms`})`);
  }

  /** Stops timers and subscriptions; safe to call twice. A stopped driver leaves the robot at rest. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    clearInterval(this.#physicsTimer);
    clearInterval(this.#stateTimer);
    this.#physicsTimer = undefined;
    this.#stateTimer = undefined;
    // A driver that restarts must not pick up motion commanded before it went down.
    this.#plan = { kind: 'idle' };
    this.#linearMPerS = 0;
    this.#angularRadPerS = 0;
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    const results = await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    for (const result of results) {
      if (result.status === 'rejected') this.#log(`unsubscribe failed: ${message(result.reason)}`);
    }
    this.#log('stopped');
  }

  #onRelease(payload: Buffer): void {
    if (!this.#running) return;
    const atMs = this.#nowMs();
    // Recorded before anything else, so the record holds every message even if handling it throws.
    const record: MutableRelease = { atMs, token: payload.toString('utf8'), accepted: false };
    this.#received.push(record);
    try {
      const outcome = this.#consider(record, atMs);
      if (outcome.ok) record.accepted = true;
      else {
        record.problem = outcome.problem;
        this.#log(`refused release: ${outcome.problem}`);
      }
    } catch (error) {
      record.accepted = false;
      record.problem = `driver error: ${message(error)}`;
      this.#log(`release handling failed, braking: ${message(error)}`);
      this.#brakeThen({ kind: 'idle' });
    }
  }

  #consider(record: MutableRelease, nowMs: number): Outcome {
    const admitted = this.#gate.admit(record.token, nowMs);
    if (admitted.command !== undefined) record.command = admitted.command;
    if (!admitted.ok) return { ok: false, problem: admitted.problem };
    const command = admitted.command;
    // Bring the robot up to now under the old plan, so the new one applies from the moment of receipt.
    this.#advanceTo(nowMs);
    if (command.action === 'stop') {
      this.#brakeThen({ kind: 'idle' });
    } else {
      const plan = this.#planOf(command.action, command.params, nowMs);
      if (!plan.ok) return plan;
      // SAFETY: while the interlock is silent, no new motion starts, whatever was released earlier.
      if (this.#safeStopReason !== null) return { ok: false, problem: `safe-stopped (${this.#safeStopReason}); ${command.action} refused` };
      // A moving robot brakes to rest first (the interlock widens the first segment by this run-out).
      this.#brakeThen(plan.plan);
    }
    this.#executed.push(command);
    this.#lastCommandId = command.commandId;
    this.#log(`executing ${command.action} ${command.commandId} (audit seq ${command.auditSeq})`);
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

  #onHeartbeat(): void {
    if (!this.#running) return;
    this.#guarded('heartbeat', () => {
      const nowMs = this.#nowMs();
      // A heartbeat that comes after the deadline still trips the watchdog first: the gap happened.
      this.#advanceTo(nowMs);
      this.#lastHeartbeatMs = nowMs;
      if (this.#safeStopReason !== null) {
        // The plan was replaced by a brake to idle, so clearing does not resume the old motion.
        this.#log(`heartbeat back; clearing safe stop (${this.#safeStopReason})`);
        this.#safeStopReason = null;
      }
    });
  }

  /** Integrates the robot up to `nowMs` in steps of at most one physics period, braking at the watchdog deadline. */
  #advanceTo(nowMs: number): void {
    if (this.#heartbeatTimeoutMs > 0 && this.#safeStopReason === null) {
      const deadlineMs = this.#lastHeartbeatMs + this.#heartbeatTimeoutMs;
      if (nowMs > deadlineMs) {
        this.#integrate(deadlineMs);
        this.#brakeThen({ kind: 'idle' });
        this.#safeStopReason = `no heartbeat for ${this.#heartbeatTimeoutMs} ms`;
        this.#log(`watchdog: ${this.#safeStopReason}; braking`);
      }
    }
    this.#integrate(nowMs);
  }

  #integrate(toMs: number): void {
    // SAFETY: a clock that stands still, runs backwards or returns NaN/Infinity must produce no motion.
    if (!Number.isFinite(toMs - this.#physicsTimeMs)) return;
    while (toMs - this.#physicsTimeMs > 0) {
      const remainingMs = toMs - this.#physicsTimeMs;
      const stepMs = Math.min(this.#physicsPeriodMs, remainingMs);
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

  #publishState(): void {
    const timeMs = this.#nowMs();
    this.#advanceTo(timeMs);
    this.#people?.advanceTo(timeMs);
    const state: MobileRobotStateMessage = {
      pose: { xM: this.#xM, yM: this.#yM, yawRad: this.#yawRad },
      velocity: { linearMPerS: this.#linearMPerS, angularRadPerS: this.#angularRadPerS },
      localization: { ok: this.#localizationOk, ageMs: Math.max(0, timeMs - this.#lastFixMs) },
      moving: this.moving,
      safeStopped: this.safeStopped,
      lastCommandId: this.#lastCommandId,
      ...(this.#people === undefined ? {} : { people: this.#people.positions() }),
      timeMs,
    };
    const onError = (error: unknown): void => {
      // Logged once per outage: a broker that is down would otherwise fill the log every period.
      if (!this.#publishFailing) this.#log(`state publish failed: ${message(error)}`);
      this.#publishFailing = true;
    };
    try {
      this.#transport.publish(this.#topics.actuatorState(this.deviceId), JSON.stringify(state), { qos: 0 }).then(() => {
        if (this.#publishFailing) this.#log('state publish recovered');
        this.#publishFailing = false;
      }, onError);
    } catch (error) {
      onError(error);
    }
  }

  /** Timer and bus callbacks must never throw into Node or the transport; a driver bug brakes the robot. */
  #guarded(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#log(`${what} failed, braking: ${message(error)}`);
      this.#brakeThen({ kind: 'idle' });
    }
  }
}
