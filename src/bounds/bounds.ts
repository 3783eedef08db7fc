// The bounds stage: is this command physically safe now? Rate limits, fresh state, the mode (normal/reduced),
// the device kind's own limits, then cell-level shared zones. What is not proven safe is denied.

import type { VerifiedCommand } from '../core/command.js';
import type { Declarations, DeviceDeclaration, DeviceState, Mode, SharedZone } from '../core/declarations.js';
import type { ReleaseView, StateView } from '../core/device-state.js';
import type { DeviceKind } from '../core/kinds/index.js';
import { silentLogger, type Logger } from '../core/log.js';
import { reason, type Reason } from '../core/reasons.js';
import { decide, denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { DeviceMemory, KindBounds, KindCommand, KindMemoryPersistence } from './kind-bounds.js';
import { ModeTracker } from './modes.js';
import { peopleInCell, type PeopleView } from './people.js';
import { agentRateKey, deviceRateKey, RateMemory } from './rate-limits.js';
import { releaseProgress } from './release-progress.js';
import { CONVEYOR_BOUNDS } from './conveyor-bounds.js';
import { MOBILE_ROBOT_BOUNDS } from './mobile-robot-bounds.js';
import { PROCESS_UNIT_BOUNDS } from './process-unit-bounds.js';
import { ROBOT_ARM_BOUNDS } from './robot-arm-bounds.js';
import type { SafetyJournal } from './safety-memory.js';

/** Each kind's checks, keyed like the kind registry. */
const KIND_BOUNDS: { readonly [K in DeviceKind]: KindBounds<Extract<DeviceDeclaration, { kind: K }>, Extract<DeviceState, { kind: K }>> } = {
  robot_arm: ROBOT_ARM_BOUNDS,
  mobile_robot: MOBILE_ROBOT_BOUNDS,
  conveyor: CONVEYOR_BOUNDS,
  process_unit: PROCESS_UNIT_BOUNDS,
};

function boundsOf(kind: DeviceKind): KindBounds<DeviceDeclaration, DeviceState> {
  return KIND_BOUNDS[kind] as unknown as KindBounds<DeviceDeclaration, DeviceState>;
}

/** Where the bounds memory writes what must survive a restart, and how the store says it. */
export interface BoundsMemoryOptions {
  /** Latched trips, released setpoints and operator modes are written here, durably (absent: memory only). */
  readonly journal?: SafetyJournal;
  readonly log?: Logger;
}

/**
 * What the bounds stage remembers between commands: rate windows, mode hysteresis and operator modes, each kind's
 * device memory. With a journal, what a restart must not forget is written in the same synchronous step that changes
 * it, so no later decision or release acts on a change that is not yet durable.
 */
export class BoundsMemory {
  readonly rates = new RateMemory();
  readonly modes = new ModeTracker();
  private readonly devices = new Map<string, DeviceMemory>();
  /** Per device: the revision of its kind memory last handed to the journal, and the text written. */
  private readonly written = new Map<string, { revision: number; text: string | undefined }>();
  private readonly journal: SafetyJournal | undefined;
  private readonly log: Logger;

  constructor(options: BoundsMemoryOptions = {}) {
    this.journal = options.journal;
    this.log = options.log ?? silentLogger;
  }

  device(deviceId: string): DeviceMemory {
    let memory = this.devices.get(deviceId);
    if (memory === undefined) {
      memory = new Map();
      this.devices.set(deviceId, memory);
    }
    return memory;
  }

  /**
   * Writes the device's kind memory to the journal when it changed since last written. Never throws: a failed write
   * leaves the memory in force for this run and marks the store incomplete, so that the next start fails closed.
   */
  persist(device: DeviceDeclaration): void {
    try {
      this.write(device);
    } catch (error) {
      this.writeFailed(`the memory of ${device.id} (latched trips, released setpoints)`, error);
    }
  }

  /** As `persist`, but a failed write throws (at start, where it refuses the start). */
  write(device: DeviceDeclaration): void {
    const persistence = boundsOf(device.kind).persistence;
    if (persistence === undefined || this.journal === undefined) return;
    const memory = this.device(device.id);
    const revision = persistence.revision(memory);
    const last = this.written.get(device.id);
    if (last?.revision === revision) return;
    // Noted before the write: a store that fails is not retried at every state message (it is marked incomplete).
    this.written.set(device.id, { revision, text: last?.text });
    const text = JSON.stringify(persistence.save(memory));
    if (text === last?.text) return;
    this.journal.saveDevice(device.id, device.kind, text);
    this.written.set(device.id, { revision, text });
  }

  /** Before `command` is published: writes what its release will add to the device's memory (a setpoint). Never throws. */
  persistAhead(device: DeviceDeclaration, command: KindCommand, nowMs: number): void {
    const ahead = boundsOf(device.kind).persistence?.savedAfterRelease;
    if (ahead === undefined || this.journal === undefined) return;
    try {
      const saved = ahead(device, command, this.device(device.id), nowMs);
      if (saved === undefined) return;
      const text = JSON.stringify(saved);
      this.journal.saveDevice(device.id, device.kind, text);
      // The memory catches up once the release is published; the same text is then not written twice.
      this.written.set(device.id, { revision: this.written.get(device.id)?.revision ?? NaN, text });
    } catch (error) {
      this.writeFailed(`the ${command.action} released to ${device.id}`, error);
    }
  }

  /**
   * An operator's mode switch (`undefined`: auto). Reduced is in force before it is written (stricter at once) and
   * holds even when the write fails. Auto is in force only once written: when it cannot be, this throws and the
   * device stays reduced.
   */
  setOperatorMode(deviceId: string, mode: Mode | undefined, atMs: number, why?: string): void {
    if (mode === 'reduced') {
      this.modes.setOperatorMode(deviceId, 'reduced', why);
      try {
        this.journal?.saveOperatorMode(deviceId, { mode: 'reduced', why: this.modes.operatorModeWhy(deviceId) ?? '', sinceMs: atMs });
      } catch (error) {
        this.writeFailed(`reduced mode of ${deviceId}`, error);
      }
      return;
    }
    this.journal?.saveOperatorMode(deviceId, undefined);
    this.modes.setOperatorMode(deviceId, mode);
  }

  private writeFailed(what: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.log.error(`${what} not stored (${message}): in force in this run; the next start fails closed`);
    try {
      this.journal?.markLost(`${what} could not be stored: ${message}`);
    } catch (again) {
      this.log.error(`the safety memory store could not be marked incomplete either (${again instanceof Error ? again.message : String(again)}): a restart may not remember ${what}`);
    }
  }
}

/** How a kind's device memory is stored across restarts (undefined: the kind keeps nothing that must survive). */
export function kindPersistence(kind: DeviceKind): KindMemoryPersistence<DeviceDeclaration> | undefined {
  return boundsOf(kind).persistence;
}

/** Lets the device's kind see a new state message (e.g. to latch a trip the moment it happens). */
export function observeDeviceState(device: DeviceDeclaration, state: DeviceState, memory: BoundsMemory, nowMs: number): void {
  if (state.kind !== device.kind) return;
  boundsOf(device.kind).observe?.(device, state, memory.device(device.id), nowMs);
  // SAFETY: a trip latched now is durable before anything else happens (state handling is synchronous).
  memory.persist(device);
}

/** Lets the device's kind see a state message the interlock refused (a process unit still latches the trips it shows). */
export function observeRefusedState(device: DeviceDeclaration, message: unknown, memory: BoundsMemory, nowMs: number): void {
  boundsOf(device.kind).observeRefused?.(device, message, memory.device(device.id), nowMs);
  memory.persist(device);
}

/** Tells the device's kind that a command was released to it (e.g. an authorised trip reset clears the latch). */
export function recordRelease(device: DeviceDeclaration, command: KindCommand, memory: BoundsMemory, nowMs: number): void {
  boundsOf(device.kind).released?.(device, command, memory.device(device.id), nowMs);
  // A trip reset is written only now, after it was published: a crash before this keeps the latch (stricter).
  memory.persist(device);
}

/**
 * Called just before a command is published to the device: what its release adds to the kind's memory (a released
 * setpoint) is written to the journal first, so a crash after the device got it cannot lose it. If the publish then
 * fails, the store holds a value never released until the next write; a step or rate measured from it is no looser,
 * since that value itself passed the same limits against the one it replaces.
 */
export function recordReleaseAhead(device: DeviceDeclaration, command: KindCommand, memory: BoundsMemory, nowMs: number): void {
  memory.persistAhead(device, command, nowMs);
}

export interface BoundsInput {
  readonly command: VerifiedCommand;
  readonly declarations: Declarations;
  readonly states: StateView;
  readonly releases: ReleaseView;
  readonly memory: BoundsMemory;
  readonly nowMs: number;
  /** Reasons decided outside the bounds stage that select the reduced limit set (an agent's demotion). */
  readonly reducedBecause?: readonly string[];
}

export interface BoundsResult extends StageResult {
  /** The limit set the command was checked in; undefined when it was not reached (safe state, no state). */
  readonly mode?: Mode;
  /** Why reduced applies (empty in normal). */
  readonly modeBecause?: readonly string[];
}

function rateReasons(input: BoundsInput): Reason[] {
  const { command, declarations, memory, nowMs } = input;
  const reasons: Reason[] = [];
  const perAgent = declarations.commandLimits.ratePerAgent;
  if (perAgent !== undefined) {
    const count = memory.rates.count(agentRateKey(command.agent.id), perAgent, nowMs);
    if (count > perAgent.commands) {
      reasons.push(
        reason('BOUNDS_RATE_LIMIT', `agent ${command.agent.id} sent ${count} commands within ${perAgent.perMs} ms (limit ${perAgent.commands})`, {
          ruleId: 'cell/commands/ratePerAgent',
          limit: perAgent.commands,
          actual: count,
        }),
      );
    }
  }
  const perDevice = command.device.rateLimit;
  if (perDevice !== undefined) {
    const count = memory.rates.count(deviceRateKey(command.device.id), perDevice, nowMs);
    if (count > perDevice.commands) {
      reasons.push(
        reason('BOUNDS_RATE_LIMIT', `${command.device.id} received ${count} commands within ${perDevice.perMs} ms (limit ${perDevice.commands})`, {
          ruleId: `${command.device.id}/rateLimit`,
          limit: perDevice.commands,
          actual: count,
        }),
      );
    }
  }
  return reasons;
}

/** Reasons the device's state cannot be used: missing, stale (or from the future), of another kind. */
export function stateReasons(device: DeviceDeclaration, states: StateView, nowMs: number): Reason[] {
  const observed = states.latest(device.id);
  if (observed === undefined) {
    return [reason('BOUNDS_STATE_MISSING', `no valid state received from ${device.id}`, { ruleId: `${device.id}/maxStateAge` })];
  }
  const ageMs = nowMs - observed.receivedAtMs;
  // SAFETY: `!(age <= max)` also rejects a NaN age; a negative age (clock went back) is not fresh either.
  if (!(ageMs >= 0 && ageMs <= device.maxStateAgeMs)) {
    return [
      reason('BOUNDS_STATE_STALE', `state of ${device.id} is ${ageMs} ms old, limit ${device.maxStateAgeMs} ms`, {
        ruleId: `${device.id}/maxStateAge`,
        limit: device.maxStateAgeMs,
        actual: ageMs,
        unit: 'ms',
      }),
    ];
  }
  if (observed.state.kind !== device.kind) {
    return [reason('BOUNDS_STATE_KIND_MISMATCH', `state of ${device.id} is of kind ${observed.state.kind}, the device is ${device.kind}`)];
  }
  return [];
}

/**
 * Shared zones: the command may not take the device into a zone that another listed device is in, or may be taken
 * into by its last release, until that device's own state names that release and shows it at rest
 * (release-progress.ts). Unknown positions count as occupying.
 */
function sharedZoneReasons(input: BoundsInput, shared: readonly SharedZone[], entered: readonly string[] | 'unknown'): Reason[] {
  const { command, declarations, states, releases, nowMs } = input;
  const reasons: Reason[] = [];
  for (const zone of shared) {
    if (!zone.devices.includes(command.device.id)) continue;
    if (entered !== 'unknown' && !entered.includes(zone.zoneId)) continue;
    for (const otherId of zone.devices) {
      if (otherId === command.device.id) continue;
      const other = declarations.devices.get(otherId);
      const why = other === undefined ? 'is not declared' : occupiedBy(other, zone.zoneId, input.declarations, states, releases, nowMs);
      if (why !== undefined) {
        reasons.push(
          reason(
            'BOUNDS_SHARED_ZONE_OCCUPIED',
            `${command.device.id} ${entered === 'unknown' ? 'may enter' : 'would enter'} shared zone ${zone.zoneId}, which ${otherId} ${why}`,
            { ruleId: `cell/sharedZones/${zone.zoneId}` },
          ),
        );
      }
    }
  }
  return reasons;
}

/** Why `other` counts as inside `zoneId` (undefined when it provably is not). */
function occupiedBy(
  other: DeviceDeclaration,
  zoneId: string,
  declarations: Declarations,
  states: StateView,
  releases: ReleaseView,
  nowMs: number,
): string | undefined {
  if (stateReasons(other, states, nowMs).length > 0) return 'may occupy (its state is missing or stale)';
  const observed = states.latest(other.id);
  if (observed === undefined) return 'may occupy (no state)';
  const kind = boundsOf(other.kind);
  const occupancy = kind.occupancy(other, observed.state, declarations.zones);
  if (occupancy.zoneIds === 'unknown') return 'may occupy (its position in the cell is unknown)';
  if (occupancy.zoneIds.includes(zoneId)) return 'occupies';
  // SAFETY: a release counts until the device's own state names it at rest; when that state was received proves
  // nothing (it may have been sent before the driver had the release). A stop is a release like any other: once
  // named at rest, the device is judged by the place it reports.
  const progress = releaseProgress(releases.last(other.id), observed, () => occupancy.moving);
  if (progress.finished) return undefined;
  const { action, params } = progress.release;
  // Not yet named: from wherever it may have got at its top speed (underWay), the release's path and its end.
  const target = kind.zonesEntered(other, { action, params }, observed.state, declarations.zones, progress.underWay);
  if (target === 'unknown' || target.includes(zoneId)) return `has been released into (${progress.why})`;
  return undefined;
}

export function checkBounds(input: BoundsInput): BoundsResult {
  const { command, declarations, states, memory, nowMs } = input;
  if (command.safeState) return PASS;
  const device = command.device;
  const rate = rateReasons(input);
  const stale = stateReasons(device, states, nowMs);
  if (stale.length > 0) return denyWith(...rate, ...stale);

  const people: PeopleView = peopleInCell(declarations.people, states, nowMs);
  const mode = memory.modes.resolve(device, command.agent, people, declarations.zones, nowMs, input.reducedBecause);
  const observed = states.latest(device.id);
  if (observed === undefined) return denyWith(...rate, ...stateReasons(device, states, nowMs));
  const kind = boundsOf(device.kind);
  const kindCommand = { action: command.action, params: command.params };
  const deviceMemory = memory.device(device.id);
  if (observed.state.kind === device.kind) kind.observe?.(device, observed.state, deviceMemory, nowMs);
  memory.persist(device);
  const lastRelease = input.releases.last(device.id);
  // SAFETY: until the device's state names its last release, the command is checked as if that release (or one
  // before it) were still moving the device at its top speed: the kind widens the path by that run-out.
  const progress = releaseProgress(lastRelease, observed, () => kind.occupancy(device, observed.state, declarations.zones).moving);
  const underWay = progress.finished ? undefined : progress.underWay;
  const own = kind.check(device, kindCommand, {
    state: observed.state,
    mode: mode.mode,
    nowMs,
    lastRelease,
    people,
    zones: declarations.zones,
    memory: deviceMemory,
    ...(underWay === undefined ? {} : { underWay }),
  });
  const sharedForDevice = declarations.sharedZones.filter((z) => z.devices.includes(device.id));
  const entered = sharedForDevice.length === 0 ? [] : kind.zonesEntered(device, kindCommand, observed.state, declarations.zones, underWay);
  const shared = sharedForDevice.length === 0 ? [] : sharedZoneReasons(input, sharedForDevice, entered);
  const result = decide([rate.length > 0 ? denyWith(...rate) : PASS, own, shared.length > 0 ? denyWith(...shared) : PASS]);
  return { ...result, mode: mode.mode, modeBecause: mode.because };
}

/** The limit set a command would be checked in now (the policy stage tells Cedar). Same rules as checkBounds. */
export function currentMode(input: Omit<BoundsInput, 'releases'>): Mode {
  const { command, declarations, states, memory, nowMs } = input;
  const people = peopleInCell(declarations.people, states, nowMs);
  return memory.modes.resolve(command.device, command.agent, people, declarations.zones, nowMs, input.reducedBecause).mode;
}
