// Shared fixtures for the process-unit bounds tests: the real demo-cell pump-1 declaration (loaded from YAML),
// states at rest and running, a check context, and the shared reason matcher (test/helpers/assert-reasons.ts, exact:
// numbers compare with ===). Unit factors are written out here.

import t from 'tap';
import type { VerifiedCommand } from '../../../src/core/command.js';
import type { AgentDeclaration } from '../../../src/core/declarations.js';
import type { LastRelease } from '../../../src/core/device-state.js';
import type { Mode } from '../../../src/core/kinds/kind-spec.js';
import type { ProcessUnitDeclaration, ProcessUnitState } from '../../../src/core/kinds/process-unit.js';
import type { DeviceMemory, KindCheckContext } from '../../../src/bounds/kind-bounds.js';
import { makeTestCell } from '../../helpers/test-cell.js';
export { assertReasons, type Expected } from '../../helpers/assert-reasons.js';

export const NOW = 1_700_000_000_000;
/** Unit factors, independent of src/core/units.ts. */
export const RPM = (2 * Math.PI) / 60;
export const BAR = 1e5;
export const PCT = 0.01;

export const cell = makeTestCell();
t.teardown(() => cell.cleanup());
export const loaded = cell.load();
export const pump = loaded.declarations.devices.get('pump-1') as ProcessUnitDeclaration;
if (pump === undefined || pump.kind !== 'process_unit') throw new Error('demo cell has no process unit pump-1');

export const planner = loaded.declarations.agents.get('planner-1') as AgentDeclaration;
/** A scope-3 agent: gets the reduced limit set (not in agents.yaml; the bounds stage takes the agent as given). */
export const scope3: AgentDeclaration = { kind: 'agent', id: 'operator-3', owner: 'test', autonomyScope: 3 };

type Measurements = Record<string, number | boolean>;

/** At rest: pump off at the safe state, tank at 2 m (suction head 0.39 bar), nothing tripped. */
export function restState(overrides: { measurements?: Measurements; setpoints?: Record<string, number>; running?: boolean; trips?: string[] } = {}): ProcessUnitState {
  return {
    kind: 'process_unit',
    measurements: {
      suction_pressure: 0.39 * BAR,
      discharge_pressure: 0.39 * BAR,
      discharge_flow: 0,
      tank_level: 2,
      pump_speed: 0,
      suction_valve_position: 1,
      discharge_valve_position: 0,
      suction_valve_open: true,
      ...overrides.measurements,
    },
    setpoints: { pump_speed: 0, suction_valve: 1, discharge_valve: 0, ...overrides.setpoints },
    running: overrides.running ?? false,
    trips: overrides.trips ?? [],
    safeStopped: false,
    lastCommandId: null,
  };
}

/** Running at 1200 rpm, discharge 40 % open, settled (setpoints equal measurements). */
export function runningState(overrides: { measurements?: Measurements; setpoints?: Record<string, number>; trips?: string[] } = {}): ProcessUnitState {
  return restState({
    running: true,
    measurements: { pump_speed: 1200 * RPM, discharge_valve_position: 0.4, discharge_pressure: 4 * BAR, discharge_flow: 0.015, ...overrides.measurements },
    setpoints: { pump_speed: 1200 * RPM, discharge_valve: 0.4, ...overrides.setpoints },
    ...(overrides.trips === undefined ? {} : { trips: overrides.trips }),
  });
}

export function context(
  state: ProcessUnitState,
  options: { mode?: Mode; memory?: DeviceMemory; nowMs?: number; lastRelease?: LastRelease } = {},
): KindCheckContext<ProcessUnitState> {
  return {
    state,
    mode: options.mode ?? 'normal',
    nowMs: options.nowMs ?? NOW,
    lastRelease: options.lastRelease,
    people: { known: false, why: 'not needed' },
    zones: new Map(),
    memory: options.memory ?? new Map(),
  };
}

let nextSeq = 1;
export function verified(action: string, params: Record<string, unknown>, agent: AgentDeclaration = planner, safeState = action === 'stop' || action === 'go_safe'): VerifiedCommand {
  const seq = nextSeq++;
  return { commandId: `cmd-${String(seq).padStart(8, '0')}`, kid: 'k', seq, agent, device: pump, action, params, safeState, issuedAtMs: NOW, expiresAtMs: NOW + 2000 };
}

