// The lifecycle every simulated driver shares: common options, start/stop, the actuator and heartbeat subscriptions,
// the heartbeat watchdog, state publishing and the release records. It never hands the device a release that the
// ReleaseGate did not admit, and never lets a timer or bus callback throw into Node or the transport.

import type { KeyObject } from 'node:crypto';
import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DEVICE_ID_PATTERN, topicSet, type TopicSet } from '../src/transport/topics.js';
import type { MessageHandler, Subscription, Transport } from '../src/transport/transport.js';
import { DeviceReporter, type DriverKeyPair } from '../src/driver-sdk/device-reporter.js';
import { HeartbeatMonitor } from '../src/driver-sdk/heartbeat-monitor.js';
import { ReleaseGate } from '../src/driver-sdk/release-gate.js';

/** The options every simulated driver takes; each driver's options extend these. */
export interface DriverOptions {
  readonly deviceId: string;
  readonly transport: Transport;
  /** The only key whose releases and heartbeats this driver acts on. */
  readonly interlockPublicKey: KeyObject;
  /** The driver's own key (declared for the device under `drivers` in agents.yaml): it signs state and outcomes. */
  readonly driverKey: DriverKeyPair;
  /** How far a heartbeat's time may be from this driver's clock; default 2000 ms. */
  readonly heartbeatMaxSkewMs?: number;
  /** How often state is published on the actuator state topic; each driver documents its default. */
  readonly statePeriodMs?: number;
  /** How often the physics is integrated and the watchdog is checked; default 10. */
  readonly physicsPeriodMs?: number;
  /** Go to the safe state when the heartbeat topic is silent this long; default 1000, 0 disables the watchdog. */
  readonly heartbeatTimeoutMs?: number;
  readonly topics?: TopicSet;
  /** Epoch milliseconds; used for release expiry, the watchdog and the physics time step. */
  readonly nowMs?: () => number;
  readonly log?: (msg: string) => void;
}

/** One message seen on the actuator command topic, accepted or not. */
export interface ReceivedRelease {
  readonly atMs: number;
  readonly token: string;
  readonly accepted: boolean;
  /** Why it was refused; absent when accepted. */
  readonly problem?: string;
  /** Present whenever the interlock's signature checked out, including releases the driver then refused. */
  readonly command?: ReleasedCommand;
}

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly problem: string };

/** What one kind of driver is, as its errors and logs name it and as its watchdog and gate treat it. */
export interface DriverProfile {
  /** Names the driver in option errors: `SimulatedArm`. */
  readonly className: string;
  /** Namespaces the logs: `arm-driver` logs as `arm-driver[arm-1]: ...`. */
  readonly logName: string;
  readonly defaultStatePeriodMs: number;
  /** The shortest state and physics period accepted; without it, any finite period > 0. */
  readonly minPeriodMs?: number;
  /** The actions that may use the release gate's safe-state exemption from seq order. */
  readonly safeStateActions: readonly string[];
  /** How the log says what the watchdog did (`halted`, `going to the safe state`). */
  readonly watchdogAction: string;
  /** How the log says what a driver fault does (`halting`, `going safe`). */
  readonly faultAction: string;
}

/** The device's own half of a driver: its physics, its state message, its commands and its safe reactions. */
export interface DeviceModel {
  /** Said in the "started" log line before the watchdog, e.g. `6 joints`. */
  readonly startNote?: string;
  /** start() was called: reset what counts from start (the physics clock, a localization fix). */
  onStart(nowMs: number): void;
  /** Integrates the physics up to `toMs` under the current commands; nothing when `toMs` is not later. */
  integrate(toMs: number): void;
  /** Acts on an admitted release; the physics is already at `nowMs`. A refusal says why. */
  execute(command: ReleasedCommand, nowMs: number): Outcome;
  /** The state message for `timeMs`; the physics is already there. */
  stateAt(timeMs: number): object;
  /** The heartbeat deadline passed. SAFETY: must leave nothing pending that a returning heartbeat could resume. */
  onWatchdog(): void;
  /** A timer, bus or release callback threw (a driver bug): the most direct safe reaction. */
  onFault(): void;
  /** The driver stopped: leave the device so that a restart does not pick up old commands. */
  onStop(): void;
}

/** Runs `run` every `periodMs` until the returned function is called. */
export type IntervalScheduler = (periodMs: number, run: () => void) => () => void;

const nodeIntervals: IntervalScheduler = (periodMs, run) => {
  const timer = setInterval(run, periodMs);
  return () => clearInterval(timer);
};

/** `value`, if finite and > 0; otherwise a RangeError naming `owner` (option errors are wiring bugs). */
export function positiveFinite(owner: string, value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${owner}: ${name} must be a finite number > 0, got ${value}`);
  return value;
}

/** `value`, if finite and >= `min`; otherwise a RangeError naming `owner`. */
export function finiteAtLeast(owner: string, value: number, min: number, name: string): number {
  if (!Number.isFinite(value) || value < min) throw new RangeError(`${owner}: ${name} must be a finite number >= ${min}, got ${value}`);
  return value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface MutableRelease {
  atMs: number;
  token: string;
  accepted: boolean;
  problem?: string;
  command?: ReleasedCommand;
}

export class DriverRuntime {
  readonly deviceId: string;
  readonly statePeriodMs: number;
  readonly physicsPeriodMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly nowMs: () => number;
  /** Logs under the driver's namespace. */
  readonly log: (msg: string) => void;
  readonly #transport: Transport;
  readonly #topics: TopicSet;
  readonly #gate: ReleaseGate;
  readonly #reporter: DeviceReporter;
  readonly #heartbeats: HeartbeatMonitor;
  /** When an ignored heartbeat was last logged: a flood of them logs once every 10 s, not once each. */
  #heartbeatWarnedAtMs: number | null = null;
  readonly #profile: DriverProfile;
  readonly #device: DeviceModel;
  readonly #every: IntervalScheduler;

  #lastHeartbeatMs = 0;
  #watchdogReason: string | null = null;
  #lastCommandId: string | null = null;
  readonly #received: MutableRelease[] = [];
  readonly #executed: ReleasedCommand[] = [];

  #running = false;
  /** Bumped by every start/stop so a start() still awaiting its subscriptions notices it was stopped. */
  #generation = 0;
  #subscriptions: Subscription[] = [];
  #cancelTimers: Array<() => void> = [];
  #publishFailing = false;

  /** Throws on common options that could never describe a device; these are wiring bugs, not runtime input. */
  constructor(options: DriverOptions, profile: DriverProfile, device: DeviceModel, every: IntervalScheduler = nodeIntervals) {
    const owner = profile.className;
    if (!DEVICE_ID_PATTERN.test(options.deviceId)) throw new RangeError(`${owner}: invalid device id ${JSON.stringify(options.deviceId)}`);
    const period = (value: number, name: string): number =>
      profile.minPeriodMs === undefined ? positiveFinite(owner, value, name) : finiteAtLeast(owner, value, profile.minPeriodMs, name);
    this.deviceId = options.deviceId;
    this.statePeriodMs = period(options.statePeriodMs ?? profile.defaultStatePeriodMs, 'statePeriodMs');
    this.physicsPeriodMs = period(options.physicsPeriodMs ?? 10, 'physicsPeriodMs');
    this.heartbeatTimeoutMs = finiteAtLeast(owner, options.heartbeatTimeoutMs ?? 1000, 0, 'heartbeatTimeoutMs');
    this.nowMs = options.nowMs ?? (() => Date.now());
    const log = options.log ?? (() => {});
    this.log = (msg) => log(`${profile.logName}[${options.deviceId}]: ${msg}`);
    this.#transport = options.transport;
    this.#topics = options.topics ?? topicSet();
    this.#reporter = new DeviceReporter(options.deviceId, options.driverKey, this.nowMs);
    this.#gate = new ReleaseGate(options.deviceId, options.interlockPublicKey, profile.safeStateActions, this.#reporter.session);
    this.#heartbeats = new HeartbeatMonitor(options.interlockPublicKey, options.heartbeatMaxSkewMs);
    this.#profile = profile;
    this.#device = device;
    this.#every = every;
  }

  /** Whether the driver is started (subscribed and ticking). */
  get running(): boolean {
    return this.#running;
  }

  /** Everything that arrived on the actuator topic, in arrival order, recorded before it was looked at. */
  get received(): readonly ReceivedRelease[] {
    return this.#received;
  }

  /** Accepted releases, in the order they took effect. */
  get executed(): readonly ReleasedCommand[] {
    return this.#executed;
  }

  /** This run's id, which the signed state announces and releases must name. */
  get session(): string {
    return this.#reporter.session;
  }

  get lastCommandId(): string | null {
    return this.#lastCommandId;
  }

  /** Why the watchdog holds the device in its safe state, or null. */
  get watchdogReason(): string | null {
    return this.#watchdogReason;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const generation = ++this.#generation;
    const nowMs = this.nowMs();
    this.#device.onStart(nowMs);
    // The watchdog counts from start, so an interlock that never comes up still leaves the device safe.
    this.#lastHeartbeatMs = nowMs;
    const wanted: Array<[string, MessageHandler]> = [
      [this.#topics.actuatorCommand(this.deviceId), (_topic, payload) => this.#onRelease(payload)],
      [this.#topics.heartbeat, (_topic, payload) => this.#onHeartbeat(payload)],
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
      // Only this start's own run is torn down: a stop() and a newer start() may have come in meanwhile.
      if (generation === this.#generation) await this.stop();
      throw error;
    }
    this.#cancelTimers = [
      this.#every(this.physicsPeriodMs, () => this.#guarded('physics tick', () => this.advanceTo(this.nowMs()))),
      this.#every(this.statePeriodMs, () => this.#guarded('state publish', () => this.#publishState())),
    ];
    const note = this.#device.startNote === undefined ? '' : `${this.#device.startNote}, `;
    this.log(`started (${note}watchdog ${this.heartbeatTimeoutMs === 0 ? 'off' : `${this.heartbeatTimeoutMs} ms`})`);
  }

  /** Stops timers and subscriptions; safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    for (const cancel of this.#cancelTimers) cancel();
    this.#cancelTimers = [];
    this.#device.onStop();
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    const results = await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    for (const result of results) {
      if (result.status === 'rejected') this.log(`unsubscribe failed: ${message(result.reason)}`);
    }
    this.log('stopped');
  }

  /** Integrates the physics up to `nowMs`, going to the safe state at the watchdog deadline if it passed on the way. */
  advanceTo(nowMs: number): void {
    if (this.heartbeatTimeoutMs > 0 && this.#watchdogReason === null) {
      const deadlineMs = this.#lastHeartbeatMs + this.heartbeatTimeoutMs;
      if (nowMs > deadlineMs) {
        // SAFETY: a late tick still stops the device at the deadline, not at the tick: no motion past it on old commands.
        this.#device.integrate(deadlineMs);
        this.#device.onWatchdog();
        this.#watchdogReason = `no heartbeat for ${this.heartbeatTimeoutMs} ms`;
        this.log(`watchdog: ${this.#watchdogReason}; ${this.#profile.watchdogAction}`);
      }
    }
    this.#device.integrate(nowMs);
  }

  #onRelease(payload: Buffer): void {
    if (!this.#running) return;
    const atMs = this.nowMs();
    // Recorded before anything else, so the record holds every message even if handling it throws.
    const record: MutableRelease = { atMs, token: payload.toString('utf8'), accepted: false };
    this.#received.push(record);
    try {
      const outcome = this.#consider(record, atMs);
      if (outcome.ok) {
        record.accepted = true;
      } else {
        record.problem = outcome.problem;
        this.log(`refused release: ${outcome.problem}`);
      }
    } catch (error) {
      record.accepted = false;
      record.problem = `driver error: ${message(error)}`;
      this.log(`release handling failed, ${this.#profile.faultAction}: ${message(error)}`);
      this.#device.onFault();
    }
    // Only a release the interlock signed gets an answer: a forgery is not the interlock's to record.
    if (record.command !== undefined) this.#reportOutcome(record.command, record.accepted, record.problem, atMs);
  }

  /** Tells the interlock what became of a release; it records this as an outcome linked to the decision. */
  #reportOutcome(command: ReleasedCommand, executed: boolean, problem: string | undefined, timeMs: number): void {
    const outcome = {
      commandId: command.commandId,
      auditSeq: command.auditSeq,
      status: executed ? 'executed' : 'refused',
      ...(problem === undefined ? {} : { problem }),
      timeMs,
    };
    try {
      this.#transport.publish(this.#topics.actuatorOutcome(this.deviceId), this.#reporter.outcome(outcome), { qos: 1 }).catch((error: unknown) => {
        this.log(`outcome of ${command.commandId} not reported: ${message(error)}`);
      });
    } catch (error) {
      this.log(`outcome of ${command.commandId} not reported: ${message(error)}`);
    }
  }

  #consider(record: MutableRelease, nowMs: number): Outcome {
    // SAFETY: the device sees a release only once the gate has checked signature, device, expiry and seq.
    const admitted = this.#gate.admit(record.token, nowMs);
    if (admitted.command !== undefined) record.command = admitted.command;
    if (!admitted.ok) return { ok: false, problem: admitted.problem };
    const command = admitted.command;
    // Bring the physics up to now under the old commands, so the new one applies from the moment of receipt.
    this.advanceTo(nowMs);
    const outcome = this.#device.execute(command, nowMs);
    if (!outcome.ok) return outcome;
    this.#executed.push(command);
    this.#lastCommandId = command.commandId;
    this.log(`executing ${command.action} ${command.commandId} (audit seq ${command.auditSeq})`);
    return { ok: true };
  }

  #onHeartbeat(payload: Buffer): void {
    if (!this.#running) return;
    this.#guarded('heartbeat', () => {
      const nowMs = this.nowMs();
      // SAFETY: only the interlock's own, newer, timely heartbeat counts; anything else is silence to the watchdog.
      const check = this.#heartbeats.accept(payload, nowMs);
      if (!check.ok) {
        if (this.#heartbeatWarnedAtMs === null || !(nowMs - this.#heartbeatWarnedAtMs < 10_000)) {
          this.log(`heartbeat ignored: ${check.problem}`);
          this.#heartbeatWarnedAtMs = nowMs;
        }
        return;
      }
      // A heartbeat that comes after the deadline still trips the watchdog first: the gap happened.
      this.advanceTo(nowMs);
      // SAFETY: counted from when the interlock sent it if that is earlier: a heartbeat held back on the way (a
      // delaying link or attacker) does not stretch the watchdog by the delay.
      this.#lastHeartbeatMs = Math.min(nowMs, check.heartbeat.timeMs);
      if (this.#watchdogReason !== null) {
        // The watchdog left nothing pending (DeviceModel.onWatchdog), so clearing does not resume the old commands.
        this.log(`heartbeat back; clearing safe stop (${this.#watchdogReason})`);
        this.#watchdogReason = null;
      }
    });
  }

  #publishState(): void {
    const timeMs = this.nowMs();
    this.advanceTo(timeMs);
    const state = this.#device.stateAt(timeMs);
    const onError = (error: unknown): void => {
      // Logged once per outage: a broker that is down would otherwise fill the log every period.
      if (!this.#publishFailing) this.log(`state publish failed: ${message(error)}`);
      this.#publishFailing = true;
    };
    try {
      this.#transport.publish(this.#topics.actuatorState(this.deviceId), this.#reporter.state(state), { qos: 0 }).then(() => {
        if (this.#publishFailing) this.log('state publish recovered');
        this.#publishFailing = false;
      }, onError);
    } catch (error) {
      onError(error);
    }
  }

  /** Timer and bus callbacks must never throw into Node or the transport; a driver bug makes the device safe. */
  #guarded(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.log(`${what} failed, ${this.#profile.faultAction}: ${message(error)}`);
      this.#device.onFault();
    }
  }
}
