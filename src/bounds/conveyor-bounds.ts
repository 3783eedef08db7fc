// Bounds for the conveyor kind. (Skeleton: every action other than the safe state is denied until its bounds exist.)

import type { ConveyorDeclaration, ConveyorState } from '../core/kinds/conveyor.js';
import { reason } from '../core/reasons.js';
import { denyWith } from '../core/verdict.js';
import type { KindBounds } from './kind-bounds.js';

export const CONVEYOR_BOUNDS: KindBounds<ConveyorDeclaration, ConveyorState> = {
  check: (device, command) => denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on conveyor ${device.id}`, { ruleId: device.id })),
  occupancy: () => ({ zoneIds: 'unknown', moving: true }),
  zonesEntered: () => 'unknown',
};
