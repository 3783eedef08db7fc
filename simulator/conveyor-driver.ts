// Simulated device driver for a belt conveyor: ramped belt speed, permissive inputs with a safety relay, state
// publishing, heartbeat watchdog. It must never run the belt on a command it did not itself verify as released
// by the interlock for this device, nor while a permissive is false.

import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DriverRuntime, positiveFinite, type DriverOptions, type DriverProfile, type Outcome, type ReceivedRelease } from './driver-runtime.js';

export type { ReceivedRelease } from './driver-runtime.js';

/** The common options (driver-runtime.ts); the watchdog ramps the belt down at the stop deceleration. */
export interface SimulatedConveyorOptions extends DriverOptions {
  /**
   * The ramp used for a set_speed without rampMPerS2. Set it to the declaration's reduced maxRamp: that is the
   * value the interlock's check assumes, and it is within the limit in either mode.
   */
  readonly defaultRampMPerS2: number;
  /** Deceleration for stop and for the watchdog's safe stop; default 1 m/s^2. */
  readonly stopDecelerationMPerS2?: number;
  /**
   * Permissive inputs (guard switch, e-stop chain, ...) by name, with their initial values. Like a safety relay,
   * any one going false stops the belt at once and keeps it from starting; default none.
   */
  readonly permissives?: Readonly<Record<string, boolean>>;
  /** Default 0. */
  readonly initialSpeedMPerS?: number;
  /** How often state is published on the actuator state topic; default 20. */
  readonly statePeriodMs?: number;
}

/** The JSON published on `actuatorState(deviceId)`; matches the conveyor kind's state schema. */
export interface ConveyorStateMessage {
  readonly speedMPerS: number;
  readonly permissives: Record<string, boolean>;
  readonly running: boolean;
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
  readonly timeMs: number;
}

export const CONVEYOR_ACTIONS = ['set_speed', 'stop'] as const;

const CONVEYOR_PROFILE: DriverProfile = {
  className: 'SimulatedConveyor',
  logName: 'conveyor-driver',
  defaultStatePeriodMs: 20,
  safeStateActions: ['stop'],
  watchdogAction: 'stopping',
  faultAction: 'stopping',
};

type SpeedCheck = { readonly ok: true; readonly speedMPerS: number; readonly rampMPerS2: number } | { readonly ok: false; readonly problem: string };

const PERMISSIVE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

export class SimulatedConveyor {
  readonly deviceId: string;
  readonly #runtime: DriverRuntime;
  readonly #defaultRampMPerS2: number;
  readonly #stopDecelerationMPerS2: number;

  #speedMPerS: number;
  #setpointMPerS: number;
  /** The ramp towards the current setpoint: the commanded one, the default, or the stop deceleration. */
  #rampMPerS2: number;
  readonly #permissives: Map<string, boolean>;
  #physicsTimeMs = 0;

  /** Throws on options that could never describe a conveyor; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedConveyorOptions) {
    this.#runtime = new DriverRuntime(options, CONVEYOR_PROFILE, {
      onStart: (nowMs) => {
        this.#physicsTimeMs = nowMs;
      },
      integrate: (toMs) => this.#integrate(toMs),
      execute: (command) => this.#execute(command),
      stateAt: (timeMs) => this.#stateAt(timeMs),
      // The setpoint goes to 0, so a returning heartbeat does not restart the belt.
      onWatchdog: () => this.#rampStop(),
      onFault: () => this.#relayStop(),
      // A driver that restarts must not pick up a speed commanded before it went down.
      onStop: () => this.#relayStop(),
    });
    const initialSpeed = options.initialSpeedMPerS ?? 0;
    if (!Number.isFinite(initialSpeed)) throw new RangeError(`SimulatedConveyor: initialSpeedMPerS must be finite, got ${initialSpeed}`);
    const permissives = Object.entries(options.permissives ?? {});
    for (const [name, value] of permissives) {
      if (!PERMISSIVE_NAME.test(name) || typeof value !== 'boolean') throw new RangeError(`SimulatedConveyor: invalid permissive ${JSON.stringify(name)}`);
    }
    this.deviceId = options.deviceId;
    this.#defaultRampMPerS2 = positiveFinite(CONVEYOR_PROFILE.className, options.defaultRampMPerS2, 'defaultRampMPerS2');
    this.#stopDecelerationMPerS2 = positiveFinite(CONVEYOR_PROFILE.className, options.stopDecelerationMPerS2 ?? 1, 'stopDecelerationMPerS2');
    this.#permissives = new Map(permissives);
    // A belt that starts up moving keeps that speed as its setpoint until told otherwise (or a relay drops).
    this.#speedMPerS = initialSpeed;
    this.#setpointMPerS = initialSpeed;
    this.#rampMPerS2 = this.#defaultRampMPerS2;
    if (this.#permissiveFault() !== null) this.#relayStop();
  }

  /** Measured belt speed, signed (negative is reverse). */
  get speedMPerS(): number {
    return this.#speedMPerS;
  }

  get setpointMPerS(): number {
    return this.#setpointMPerS;
  }

  /** The ramp the belt is following to its setpoint. */
  get rampMPerS2(): number {
    return this.#rampMPerS2;
  }

  get permissives(): Record<string, boolean> {
    return Object.fromEntries(this.#permissives);
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

  /** The drive is enabled with a non-zero setpoint, or the belt is still moving. */
  get beltRunning(): boolean {
    return this.#setpointMPerS !== 0 || this.#speedMPerS !== 0;
  }

  /** Held stopped by a safety function: the watchdog tripped, or a permissive is false. */
  get safeStopped(): boolean {
    return this.safeStopReason !== null;
  }

  get safeStopReason(): string | null {
    return this.#runtime.watchdogReason ?? this.#permissiveFault();
  }

  get lastCommandId(): string | null {
    return this.#runtime.lastCommandId;
  }

  /** The instant `speedMPerS` describes (the last integration step). */
  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  /** Whether the driver is started (subscribed and ticking); not whether the belt moves (see beltRunning). */
  get running(): boolean {
    return this.#runtime.running;
  }

  /**
   * Sets a permissive input, as a guard switch or an e-stop button would. Going false stops the belt at once
   * (the safety relay removes drive power); going true again does not restart it: that takes a new set_speed.
   */
  setPermissive(name: string, value: boolean): void {
    if (!this.#permissives.has(name)) throw new RangeError(`SimulatedConveyor: no permissive ${JSON.stringify(name)}`);
    // The belt moves only while the driver runs; before start there is no physics time to integrate from.
    if (this.#runtime.running) this.#runtime.advanceTo(this.#runtime.nowMs());
    this.#permissives.set(name, value);
    if (!value) {
      this.#relayStop();
      this.#runtime.log(`permissive ${name} false: belt stopped by the safety relay`);
    }
  }

  start(): Promise<void> {
    return this.#runtime.start();
  }

  /** Stops timers and subscriptions; safe to call twice. The belt is stopped at once (drive disabled). */
  stop(): Promise<void> {
    return this.#runtime.stop();
  }

  /** An admitted release, with the belt already integrated up to the moment of receipt. */
  #execute(command: ReleasedCommand): Outcome {
    switch (command.action) {
      case 'set_speed': {
        const speed = this.#checkSetSpeed(command.params);
        if (!speed.ok) return speed;
        // SAFETY: while a safety function holds the belt (interlock silent, guard open, e-stop), nothing starts.
        const held = this.safeStopReason;
        if (held !== null) return { ok: false, problem: `safe-stopped (${held}); set_speed refused` };
        this.#setpointMPerS = speed.speedMPerS;
        this.#rampMPerS2 = speed.rampMPerS2;
        break;
      }
      case 'stop':
        this.#rampStop();
        break;
      default:
        return { ok: false, problem: `unknown action ${JSON.stringify(command.action)}; this conveyor knows ${CONVEYOR_ACTIONS.join(', ')}` };
    }
    return { ok: true };
  }

  /** The driver re-checks shape on its own: a signed release is authentic, not necessarily well-formed. */
  #checkSetSpeed(params: Readonly<Record<string, unknown>>): SpeedCheck {
    const speed = params['speedMPerS'];
    // SAFETY: NaN compares false with every bound, so non-finite values are refused before any arithmetic.
    if (typeof speed !== 'number' || !Number.isFinite(speed)) return { ok: false, problem: 'params.speedMPerS must be a finite number' };
    if (!Object.hasOwn(params, 'rampMPerS2')) return { ok: true, speedMPerS: speed, rampMPerS2: this.#defaultRampMPerS2 };
    const ramp = params['rampMPerS2'];
    if (typeof ramp !== 'number' || !Number.isFinite(ramp) || !(ramp > 0)) return { ok: false, problem: 'params.rampMPerS2 must be a finite number > 0' };
    return { ok: true, speedMPerS: speed, rampMPerS2: ramp };
  }

  #permissiveFault(): string | null {
    for (const [name, value] of this.#permissives) if (!value) return `permissive ${name} is false`;
    return null;
  }

  #integrate(toMs: number): void {
    const dtMs = toMs - this.#physicsTimeMs;
    // SAFETY: a clock that stands still, runs backwards or returns NaN/Infinity must produce no acceleration.
    if (!Number.isFinite(dtMs) || dtMs <= 0) return;
    const maxChange = this.#rampMPerS2 * (dtMs / 1000);
    const remaining = this.#setpointMPerS - this.#speedMPerS;
    // Snap onto the setpoint when it is within one step, so the belt never overshoots it.
    this.#speedMPerS = Math.abs(remaining) <= maxChange ? this.#setpointMPerS : this.#speedMPerS + Math.sign(remaining) * maxChange;
    this.#physicsTimeMs = toMs;
  }

  /** A commanded stop (category 1): ramp down to 0 at the stop deceleration. */
  #rampStop(): void {
    this.#setpointMPerS = 0;
    this.#rampMPerS2 = this.#stopDecelerationMPerS2;
  }

  /** The safety relay drops (category 0): drive power off, the belt is at rest at once and nothing is pending. */
  #relayStop(): void {
    this.#setpointMPerS = 0;
    this.#speedMPerS = 0;
    this.#rampMPerS2 = this.#stopDecelerationMPerS2;
  }

  #stateAt(timeMs: number): ConveyorStateMessage {
    return {
      speedMPerS: this.#speedMPerS,
      permissives: this.permissives,
      running: this.beltRunning,
      safeStopped: this.safeStopped,
      lastCommandId: this.lastCommandId,
      timeMs,
    };
  }
}
