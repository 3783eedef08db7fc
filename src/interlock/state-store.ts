// Keeps the latest valid state each device reported, stamped with the interlock's receive time. A malformed
// state message discards the previous state too: a device that sends garbage has no known state.

import { Ajv } from 'ajv';
import type { DeviceDeclaration } from '../core/declarations.js';
import type { DeviceState, ObservedState, StateView } from '../core/device-state.js';

/** The arm state message published by drivers on actuator/{device}/state. */
export const ARM_STATE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['positionsRad'],
  properties: {
    positionsRad: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'number' } },
    velocitiesRadPerS: { type: 'array', maxItems: 16, items: { type: 'number' } },
    moving: { type: 'boolean' },
    safeStopped: { type: 'boolean' },
    lastCommandId: { type: ['string', 'null'], maxLength: 128 },
    timeMs: { type: 'number' },
  },
} as const;

const ajv = new Ajv({ strict: true, allowUnionTypes: true });
const validateArmState = ajv.compile<{ positionsRad: number[] }>(ARM_STATE_SCHEMA);

export type StateParse = { readonly ok: true; readonly state: DeviceState } | { readonly ok: false; readonly problem: string };

/** Parses a state message for a declared device; bytes that are not valid JSON of the right shape are refused. */
export function parseDeviceState(device: DeviceDeclaration, payload: Buffer | string): StateParse {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString());
  } catch {
    return { ok: false, problem: 'state is not JSON' };
  }
  if (!validateArmState(value)) {
    const error = validateArmState.errors?.[0];
    return { ok: false, problem: `state ${error?.instancePath || '/'} ${error?.message ?? 'invalid'}` };
  }
  if (value.positionsRad.length !== device.joints.length) {
    return { ok: false, problem: `state gives ${value.positionsRad.length} joint positions, ${device.id} has ${device.joints.length}` };
  }
  return { ok: true, state: { kind: 'robot_arm', positionsRad: [...value.positionsRad] } };
}

export class StateStore implements StateView {
  private readonly states = new Map<string, ObservedState>();

  latest(deviceId: string): ObservedState | undefined {
    return this.states.get(deviceId);
  }

  update(deviceId: string, state: DeviceState, receivedAtMs: number): void {
    this.states.set(deviceId, { state, receivedAtMs });
  }

  discard(deviceId: string): void {
    this.states.delete(deviceId);
  }
}
