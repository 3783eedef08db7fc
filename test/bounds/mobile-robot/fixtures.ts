// Test cell for the mobile robot bounds: the demo cell plus test robots whose numbers are exact in binary
// (0.5 m footprint, S_p(1 m/s) = 2.0625 m), so "exactly at the limit" cases compare exact values. Not a test file.

import type { Test } from 'tap';
import type { AgentDeclaration } from '../../../src/core/declarations.js';
import type { MobileRobotDeclaration, MobileRobotState } from '../../../src/core/kinds/mobile-robot.js';
import type { PeopleView } from '../../../src/bounds/people.js';
import { makeTestCell, type TestCell } from '../../helpers/test-cell.js';
import type { LoadedCell } from '../../../src/declarations/load.js';
export { assertReasons, type Expected } from '../../helpers/assert-reasons.js';

export const NOW = 1_700_000_000_000;

/**
 * amr-t: a pillar keep-out x 4..5, y -1..1; a slow zone x -2..2, y 4..6 (0.5 / 0.25 m/s); S_p(v) with v_h 2 m/s,
 * T_r 125 ms, a 2 m/s^2, C 0.25, Z_d 0.125, Z_r 0.0625. Every number is a binary fraction.
 */
export const AMR_T_YAML = `
id: amr-t
kind: mobile_robot
maxStateAge: { value: 250, unit: ms }
footprint: { radius: 0.5, unit: m }
limits:
  linearSpeed: { normal: 1, reduced: 0.25, unit: m/s }
  angularSpeed: { normal: 1, reduced: 0.5, unit: rad/s }
  linearAcceleration: { normal: 1, reduced: 0.5, unit: m/s^2 }
  angularAcceleration: { normal: 2, reduced: 1, unit: rad/s^2 }
  maxGoalDistance: { value: 8, unit: m }
  maxWaypoints: 100
  maxVelocityDuration: { value: 1000, unit: ms }
keepOut:
  - id: pillar
    polygon: { points: [[4, -1], [5, -1], [5, 1], [4, 1]], unit: m }
speedZones:
  - id: slow
    polygon: { points: [[-2, 4], [2, 4], [2, 6], [-2, 6]], unit: m }
    maxSpeed: { normal: 0.5, reduced: 0.25, unit: m/s }
separation:
  humanSpeed: { value: 2, unit: m/s }
  reactionTime: { value: 125, unit: ms }
  brakingDeceleration: { value: 2, unit: m/s^2 }
  intrusionDistance: { value: 0.25, unit: m }
  sensorUncertainty: { value: 125, unit: mm }
  positionUncertainty: { value: 6.25, unit: cm }
localization:
  maxAge: { value: 500, unit: ms }
`;

/** amr-s: like amr-t but with a declared stopping time (500 ms) instead of a braking deceleration. */
export const AMR_S_YAML = AMR_T_YAML.replace('id: amr-t', 'id: amr-s').replace('brakingDeceleration: { value: 2, unit: m/s^2 }', 'stoppingTime: { value: 500, unit: ms }');

/**
 * amr-p: for the property test. Concave and thin keep-out areas (a 2 cm wall), two speed zones, a long reach.
 * The property test reads this YAML itself, so its oracle does not depend on the engine's loader.
 */
export const AMR_P_YAML = `
id: amr-p
kind: mobile_robot
maxStateAge: { value: 200, unit: ms }
footprint: { radius: 45, unit: cm }
limits:
  linearSpeed: { normal: 1.5, reduced: 0.3, unit: m/s }
  angularSpeed: { max: 90, unit: deg/s }
  linearAcceleration: { max: 1, unit: m/s^2 }
  angularAcceleration: { max: 180, unit: deg/s^2 }
  maxGoalDistance: { value: 40, unit: m }
  maxWaypoints: 100
  maxVelocityDuration: { value: 1, unit: s }
keepOut:
  - id: ell
    polygon: { points: [[2, 2], [6, 2], [6, 3], [3, 3], [3, 6], [2, 6]], unit: m }
  - id: wall
    polygon: { points: [[-6, -1], [-5.98, -1], [-5.98, 5], [-6, 5]], unit: m }
  - id: wedge
    polygon: { points: [[0, -6], [4, -4], [1, -3]], unit: m }
speedZones:
  - id: crossing
    polygon: { points: [[-4, -8], [-1, -8], [-1, 8], [-4, 8]], unit: m }
    maxSpeed: { normal: 0.6, reduced: 0.2, unit: m/s }
  - id: dock
    polygon: { points: [[5, -8], [8, -5], [5, -2]], unit: m }
    maxSpeed: { max: 0.25, unit: m/s }
separation:
  humanSpeed: { value: 1.6, unit: m/s }
  reactionTime: { value: 0.1, unit: s }
  brakingDeceleration: { value: 1.5, unit: m/s^2 }
  intrusionDistance: { value: 0.1, unit: m }
  sensorUncertainty: { value: 0.1, unit: m }
  positionUncertainty: { value: 0.05, unit: m }
localization:
  maxAge: { value: 500, unit: ms }
`;

/** amr-2: a second robot, only there to occupy the shared dock zone. */
const AMR_2_YAML = AMR_T_YAML.replace('id: amr-t', 'id: amr-2');

/** Cell zones for shared-zone and occupancy tests; amr-t reports the people. */
export const CELL_YAML = `
cell: demo-cell
commands:
  maxTtl: { value: 5, unit: s }
  clockSkew: { value: 1, unit: s }
  maxTokenSize: { value: 8, unit: KiB }
zones:
  - id: dock
    polygon: { points: [[-4, -4], [-3, -4], [-3, -3], [-4, -3]], unit: m }
  - id: bench
    box: { min: [-6, 2, 0], max: [-5, 3, 1], unit: m }
  - id: column
    sphere: { center: [-5, -5, 1], radius: 0.5, unit: m }
  # The zones the demo arm and conveyor (kept from the demo cell) watch for people. Only their ids matter here, so
  # they lie far from every robot in these tests.
  - id: table-surround
    box: { min: [40, 40, 0], max: [41, 41, 2], unit: m }
  - id: infeed-walkway
    box: { min: [42, 40, 0], max: [43, 41, 2], unit: m }
sharedZones:
  - { zone: dock, devices: [amr-t, amr-2] }
people:
  sources: [amr-t]
  maxAge: { value: 300, unit: ms }
`;

export interface MobileCell {
  readonly cell: TestCell;
  readonly loaded: LoadedCell;
  readonly amr: MobileRobotDeclaration;
  readonly amrS: MobileRobotDeclaration;
  readonly amrP: MobileRobotDeclaration;
  readonly amr2: MobileRobotDeclaration;
}

export function loadMobileCell(t: Test): MobileCell {
  const cell = makeTestCell({
    'cell.yaml': CELL_YAML,
    'devices/amr-t.yaml': AMR_T_YAML,
    'devices/amr-s.yaml': AMR_S_YAML,
    'devices/amr-p.yaml': AMR_P_YAML,
    'devices/amr-2.yaml': AMR_2_YAML,
  });
  t.teardown(() => cell.cleanup());
  const loaded = cell.load();
  const device = (id: string): MobileRobotDeclaration => {
    const d = loaded.declarations.devices.get(id);
    if (d?.kind !== 'mobile_robot') throw new Error(`${id} is not a mobile_robot`);
    return d;
  };
  return { cell, loaded, amr: device('amr-t'), amrS: device('amr-s'), amrP: device('amr-p'), amr2: device('amr-2') };
}

/** A robot at rest at (x, y) with good localization; fields overridable. */
export function robotState(overrides: Partial<Omit<MobileRobotState, 'kind'>> & { x?: number; y?: number; v?: number } = {}): MobileRobotState {
  const { x = 0, y = 0, v = 0, ...rest } = overrides;
  return {
    kind: 'mobile_robot',
    pose: { xM: x, yM: y, yawRad: 0 },
    velocity: { linearMPerS: v, angularRadPerS: 0 },
    localization: { ok: true, ageMs: 50 },
    moving: v !== 0,
    safeStopped: false,
    lastCommandId: null,
    ...rest,
  };
}

export const NOBODY: PeopleView = { known: true, positions: [] };

export function peopleAt(...positions: [number, number][]): PeopleView {
  return { known: true, positions: positions.map(([x, y]) => [x, y, 0] as const) };
}

export function agent(autonomyScope: number): AgentDeclaration {
  return { kind: 'agent', id: `agent-scope-${autonomyScope}`, owner: 'test', autonomyScope };
}

/** 2^-20 m (about a micrometre): "just over" and "just under" that stay exact in binary. */
export const TINY = 2 ** -20;
