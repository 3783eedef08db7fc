// Picks each device's limit set, normal or reduced. Reduced whenever a trigger holds (a person in a listed zone,
// people unknown, a low-scope agent, an operator), and, for state triggers, for holdReducedForMs after they clear.

import type { DeviceDeclaration, Mode, Principal, Zone } from '../core/declarations.js';
import { zoneContains } from '../core/zones.js';
import type { PeopleView } from './people.js';

export interface ModeDecision {
  readonly mode: Mode;
  /** Why reduced applies (empty when normal); goes into decisions so an agent knows why limits are lower. */
  readonly because: readonly string[];
}

/** Why the cell's state alone asks for reduced on this device now (person in zone, people unknown). */
export function stateTriggers(device: DeviceDeclaration, people: PeopleView, zones: ReadonlyMap<string, Zone>): string[] {
  const watched = device.modes.reducedWhenPersonInZones;
  if (watched.length === 0) return [];
  // SAFETY: when people are unknown, assume someone is there.
  if (!people.known) return [`people unknown (${people.why})`];
  const triggers: string[] = [];
  for (const zoneId of watched) {
    const zone = zones.get(zoneId);
    if (zone === undefined) {
      triggers.push(`zone ${zoneId} is not declared`);
      continue;
    }
    const inside = people.positions.filter((p) => zoneContains(zone.shape, p)).length;
    if (inside > 0) triggers.push(`${inside} person(s) in zone ${zoneId}`);
  }
  return triggers;
}

/**
 * Remembers when each device last had a state trigger, and which, so that reduced holds for a while after the
 * trigger clears (hysteresis: a person stepping on the zone boundary does not make the limits flicker). Fed with
 * every state message of a people source (see observe-state.ts) and at every decision, so the hold follows the
 * state history, not the moments commands happen to arrive.
 */
export class ModeTracker {
  private readonly lastTrigger = new Map<string, { readonly atMs: number; readonly why: string }>();
  private readonly operatorModes = new Map<string, { readonly mode: Mode; readonly why: string }>();

  /** Records the state triggers that held at `nowMs`. Never moves a device's last trigger back in time. */
  observe(device: DeviceDeclaration, triggers: readonly string[], nowMs: number): void {
    if (triggers.length === 0) return;
    const previous = this.lastTrigger.get(device.id);
    // SAFETY: an observation older than the one remembered cannot shorten the hold; NaN replaces anything, and a
    // NaN last trigger is never provably past, so it holds reduced.
    if (previous !== undefined && previous.atMs >= nowMs) return;
    this.lastTrigger.set(device.id, { atMs: nowMs, why: triggers.join('; ') });
  }

  /** When the device's state triggers last held, and which (undefined: never since start). */
  lastTriggerOf(deviceId: string): { readonly atMs: number; readonly why: string } | undefined {
    return this.lastTrigger.get(deviceId);
  }

  /**
   * An operator's choice for a device; `undefined` clears it. Only ever makes limits stricter. `why` is what decisions
   * say while it holds (a reduced mode kept from before a restart says so).
   */
  setOperatorMode(deviceId: string, mode: Mode | undefined, why = 'an operator set reduced mode'): void {
    if (mode === undefined) this.operatorModes.delete(deviceId);
    else this.operatorModes.set(deviceId, { mode, why });
  }

  operatorMode(deviceId: string): Mode | undefined {
    return this.operatorModes.get(deviceId)?.mode;
  }

  /** Why the operator's mode of the device holds (undefined when none is set). */
  operatorModeWhy(deviceId: string): string | undefined {
    return this.operatorModes.get(deviceId)?.why;
  }

  /**
   * The limit set for a command from `principal` now. `alsoReducedBecause` holds further reasons decided
   * elsewhere (an agent demoted for repeated denials); any one of them selects the reduced set.
   */
  resolve(
    device: DeviceDeclaration,
    principal: Principal,
    people: PeopleView,
    zones: ReadonlyMap<string, Zone>,
    nowMs: number,
    alsoReducedBecause: readonly string[] = [],
  ): ModeDecision {
    const triggers = stateTriggers(device, people, zones);
    this.observe(device, triggers, nowMs);
    const because: string[] = [...triggers];
    if (triggers.length === 0) {
      const last = this.lastTrigger.get(device.id);
      // SAFETY: "not provably past the hold" stays reduced, so a NaN or backwards clock cannot end it early.
      if (last !== undefined && !(nowMs - last.atMs > device.modes.holdReducedForMs)) {
        because.push(`holding reduced for ${device.modes.holdReducedForMs} ms after the last trigger, ${nowMs - last.atMs} ms ago: ${last.why}`);
      }
    }
    // An operator is a human acting directly: autonomy scopes describe agents, not people.
    if (principal.kind === 'agent' && principal.autonomyScope <= device.modes.reducedForScopeAtMost) {
      because.push(`agent ${principal.id} has autonomy scope ${principal.autonomyScope} (reduced at ${device.modes.reducedForScopeAtMost} or lower)`);
    }
    because.push(...alsoReducedBecause);
    const operator = this.operatorModes.get(device.id);
    if (operator?.mode === 'reduced') because.push(operator.why);
    return { mode: because.length > 0 ? 'reduced' : 'normal', because };
  }
}
