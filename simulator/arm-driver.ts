// Simulated device driver for an N-joint robot arm: synchronised joint moves, straight TCP moves (by IK), state
// publishing with efforts / tool force / payload, heartbeat watchdog. It must never move on a command it did not
// itself verify as released by the interlock for this device.

import { ArmPose, compileChain, forwardKinematics, IkSolver, type ArmChain } from '../src/bounds/robot-arm/kinematics.js';
import type { ArmKinematics } from '../src/core/kinds/robot-arm.js';
import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DriverRuntime, type DriverOptions, type DriverProfile, type Outcome, type ReceivedRelease } from './driver-runtime.js';

export type { ReceivedRelease } from './driver-runtime.js';

/** The common options (driver-runtime.ts); the watchdog halts the arm. */
export interface SimulatedArmOptions extends DriverOptions {
  readonly jointCount: number;
  /** Defaults to all zeros. */
  readonly initialPositionsRad?: readonly number[];
  /** How often state is published on the actuator state topic; default 20. */
  readonly statePeriodMs?: number;
  /**
   * The arm's kinematic chain (as declared for the interlock). Needed for move_linear and for reporting efforts;
   * without it move_linear is refused and no efforts are published.
   */
  readonly kinematics?: ArmKinematics;
  /** Ramp used when a move_joints names no acceleration; default Infinity (full speed at once). */
  readonly defaultAccelerationRadPerS2?: number;
  /** Ramp used when a move_linear names no acceleration; default Infinity. */
  readonly defaultAccelerationMPerS2?: number;
}

/** The JSON published on `actuatorState(deviceId)`. */
export interface ArmStateMessage {
  readonly positionsRad: number[];
  readonly velocitiesRadPerS: number[];
  readonly moving: boolean;
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
  /** Static joint torques from the payload's weight and the external tool force (J^T F); with kinematics only. */
  readonly effortsNm?: number[];
  /** Magnitude of the external force on the tool. */
  readonly toolForceN: number;
  readonly payloadKg: number;
  readonly timeMs: number;
}

export const ARM_ACTIONS = ['move_joints', 'move_linear', 'stop'] as const;

const ARM_PROFILE: DriverProfile = {
  className: 'SimulatedArm',
  logName: 'arm-driver',
  defaultStatePeriodMs: 20,
  safeStateActions: ['stop'],
  watchdogAction: 'halted',
  faultAction: 'halting',
};

const GRAVITY_M_PER_S2 = 9.81;

/** Distance covered after `t` seconds by a trapezoidal profile over `distance` (cruise vMax, ramps aMax). */
export function trapezoidPosition(distance: number, vMax: number, aMax: number, t: number): number {
  if (!(t > 0)) return 0;
  if (!Number.isFinite(aMax)) return Math.min(distance, vMax * t);
  let rampS = vMax / aMax;
  let peak = vMax;
  if (aMax * rampS * rampS > distance) {
    // Too short to reach the cruise speed: a triangle.
    rampS = Math.sqrt(distance / aMax);
    peak = aMax * rampS;
  }
  const cruiseS = (distance - aMax * rampS * rampS) / peak;
  const totalS = 2 * rampS + cruiseS;
  if (t >= totalS) return distance;
  if (t < rampS) return 0.5 * aMax * t * t;
  if (t < rampS + cruiseS) return 0.5 * aMax * rampS * rampS + peak * (t - rampS);
  const left = totalS - t;
  return distance - 0.5 * aMax * left * left;
}

/** The motion in progress: none, a synchronised joint line, or a straight TCP line. */
type Motion =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'joints';
      readonly fromRad: readonly number[];
      readonly toRad: readonly number[];
      /** The profile runs over s in [0, 1]: the leading joint's travel is 1. */
      readonly sPerS: number;
      readonly sPerS2: number;
      readonly startMs: number;
    }
  | {
      readonly kind: 'linear';
      readonly fromM: readonly number[];
      readonly toM: readonly number[];
      readonly rotation: Float64Array;
      readonly lengthM: number;
      readonly speedMPerS: number;
      readonly accelerationMPerS2: number;
      readonly startMs: number;
    };

type MoveCheck =
  | { readonly ok: true; readonly positionsRad: number[]; readonly velocityRadPerS: number; readonly accelerationRadPerS2?: number; readonly payloadKg?: number }
  | { readonly ok: false; readonly problem: string };

type LinearCheck =
  | { readonly ok: true; readonly positionM: number[]; readonly speedMPerS: number; readonly accelerationMPerS2?: number; readonly payloadKg?: number }
  | { readonly ok: false; readonly problem: string };

/** An optional parameter: absent, or a finite number above (or, with `zeroOk`, at) zero. */
function optionalPositive(params: Readonly<Record<string, unknown>>, name: string, zeroOk = false): { ok: true; value?: number } | { ok: false; problem: string } {
  const value = params[name];
  if (value === undefined) return { ok: true };
  // SAFETY: NaN compares false with every bound, so non-finite values are refused before any arithmetic.
  if (typeof value !== 'number' || !Number.isFinite(value) || !(zeroOk ? value >= 0 : value > 0)) {
    return { ok: false, problem: `params.${name} must be a finite number ${zeroOk ? '>= 0' : '> 0'}` };
  }
  return { ok: true, value };
}

export class SimulatedArm {
  readonly deviceId: string;
  readonly jointCount: number;
  readonly #runtime: DriverRuntime;

  readonly #chain: ArmChain | undefined;
  readonly #ik: IkSolver | undefined;
  readonly #pose: ArmPose;
  readonly #defaultAccelerationRadPerS2: number;
  readonly #defaultAccelerationMPerS2: number;

  #positionsRad: number[];
  #velocitiesRadPerS: number[];
  #motion: Motion = { kind: 'none' };
  #payloadKg = 0;
  #externalForceN: [number, number, number] = [0, 0, 0];
  #physicsTimeMs = 0;

  /** Throws on options that could never describe an arm; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedArmOptions) {
    this.#runtime = new DriverRuntime(options, ARM_PROFILE, {
      startNote: `${options.jointCount} joints`,
      onStart: (nowMs) => {
        this.#physicsTimeMs = nowMs;
      },
      integrate: (toMs) => this.#integrate(toMs),
      execute: (command, nowMs) => this.#execute(command, nowMs),
      stateAt: (timeMs) => this.#stateAt(timeMs),
      // Halting sets the targets to where the joints are, so a returning heartbeat resumes nothing.
      onWatchdog: () => this.#halt(),
      onFault: () => this.#halt(),
      // A driver that restarts must not pick up motion commanded before it went down.
      onStop: () => this.#halt(),
    });
    if (!Number.isSafeInteger(options.jointCount) || options.jointCount < 1) {
      throw new RangeError(`SimulatedArm: jointCount must be a positive integer, got ${options.jointCount}`);
    }
    const initial = options.initialPositionsRad ?? new Array<number>(options.jointCount).fill(0);
    if (initial.length !== options.jointCount || !initial.every((p) => Number.isFinite(p))) {
      throw new RangeError(`SimulatedArm: initialPositionsRad must be ${options.jointCount} finite numbers`);
    }
    this.deviceId = options.deviceId;
    this.jointCount = options.jointCount;
    if (options.kinematics !== undefined && options.kinematics.dh.length !== options.jointCount) {
      throw new RangeError(`SimulatedArm: kinematics has ${options.kinematics.dh.length} DH rows for ${options.jointCount} joints`);
    }
    const rampRad = options.defaultAccelerationRadPerS2 ?? Infinity;
    const rampM = options.defaultAccelerationMPerS2 ?? Infinity;
    if (!(rampRad > 0) || !(rampM > 0)) throw new RangeError('SimulatedArm: default accelerations must be > 0 (Infinity: no ramp)');
    this.#defaultAccelerationRadPerS2 = rampRad;
    this.#defaultAccelerationMPerS2 = rampM;
    this.#chain = options.kinematics === undefined ? undefined : compileChain(options.kinematics);
    this.#ik = this.#chain === undefined ? undefined : new IkSolver(this.#chain);
    this.#pose = new ArmPose(options.jointCount);
    this.#positionsRad = [...initial];
    this.#velocitiesRadPerS = new Array<number>(options.jointCount).fill(0);
  }

  get positionsRad(): number[] {
    return [...this.#positionsRad];
  }

  /** The joint target of a move_joints in progress; otherwise (at rest, or a linear move, solved as it goes) where the joints are. */
  get targetsRad(): number[] {
    return this.#motion.kind === 'joints' ? [...this.#motion.toRad] : [...this.#positionsRad];
  }

  /** The TCP in the cell frame, or undefined without kinematics. */
  get tcpPositionM(): number[] | undefined {
    if (this.#chain === undefined) return undefined;
    forwardKinematics(this.#chain, this.#positionsRad, this.#pose);
    const k = this.#pose.tcpIndex * 3;
    return [this.#pose.points[k] as number, this.#pose.points[k + 1] as number, this.#pose.points[k + 2] as number];
  }

  get payloadKg(): number {
    return this.#payloadKg;
  }

  /** What the arm carries (as a controller's set_payload would); a move that names payloadKg sets it too. */
  setPayloadKg(kg: number): void {
    if (!Number.isFinite(kg) || kg < 0) throw new RangeError(`SimulatedArm: payload must be a finite number >= 0, got ${kg}`);
    this.#payloadKg = kg;
  }

  /** An external force on the tool in the cell frame (N): something pushing on it, for tests of the force bound. */
  setExternalToolForceN(force: readonly [number, number, number]): void {
    if (!force.every((f) => Number.isFinite(f))) throw new RangeError('SimulatedArm: the tool force must be finite');
    this.#externalForceN = [force[0], force[1], force[2]];
  }

  get velocitiesRadPerS(): number[] {
    return [...this.#velocitiesRadPerS];
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

  /** Why the arm is safe-stopped, or null. */
  get safeStopReason(): string | null {
    return this.#runtime.watchdogReason;
  }

  get moving(): boolean {
    return this.#motion.kind !== 'none';
  }

  get lastCommandId(): string | null {
    return this.#runtime.lastCommandId;
  }

  /** The instant `positionsRad` describes (the last integration step). */
  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  get running(): boolean {
    return this.#runtime.running;
  }

  start(): Promise<void> {
    return this.#runtime.start();
  }

  /** Stops timers and subscriptions; safe to call twice. A stopped driver leaves the arm halted. */
  stop(): Promise<void> {
    return this.#runtime.stop();
  }

  /** An admitted release, with the joints already integrated up to `nowMs`. */
  #execute(command: ReleasedCommand, nowMs: number): Outcome {
    const safeStopReason = this.#runtime.watchdogReason;
    switch (command.action) {
      case 'move_joints': {
        const move = this.#checkMove(command.params);
        if (!move.ok) return move;
        // SAFETY: while the interlock is silent, no new motion starts, whatever was released earlier.
        if (safeStopReason !== null) return { ok: false, problem: `safe-stopped (${safeStopReason}); move_joints refused` };
        this.#startJointMove(move.positionsRad, move.velocityRadPerS, move.accelerationRadPerS2 ?? this.#defaultAccelerationRadPerS2, nowMs);
        if (move.payloadKg !== undefined) this.#payloadKg = move.payloadKg;
        break;
      }
      case 'move_linear': {
        const move = this.#checkLinear(command.params);
        if (!move.ok) return move;
        if (safeStopReason !== null) return { ok: false, problem: `safe-stopped (${safeStopReason}); move_linear refused` };
        this.#startLinearMove(move.positionM, move.speedMPerS, move.accelerationMPerS2 ?? this.#defaultAccelerationMPerS2, nowMs);
        if (move.payloadKg !== undefined) this.#payloadKg = move.payloadKg;
        break;
      }
      case 'stop':
        this.#halt();
        break;
      default:
        return { ok: false, problem: `unknown action ${JSON.stringify(command.action)}; this arm knows ${ARM_ACTIONS.join(', ')}` };
    }
    return { ok: true };
  }

  /** The driver re-checks shape on its own: a signed release is authentic, not necessarily well-formed. */
  #checkMove(params: Readonly<Record<string, unknown>>): MoveCheck {
    const positions = params['positionsRad'];
    const velocity = params['velocityRadPerS'];
    // SAFETY: NaN compares false with every bound, so non-finite values are refused before any arithmetic.
    if (!Array.isArray(positions) || positions.length !== this.jointCount || !positions.every((p) => typeof p === 'number' && Number.isFinite(p))) {
      return { ok: false, problem: `params.positionsRad must be an array of ${this.jointCount} finite numbers` };
    }
    if (typeof velocity !== 'number' || !Number.isFinite(velocity) || velocity <= 0) {
      return { ok: false, problem: 'params.velocityRadPerS must be a finite number > 0' };
    }
    const acceleration = optionalPositive(params, 'accelerationRadPerS2');
    if (!acceleration.ok) return acceleration;
    const payload = optionalPositive(params, 'payloadKg', true);
    if (!payload.ok) return payload;
    return {
      ok: true,
      positionsRad: [...(positions as number[])],
      velocityRadPerS: velocity,
      ...(acceleration.value === undefined ? {} : { accelerationRadPerS2: acceleration.value }),
      ...(payload.value === undefined ? {} : { payloadKg: payload.value }),
    };
  }

  #checkLinear(params: Readonly<Record<string, unknown>>): LinearCheck {
    if (this.#chain === undefined) return { ok: false, problem: 'this simulated arm has no kinematics; move_linear refused' };
    const position = params['positionM'];
    const speed = params['speedMPerS'];
    if (!Array.isArray(position) || position.length !== 3 || !position.every((p) => typeof p === 'number' && Number.isFinite(p))) {
      return { ok: false, problem: 'params.positionM must be an array of 3 finite numbers' };
    }
    if (typeof speed !== 'number' || !Number.isFinite(speed) || speed <= 0) return { ok: false, problem: 'params.speedMPerS must be a finite number > 0' };
    const acceleration = optionalPositive(params, 'accelerationMPerS2');
    if (!acceleration.ok) return acceleration;
    const payload = optionalPositive(params, 'payloadKg', true);
    if (!payload.ok) return payload;
    return {
      ok: true,
      positionM: [...(position as number[])],
      speedMPerS: speed,
      ...(acceleration.value === undefined ? {} : { accelerationMPerS2: acceleration.value }),
      ...(payload.value === undefined ? {} : { payloadKg: payload.value }),
    };
  }

  /** All joints on one straight line in joint space, arriving together; the leading joint at `velocity`. */
  #startJointMove(toRad: number[], velocityRadPerS: number, accelerationRadPerS2: number, nowMs: number): void {
    const fromRad = [...this.#positionsRad];
    const leading = Math.max(0, ...toRad.map((to, j) => Math.abs(to - (fromRad[j] as number))));
    if (leading === 0) {
      this.#motion = { kind: 'none' };
      return;
    }
    this.#motion = { kind: 'joints', fromRad, toRad, sPerS: velocityRadPerS / leading, sPerS2: accelerationRadPerS2 / leading, startMs: nowMs };
  }

  /** The TCP on a straight line to `toM` (cell frame), keeping the orientation it has now. */
  #startLinearMove(toM: number[], speedMPerS: number, accelerationMPerS2: number, nowMs: number): void {
    const chain = this.#chain as ArmChain;
    forwardKinematics(chain, this.#positionsRad, this.#pose);
    const k = this.#pose.tcpIndex * 3;
    const fromM = [this.#pose.points[k] as number, this.#pose.points[k + 1] as number, this.#pose.points[k + 2] as number];
    const lengthM = Math.hypot((toM[0] as number) - (fromM[0] as number), (toM[1] as number) - (fromM[1] as number), (toM[2] as number) - (fromM[2] as number));
    const rotation = new Float64Array(this.#pose.rotation);
    // Solved tick by tick from the current joints; if the line becomes unreachable the arm halts there.
    this.#motion = lengthM === 0 ? { kind: 'none' } : { kind: 'linear', fromM, toM, rotation, lengthM, speedMPerS, accelerationMPerS2, startMs: nowMs };
  }

  #integrate(toMs: number): void {
    const dtMs = toMs - this.#physicsTimeMs;
    // SAFETY: a clock that stands still, runs backwards or returns NaN/Infinity must produce no motion.
    if (!Number.isFinite(dtMs) || dtMs <= 0) return;
    const dtS = dtMs / 1000;
    const before = [...this.#positionsRad];
    const motion = this.#motion;
    if (motion.kind === 'joints') {
      const s = trapezoidPosition(1, motion.sPerS, motion.sPerS2, (toMs - motion.startMs) / 1000);
      // Snap onto the target at the end, so the joints land exactly on it and never overshoot.
      this.#positionsRad = s >= 1 ? [...motion.toRad] : motion.fromRad.map((from, j) => from + s * ((motion.toRad[j] as number) - from));
      if (s >= 1) this.#motion = { kind: 'none' };
    } else if (motion.kind === 'linear') {
      const travelled = trapezoidPosition(motion.lengthM, motion.speedMPerS, motion.accelerationMPerS2, (toMs - motion.startMs) / 1000);
      const s = travelled / motion.lengthM;
      const point = motion.fromM.map((from, i) => from + s * ((motion.toM[i] as number) - from));
      const q = new Float64Array(this.#positionsRad);
      if ((this.#ik as IkSolver).solve(q, point, motion.rotation)) {
        this.#positionsRad = [...q];
        if (s >= 1) this.#motion = { kind: 'none' };
      } else {
        // A real controller would protective-stop here; the simulated one halts where it is.
        this.#runtime.log(`move_linear: no IK solution at s=${s.toFixed(3)}; halted`);
        this.#motion = { kind: 'none' };
      }
    }
    for (let j = 0; j < this.jointCount; j++) this.#velocitiesRadPerS[j] = ((this.#positionsRad[j] as number) - (before[j] as number)) / dtS;
    this.#physicsTimeMs = toMs;
  }

  #halt(): void {
    this.#motion = { kind: 'none' };
    this.#velocitiesRadPerS.fill(0);
  }

  /** Static joint torques J^T F from the payload's weight and the external tool force, in the cell frame. */
  #efforts(): number[] | undefined {
    const chain = this.#chain;
    if (chain === undefined) return undefined;
    forwardKinematics(chain, this.#positionsRad, this.#pose);
    const points = this.#pose.points;
    const axes = this.#pose.axes;
    const t = this.#pose.tcpIndex * 3;
    const [fx, fy, fz] = [this.#externalForceN[0], this.#externalForceN[1], this.#externalForceN[2] - this.#payloadKg * GRAVITY_M_PER_S2];
    return Array.from({ length: this.jointCount }, (_, j) => {
      const k = j * 3;
      const zx = axes[k] as number, zy = axes[k + 1] as number, zz = axes[k + 2] as number;
      const rx = (points[t] as number) - (points[k] as number), ry = (points[t + 1] as number) - (points[k + 1] as number), rz = (points[t + 2] as number) - (points[k + 2] as number);
      // tau_j = (z_j x r_j) . F
      return (zy * rz - zz * ry) * fx + (zz * rx - zx * rz) * fy + (zx * ry - zy * rx) * fz;
    });
  }

  #stateAt(timeMs: number): ArmStateMessage {
    const efforts = this.#efforts();
    return {
      positionsRad: [...this.#positionsRad],
      velocitiesRadPerS: [...this.#velocitiesRadPerS],
      moving: this.moving,
      safeStopped: this.safeStopped,
      lastCommandId: this.lastCommandId,
      ...(efforts === undefined ? {} : { effortsNm: efforts }),
      toolForceN: Math.hypot(...this.#externalForceN),
      payloadKg: this.#payloadKg,
      timeMs,
    };
  }
}
