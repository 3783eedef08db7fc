// Where the arm is for the cell's shared zones: the zones its body occupies now (and whether it moves), the zones
// a command's swept path enters, 'unknown' whenever that cannot be computed, and two arms sharing one table zone
// through the whole bounds stage (occupied, released into, free, and a move that stays out).

import t from 'tap';
import { checkBounds } from '../../../src/bounds/bounds.js';
import { ROBOT_ARM_BOUNDS } from '../../../src/bounds/robot-arm-bounds.js';
import type { VerifiedCommand } from '../../../src/core/command.js';
import type { Declarations, Zone } from '../../../src/core/declarations.js';
import type { LastRelease, ObservedState } from '../../../src/core/device-state.js';
import type { ArmDeclaration, ArmState } from '../../../src/core/kinds/robot-arm.js';
import { BoundsMemory, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { amrReport } from '../../helpers/demo-people.js';
import { makeTestCell } from '../../helpers/test-cell.js';

const NOW = 1_700_000_000_000;
const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const arm = loaded.declarations.devices.get('arm-1') as ArmDeclaration;

const WORK = [0, -1.571, 1.571, -1.571, -1.571, 0]; // arm-1's TCP at about (1.49, 1.13, 1.09): over the pick table
const OUT = [1.2, -1.571, 1.571, -1.571, -1.571, 0]; // turned away: TCP at about (1.05, 1.51)
const pickTable: Zone = { id: 'pick-table', shape: { type: 'box', min: [1.3, 1.0, 0.75], max: [1.8, 1.8, 1.5] } };
const corner: Zone = { id: 'corner', shape: { type: 'box', min: [0.2, 0.2, 0.75], max: [0.6, 0.6, 1.5] } };
const zones = new Map([
  [pickTable.id, pickTable],
  [corner.id, corner],
]);
/** An arm state; at rest unless `extra` says otherwise (positions alone mean motion unknown: see run-out.test.ts). */
const at = (positionsRad: readonly number[], extra: Partial<ArmState> = {}): ArmState => ({ kind: 'robot_arm', positionsRad, moving: false, ...extra });

t.test('occupancy: the zones the body is in now; moving from the moving flag or velocities, unknown counts as moving', async (t) => {
  const cases: { name: string; state: ArmState; zoneIds: readonly string[] | 'unknown'; moving: boolean }[] = [
    { name: 'at rest over the table', state: at(WORK, { moving: false, velocitiesRadPerS: [0, 0, 0, 0, 0, 0] }), zoneIds: ['pick-table'], moving: false },
    { name: 'turned away, at rest', state: at(OUT, { moving: false }), zoneIds: [], moving: false },
    // Motion unknown, or moving with no speeds: the run-out at every joint's declared top speed reaches both zones.
    { name: 'positions only: motion unknown', state: { kind: 'robot_arm', positionsRad: WORK }, zoneIds: ['pick-table', 'corner'], moving: true },
    { name: 'a joint velocity reported', state: at(WORK, { moving: false, velocitiesRadPerS: [0, 0, 0.01, 0, 0, 0] }), zoneIds: ['pick-table'], moving: true },
    { name: 'the moving flag', state: at(WORK, { moving: true }), zoneIds: ['pick-table', 'corner'], moving: true },
    { name: 'a NaN position: where it is is unknown', state: at([0, NaN, 0, 0, 0, 0], { moving: false }), zoneIds: 'unknown', moving: false },
    { name: 'five positions', state: at([0, 0, 0, 0, 0], { moving: false }), zoneIds: 'unknown', moving: false },
  ];
  for (const c of cases) t.same(ROBOT_ARM_BOUNDS.occupancy(arm, c.state, zones), { zoneIds: c.zoneIds, moving: c.moving }, c.name);
  const { kinematics: _k, workspace: _w, ...blind } = arm;
  t.same(ROBOT_ARM_BOUNDS.occupancy(blind, at(WORK, { moving: false }), zones), { zoneIds: 'unknown', moving: false }, 'no kinematics: unknown');
});

t.test('zonesEntered: every zone any sampled body point enters along the path; unknown when it cannot be computed', async (t) => {
  const entered = (action: string, params: Record<string, unknown>, state: ArmState = at(OUT)): readonly string[] | 'unknown' =>
    ROBOT_ARM_BOUNDS.zonesEntered(arm, { action, params }, state, zones);
  t.same(entered('move_joints', { positionsRad: OUT.map((v, i) => (i === 0 ? -1.2 : v)), velocityRadPerS: 0.5 }), ['pick-table'], 'a base swing from one side to the other crosses the table zone mid-way');
  t.same(entered('move_joints', { positionsRad: OUT.map((v, i) => (i === 0 ? 1.0 : v)), velocityRadPerS: 0.5 }), [], 'a small turn that stays clear');
  t.same(entered('stop', {}, at(WORK)), ['pick-table'], 'stop: where it is');
  t.same(entered('move_linear', { positionM: [1.5, 1.2, 1.0], speedMPerS: 0.1 }, at(WORK)), ['pick-table'], 'a linear move over the table');
  t.same(entered('move_linear', { positionM: [3, 1.2, 1.0], speedMPerS: 0.1 }, at(WORK)), 'unknown', 'a linear move IK cannot follow');
  t.same(entered('move_joints', { positionsRad: [0, NaN, 0, 0, 0, 0], velocityRadPerS: 0.5 }), 'unknown', 'a NaN target');
  t.same(entered('move_joints', { positionsRad: [0, 0, 0], velocityRadPerS: 0.5 }), 'unknown', 'three targets');
  t.same(entered('wave', {}), 'unknown', 'an action without bounds');
  t.same(ROBOT_ARM_BOUNDS.zonesEntered(arm, { action: 'move_joints', params: { positionsRad: WORK, velocityRadPerS: 0.5 } }, at(OUT), new Map()), [], 'a cell without zones');
});

// A second arm mounted across the table; at WORK its TCP is over the pick table too.
const arm2: ArmDeclaration = { ...arm, id: 'arm-2', kinematics: { ...(arm.kinematics as NonNullable<ArmDeclaration['kinematics']>), basePositionM: [2.0, 1.3, 0.75], baseYawRad: 0 } };
const declarations: Declarations = {
  ...loaded.declarations,
  // The demo cell's zones stay too: arm-1's modes watch its table-surround zone for people.
  zones: new Map([...loaded.declarations.zones, ...zones]),
  sharedZones: [{ zoneId: 'pick-table', devices: ['arm-1', 'arm-2'] }],
  devices: new Map([
    ['arm-1', arm],
    ['arm-2', arm2],
  ]),
};

function decide(move: number[], arm2State: ArmState, arm2Release?: LastRelease): ReturnType<typeof checkBounds> {
  const agent = loaded.declarations.agents.get('planner-1');
  if (agent === undefined) throw new Error('no planner-1');
  const command: VerifiedCommand = { commandId: 'c1', kid: 'k', seq: 1, agent, device: arm, action: 'move_joints', params: { positionsRad: move, velocityRadPerS: 0.5 }, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 2000 };
  const states = new Map<string, ObservedState>([
    ['arm-1', { state: at(OUT, { moving: false }), receivedAtMs: NOW - 10 }],
    ['arm-2', { state: arm2State, receivedAtMs: NOW - 10 }],
    // The cell's people source sees nobody near the table, so arm-1 checks in its normal limits.
    ['amr-1', amrReport(NOW - 10)],
  ]);
  return checkBounds({
    command,
    declarations,
    states: { latest: (id) => states.get(id) },
    releases: arm2Release === undefined ? NO_RELEASES : { last: (id) => (id === 'arm-2' ? arm2Release : undefined) },
    memory: new BoundsMemory(),
    nowMs: NOW,
  });
}

t.test('two arms and one shared table zone, through the bounds stage', async (t) => {
  const intoTable = WORK;
  const stayClear = OUT.map((v, i) => (i === 0 ? 1.0 : v));
  const release: LastRelease = { commandId: 'r2', action: 'move_joints', params: { positionsRad: WORK, velocityRadPerS: 0.5 }, releasedAtMs: NOW - 50 };
  const cases: { name: string; move: number[]; arm2: ArmState; release?: LastRelease; codes: string[]; because?: RegExp }[] = [
    { name: 'arm-2 at rest over the table: arm-1 may not enter', move: intoTable, arm2: at(WORK, { moving: false }), codes: ['BOUNDS_SHARED_ZONE_OCCUPIED'], because: /which arm-2 occupies/ },
    { name: 'arm-2 at rest elsewhere, nothing released: arm-1 may enter', move: intoTable, arm2: at(OUT, { moving: false }), codes: [] },
    // Slowly (a 3 mm run-out): not in the zone yet, but on its way into it.
    { name: 'arm-2 elsewhere but moving on a release into the table', move: intoTable, arm2: at(OUT, { moving: true, velocitiesRadPerS: [0.01, 0, 0, 0, 0, 0] }), release, codes: ['BOUNDS_SHARED_ZONE_OCCUPIED'], because: /has been released into/ },
    { name: 'arm-2 elsewhere, motion unknown (positions only), released into the table', move: intoTable, arm2: { kind: 'robot_arm', positionsRad: OUT }, release, codes: ['BOUNDS_SHARED_ZONE_OCCUPIED'] },
    { name: 'arm-2 state broken (NaN): it may be anywhere', move: intoTable, arm2: at([0, NaN, 0, 0, 0, 0], { moving: false }), codes: ['BOUNDS_SHARED_ZONE_OCCUPIED'], because: /position in the cell is unknown/ },
    { name: 'arm-2 over the table, arm-1 stays clear of it', move: stayClear, arm2: at(WORK, { moving: false }), codes: [] },
  ];
  for (const c of cases) {
    const result = decide(c.move, c.arm2, c.release);
    t.same(result.reasons.map((r) => r.code), c.codes, c.name);
    if (c.codes.length > 0) t.equal(result.reasons[0]?.ruleId, 'cell/sharedZones/pick-table', `${c.name}: names the zone rule`);
    if (c.because !== undefined) t.match(result.reasons[0]?.message ?? '', c.because, `${c.name}: says why`);
  }
});
