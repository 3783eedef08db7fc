// Simulated device driver for a transfer pump with suction and discharge valves and a supply tank: simple
// hydraulics, state publishing, heartbeat watchdog -> safe state. It never acts on a release it has not verified.

import type { ProcessSafeState } from '../src/core/kinds/process-unit.js';
import type { ReleasedCommand } from '../src/dispatch/released-command.js';
import { DriverRuntime, finiteAtLeast, type DriverOptions, type DriverProfile, type Outcome, type ReceivedRelease } from './driver-runtime.js';

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

const PROCESS_UNIT_PROFILE: DriverProfile = {
  className: 'SimulatedProcessUnit',
  logName: 'process-driver',
  defaultStatePeriodMs: 50,
  minPeriodMs: 1,
  safeStateActions: ['stop', 'go_safe'],
  watchdogAction: 'going to the safe state',
  faultAction: 'going safe',
};

/** The driver's own protection: a pressure switch on the discharge line; reported in `trips` until reset at the device. */
export const PRESSURE_SWITCH_TRIP = 'pressure_switch_high';

/** The declared safe state of pump-1 (pump off, discharge closed, suction open). */
export const DEFAULT_PROCESS_SAFE_STATE: ProcessSafeState = { running: false, setpoints: { pump_speed: 0, suction_valve: 1, discharge_valve: 0 } };

/** The common options (driver-runtime.ts), with periods of at least 1 ms; the watchdog drives to `safeState`. */
export interface SimulatedProcessUnitOptions extends DriverOptions {
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
}

/** One message seen on the actuator command topic, accepted or not (the same record every driver keeps). */
export type ReceivedProcessRelease = ReceivedRelease;

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

function atLeast(value: number, min: number, name: string): number {
  return finiteAtLeast(PROCESS_UNIT_PROFILE.className, value, min, name);
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
  readonly #runtime: DriverRuntime;
  readonly #safeState: ProcessSafeState;
  readonly #pressureSwitchPa: number;
  readonly #inflowM3PerS: number;

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

  /** Throws on options that could never describe this unit; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedProcessUnitOptions) {
    this.#runtime = new DriverRuntime(options, PROCESS_UNIT_PROFILE, {
      onStart: (nowMs) => {
        this.#physicsTimeMs = nowMs;
      },
      integrate: (toMs) => this.#integrate(toMs),
      execute: (command, nowMs) => {
        const outcome = this.#execute(command);
        if (outcome.ok) this.#solveHydraulics(nowMs);
        return outcome;
      },
      stateAt: (timeMs) => this.snapshot(timeMs),
      // The setpoints are the safe ones, so a returning heartbeat does not resume the old operation.
      onWatchdog: () => this.#goSafe(),
      onFault: () => this.#goSafe(),
      // A driver that goes down leaves the plant safe, and does not pick up old setpoints when it restarts.
      onStop: () => this.#goSafe(),
    });
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
    this.#safeState = safeState;
    this.#pressureSwitchPa = atLeast(options.pressureSwitchPa ?? 9e5, 0, 'pressureSwitchPa');
    this.#inflowM3PerS = atLeast(options.tankInflowM3PerS ?? 0, 0, 'tankInflowM3PerS');
    this.#levelM = atLeast(options.initialTankLevelM ?? 2, 0, 'initialTankLevelM');
    this.#setpoints = { ...initial };
    this.#suctionPosition = initial.suction_valve;
    this.#dischargePosition = initial.discharge_valve;
    // Physics time starts now, so a spike injected before start() does not integrate from the epoch.
    this.#physicsTimeMs = this.#runtime.nowMs();
    this.#solveHydraulics(this.#physicsTimeMs);
  }

  /** Everything that arrived on the actuator topic, in arrival order, recorded before it was looked at. */
  get received(): readonly ReceivedProcessRelease[] {
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

  get running(): boolean {
    return this.#runtime.running;
  }

  get pumpRunning(): boolean {
    return this.#pumpOn;
  }

  get safeStopped(): boolean {
    return this.safeStopReason !== null;
  }

  get safeStopReason(): string | null {
    return this.#runtime.watchdogReason;
  }

  get trips(): readonly string[] {
    return [...this.#trips];
  }

  /**
   * A person at the pump presses its reset button: the pressure switch clears if the pressure is below its setting
   * again. This is how the device's own trip is cleared; the interlock refuses a released reset_trip while the device
   * still reports the trip, and resets its own latch only after.
   */
  resetAtDevice(trip: string): { ok: true } | { ok: false; problem: string } {
    if (trip !== PRESSURE_SWITCH_TRIP || !this.#trips.has(trip)) return { ok: false, problem: `${trip} is not tripped at the device` };
    if (!(this.#dischargePa < this.#pressureSwitchPa)) return { ok: false, problem: `${trip} still active (${this.#dischargePa} Pa)` };
    this.#trips.delete(trip);
    this.#runtime.log(`pressure switch reset at the device`);
    return { ok: true };
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
      lastCommandId: this.#runtime.lastCommandId,
      timeMs,
    };
  }

  /**
   * Test hook: adds `addPa` to the discharge pressure for `durationMs` (a blocked line, a closing valve
   * downstream). Takes effect at once, so the next published state shows it.
   */
  injectPressureSpike(addPa: number, durationMs: number): void {
    atLeast(addPa, 0, 'addPa');
    atLeast(durationMs, 0, 'durationMs');
    const nowMs = this.#runtime.nowMs();
    this.#runtime.advanceTo(nowMs);
    this.#spikePa = addPa;
    this.#spikeUntilMs = nowMs + durationMs;
    this.#solveHydraulics(nowMs);
  }

  start(): Promise<void> {
    return this.#runtime.start();
  }

  /** Stops timers and subscriptions and leaves the unit in its safe state; safe to call twice. */
  stop(): Promise<void> {
    return this.#runtime.stop();
  }

  /** An admitted release, with the physics already integrated up to the moment of receipt. */
  #execute(command: ReleasedCommand): Outcome {
    const params = command.params;
    const safeStopReason = this.#runtime.watchdogReason;
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
        if (safeStopReason !== null) return { ok: false, problem: `safe-stopped (${safeStopReason}); set_setpoint refused` };
        this.#setpoints[name] = value;
        return { ok: true };
      }
      case 'start':
        if (safeStopReason !== null) return { ok: false, problem: `safe-stopped (${safeStopReason}); start refused` };
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
    // The driver's own pressure switch: trips the pump and latches until it is reset at the device (resetAtDevice).
    if (this.#dischargePa >= this.#pressureSwitchPa && !this.#trips.has(PRESSURE_SWITCH_TRIP)) {
      this.#trips.add(PRESSURE_SWITCH_TRIP);
      this.#pumpOn = false;
      this.#runtime.log(`pressure switch: ${this.#dischargePa} Pa >= ${this.#pressureSwitchPa} Pa; pump tripped`);
    }
  }
}
