// The bounds stage: is this command physically safe now? Rate limits, fresh state, the mode (normal/reduced),
// the device kind's own limits, then cell-level shared zones. What is not proven safe is denied.

import type { VerifiedCommand } from '../core/command.js';
import type { Declarations, DeviceDeclaration, DeviceState, Mode, SharedZone } from '../core/declarations.js';
import type { ReleaseView, StateView } from '../core/device-state.js';
import type { DeviceKind } from '../core/kinds/index.js';
import { reason, type Reason } from '../core/reasons.js';
import { decide, denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { DeviceMemory, KindBounds, KindCommand } from './kind-bounds.js';
import { ModeTracker } from './modes.js';
import { peopleInCell, type PeopleView } from './people.js';
import { RateMemory } from './rate-limits.js';
import { CONVEYOR_BOUNDS } from './conveyor-bounds.js';
import { MOBILE_ROBOT_BOUNDS } from './mobile-robot-bounds.js';
import { PROCESS_UNIT_BOUNDS } from './process-unit-bounds.js';
import { ROBOT_ARM_BOUNDS } from './robot-arm-bounds.js';

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

/** What the bounds stage remembers between commands: rate windows, mode hysteresis, each kind's device memory. */
export class BoundsMemory {
  readonly rates = new RateMemory();
  readonly modes = new ModeTracker();
  private readonly devices = new Map<string, DeviceMemory>();

  device(deviceId: string): DeviceMemory {
    let memory = this.devices.get(deviceId);
    if (memory === undefined) {
      memory = new Map();
      this.devices.set(deviceId, memory);
    }
    return memory;
  }
}

/** Lets the device's kind see a new state message (e.g. to latch a trip the moment it happens). */
export function observeDeviceState(device: DeviceDeclaration, state: DeviceState, memory: BoundsMemory, nowMs: number): void {
  if (state.kind !== device.kind) return;
  boundsOf(device.kind).observe?.(device, state, memory.device(device.id), nowMs);
}

/** Lets the device's kind see a state message the interlock refused (a process unit still latches the trips it shows). */
export function observeRefusedState(device: DeviceDeclaration, message: unknown, memory: BoundsMemory, nowMs: number): void {
  boundsOf(device.kind).observeRefused?.(device, message, memory.device(device.id), nowMs);
}

/** Tells the device's kind that a command was released to it (e.g. an authorised trip reset clears the latch). */
export function recordRelease(device: DeviceDeclaration, command: KindCommand, memory: BoundsMemory, nowMs: number): void {
  boundsOf(device.kind).released?.(device, command, memory.device(device.id), nowMs);
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
    const count = memory.rates.count(`agent\u0000${command.agent.id}`, perAgent, nowMs);
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
    const count = memory.rates.count(`device\u0000${command.device.id}`, perDevice, nowMs);
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
 * Shared zones: the command may not take the device into a zone that another listed device is in, or has been
 * released into and not yet been seen to leave. Unknown positions count as occupying.
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
  const last = releases.last(other.id);
  if (last !== undefined) {
    const target = kind.zonesEntered(other, { action: last.action, params: last.params }, observed.state, declarations.zones);
    // A release counts until the device is seen at rest in state received after it.
    const settled = observed.receivedAtMs > last.releasedAtMs && !occupancy.moving;
    if (!settled && (target === 'unknown' || target.includes(zoneId))) return 'has been released into';
  }
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
  const own = kind.check(device, kindCommand, {
    state: observed.state,
    mode: mode.mode,
    nowMs,
    lastRelease: input.releases.last(device.id),
    people,
    zones: declarations.zones,
    memory: deviceMemory,
  });
  const sharedForDevice = declarations.sharedZones.filter((z) => z.devices.includes(device.id));
  const shared = sharedForDevice.length === 0 ? [] : sharedZoneReasons(input, sharedForDevice, kind.zonesEntered(device, kindCommand, observed.state, declarations.zones));
  const result = decide([rate.length > 0 ? denyWith(...rate) : PASS, own, shared.length > 0 ? denyWith(...shared) : PASS]);
  return { ...result, mode: mode.mode, modeBecause: mode.because };
}

/** The limit set a command would be checked in now (the policy stage tells Cedar). Same rules as checkBounds. */
export function currentMode(input: Omit<BoundsInput, 'releases'>): Mode {
  const { command, declarations, states, memory, nowMs } = input;
  const people = peopleInCell(declarations.people, states, nowMs);
  return memory.modes.resolve(command.device, command.agent, people, declarations.zones, nowMs, input.reducedBecause).mode;
}
