// Simulated device driver for a transfer pump with suction and discharge valves and a supply tank: simple
// hydraulics, state publishing, heartbeat watchdog -> safe state. It never acts on a release it has not verified.

import type { KeyObject } from 'node:crypto';
import type { ProcessSafeState } from '../src/core/kinds/process-unit.js';
import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DEVICE_ID_PATTERN, topicSet, type TopicSet } from '../src/transport/topics.js';
import type { MessageHandler, Subscription, Transport } from '../src/transport/transport.js';
import { ReleaseGate } from './release-gate.js';

/** The pump's physical constants, SI. Names of setpoints and measurements match safety-bounds/demo-cell/devices/pump-1.yaml. */
export const PUMP_MODEL = {
  ratedSpeedRadPerS: (2900 * 2 * Math.PI) / 60,
  /** The drive's own acceleration ramp (1000 rpm/s). */
  speedRampRadPerS2: (1000 * 2 * Math.PI) / 60,
  /** Pressure rise at rated speed with no flow (shut-off). */
  shutoffRisePa: 6e5,
  ratedFlowM3PerS: 60 / 3600,
  /** Pump curve droop: 1.5 bar less rise at rated flow. */
  pumpDroopPa: 1.5e5,
  /** Discharge valve loss at rated flow, fully open. */
  dischargeValveLossPa: 1e5,
  /** Suction line and valve loss at rated flow, fully open. */
  suctionLossPa: 0.05e5,
  /** Pressure of the receiving line (gauge). */
  receiverPressurePa: 2.5e5,
  /** Tank bottom above the pump inlet. */
  tankElevationM: 2,
  tankAreaM2: 3,
  densityKgPerM3: 1000,
  gravityMPerS2: 9.81,
  /** Valve stroke speed: fully closed to fully open in 4 s. */
  valveStrokePerS: 0.25,
  /** The suction valve's open limit switch makes at this position. */
  suctionOpenSwitchAt: 0.95,
} as const;

export const PROCESS_SETPOINTS = ['pump_speed', 'suction_valve', 'discharge_valve'] as const;
export type ProcessSetpointName = (typeof PROCESS_SETPOINTS)[number];

/** The internal SI unit a set_setpoint command must name for each setpoint (cross-checked by the driver too). */
export const PROCESS_SETPOINT_UNITS: Readonly<Record<ProcessSetpointName, string>> = { pump_speed: 'rad/s', suction_valve: 'fraction', discharge_valve: 'fraction' };

/** The physical range the driver itself accepts (a last sanity check; the interlock's bounds are tighter). */
const PHYSICAL_RANGE: Readonly<Record<ProcessSetpointName, readonly [number, number]>> = {
  pump_speed: [0, PUMP_MODEL.ratedSpeedRadPerS * 1.05],
  suction_valve: [0, 1],
  discharge_valve: [0, 1],
};

export const PROCESS_UNIT_ACTIONS = ['set_setpoint', 'start', 'stop', 'go_safe', 'reset_trip'] as const;
const SAFE_STATE_ACTIONS: readonly string[] = ['stop', 'go_safe'];

/** The driver's own protection: a pressure switch on the discharge line; reported in `trips` until reset. */
export const PRESSURE_SWITCH_TRIP = 'pressure_switch_high';

/** The declared safe state of pump-1 (pump off, discharge closed, suction open). */
export const DEFAULT_PROCESS_SAFE_STATE: ProcessSafeState = { running: false, setpoints: { pump_speed: 0, suction_valve: 1, discharge_valve: 0 } };

export interface SimulatedProcessUnitOptions {
  readonly deviceId: string;
  readonly transport: Transport;
  /** The only key whose releases act on this unit. */
  readonly interlockPublicKey: KeyObject;
  /** What go_safe and the watchdog drive to; give the declaration's `safeState`. Default: DEFAULT_PROCESS_SAFE_STATE. */
  readonly safeState?: ProcessSafeState;
  /** Initial setpoints; default the safe state's. */
  readonly initialSetpoints?: Partial<Record<ProcessSetpointName, number>>;
  readonly initialTankLevelM?: number;
  /** Constant inflow into the tank; default 0. */
  readonly tankInflowM3PerS?: number;
  /** The driver's own pressure switch; default 9 bar. */
  readonly pressureSwitchPa?: number;
  /** How often state is published; default 50. */
  readonly statePeriodMs?: number;
  /** How often physics is integrated and the watchdog is checked; default 10. */
  readonly physicsPeriodMs?: number;
  /** Go to the safe state when the heartbeat topic is silent this long; default 1000, 0 disables the watchdog. */
  readonly heartbeatTimeoutMs?: number;
  readonly topics?: TopicSet;
  /** Epoch milliseconds; used for release expiry, the watchdog and the physics time step. */
  readonly nowMs?: () => number;
  readonly log?: (msg: string) => void;
}

/** One message seen on the actuator command topic, accepted or not. */
export interface ReceivedProcessRelease {
  readonly atMs: number;
  readonly token: string;
  readonly accepted: boolean;
  readonly problem?: string;
  /** Present whenever the interlock's signature checked out, including releases the driver then refused. */
  readonly command?: ReleasedCommand;
}

/** The JSON published on `actuatorState(deviceId)`; quantities in internal SI units (see pump-1.yaml). */
export interface ProcessStateMessage {
  readonly measurements: {
    readonly suction_pressure: number;
    readonly discharge_pressure: number;
    readonly discharge_flow: number;
    readonly tank_level: number;
    readonly pump_speed: number;
    readonly suction_valve_position: number;
    readonly discharge_valve_position: number;
    readonly suction_valve_open: boolean;
  };
  readonly setpoints: Readonly<Record<ProcessSetpointName, number>>;
  readonly running: boolean;
  readonly trips: readonly string[];
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
  readonly timeMs: number;
}

interface MutableRelease {
  atMs: number;
  token: string;
  accepted: boolean;
  problem?: string;
  command?: ReleasedCommand;
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly problem: string };

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function finiteAtLeast(value: number, min: number, name: string): number {
  if (!Number.isFinite(value) || value < min) throw new RangeError(`SimulatedProcessUnit: ${name} must be a finite number >= ${min}, got ${value}`);
  return value;
}

function isSetpointName(name: unknown): name is ProcessSetpointName {
  return typeof name === 'string' && (PROCESS_SETPOINTS as readonly string[]).includes(name);
}

/** Moves `from` toward `to` by at most `maxStep`, landing exactly on `to`. */
function approach(from: number, to: number, maxStep: number): number {
  const remaining = to - from;
  return Math.abs(remaining) <= maxStep ? to : from + Math.sign(remaining) * maxStep;
}

/** Integration step: small enough that valves and the speed ramp move smoothly. */
const MAX_STEP_MS = 10;

export class SimulatedProcessUnit {
  readonly deviceId: string;
  readonly #transport: Transport;
  readonly #gate: ReleaseGate;
  readonly #topics: TopicSet;
  readonly #safeState: ProcessSafeState;
  readonly #statePeriodMs: number;
  readonly #physicsPeriodMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #pressureSwitchPa: number;
  readonly #inflowM3PerS: number;
  readonly #nowMs: () => number;
  readonly #log: (msg: string) => void;

  #setpoints: Record<ProcessSetpointName, number>;
  #pumpOn = false;
  #speedRadPerS = 0;
  #suctionPosition: number;
  #dischargePosition: number;
  #levelM: number;
  #flowM3PerS = 0;
  #suctionPa = 0;
  #dischargePa = 0;
  #spikePa = 0;
  #spikeUntilMs = -Infinity;
  readonly #trips = new Set<string>();
  #physicsTimeMs = 0;
  #lastHeartbeatMs = 0;
  #safeStopReason: string | null = null;
  #lastCommandId: string | null = null;
  readonly #received: MutableRelease[] = [];
  readonly #executed: ReleasedCommand[] = [];

  #active = false;
  #generation = 0;
  #subscriptions: Subscription[] = [];
  #physicsTimer: NodeJS.Timeout | undefined;
  #stateTimer: NodeJS.Timeout | undefined;
  #publishFailing = false;

  /** Throws on options that could never describe this unit; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedProcessUnitOptions) {
    if (!DEVICE_ID_PATTERN.test(options.deviceId)) throw new RangeError(`SimulatedProcessUnit: invalid device id ${JSON.stringify(options.deviceId)}`);
    const safeState = options.safeState ?? DEFAULT_PROCESS_SAFE_STATE;
    for (const name of PROCESS_SETPOINTS) {
      const value = Object.hasOwn(safeState.setpoints, name) ? safeState.setpoints[name] : undefined;
      const [min, max] = PHYSICAL_RANGE[name];
      // SAFETY: a safe state that does not say where every setpoint goes is not a safe state.
      if (typeof value !== 'number' || !(value >= min && value <= max)) throw new RangeError(`SimulatedProcessUnit: safeState.setpoints.${name} must be in [${min}, ${max}]`);
    }
    const initial = { ...safeState.setpoints, ...options.initialSetpoints } as Record<ProcessSetpointName, number>;
    for (const name of PROCESS_SETPOINTS) {
      const [min, max] = PHYSICAL_RANGE[name];
      if (!(initial[name] >= min && initial[name] <= max)) throw new RangeError(`SimulatedProcessUnit: initialSetpoints.${name} must be in [${min}, ${max}]`);
    }
    this.deviceId = options.deviceId;
    this.#transport = options.transport;
    this.#gate = new ReleaseGate(options.deviceId, options.interlockPublicKey, SAFE_STATE_ACTIONS);
    this.#topics = options.topics ?? topicSet();
    this.#safeState = safeState;
    this.#statePeriodMs = finiteAtLeast(options.statePeriodMs ?? 50, 1, 'statePeriodMs');
    this.#physicsPeriodMs = finiteAtLeast(options.physicsPeriodMs ?? 10, 1, 'physicsPeriodMs');
    this.#heartbeatTimeoutMs = finiteAtLeast(options.heartbeatTimeoutMs ?? 1000, 0, 'heartbeatTimeoutMs');
    this.#pressureSwitchPa = finiteAtLeast(options.pressureSwitchPa ?? 9e5, 0, 'pressureSwitchPa');
    this.#inflowM3PerS = finiteAtLeast(options.tankInflowM3PerS ?? 0, 0, 'tankInflowM3PerS');
    this.#levelM = finiteAtLeast(options.initialTankLevelM ?? 2, 0, 'initialTankLevelM');
    this.#nowMs = options.nowMs ?? (() => Date.now());
    const log = options.log ?? (() => {});
    this.#log = (msg) => log(`process-driver[${options.deviceId}]: ${msg}`);
    this.#setpoints = { ...initial };
    this.#suctionPosition = initial.suction_valve;
    this.#dischargePosition = initial.discharge_valve;
    // Physics time starts now, so a spike injected before start() does not integrate from the epoch.
    this.#physicsTimeMs = this.#nowMs();
    this.#solveHydraulics(this.#physicsTimeMs);
  }

  /** Everything that arrived on the actuator topic, in arrival order, recorded before it was looked at. */
  get received(): readonly ReceivedProcessRelease[] {
    return this.#received;
  }

  /** Accepted releases, in the order they took effect. */
  get executed(): readonly ReleasedCommand[] {
    return this.#executed;
  }

  get running(): boolean {
    return this.#active;
  }

  get pumpRunning(): boolean {
    return this.#pumpOn;
  }

  get safeStopped(): boolean {
    return this.#safeStopReason !== null;
  }

  get safeStopReason(): string | null {
    return this.#safeStopReason;
  }

  get trips(): readonly string[] {
    return [...this.#trips];
  }

  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  /** The state as it would be published now (without advancing the physics). */
  snapshot(timeMs = this.#physicsTimeMs): ProcessStateMessage {
    return {
      measurements: {
        suction_pressure: this.#suctionPa,
        discharge_pressure: this.#dischargePa,
        discharge_flow: this.#flowM3PerS,
        tank_level: this.#levelM,
        pump_speed: this.#speedRadPerS,
        suction_valve_position: this.#suctionPosition,
        discharge_valve_position: this.#dischargePosition,
        suction_valve_open: this.#suctionPosition >= PUMP_MODEL.suctionOpenSwitchAt,
      },
      setpoints: { ...this.#setpoints },
      running: this.#pumpOn,
      trips: [...this.#trips],
      safeStopped: this.safeStopped,
      lastCommandId: this.#lastCommandId,
      timeMs,
    };
  }

  /**
   * Test hook: adds `addPa` to the discharge pressure for `durationMs` (a blocked line, a closing valve
   * downstream). Takes effect at once, so the next published state shows it.
   */
  injectPressureSpike(addPa: number, durationMs: number): void {
    finiteAtLeast(addPa, 0, 'addPa');
    finiteAtLeast(durationMs, 0, 'durationMs');
    const nowMs = this.#nowMs();
    this.#advanceTo(nowMs);
    this.#spikePa = addPa;
    this.#spikeUntilMs = nowMs + durationMs;
    this.#solveHydraulics(nowMs);
  }

  async start(): Promise<void> {
    if (this.#active) return;
    this.#active = true;
    const generation = ++this.#generation;
    const nowMs = this.#nowMs();
    this.#physicsTimeMs = nowMs;
    // The watchdog counts from start, so an interlock that never comes up still leaves the unit in its safe state.
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

  /** Stops timers and subscriptions and leaves the unit in its safe state; safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    this.#generation++;
    clearInterval(this.#physicsTimer);
    clearInterval(this.#stateTimer);
    this.#physicsTimer = undefined;
    this.#stateTimer = undefined;
    // A driver that goes down leaves the plant safe, and does not pick up old setpoints when it restarts.
    this.#goSafe();
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    const results = await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    for (const result of results) {
      if (result.status === 'rejected') this.#log(`unsubscribe failed: ${message(result.reason)}`);
    }
    this.#log('stopped');
  }

  #onRelease(payload: Buffer): void {
    if (!this.#active) return;
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
      this.#log(`release handling failed, going safe: ${message(error)}`);
      this.#goSafe();
    }
  }

  #consider(record: MutableRelease, nowMs: number): Outcome {
    const admitted = this.#gate.admit(record.token, nowMs);
    if (admitted.command !== undefined) record.command = admitted.command;
    if (!admitted.ok) return { ok: false, problem: admitted.problem };
    const command = admitted.command;
    this.#advanceTo(nowMs);
    const outcome = this.#execute(command);
    if (!outcome.ok) return outcome;
    this.#solveHydraulics(nowMs);
    this.#executed.push(command);
    this.#lastCommandId = command.commandId;
    this.#log(`executing ${command.action} ${command.commandId} (audit seq ${command.auditSeq})`);
    return { ok: true };
  }

  #execute(command: ReleasedCommand): Outcome {
    const params = command.params;
    switch (command.action) {
      case 'set_setpoint': {
        const name = params['name'];
        const value = params['value'];
        const unit = params['unit'];
        // The driver re-checks shape on its own: a signed release is authentic, not necessarily well-formed.
        if (!isSetpointName(name)) return { ok: false, problem: `unknown setpoint ${JSON.stringify(name)}; this unit has ${PROCESS_SETPOINTS.join(', ')}` };
        if (unit !== PROCESS_SETPOINT_UNITS[name]) return { ok: false, problem: `setpoint ${name} takes ${PROCESS_SETPOINT_UNITS[name]}, got ${JSON.stringify(unit)}` };
        const [min, max] = PHYSICAL_RANGE[name];
        // SAFETY: NaN fails the range test, so a non-number never reaches the physics.
        if (typeof value !== 'number' || !(value >= min && value <= max)) return { ok: false, problem: `setpoint ${name} must be a number in [${min}, ${max}] ${unit}` };
        if (this.#safeStopReason !== null) return { ok: false, problem: `safe-stopped (${this.#safeStopReason}); set_setpoint refused` };
        this.#setpoints[name] = value;
        return { ok: true };
      }
      case 'start':
        if (this.#safeStopReason !== null) return { ok: false, problem: `safe-stopped (${this.#safeStopReason}); start refused` };
        if (this.#trips.size > 0) return { ok: false, problem: `tripped (${[...this.#trips].join(', ')}); start refused` };
        this.#pumpOn = true;
        return { ok: true };
      case 'stop':
        this.#pumpOn = false;
        return { ok: true };
      case 'go_safe':
        this.#goSafe();
        return { ok: true };
      case 'reset_trip': {
        const trip = params['trip'];
        if (typeof trip !== 'string') return { ok: false, problem: 'params.trip must be a string' };
        if (trip === PRESSURE_SWITCH_TRIP && this.#trips.has(trip)) {
          if (!(this.#dischargePa < this.#pressureSwitchPa)) return { ok: false, problem: `${trip} still active (${this.#dischargePa} Pa)` };
          this.#trips.delete(trip);
        }
        // A trip this driver does not hold is the interlock's own latch; nothing to do here.
        return { ok: true };
      }
      default:
        return { ok: false, problem: `unknown action ${JSON.stringify(command.action)}; this unit knows ${PROCESS_UNIT_ACTIONS.join(', ')}` };
    }
  }

  #goSafe(): void {
    this.#pumpOn = this.#safeState.running;
    for (const name of PROCESS_SETPOINTS) this.#setpoints[name] = this.#safeState.setpoints[name] as number;
  }

  #onHeartbeat(): void {
    if (!this.#active) return;
    this.#guarded('heartbeat', () => {
      const nowMs = this.#nowMs();
      // A heartbeat that comes after the deadline still trips the watchdog first: the gap happened.
      this.#advanceTo(nowMs);
      this.#lastHeartbeatMs = nowMs;
      if (this.#safeStopReason !== null) {
        // The setpoints are the safe ones now, so clearing does not resume the old operation.
        this.#log(`heartbeat back; clearing safe stop (${this.#safeStopReason})`);
        this.#safeStopReason = null;
      }
    });
  }

  /** Integrates up to `nowMs`, going to the safe state at the watchdog deadline if it passed on the way. */
  #advanceTo(nowMs: number): void {
    if (this.#heartbeatTimeoutMs > 0 && this.#safeStopReason === null) {
      const deadlineMs = this.#lastHeartbeatMs + this.#heartbeatTimeoutMs;
      if (nowMs > deadlineMs) {
        this.#integrate(deadlineMs);
        this.#goSafe();
        this.#safeStopReason = `no heartbeat for ${this.#heartbeatTimeoutMs} ms`;
        this.#log(`watchdog: ${this.#safeStopReason}; going to the safe state`);
      }
    }
    this.#integrate(nowMs);
  }

  #integrate(toMs: number): void {
    // SAFETY: a clock that stands still, runs backwards or returns NaN/Infinity produces no change.
    if (!Number.isFinite(toMs - this.#physicsTimeMs)) return;
    while (toMs - this.#physicsTimeMs > 0) {
      const dtMs = Math.min(MAX_STEP_MS, toMs - this.#physicsTimeMs);
      const dtS = dtMs / 1000;
      const targetSpeed = this.#pumpOn ? this.#setpoints.pump_speed : 0;
      this.#speedRadPerS = approach(this.#speedRadPerS, targetSpeed, PUMP_MODEL.speedRampRadPerS2 * dtS);
      this.#suctionPosition = approach(this.#suctionPosition, this.#setpoints.suction_valve, PUMP_MODEL.valveStrokePerS * dtS);
      this.#dischargePosition = approach(this.#dischargePosition, this.#setpoints.discharge_valve, PUMP_MODEL.valveStrokePerS * dtS);
      this.#levelM = Math.max(0, this.#levelM + ((this.#inflowM3PerS - this.#flowM3PerS) * dtS) / PUMP_MODEL.tankAreaM2);
      this.#physicsTimeMs += dtMs;
      this.#solveHydraulics(this.#physicsTimeMs);
    }
  }

  /** Steady-state pump and system curves: rise a*w^2 - b*q^2 equals receiver pressure plus valve and line losses. */
  #solveHydraulics(atMs: number): void {
    const m = PUMP_MODEL;
    const staticPa = m.densityKgPerM3 * m.gravityMPerS2 * (this.#levelM + m.tankElevationM);
    const a = m.shutoffRisePa / m.ratedSpeedRadPerS ** 2;
    const q2 = m.ratedFlowM3PerS ** 2;
    const b = m.pumpDroopPa / q2;
    const ud = this.#dischargePosition;
    const us = this.#suctionPosition;
    const drive = staticPa + a * this.#speedRadPerS ** 2 - m.receiverPressurePa;
    const flowing = ud > 1e-3 && us > 1e-3 && this.#levelM > 0 && drive > 0;
    const resistance = flowing ? b + m.dischargeValveLossPa / q2 / ud ** 2 + m.suctionLossPa / q2 / us ** 2 : Infinity;
    this.#flowM3PerS = flowing ? Math.sqrt(drive / resistance) : 0;
    this.#suctionPa = staticPa - (flowing ? (m.suctionLossPa / q2 / us ** 2) * this.#flowM3PerS ** 2 : 0);
    const spike = atMs < this.#spikeUntilMs ? this.#spikePa : 0;
    this.#dischargePa = this.#suctionPa + a * this.#speedRadPerS ** 2 - b * this.#flowM3PerS ** 2 + spike;
    // The driver's own pressure switch: trips the pump and latches until an authorised reset is released.
    if (this.#dischargePa >= this.#pressureSwitchPa && !this.#trips.has(PRESSURE_SWITCH_TRIP)) {
      this.#trips.add(PRESSURE_SWITCH_TRIP);
      this.#pumpOn = false;
      this.#log(`pressure switch: ${this.#dischargePa} Pa >= ${this.#pressureSwitchPa} Pa; pump tripped`);
    }
  }

  #publishState(): void {
    const timeMs = this.#nowMs();
    this.#advanceTo(timeMs);
    const state = this.snapshot(timeMs);
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

  /** Timer and bus callbacks must never throw into Node or the transport; a driver bug drives to the safe state. */
  #guarded(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#log(`${what} failed, going safe: ${message(error)}`);
      this.#goSafe();
    }
  }
}
