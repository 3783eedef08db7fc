// Trips and permissives of a process unit: latched or device-reported trips deny every non-safe command, a reset
// passes only for a latched trip whose condition has cleared, and start needs every permissive to hold.

import type { ProcessCondition, ProcessUnitDeclaration, ProcessUnitState } from '../../core/kinds/process-unit.js';
import { reason, type Reason } from '../../core/reasons.js';
import { describeCondition, evaluateCondition } from './conditions.js';
import type { ProcessUnitMemory } from './process-memory.js';

function tripRule(device: ProcessUnitDeclaration, trip: string): string {
  // A trip only the device knows fired the device's own protection, not a declared one.
  return device.trips.some((t) => t.id === trip) ? `${device.id}/trips/${trip}` : `${device.id}/state/trips/${trip}`;
}

/** Numbers for a reason about a condition: limit and unit for a quantity, and the actual value when it is a number. */
function conditionDetails(condition: ProcessCondition | undefined, actual: number | boolean | undefined): { limit?: number; actual?: number; unit?: string } {
  if (condition === undefined || condition.test === 'equals') return {};
  return { limit: condition.limit, unit: condition.unit, ...(typeof actual === 'number' ? { actual } : {}) };
}

/** Every trip in force: latched in memory or reported by the device now. Declared trips first, in file order. */
export function tripsInForce(device: ProcessUnitDeclaration, state: ProcessUnitState, memory: ProcessUnitMemory): string[] {
  const ids = new Set<string>([...memory.latched.keys(), ...state.trips]);
  const declared = device.trips.map((t) => t.id).filter((id) => ids.has(id));
  const others = [...ids].filter((id) => !device.trips.some((t) => t.id === id)).sort();
  return [...declared, ...others];
}

/** One BOUNDS_TRIP_LATCHED per trip in force. */
export function latchedReasons(device: ProcessUnitDeclaration, state: ProcessUnitState, memory: ProcessUnitMemory): Reason[] {
  return tripsInForce(device, state, memory).map((trip) => {
      const latch = memory.latched.get(trip);
      const condition = device.trips.find((t) => t.id === trip);
      const refused = latch?.fromRefusedMessage === true ? ' in a refused state message' : '';
      const why =
        latch === undefined
          ? 'reported by the device'
          : latch.source === 'device'
            ? `latched at ${latch.latchedAtMs} (reported by the device${refused})`
            : latch.source === 'memory-lost'
              ? `latched at ${latch.latchedAtMs}, the interlock's start (what it remembered from before could not be read back)`
              : `latched at ${latch.latchedAtMs} (${condition === undefined ? 'condition' : describeCondition(condition)}${latch.actual === undefined ? ', measurement unknown' : `, measured ${String(latch.actual)}`}${refused})`;
      return reason('BOUNDS_TRIP_LATCHED', `trip ${trip} is ${why}; only go_safe, stop and an authorised reset_trip pass until it is reset`, {
        ruleId: tripRule(device, trip),
        path: '/action',
        ...conditionDetails(condition, latch?.actual),
      });
    });
}

/**
 * A reset passes only for a trip in force whose declared condition (if any) no longer holds on the fresh state and
 * which the device no longer reports: a trip the device reports is its condition holding, as the device sees it.
 */
export function resetReasons(device: ProcessUnitDeclaration, trip: string, state: ProcessUnitState, memory: ProcessUnitMemory): Reason[] {
  const ruleId = tripRule(device, trip);
  if (!tripsInForce(device, state, memory).includes(trip)) {
    return [reason('BOUNDS_TRIP_NOT_LATCHED', `trip ${JSON.stringify(trip)} is not latched on ${device.id}; there is nothing to reset`, { ruleId, path: '/params/trip' })];
  }
  const condition = device.trips.find((t) => t.id === trip);
  const outcome = condition === undefined ? undefined : evaluateCondition(condition, state);
  const active: string[] = [];
  // SAFETY: unknown counts as still holding: a reset is never released on a measurement that cannot be read.
  if (condition !== undefined && outcome !== undefined && outcome.holds !== false) {
    active.push(outcome.holds === true ? `its condition still holds (${describeCondition(condition)}, measured ${String(outcome.actual)})` : `its condition cannot be evaluated (${outcome.why})`);
  }
  // SAFETY: while the device reports the trip, its own protection has not cleared; the interlock's latch must not
  // clear before it does.
  if (state.trips.includes(trip)) active.push('the device still reports it in its state');
  if (active.length === 0) return [];
  return [
    reason('BOUNDS_TRIP_ACTIVE', `trip ${trip} cannot be reset: ${active.join('; ')}`, {
      ruleId,
      path: '/params/trip',
      ...conditionDetails(condition, outcome?.holds === true ? outcome.actual : undefined),
    }),
  ];
}

/** One BOUNDS_PROCESS_PERMISSIVE per permissive that does not hold (unknown does not hold). */
export function permissiveReasons(device: ProcessUnitDeclaration, state: ProcessUnitState): Reason[] {
  const reasons: Reason[] = [];
  for (const permissive of device.permissives) {
    const outcome = evaluateCondition(permissive, state);
    if (outcome.holds === true) continue;
    const detail = outcome.holds === false ? `measured ${String(outcome.actual)}` : outcome.why;
    reasons.push(
      reason('BOUNDS_PROCESS_PERMISSIVE', `permissive ${permissive.id} (${describeCondition(permissive)}) does not hold: ${detail}`, {
        ruleId: `${device.id}/permissives/${permissive.id}`,
        path: '/action',
        ...conditionDetails(permissive, outcome.holds === false ? outcome.actual : undefined),
      }),
    );
  }
  return reasons;
}
