// The conveyor kind: declaration, state and commands. (Skeleton: to be filled in; until then every action
// other than stop is denied by the bounds stage with BOUNDS_NOT_DECLARED.)

import type { ReasonSpec } from '../reasons-spec.js';
import type { CommonDeviceDeclaration, KindSpec } from './kind-spec.js';

export interface ConveyorDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'conveyor';
}

export interface ConveyorState {
  readonly kind: 'conveyor';
}

export const CONVEYOR_REASONS = {} as const satisfies Record<string, ReasonSpec>;

export const CONVEYOR: KindSpec<ConveyorDeclaration, ConveyorState> = {
  kind: 'conveyor',
  deviceProperties: {},
  deviceRequired: [],
  convert: (_raw, common) => ({ ok: true, device: { ...common, kind: 'conveyor' } }),
  stateProperties: {},
  stateRequired: [],
  toState: () => ({ ok: true, state: { kind: 'conveyor' } }),
  actions: {
    stop: { safeState: true, summary: 'Go to the safe state.', paramsSchema: { type: 'object', additionalProperties: false, properties: {} } },
  },
  reasons: CONVEYOR_REASONS,
};
