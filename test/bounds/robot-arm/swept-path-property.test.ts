// Property: whenever the bounds stage allows a move_joints of the demo arm, an independent checker agrees that the
// whole swept path is safe. The checker below reads arm-1.yaml itself, converts its units itself, computes
// forward kinematics with its own 4x4 DH matrices and samples the path densely; it imports nothing from
// src/bounds or src/core/kinds (the engine is only called through checkBounds to get the verdict).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { parse } from 'yaml';
import { checkBounds } from '../../../src/bounds/bounds.js';
import type { VerifiedCommand } from '../../../src/core/command.js';
import type { DeviceDeclaration } from '../../../src/core/declarations.js';
import type { ObservedState } from '../../../src/core/device-state.js';
import { BoundsMemory, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../../helpers/demo-people.js';
import { DEMO_CELL, makeTestCell } from '../../helpers/test-cell.js';

// ---------------- the independent checker: YAML + own math only ----------------

type V3 = [number, number, number];
interface YamlArm {
  joints: { name: string; position: { min: number; max: number; unit: string } }[];
  kinematics: {
    dh: { lengthUnit: string; angleUnit: string; rows: { joint: string; a: number; d: number; alpha: number; theta?: number }[] };
    base: { position: V3; unit: string; yaw: { value: number; unit: string } };
    tool: { offset: V3; unit: string };
  };
  tcp: { speed: { normal: number; reduced: number; unit: string }; orientation: { axis: V3; maxAngle: { value: number; unit: string } } };
  workspace: {
    margin: { value: number; unit: string };
    bodyPoints: string[];
    keepIn: { id: string; box: { min: V3; max: V3; unit: string } }[];
    keepOut: { id: string; box?: { min: V3; max: V3; unit: string }; sphere?: { center: V3; radius: number; unit: string }; plane?: { point: V3; normal: V3; unit: string } }[];
  };
}
const yamlArm = parse(readFileSync(join(DEMO_CELL, 'devices', 'arm-1.yaml'), 'utf8')) as YamlArm;
const RAD_PER_DEG = Math.PI / 180;
const M_PER: Record<string, number> = { m: 1, mm: 0.001 };
const expectUnit = (unit: string, allowed: string[]): void => {
  if (!allowed.includes(unit)) throw new Error(`the independent checker does not know unit ${unit}`);
};
expectUnit(yamlArm.kinematics.dh.lengthUnit, ['m']);
expectUnit(yamlArm.kinematics.dh.angleUnit, ['deg']);
expectUnit(yamlArm.kinematics.base.unit, ['m']);
expectUnit(yamlArm.kinematics.base.yaw.unit, ['deg']);
expectUnit(yamlArm.kinematics.tool.unit, ['m']);
expectUnit(yamlArm.workspace.margin.unit, ['mm', 'm']);
expectUnit(yamlArm.tcp.speed.unit, ['m/s']);
expectUnit(yamlArm.tcp.orientation.maxAngle.unit, ['deg']);
for (const j of yamlArm.joints) expectUnit(j.position.unit, ['deg']);
for (const z of yamlArm.workspace.keepOut) expectUnit((z.box ?? z.sphere ?? z.plane)?.unit ?? '?', ['m']);

const MARGIN_M = yamlArm.workspace.margin.value * (M_PER[yamlArm.workspace.margin.unit] as number);
const SPEED_LIMIT = yamlArm.tcp.speed.normal;
const CONE_RAD = yamlArm.tcp.orientation.maxAngle.value * RAD_PER_DEG;
const CONE_AXIS = yamlArm.tcp.orientation.axis;
const RANGES = yamlArm.joints.map((j) => [j.position.min * RAD_PER_DEG, j.position.max * RAD_PER_DEG] as const);
// Body point names as the YAML documents them: a joint name is the DH frame origin on that joint's axis.
const FRAME_OF = (name: string): number => (name === 'tcp' ? 7 : name === 'flange' ? 6 : yamlArm.joints.findIndex((j) => j.name === name));

type M4 = number[];
const mul = (a: M4, b: M4): M4 => {
  const c = new Array<number>(16).fill(0);
  for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) for (let col = 0; col < 4; col++) c[r * 4 + col] = (c[r * 4 + col] as number) + (a[r * 4 + k] as number) * (b[k * 4 + col] as number);
  return c;
};
const yaw = yamlArm.kinematics.base.yaw.value * RAD_PER_DEG;
const [bx, by, bz] = yamlArm.kinematics.base.position;
const BASE: M4 = [Math.cos(yaw), -Math.sin(yaw), 0, bx, Math.sin(yaw), Math.cos(yaw), 0, by, 0, 0, 1, bz, 0, 0, 0, 1];

/** Frame origins 0..6, the TCP (7), and the tool axis, in the cell frame. */
function referenceFk(q: readonly number[]): { points: V3[]; toolAxis: V3 } {
  let T = BASE;
  const points: V3[] = [[T[3] as number, T[7] as number, T[11] as number]];
  yamlArm.kinematics.dh.rows.forEach((row, i) => {
    const theta = (q[i] as number) + (row.theta ?? 0) * RAD_PER_DEG;
    const alpha = row.alpha * RAD_PER_DEG;
    const [ct, st, ca, sa] = [Math.cos(theta), Math.sin(theta), Math.cos(alpha), Math.sin(alpha)];
    T = mul(T, [ct, -st * ca, st * sa, row.a * ct, st, ct * ca, -ct * sa, row.a * st, 0, sa, ca, row.d, 0, 0, 0, 1]);
    points.push([T[3] as number, T[7] as number, T[11] as number]);
  });
  const [tx, ty, tz] = yamlArm.kinematics.tool.offset;
  const tool = mul(T, [1, 0, 0, tx, 0, 1, 0, ty, 0, 0, 1, tz, 0, 0, 0, 1]);
  points.push([tool[3] as number, tool[7] as number, tool[11] as number]);
  return { points, toolAxis: [T[2] as number, T[6] as number, T[10] as number] };
}

/** Distance outside an axis-aligned box (0 inside) and depth inside it (0 outside). */
const boxOutside = (p: V3, lo: V3, hi: V3): number => Math.hypot(...p.map((v, i) => Math.max(0, (lo[i] as number) - v, v - (hi[i] as number))));
const boxDepth = (p: V3, lo: V3, hi: V3): number => Math.min(...p.map((v, i) => Math.min(v - (lo[i] as number), (hi[i] as number) - v)));

/** Every problem the reference finds on the straight joint line, sampled `samples` times. */
function referenceProblems(q0: readonly number[], q1: readonly number[], velocity: number, samples: number): string[] {
  const problems: string[] = [];
  q1.forEach((v, j) => {
    const [lo, hi] = RANGES[j] as readonly [number, number];
    if (!(v >= lo && v <= hi)) problems.push(`joint ${j} target out of range`);
  });
  const leading = Math.max(...q1.map((v, j) => Math.abs(v - (q0[j] as number))));
  const durationS = leading / velocity;
  let previousTcp: V3 | undefined;
  for (let k = 0; k <= samples; k++) {
    const s = k / samples;
    const { points, toolAxis } = referenceFk(q0.map((v, j) => v + s * ((q1[j] as number) - v)));
    for (const name of yamlArm.workspace.bodyPoints) {
      const p = points[FRAME_OF(name)] as V3;
      // Inside the keep-in box by at least the margin (the engine keeps margin + resolution / 2 at its samples).
      const inside = Math.max(...yamlArm.workspace.keepIn.map((z) => boxDepth(p, z.box.min.map((v) => v * (M_PER[z.box.unit] as number)) as V3, z.box.max.map((v) => v * (M_PER[z.box.unit] as number)) as V3)));
      if (!(inside >= MARGIN_M - 1e-9)) problems.push(`${name} within ${inside} m of the keep-in wall at s=${s}`);
      for (const zone of yamlArm.workspace.keepOut) {
        let distance = Infinity;
        if (zone.box) distance = boxOutside(p, zone.box.min, zone.box.max);
        if (zone.sphere) distance = Math.hypot(p[0] - zone.sphere.center[0], p[1] - zone.sphere.center[1], p[2] - zone.sphere.center[2]) - zone.sphere.radius;
        if (zone.plane) {
          const n = zone.plane.normal;
          const length = Math.hypot(...n);
          distance = ((p[0] - zone.plane.point[0]) * n[0] + (p[1] - zone.plane.point[1]) * n[1] + (p[2] - zone.plane.point[2]) * n[2]) / length;
        }
        if (!(distance >= MARGIN_M - 1e-9)) problems.push(`${name} ${distance} m from keep-out ${zone.id} at s=${s}`);
      }
    }
    const cosine = (toolAxis[0] * CONE_AXIS[0] + toolAxis[1] * CONE_AXIS[1] + toolAxis[2] * CONE_AXIS[2]) / Math.hypot(...CONE_AXIS);
    if (!(Math.acos(Math.max(-1, Math.min(1, cosine))) <= CONE_RAD + 1e-9)) problems.push(`tool axis out of its cone at s=${s}`);
    const tcp = points[7] as V3;
    // (A move below 1e-9 rad is numerically no move: its duration underflows, so no chord speed is computed.)
    if (previousTcp !== undefined && leading > 1e-9) {
      // Chord speed over 1/samples of the move; 1% allowed for the engine evaluating the speed at its own samples.
      const speed = Math.hypot(tcp[0] - previousTcp[0], tcp[1] - previousTcp[1], tcp[2] - previousTcp[2]) / (durationS / samples);
      if (!(speed <= SPEED_LIMIT * 1.01)) problems.push(`TCP at ${speed} m/s at s=${s}`);
    }
    previousTcp = tcp;
  }
  return problems;
}

// ---------------- the property ----------------

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const device = loaded.declarations.devices.get('arm-1') as DeviceDeclaration;
const planner = loaded.declarations.agents.get('planner-1');
if (planner === undefined) throw new Error('no planner-1');
const NOW = 1_700_000_000_000;

function engineVerdict(q0: number[], q1: number[], velocity: number): string {
  const command: VerifiedCommand = { commandId: 'p', kid: 'k', seq: 1, agent: planner!, device, action: 'move_joints', params: { positionsRad: q1, velocityRadPerS: velocity }, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 2000 };
  // At rest: the property is about the path itself (a moving arm's run-out is tested in run-out.test.ts).
  const observed: ObservedState = { state: { kind: 'robot_arm', positionsRad: q0, moving: false }, receivedAtMs: NOW - 10 };
  // amr-1 reports nobody near the table and is out of the transfer station: the engine checks the normal limits the
  // reference checks.
  const states = withAmrReport({ latest: () => observed }, amrReport(NOW - 10));
  return checkBounds({ command, declarations: loaded.declarations, states, releases: NO_RELEASES, memory: new BoundsMemory(), nowMs: NOW }).verdict;
}

t.test('the reference checker agrees with the demo cell on hand-picked poses (it is not vacuous)', async (t) => {
  const work = [0, -1.571, 1.571, -1.571, -1.571, 0];
  t.same(referenceProblems(work, [0.3, -1.2, 1.4, -1.571, -1.571, 0.2], 1.0, 400), [], 'a move over the table is fine');
  t.ok(referenceProblems([-0.38, -0.97, 1.54, -0.58, -2.45, -0.42], [-1.83, -1.84, 1.94, 0.38, -3.66, 0.74], 0.1, 400).some((p) => p.includes('operator-station')), 'a swing through the operator station is not');
  t.ok(referenceProblems(work, [0, -1.571, 1.571, -1.571, 1.571, 0], 0.1, 400).some((p) => p.includes('cone')), 'tipping the tool up is not');
  t.ok(referenceProblems(work, [0.3, -1.2, 1.4, -1.571, -1.571, 0.2], 3.0, 400).some((p) => p.includes('m/s')), 'too fast is not');
});

t.test('property: every allowed move_joints is safe along its whole path by the independent reference', async (t) => {
  const seeds = [
    [0, -1.571, 1.571, -1.571, -1.571, 0],
    [0.8, -1.2, 1.9, -2.2, -1.571, 0.3],
    [-0.5, -1.9, 2.0, -1.7, -1.571, 0],
    [0.5, -1.0, 1.0, -1.5, -1.2, 0.5],
  ];
  const near = (spread: number) => fc.double({ min: -spread, max: spread, noNaN: true });
  const offsets = fc.tuple(near(0.6), near(0.6), near(0.6), near(0.8), near(0.8), near(1));
  let allowed = 0;
  let denied = 0;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), offsets, offsets, fc.double({ min: 0.05, max: 2.5, noNaN: true }), (seed, start, step, velocity) => {
      const q0 = (seeds[seed] as number[]).map((v, j) => v + (start[j] as number));
      const q1 = q0.map((v, j) => v + 1.5 * (step[j] as number));
      if (engineVerdict(q0, q1, velocity) !== 'allow') {
        denied += 1;
        return true;
      }
      allowed += 1;
      const problems = referenceProblems(q0, q1, velocity, 800);
      if (problems.length > 0) throw new Error(`allowed but unsafe: ${JSON.stringify({ q0, q1, velocity })}: ${problems.slice(0, 3).join('; ')}`);
      return true;
    }),
    { numRuns: 400, seed: 20250611 },
  );
  t.ok(allowed >= 60, `the property exercised allows (${allowed} allowed, ${denied} denied)`);
  t.ok(denied >= 60, `and denials (${denied})`);
});
