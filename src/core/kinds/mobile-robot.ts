// The mobile_robot kind: declaration, state and commands. (Skeleton: to be filled in; until then every action
// other than stop is denied by the bounds stage with BOUNDS_NOT_DECLARED.)

import type { ReasonSpec } from '../reasons-spec.js';
import type { CommonDeviceDeclaration, KindSpec } from './kind-spec.js';

export interface MobileRobotDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'mobile_robot';
}

export interface MobileRobotState {
  readonly kind: 'mobile_robot';
}

export const MOBILE_ROBOT_REASONS = {} as const satisfies Record<string, ReasonSpec>;

export const MOBILE_ROBOT: KindSpec<MobileRobotDeclaration, MobileRobotState> = {
  kind: 'mobile_robot',
  deviceProperties: {},
  deviceRequired: [],
  convert: (_raw, common) => ({ ok: true, device: { ...common, kind: 'mobile_robot' } }),
  stateProperties: {},
  stateRequired: [],
  toState: () => ({ ok: true, state: { kind: 'mobile_robot' } }),
  actions: {
    stop: { safeState: true, summary: 'Go to the safe state.', paramsSchema: { type: 'object', additionalProperties: false, properties: {} } },
  },
  reasons: MOBILE_ROBOT_REASONS,
};
