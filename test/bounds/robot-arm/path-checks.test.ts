// The per-sample zone checks skip what is provably clear (a point d from a zone cannot reach it before it has moved
// d - clearance) and test prisms against their bounding box first. Neither may change a finding: random joint paths
// on the demo arm, with extra zones of every shape placed around the work area, are checked here by brute force
// (signedDistance at every sample, no skipping) and must give the same rules, first and worst s, and worst values.

import fc from 'fast-check';
import t from 'tap';
import { checkArmMoveJoints, ROBOT_ARM_BOUNDS } from '../../../src/bounds/robot-arm-bounds.js';
import { compiledArm } from '../../../src/bounds/robot-arm/compiled-arm.js';
import { sampleJointPath } from '../../../src/bounds/robot-arm/swept-path.js';
import { signedDistance } from '../../../src/bounds/robot-arm/workspace.js';
import type { Zone } from '../../../src/core/declarations.js';
import type { ArmDeclaration, ArmZone } from '../../../src/core/kinds/robot-arm.js';
import { makeTestCell } from '../../helpers/test-cell.js';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const demoArm = cell.load().declarations.devices.get('arm-1') as ArmDeclaration;
const workspace = demoArm.workspace as NonNullable<ArmDeclaration['workspace']>;

// Zones of every shape near where the demo arm works, so that paths pass close to, into and out of them.
const EXTRA_KEEP_OUT: ArmZone[] = [
  { id: 'post', shape: { type: 'box', min: [1.55, 0.9, 0.7], max: [1.7, 1.05, 1.3] } },
  { id: 'lamp', shape: { type: 'sphere', center: [1.3, 1.4, 1.25], radiusM: 0.1 } },
  { id: 'chute', shape: { type: 'prism', polygon: [[1.1, 1.5], [1.4, 1.45], [1.35, 1.8], [1.15, 1.75]], zMinM: 0.7, zMaxM: 1.0 } },
  { id: 'wall', shape: { type: 'plane', point: [1.75, 0, 0], normal: [-1, 0, 0] } },
];
const arm: ArmDeclaration = { ...demoArm, workspace: { ...workspace, keepOut: [...workspace.keepOut, ...EXTRA_KEEP_OUT] } };
const compiled = compiledArm(arm);
if (compiled === undefined) throw new Error('the demo arm has kinematics');
const clearance = compiled.clearanceM;
const CELL_ZONES = new Map<string, Zone>(
  [
    { id: 'station', shape: { type: 'box', min: [1.6, 0.8, 0.0], max: [2.8, 1.8, 2.0] } },
    { id: 'walkway', shape: { type: 'prism', polygon: [[-0.9, -0.9], [2.9, -0.9], [2.9, 2.9], [-0.9, 2.9]], zMinM: -Infinity, zMaxM: Infinity } },
    { id: 'bin', shape: { type: 'prism', polygon: [[1.2, 1.2], [1.5, 1.2], [1.5, 1.5]], zMinM: 0.75, zMaxM: 1.0 } },
    { id: 'globe', shape: { type: 'sphere', center: [1.0, 1.6, 1.3], radiusM: 0.12 } },
  ].map((z): [string, Zone] => [z.id, z as Zone]),
);

interface Found {
  first: number;
  worst: number;
  worstS: number;
}

/** Brute force: every zone, every checked point, every sample, exact signed distances; first and worst per rule. */
function referenceFindings(q0: number[], q1: number[]): Map<string, Found> {
  const found = new Map<string, Found>();
  const note = (rule: string, s: number, value: number): void => {
    const f = found.get(rule);
    if (f === undefined) found.set(rule, { first: s, worst: value, worstS: s });
    else if (value < f.worst) Object.assign(f, { worst: value, worstS: s });
  };
  sampleJointPath(compiled as NonNullable<typeof compiled>, q0, q1, (s, _q, pose) => {
    for (const body of workspace.bodyPoints) {
      const [x, y, z] = [pose.points[body.index * 3] as number, pose.points[body.index * 3 + 1] as number, pose.points[body.index * 3 + 2] as number];
      const depth = Math.max(...workspace.keepIn.map((zone) => -signedDistance(zone.shape, x, y, z)));
      if (!(depth >= clearance)) note('keepIn', s, depth);
      for (const zone of arm.workspace?.keepOut ?? []) {
        const distance = signedDistance(zone.shape, x, y, z);
        if (!(distance > clearance)) note(`keepOut/${zone.id}`, s, distance);
      }
    }
    return 0; // visit every sample
  });
  return found;
}

/** The same from the engine's reasons: rule, worst (actual) and the first / worst s named in the message. */
function engineFindings(q0: number[], q1: number[]): Map<string, Found> {
  const result = checkArmMoveJoints(arm, { positionsRad: q1, velocityRadPerS: 0.01 }, { kind: 'robot_arm', positionsRad: q0, moving: false }, 'normal');
  const found = new Map<string, Found>();
  for (const r of result.reasons) {
    if (r.code !== 'BOUNDS_KEEP_IN' && r.code !== 'BOUNDS_KEEP_OUT') continue;
    const span = /first at s=(\d\.\d+), worst at s=(\d\.\d+)/.exec(r.message) ?? /at s=(\d\.\d+)/.exec(r.message);
    const first = Number(span?.[1]);
    found.set((r.ruleId ?? '').replace('arm-1/workspace/', ''), { first, worst: r.actual ?? NaN, worstS: Number(span?.[2] ?? first) });
  }
  return found;
}

/** Brute force for the cell zones a path enters: every zone, every point, every sample. */
function referenceEntered(q0: number[], q1: number[]): string[] {
  const entered = new Set<string>();
  sampleJointPath(compiled as NonNullable<typeof compiled>, q0, q1, (_s, _q, pose) => {
    for (const [id, zone] of CELL_ZONES) {
      for (const body of compiled?.bodyPoints ?? []) {
        const k = body.index * 3;
        if (!(signedDistance(zone.shape, pose.points[k] as number, pose.points[k + 1] as number, pose.points[k + 2] as number) > clearance)) entered.add(id);
      }
    }
    return 0; // visit every sample
  });
  return [...CELL_ZONES.keys()].filter((id) => entered.has(id));
}

const SEEDS = [
  [0, -1.571, 1.571, -1.571, -1.571, 0],
  [0.8, -1.2, 1.9, -2.2, -1.571, 0.3],
  [-0.5, -1.9, 2.0, -1.7, -1.571, 0],
  [0.3, -1.2, 1.4, -1.571, -1.571, 0.2],
];
const near = (spread: number) => fc.double({ min: -spread, max: spread, noNaN: true });
const offsets = fc.tuple(near(0.5), near(0.5), near(0.5), near(0.6), near(0.6), near(0.6));
const paths = fc.tuple(fc.integer({ min: 0, max: SEEDS.length - 1 }), offsets, offsets).map(([seed, start, step]) => {
  const q0 = (SEEDS[seed] as number[]).map((v, j) => v + (start[j] as number));
  return { q0, q1: q0.map((v, j) => v + 2 * (step[j] as number)) };
});

t.test('property: skipping provably clear samples finds exactly what checking every sample finds', async (t) => {
  let fired = 0;
  fc.assert(
    fc.property(paths, ({ q0, q1 }) => {
      // A target outside a joint's range gets no path reasons at all (tested elsewhere); not what is compared here.
      fc.pre(arm.joints.every((joint, j) => (q1[j] as number) >= joint.positionMinRad && (q1[j] as number) <= joint.positionMaxRad));
      const reference = referenceFindings(q0, q1);
      const engine = engineFindings(q0, q1);
      fired += reference.size;
      if (reference.size !== engine.size) return false;
      for (const [rule, want] of reference) {
        const got = engine.get(rule);
        if (got === undefined) return false;
        // The message rounds s to 3 decimals (half up); the worst value is exact.
        if (Math.abs(got.first - want.first) > 6e-4 || Math.abs(got.worstS - want.worstS) > 6e-4 || got.worst !== want.worst) return false;
      }
      return true;
    }),
    { numRuns: 300, seed: 20261122 },
  );
  t.ok(fired >= 150, `the paths fired rules (${fired} findings), so skipping was exercised against violations`);
});

t.test('property: the zones a path enters are the brute-force ones, prisms and all', async (t) => {
  let entered = 0;
  fc.assert(
    fc.property(paths, ({ q0, q1 }) => {
      const want = referenceEntered(q0, q1);
      entered += want.length;
      const got = ROBOT_ARM_BOUNDS.zonesEntered(arm, { action: 'move_joints', params: { positionsRad: q1, velocityRadPerS: 0.01 } }, { kind: 'robot_arm', positionsRad: q0, moving: false }, CELL_ZONES);
      return Array.isArray(got) && [...got].sort().join() === [...want].sort().join();
    }),
    { numRuns: 300, seed: 7 },
  );
  t.ok(entered >= 300, `zones were entered (${entered}), and left out`);
});
