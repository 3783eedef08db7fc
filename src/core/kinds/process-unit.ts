// The process_unit kind: declaration, state and commands. (Skeleton: to be filled in; until then every action
// other than stop is denied by the bounds stage with BOUNDS_NOT_DECLARED.)

import type { ReasonSpec } from '../reasons-spec.js';
import type { CommonDeviceDeclaration, KindSpec } from './kind-spec.js';

export interface ProcessUnitDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'process_unit';
}

export interface ProcessUnitState {
  readonly kind: 'process_unit';
}

export const PROCESS_UNIT_REASONS = {} as const satisfies Record<string, ReasonSpec>;

export const PROCESS_UNIT: KindSpec<ProcessUnitDeclaration, ProcessUnitState> = {
  kind: 'process_unit',
  deviceProperties: {},
  deviceRequired: [],
  convert: (_raw, common) => ({ ok: true, device: { ...common, kind: 'process_unit' } }),
  stateProperties: {},
  stateRequired: [],
  toState: () => ({ ok: true, state: { kind: 'process_unit' } }),
  actions: {
    stop: { safeState: true, summary: 'Go to the safe state.', paramsSchema: { type: 'object', additionalProperties: false, properties: {} } },
  },
  reasons: PROCESS_UNIT_REASONS,
};
