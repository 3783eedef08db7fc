// Rough timing of the mobile robot bounds on this machine (target: a 100-waypoint follow_path under 500 µs p99).
// The assertion is ten times looser than the target so a busy test machine does not fail it; the figures are logged.

import { performance } from 'node:perf_hooks';
import t from 'tap';
import { checkMobileRobotCommand } from '../../../src/bounds/mobile-robot-bounds.js';
import type { MobileRobotDeclaration } from '../../../src/core/kinds/mobile-robot.js';
import { loadMobileCell, peopleAt, robotState } from './fixtures.js';

const { loaded } = loadMobileCell(t);
// The demo AMR: four keep-out areas, two speed zones.
const amr1 = loaded.declarations.devices.get('amr-1') as MobileRobotDeclaration;

function percentiles(run: () => void, iterations: number): { p50: number; p99: number } {
  for (let i = 0; i < 2000; i++) run();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    run();
    samples[i] = (performance.now() - start) * 1000;
  }
  samples.sort();
  return { p50: samples[Math.floor(iterations * 0.5)] as number, p99: samples[Math.floor(iterations * 0.99)] as number };
}

t.test('a 100-waypoint path with 10 people, and a set_velocity, are checked well within budget', async (t) => {
  // A clear lawn-mower path in the open floor (x -3..-9, y -5..0), so every check runs to the end and allows.
  const waypoints = Array.from({ length: 100 }, (_, i) => [-3 - (i % 2) * 6, -5 + i * 0.05]);
  const people = peopleAt(...Array.from({ length: 10 }, (_, i): [number, number] => [20 + i, 20]));
  const state = robotState({ x: -3, y: -5.5 });
  const path = { action: 'follow_path', params: { waypoints, speedMPerS: 0.25 } };
  const velocity = { action: 'set_velocity', params: { linearMPerS: 0.5, angularRadPerS: 0.2, durationMs: 500 } };
  t.equal(checkMobileRobotCommand(amr1, path, { state, mode: 'normal', people }).verdict, 'allow', 'the path is allowed (worst case: nothing short-circuits)');
  t.equal(checkMobileRobotCommand(amr1, velocity, { state, mode: 'normal', people }).verdict, 'allow');
  const pathTiming = percentiles(() => checkMobileRobotCommand(amr1, path, { state, mode: 'normal', people }), 5000);
  const velocityTiming = percentiles(() => checkMobileRobotCommand(amr1, velocity, { state, mode: 'normal', people }), 20000);
  t.comment(`follow_path, 100 waypoints, 10 people: p50 ${pathTiming.p50.toFixed(1)} µs, p99 ${pathTiming.p99.toFixed(1)} µs`);
  t.comment(`set_velocity, 10 people: p50 ${velocityTiming.p50.toFixed(1)} µs, p99 ${velocityTiming.p99.toFixed(1)} µs`);
  t.ok(pathTiming.p99 < 5000, `follow_path p99 ${pathTiming.p99.toFixed(1)} µs (target 500 µs)`);
  t.ok(velocityTiming.p99 < 500, `set_velocity p99 ${velocityTiming.p99.toFixed(1)} µs (target 50 µs)`);
});
