// Keeps the latest valid state each device reported, stamped with the interlock's receive time. A malformed
// state message discards the previous state too: a device that sends garbage has no known state.

import { STATE_VALIDATORS } from '../generated/state-validators.js';
import type { DeviceDeclaration } from '../core/declarations.js';
import type { ObservedState, StateView } from '../core/device-state.js';
import { kindSpec } from '../core/kinds/index.js';
import type { Vec3 } from '../core/zones.js';

export { COMMON_STATE_PROPERTIES, stateSchemaOf } from './state-schema.js';

export type StateParse =
  | { readonly ok: true; readonly observed: Omit<ObservedState, 'receivedAtMs'> }
  /** `message`: the refused message's JSON value (undefined when it was not JSON), for the trip latching a refusal still gets. */
  | { readonly ok: false; readonly problem: string; readonly message?: unknown };

/** Parses a state message for a declared device; bytes that are not valid JSON of the right shape are refused. */
export function parseDeviceState(device: DeviceDeclaration, payload: Buffer | string): StateParse {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString());
  } catch {
    return { ok: false, problem: 'state is not JSON' };
  }
  // Compiled at build time (scripts/compile-schemas.ts): start-up neither loads ajv's compiler nor compiles.
  const validate = STATE_VALIDATORS[device.kind];
  if (validate === undefined) return { ok: false, problem: `no state schema for kind ${device.kind}` };
  if (!validate(value)) {
    const error = validate.errors?.[0];
    const extra = error?.keyword === 'additionalProperties' ? ` "${(error.params as { additionalProperty: string }).additionalProperty}"` : '';
    return { ok: false, problem: `state ${error?.instancePath || '/'} ${error?.message ?? 'invalid'}${extra}`, message: value };
  }
  const message = value as Record<string, unknown> & { people?: number[][] };
  const typed = kindSpec(device.kind).toState(device, message);
  if (!typed.ok) return { ok: false, problem: typed.problem, message: value };
  if (message.people === undefined) return { ok: true, observed: { state: typed.state } };
  const people = message.people.map(([x, y, z]) => [x, y, z ?? 0] as unknown as Vec3);
  return { ok: true, observed: { state: typed.state, people } };
}

export class StateStore implements StateView {
  private readonly states = new Map<string, ObservedState>();

  latest(deviceId: string): ObservedState | undefined {
    return this.states.get(deviceId);
  }

  update(deviceId: string, observed: Omit<ObservedState, 'receivedAtMs'>, receivedAtMs: number): void {
    this.states.set(deviceId, { ...observed, receivedAtMs });
  }

  discard(deviceId: string): void {
    this.states.delete(deviceId);
  }
}
