// Simulated device driver for a belt conveyor: ramped belt speed, permissive inputs with a safety relay, state
// publishing, heartbeat watchdog. It must never run the belt on a command it did not itself verify as released
// by the interlock for this device, nor while a permissive is false.

import type { KeyObject } from 'node:crypto';
import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DEVICE_ID_PATTERN, topicSet, type TopicSet } from '../src/transport/topics.js';
import type { MessageHandler, Subscription, Transport } from '../src/transport/transport.js';
import type { ReceivedRelease } from './arm-driver.js';
import { ReleaseGate } from './release-gate.js';

export type { ReceivedRelease } from './arm-driver.js';

export interface SimulatedConveyorOptions {
  readonly deviceId: string;
  readonly transport: Transport;
  /** The only key whose releases run this belt. */
  readonly interlockPublicKey: KeyObject;
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
  /** How often the belt speed is integrated and the watchdog is checked; default 10. */
  readonly physicsPeriodMs?: number;
  /** Stop when the heartbeat topic is silent this long; default 1000, 0 disables the watchdog. */
  readonly heartbeatTimeoutMs?: number;
  readonly topics?: TopicSet;
  /** Epoch milliseconds; used for release expiry, the watchdog and the physics time step. */
  readonly nowMs?: () => number;
  readonly log?: (msg: string) => void;
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

interface MutableRelease {
  atMs: number;
  token: string;
  accepted: boolean;
  problem?: string;
  command?: ReleasedCommand;
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly problem: string };

type SpeedCheck = { readonly ok: true; readonly speedMPerS: number; readonly rampMPerS2: number } | { readonly ok: false; readonly problem: string };

function positiveFinite(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`SimulatedConveyor: ${name} must be a finite number > 0, got ${value}`);
  return value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const PERMISSIVE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

export class SimulatedConveyor {
  readonly deviceId: string;
  readonly #transport: Transport;
  readonly #gate: ReleaseGate;
  readonly #topics: TopicSet;
  readonly #defaultRampMPerS2: number;
  readonly #stopDecelerationMPerS2: number;
  readonly #statePeriodMs: number;
  readonly #physicsPeriodMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #nowMs: () => number;
  readonly #log: (msg: string) => void;

  #speedMPerS: number;
  #setpointMPerS: number;
  /** The ramp towards the current setpoint: the commanded one, the default, or the stop deceleration. */
  #rampMPerS2: number;
  readonly #permissives: Map<string, boolean>;
  #physicsTimeMs = 0;
  #lastHeartbeatMs = 0;
  #watchdogReason: string | null = null;
  #lastCommandId: string | null = null;
  readonly #received: MutableRelease[] = [];
  readonly #executed: ReleasedCommand[] = [];

  #running = false;
  /** Bumped by every start/stop so a start() still awaiting its subscriptions notices it was stopped. */
  #generation = 0;
  #subscriptions: Subscription[] = [];
  #physicsTimer: NodeJS.Timeout | undefined;
  #stateTimer: NodeJS.Timeout | undefined;
  #publishFailing = false;

  /** Throws on options that could never describe a conveyor; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedConveyorOptions) {
    if (!DEVICE_ID_PATTERN.test(options.deviceId)) throw new RangeError(`SimulatedConveyor: invalid device id ${JSON.stringify(options.deviceId)}`);
    const initialSpeed = options.initialSpeedMPerS ?? 0;
    if (!Number.isFinite(initialSpeed)) throw new RangeError(`SimulatedConveyor: initialSpeedMPerS must be finite, got ${initialSpeed}`);
    const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 1000;
    if (!Number.isFinite(heartbeatTimeoutMs) || heartbeatTimeoutMs < 0) {
      throw new RangeError(`SimulatedConveyor: heartbeatTimeoutMs must be a finite number >= 0, got ${heartbeatTimeoutMs}`);
    }
    const permissives = Object.entries(options.permissives ?? {});
    for (const [name, value] of permissives) {
      if (!PERMISSIVE_NAME.test(name) || typeof value !== 'boolean') throw new RangeError(`SimulatedConveyor: invalid permissive ${JSON.stringify(name)}`);
    }
    this.deviceId = options.deviceId;
    this.#transport = options.transport;
    this.#gate = new ReleaseGate(options.deviceId, options.interlockPublicKey, ['stop']);
    this.#topics = options.topics ?? topicSet();
    this.#defaultRampMPerS2 = positiveFinite(options.defaultRampMPerS2, 'defaultRampMPerS2');
    this.#stopDecelerationMPerS2 = positiveFinite(options.stopDecelerationMPerS2 ?? 1, 'stopDecelerationMPerS2');
    this.#statePeriodMs = positiveFinite(options.statePeriodMs ?? 20, 'statePeriodMs');
    this.#physicsPeriodMs = positiveFinite(options.physicsPeriodMs ?? 10, 'physicsPeriodMs');
    this.#heartbeatTimeoutMs = heartbeatTimeoutMs;
    this.#nowMs = options.nowMs ?? (() => Date.now());
    const log = options.log ?? (() => {});
    this.#log = (msg) => log(`conveyor-driver[${options.deviceId}]: ${msg}`);
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
    return this.#received;
  }

  /** Accepted releases, in the order they took effect. */
  get executed(): readonly ReleasedCommand[] {
    return this.#executed;
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
    return this.#watchdogReason ?? this.#permissiveFault();
  }

  get lastCommandId(): string | null {
    return this.#lastCommandId;
  }

  /** The instant `speedMPerS` describes (the last integration step). */
  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  /** Whether the driver is started (subscribed and ticking); not whether the belt moves (see beltRunning). */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Sets a permissive input, as a guard switch or an e-stop button would. Going false stops the belt at once
   * (the safety relay removes drive power); going true again does not restart it: that takes a new set_speed.
   */
  setPermissive(name: string, value: boolean): void {
    if (!this.#permissives.has(name)) throw new RangeError(`SimulatedConveyor: no permissive ${JSON.stringify(name)}`);
    // The belt moves only while the driver runs; before start there is no physics time to integrate from.
    if (this.#running) this.#advanceTo(this.#nowMs());
    this.#permissives.set(name, value);
    if (!value) {
      this.#relayStop();
      this.#log(`permissive ${name} false: belt stopped by the safety relay`);
    }
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const generation = ++this.#generation;
    const nowMs = this.#nowMs();
    this.#physicsTimeMs = nowMs;
    // The watchdog counts from start, so an interlock that never comes up still leaves the belt stopped.
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

  /** Stops timers and subscriptions; safe to call twice. The belt is stopped at once (drive disabled). */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    clearInterval(this.#physicsTimer);
    clearInterval(this.#stateTimer);
    this.#physicsTimer = undefined;
    this.#stateTimer = undefined;
    // A driver that restarts must not pick up a speed commanded before it went down.
    this.#relayStop();
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
      if (outcome.ok) {
        record.accepted = true;
      } else {
        record.problem = outcome.problem;
        this.#log(`refused release: ${outcome.problem}`);
      }
    } catch (error) {
      record.accepted = false;
      record.problem = `driver error: ${message(error)}`;
      this.#log(`release handling failed, stopping: ${message(error)}`);
      this.#relayStop();
    }
  }

  #consider(record: MutableRelease, nowMs: number): Outcome {
    const admitted = this.#gate.admit(record.token, nowMs);
    if (admitted.command !== undefined) record.command = admitted.command;
    if (!admitted.ok) return { ok: false, problem: admitted.problem };
    const command = admitted.command;
    // Bring the belt up to now under the old setpoint, so the new one applies from the moment of receipt.
    this.#advanceTo(nowMs);
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
    this.#executed.push(command);
    this.#lastCommandId = command.commandId;
    this.#log(`executing ${command.action} ${command.commandId} (audit seq ${command.auditSeq})`);
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

  #onHeartbeat(): void {
    if (!this.#running) return;
    this.#guarded('heartbeat', () => {
      const nowMs = this.#nowMs();
      // A heartbeat that comes after the deadline still trips the watchdog first: the gap happened.
      this.#advanceTo(nowMs);
      this.#lastHeartbeatMs = nowMs;
      if (this.#watchdogReason !== null) {
        // The setpoint was set to 0 when it tripped, so clearing does not restart the belt.
        this.#log(`heartbeat back; clearing safe stop (${this.#watchdogReason})`);
        this.#watchdogReason = null;
      }
    });
  }

  /** Integrates the belt speed up to `nowMs`, starting the safe stop at the watchdog deadline if it passed on the way. */
  #advanceTo(nowMs: number): void {
    if (this.#heartbeatTimeoutMs > 0 && this.#watchdogReason === null) {
      const deadlineMs = this.#lastHeartbeatMs + this.#heartbeatTimeoutMs;
      if (nowMs > deadlineMs) {
        this.#integrate(deadlineMs);
        this.#rampStop();
        this.#watchdogReason = `no heartbeat for ${this.#heartbeatTimeoutMs} ms`;
        this.#log(`watchdog: ${this.#watchdogReason}; stopping`);
      }
    }
    this.#integrate(nowMs);
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

  #publishState(): void {
    const timeMs = this.#nowMs();
    this.#advanceTo(timeMs);
    const state: ConveyorStateMessage = {
      speedMPerS: this.#speedMPerS,
      permissives: this.permissives,
      running: this.beltRunning,
      safeStopped: this.safeStopped,
      lastCommandId: this.#lastCommandId,
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

  /** Timer and bus callbacks must never throw into Node or the transport; a driver bug stops the belt. */
  #guarded(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#log(`${what} failed, stopping: ${message(error)}`);
      this.#relayStop();
    }
  }
}
