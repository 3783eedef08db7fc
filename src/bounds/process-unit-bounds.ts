// Bounds for process units (pump, valves, tank): setpoint range, mode maximum, step and rate; start permissives;
// latched trips and their reset. It allows or denies; it never edits a command. NaN fails every comparison here.

import type { ProcessUnitDeclaration, ProcessUnitState, ResetTripParams, SetSetpointParams } from '../core/kinds/process-unit.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { KindBounds, KindCheckContext, KindCommand } from './kind-bounds.js';
import { observeProcessState, observeRefusedProcessState, processMemory, recordProcessRelease } from './process-unit/process-memory.js';
import { PROCESS_MEMORY_PERSISTENCE } from './process-unit/saved-memory.js';
import { checkSetpoint } from './process-unit/setpoint-checks.js';
import { latchedReasons, permissiveReasons, resetReasons } from './process-unit/trip-checks.js';

export function checkProcessUnit(device: ProcessUnitDeclaration, command: KindCommand, context: KindCheckContext<ProcessUnitState>): StageResult {
  const { state, memory, nowMs } = context;
  // Normally done already (observe runs before every check); repeated so no caller can check against a state
  // whose trips have not been latched. Idempotent.
  observeProcessState(device, state, memory, nowMs);
  const mem = processMemory(memory);
  let reasons: Reason[];
  switch (command.action) {
    case 'set_setpoint': {
      const params = command.params as unknown as SetSetpointParams;
      reasons = [
        ...latchedReasons(device, state, mem),
        ...checkSetpoint(device, params, {
          state,
          mode: context.mode,
          nowMs,
          released: mem.releasedSetpoints.get(params.name),
          lastRelease: context.lastRelease,
        }),
      ];
      break;
    }
    case 'start':
      reasons = [...latchedReasons(device, state, mem), ...permissiveReasons(device, state)];
      break;
    case 'reset_trip':
      // Not blocked by other latched trips: each is reset on its own (otherwise two trips could never be reset).
      reasons = resetReasons(device, (command.params as unknown as ResetTripParams).trip, state, mem);
      break;
    default:
      reasons = [reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on process_unit ${device.id}`, { ruleId: device.id })];
  }
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}

export const PROCESS_UNIT_BOUNDS: KindBounds<ProcessUnitDeclaration, ProcessUnitState> = {
  check: checkProcessUnit,
  // A process unit stays where it is installed: it occupies no cell zone and no command moves it into one.
  occupancy: () => ({ zoneIds: [], moving: false }),
  zonesEntered: () => [],
  observe: observeProcessState,
  observeRefused: observeRefusedProcessState,
  released: recordProcessRelease,
  persistence: PROCESS_MEMORY_PERSISTENCE,
};
