// Simulated device driver for an N-joint robot arm: kinematic joints, state publishing, heartbeat watchdog.
// It must never move on a command it did not itself verify as released by the interlock for this device.

import type { KeyObject } from 'node:crypto';
import { verifyReleasedCommand, type ReleasedCommand } from '../src/dispatch/released-command.js';
import { DEVICE_ID_PATTERN, topicSet, type TopicSet } from '../src/transport/topics.js';
import type { MessageHandler, Subscription, Transport } from '../src/transport/transport.js';

export interface SimulatedArmOptions {
  readonly deviceId: string;
  readonly transport: Transport;
  /** The only key whose releases move this arm. */
  readonly interlockPublicKey: KeyObject;
  readonly jointCount: number;
  /** Defaults to all zeros. */
  readonly initialPositionsRad?: readonly number[];
  /** How often state is published on the actuator state topic; default 20. */
  readonly statePeriodMs?: number;
  /** How often the joints are integrated and the watchdog is checked; default 10. */
  readonly physicsPeriodMs?: number;
  /** Halt when the heartbeat topic is silent this long; default 1000, 0 disables the watchdog. */
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

/** The JSON published on `actuatorState(deviceId)`. */
export interface ArmStateMessage {
  readonly positionsRad: number[];
  readonly velocitiesRadPerS: number[];
  readonly moving: boolean;
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
  readonly timeMs: number;
}

export const ARM_ACTIONS = ['move_joints', 'stop'] as const;

interface MutableRelease {
  atMs: number;
  token: string;
  accepted: boolean;
  problem?: string;
  command?: ReleasedCommand;
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly problem: string };

type MoveCheck =
  | { readonly ok: true; readonly positionsRad: number[]; readonly velocityRadPerS: number }
  | { readonly ok: false; readonly problem: string };

function positiveFinite(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`SimulatedArm: ${name} must be a finite number > 0, got ${value}`);
  return value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class SimulatedArm {
  readonly deviceId: string;
  readonly jointCount: number;
  readonly #transport: Transport;
  readonly #interlockPublicKey: KeyObject;
  readonly #topics: TopicSet;
  readonly #statePeriodMs: number;
  readonly #physicsPeriodMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #nowMs: () => number;
  readonly #log: (msg: string) => void;

  #positionsRad: number[];
  #targetsRad: number[];
  #velocitiesRadPerS: number[];
  /** Speed limit of the motion in progress, from the last accepted move_joints. */
  #speedRadPerS = 0;
  #physicsTimeMs = 0;
  #lastHeartbeatMs = 0;
  #safeStopReason: string | null = null;
  #lastAuditSeq = 0;
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

  /** Throws on options that could never describe an arm; these are wiring bugs, not runtime input. */
  constructor(options: SimulatedArmOptions) {
    if (!DEVICE_ID_PATTERN.test(options.deviceId)) throw new RangeError(`SimulatedArm: invalid device id ${JSON.stringify(options.deviceId)}`);
    if (!Number.isSafeInteger(options.jointCount) || options.jointCount < 1) {
      throw new RangeError(`SimulatedArm: jointCount must be a positive integer, got ${options.jointCount}`);
    }
    const initial = options.initialPositionsRad ?? new Array<number>(options.jointCount).fill(0);
    if (initial.length !== options.jointCount || !initial.every((p) => Number.isFinite(p))) {
      throw new RangeError(`SimulatedArm: initialPositionsRad must be ${options.jointCount} finite numbers`);
    }
    const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 1000;
    if (!Number.isFinite(heartbeatTimeoutMs) || heartbeatTimeoutMs < 0) {
      throw new RangeError(`SimulatedArm: heartbeatTimeoutMs must be a finite number >= 0, got ${heartbeatTimeoutMs}`);
    }
    this.deviceId = options.deviceId;
    this.jointCount = options.jointCount;
    this.#transport = options.transport;
    this.#interlockPublicKey = options.interlockPublicKey;
    this.#topics = options.topics ?? topicSet();
    this.#statePeriodMs = positiveFinite(options.statePeriodMs ?? 20, 'statePeriodMs');
    this.#physicsPeriodMs = positiveFinite(options.physicsPeriodMs ?? 10, 'physicsPeriodMs');
    this.#heartbeatTimeoutMs = heartbeatTimeoutMs;
    this.#nowMs = options.nowMs ?? (() => Date.now());
    const log = options.log ?? (() => {});
    this.#log = (msg) => log(`arm-driver[${options.deviceId}]: ${msg}`);
    this.#positionsRad = [...initial];
    this.#targetsRad = [...initial];
    this.#velocitiesRadPerS = new Array<number>(options.jointCount).fill(0);
  }

  get positionsRad(): number[] {
    return [...this.#positionsRad];
  }

  get targetsRad(): number[] {
    return [...this.#targetsRad];
  }

  get velocitiesRadPerS(): number[] {
    return [...this.#velocitiesRadPerS];
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

  /** Why the arm is safe-stopped, or null. */
  get safeStopReason(): string | null {
    return this.#safeStopReason;
  }

  get moving(): boolean {
    return this.#targetsRad.some((target, j) => target !== this.#positionsRad[j]);
  }

  get lastCommandId(): string | null {
    return this.#lastCommandId;
  }

  /** The instant `positionsRad` describes (the last integration step). */
  get physicsTimeMs(): number {
    return this.#physicsTimeMs;
  }

  get running(): boolean {
    return this.#running;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const generation = ++this.#generation;
    const nowMs = this.#nowMs();
    this.#physicsTimeMs = nowMs;
    // The watchdog counts from start, so an interlock that never comes up still leaves the arm halted.
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
    this.#log(`started (${this.jointCount} joints, watchdog ${this.#heartbeatTimeoutMs === 0 ? 'off' : `${this.#heartbeatTimeoutMs} ms`})`);
  }

  /** Stops timers and subscriptions; safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    clearInterval(this.#physicsTimer);
    clearInterval(this.#stateTimer);
    this.#physicsTimer = undefined;
    this.#stateTimer = undefined;
    // A driver that restarts must not pick up motion commanded before it went down.
    this.#halt();
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
      this.#log(`release handling failed, halting: ${message(error)}`);
      this.#halt();
    }
  }

  #consider(record: MutableRelease, nowMs: number): Outcome {
    // SAFETY: nothing below runs unless the interlock's signature, device, expiry and seq all check out.
    const check = verifyReleasedCommand(record.token, this.#interlockPublicKey, { deviceId: this.deviceId, nowMs, lastAuditSeq: this.#lastAuditSeq });
    if (!check.ok) return { ok: false, problem: check.problem };
    const command = check.command;
    record.command = command;
    if (typeof command.commandId !== 'string') return { ok: false, problem: 'commandId is not a string' };
    // SAFETY: a seq of Infinity or 1.5 would let one release lock out, or reorder, all later ones.
    if (!Number.isSafeInteger(command.auditSeq)) return { ok: false, problem: `audit seq ${command.auditSeq} is not an integer` };
    // SAFETY: only a stop may use the safe-state exemption from seq ordering.
    if (command.safeState && command.action !== 'stop') return { ok: false, problem: `safe-state release of ${command.action}: only stop is a safe state` };
    // SAFETY: an authentic release is consumed even if refused below, so it cannot be replayed into
    // acceptance later (e.g. once the watchdog clears) and no older release can follow it. A safe-state
    // release may carry seq 0 (no audit record), so the watermark only ever rises.
    this.#lastAuditSeq = Math.max(this.#lastAuditSeq, command.auditSeq);
    // Bring the joints up to now under the old targets, so the new ones apply from the moment of receipt.
    this.#advanceTo(nowMs);
    switch (command.action) {
      case 'move_joints': {
        const move = this.#checkMove(command.params);
        if (!move.ok) return move;
        // SAFETY: while the interlock is silent, no new motion starts, whatever was released earlier.
        if (this.#safeStopReason !== null) return { ok: false, problem: `safe-stopped (${this.#safeStopReason}); move_joints refused` };
        this.#targetsRad = move.positionsRad;
        this.#speedRadPerS = move.velocityRadPerS;
        break;
      }
      case 'stop':
        this.#halt();
        break;
      default:
        return { ok: false, problem: `unknown action ${JSON.stringify(command.action)}; this arm knows ${ARM_ACTIONS.join(', ')}` };
    }
    this.#executed.push(command);
    this.#lastCommandId = command.commandId;
    this.#log(`executing ${command.action} ${command.commandId} (audit seq ${command.auditSeq})`);
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
    return { ok: true, positionsRad: [...(positions as number[])], velocityRadPerS: velocity };
  }

  #onHeartbeat(): void {
    if (!this.#running) return;
    this.#guarded('heartbeat', () => {
      const nowMs = this.#nowMs();
      // A heartbeat that comes after the deadline still trips the watchdog first: the gap happened.
      this.#advanceTo(nowMs);
      this.#lastHeartbeatMs = nowMs;
      if (this.#safeStopReason !== null) {
        // Targets were set to the halted positions, so clearing does not resume the old motion.
        this.#log(`heartbeat back; clearing safe stop (${this.#safeStopReason})`);
        this.#safeStopReason = null;
      }
    });
  }

  /** Integrates the joints up to `nowMs`, halting at the watchdog deadline if it passed on the way. */
  #advanceTo(nowMs: number): void {
    if (this.#heartbeatTimeoutMs > 0 && this.#safeStopReason === null) {
      const deadlineMs = this.#lastHeartbeatMs + this.#heartbeatTimeoutMs;
      if (nowMs > deadlineMs) {
        this.#integrate(deadlineMs);
        this.#halt();
        this.#safeStopReason = `no heartbeat for ${this.#heartbeatTimeoutMs} ms`;
        this.#log(`watchdog: ${this.#safeStopReason}; halted`);
      }
    }
    this.#integrate(nowMs);
  }

  #integrate(toMs: number): void {
    const dtMs = toMs - this.#physicsTimeMs;
    // SAFETY: a clock that stands still, runs backwards or returns NaN/Infinity must produce no motion.
    if (!Number.isFinite(dtMs) || dtMs <= 0) return;
    const dtS = dtMs / 1000;
    const maxStepRad = this.#speedRadPerS * dtS;
    for (let j = 0; j < this.jointCount; j++) {
      const position = this.#positionsRad[j] ?? 0;
      const target = this.#targetsRad[j] ?? position;
      const remaining = target - position;
      // Snap onto the target when it is within one step, so a joint never overshoots.
      const next = Math.abs(remaining) <= maxStepRad ? target : position + Math.sign(remaining) * maxStepRad;
      this.#positionsRad[j] = next;
      this.#velocitiesRadPerS[j] = (next - position) / dtS;
    }
    this.#physicsTimeMs = toMs;
  }

  #halt(): void {
    this.#targetsRad = [...this.#positionsRad];
    this.#velocitiesRadPerS.fill(0);
  }

  #publishState(): void {
    const timeMs = this.#nowMs();
    this.#advanceTo(timeMs);
    const state: ArmStateMessage = {
      positionsRad: [...this.#positionsRad],
      velocitiesRadPerS: [...this.#velocitiesRadPerS],
      moving: this.moving,
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

  /** Timer and bus callbacks must never throw into Node or the transport; a driver bug halts the arm. */
  #guarded(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#log(`${what} failed, halting: ${message(error)}`);
      this.#halt();
    }
  }
}
