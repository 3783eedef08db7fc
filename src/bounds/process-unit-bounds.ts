// Bounds for the process_unit kind. (Skeleton: every action other than the safe state is denied until its bounds exist.)

import type { ProcessUnitDeclaration, ProcessUnitState } from '../core/kinds/process-unit.js';
import { reason } from '../core/reasons.js';
import { denyWith } from '../core/verdict.js';
import type { KindBounds } from './kind-bounds.js';

export const PROCESS_UNIT_BOUNDS: KindBounds<ProcessUnitDeclaration, ProcessUnitState> = {
  check: (device, command) => denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on process_unit ${device.id}`, { ruleId: device.id })),
  occupancy: () => ({ zoneIds: 'unknown', moving: true }),
  zonesEntered: () => 'unknown',
};
