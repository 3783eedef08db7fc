// Benchmark section 2 (called from scripts/bench.ts): the bounds stage alone, per device kind, for one allowed
// command each with live state. `node dist/scripts/bench-bounds.js [--only TEXT]` runs it alone.

import { performance } from 'node:perf_hooks';
import { checkBounds } from '../src/bounds/bounds.js';
import { compiledArm } from '../src/bounds/robot-arm/compiled-arm.js';
import { jointPathIntervals } from '../src/bounds/robot-arm/swept-path.js';
import type { VerifiedCommand } from '../src/core/command.js';
import type { ObservedState } from '../src/core/device-state.js';
import type { LoadedCell } from '../src/declarations/load.js';
import { parseDeviceState } from '../src/interlock/state-store.js';
import { BoundsMemory, NO_RELEASES } from '../src/pipeline/pipeline.js';
import { stats, us } from './bench-stats.js';

/** The demo arm's home pose (rad). */
export const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];

export const BOUNDS_RUNS = 5000;
/** Untimed checks of each sample first, so that the timed ones measure optimised code, not the JIT warming up. */
export const BOUNDS_WARMUP_RUNS = 2000;

/** The demo arm as its simulated driver reports it at rest: positions, zero velocities, not moving. */
export const ARM_AT_REST = { positionsRad: HOME, velocitiesRadPerS: [0, 0, 0, 0, 0, 0], moving: false };

/**
 * A move_joints from HOME that the demo arm samples at exactly 100 poses (99 intervals of at most the 1 cm
 * resolution): base, shoulder, elbow and wrist 3 together, staying over the table, clear of every zone.
 */
const ARM_100_SAMPLES = [0.46, -1.571 - 0.1, 1.571 + 0.12, -1.571, -1.571, 0.3];

interface BoundsSample {
  readonly label: string;
  readonly deviceId: string;
  readonly action: string;
  readonly params: Record<string, unknown>;
  /** State messages by device id, as drivers publish them (people, neighbours included). */
  readonly states: Record<string, Record<string, unknown>>;
  readonly agentId?: string;
  /** For an arm move_joints: the number of path samples the label promises (checked before timing). */
  readonly armSamples?: number;
}

/** One representative allowed command per kind, against the demo cell's example devices. */
function boundsSamples(): BoundsSample[] {
  const pumpState = {
    measurements: {
      suction_pressure: 50_000,
      discharge_pressure: 300_000,
      discharge_flow: 0.002,
      tank_level: 1.2,
      pump_speed: 100,
      suction_valve_position: 1,
      discharge_valve_position: 0.5,
      suction_valve_open: true,
    },
    setpoints: { pump_speed: 100, suction_valve: 1, discharge_valve: 0.5 },
    running: true,
    trips: [],
    safeStopped: false,
  };
  const arm = ARM_AT_REST;
  // The AMR in the free aisle, at rest, localized, people known and far away (it is the cell's people source).
  const amr = {
    pose: { xM: 4, yM: -0.5, yawRad: 0 },
    velocity: { linearMPerS: 0, angularRadPerS: 0 },
    localization: { ok: true, ageMs: 20 },
    moving: false,
    safeStopped: false,
    people: [[12, 4], [13, 5], [11, 3]],
  };
  return [
    {
      label: 'robot arm move_joints, no motion (target = state)',
      deviceId: 'arm-1',
      action: 'move_joints',
      params: { positionsRad: HOME, velocityRadPerS: 0.5 },
      states: { 'arm-1': arm, 'amr-1': amr },
    },
    {
      label: 'robot arm move_joints, base +0.1 rad (swept path, 16 samples)',
      deviceId: 'arm-1',
      action: 'move_joints',
      params: { positionsRad: [0.1, ...HOME.slice(1)], velocityRadPerS: 0.5 },
      states: { 'arm-1': arm, 'amr-1': amr },
      armSamples: 16,
    },
    {
      label: 'robot arm move_joints, 4 joints (swept path, 100 samples)',
      deviceId: 'arm-1',
      action: 'move_joints',
      params: { positionsRad: ARM_100_SAMPLES, velocityRadPerS: 0.5 },
      states: { 'arm-1': arm, 'amr-1': amr },
      armSamples: 100,
    },
    {
      // The TCP from home (1.492, 1.133, 1.088) 0.3 m along -y: joint rates solved from the Jacobian at every sample.
      label: 'robot arm move_linear, 0.3 m straight line',
      deviceId: 'arm-1',
      action: 'move_linear',
      params: { positionM: [1.492, 0.833, 1.088], speedMPerS: 0.25 },
      states: { 'arm-1': arm, 'amr-1': amr },
    },
    {
      label: 'mobile robot set_velocity (0.5 m/s for 1 s)',
      deviceId: 'amr-1',
      action: 'set_velocity',
      params: { linearMPerS: 0.5, angularRadPerS: 0.1, durationMs: 1000 },
      states: { 'amr-1': amr },
    },
    {
      label: 'mobile robot follow_path, 100 waypoints',
      deviceId: 'amr-1',
      action: 'follow_path',
      params: { waypoints: Array.from({ length: 100 }, (_, i) => [3.5 + (2.5 * i) / 99, 0.8 * Math.sin(i / 5)]), speedMPerS: 0.5 },
      states: { 'amr-1': amr },
    },
    {
      label: 'conveyor set_speed',
      deviceId: 'conveyor-1',
      action: 'set_speed',
      params: { speedMPerS: 0.3 },
      states: {
        'conveyor-1': { speedMPerS: 0.2, permissives: { guardClosed: true, estopReleased: true, downstreamReady: true }, running: true, safeStopped: false },
        'amr-1': amr,
      },
    },
    {
      label: 'process unit set_setpoint',
      deviceId: 'pump-1',
      action: 'set_setpoint',
      params: { name: 'pump_speed', value: 110, unit: 'rad/s' },
      states: { 'pump-1': pumpState },
    },
  ];
}

/**
 * Times checkBounds for one sample; every run must be an allow, or the bench measures the wrong path. One
 * BoundsMemory for all runs, as in the running interlock, with the clock moved on past every rate window between
 * two commands (and the states re-stamped as just received), so that no rate limit is reached and nothing is
 * allocated per run but what checkBounds itself allocates.
 */
function benchBounds(cell: LoadedCell, sample: BoundsSample, startMs: number): number[] {
  const device = cell.declarations.devices.get(sample.deviceId);
  const agent = cell.declarations.agents.get(sample.agentId ?? 'planner-1');
  if (device === undefined || agent === undefined) throw new Error(`bench: ${sample.deviceId} or its agent is not declared`);
  const observed = new Map<string, { -readonly [K in keyof ObservedState]: ObservedState[K] }>();
  for (const [id, message] of Object.entries(sample.states)) {
    const target = cell.declarations.devices.get(id);
    if (target === undefined) throw new Error(`bench: no device ${id}`);
    const parsed = parseDeviceState(target, JSON.stringify(message));
    if (!parsed.ok) throw new Error(`bench: state of ${id}: ${parsed.problem}`);
    observed.set(id, { ...parsed.observed, receivedAtMs: startMs });
  }
  if (sample.armSamples !== undefined) {
    // The label names the path's sample count: a changed declaration must not leave it measuring something else.
    const arm = device.kind === 'robot_arm' ? compiledArm(device) : undefined;
    const target = sample.params['positionsRad'] as number[];
    const samples = arm === undefined ? NaN : jointPathIntervals(arm, HOME, target) + 1;
    if (samples !== sample.armSamples) throw new Error(`bench: ${sample.label} samples ${samples} poses, not ${sample.armSamples}`);
  }
  const states = { latest: (id: string) => observed.get(id) };
  const command: VerifiedCommand = {
    commandId: 'bench-0001',
    kid: 'bench',
    seq: 1,
    agent,
    device,
    action: sample.action,
    params: sample.params,
    safeState: false,
    issuedAtMs: startMs,
    expiresAtMs: startMs + 2000,
  };
  const rateWindows = [cell.declarations.commandLimits.ratePerAgent, ...[...cell.declarations.devices.values()].map((d) => d.rateLimit)];
  const spacingMs = Math.max(1000, ...rateWindows.map((limit) => limit?.perMs ?? 0)) + 1;
  const memory = new BoundsMemory();
  const samples: number[] = [];
  for (let run = 0; run < BOUNDS_WARMUP_RUNS + BOUNDS_RUNS; run++) {
    const nowMs = startMs + run * spacingMs;
    for (const state of observed.values()) state.receivedAtMs = nowMs;
    const start = performance.now();
    const result = checkBounds({ command, declarations: cell.declarations, states, releases: NO_RELEASES, memory, nowMs });
    const elapsedMs = performance.now() - start;
    if (run >= BOUNDS_WARMUP_RUNS) samples.push(elapsedMs);
    if (result.verdict !== 'allow') throw new Error(`bench: ${sample.label} was not allowed: ${JSON.stringify(result.reasons)}`);
  }
  return samples;
}

/** Section 2 of `npm run bench`: one table row per sample whose label contains `only` (all by default). */
export function printBoundsBench(cell: LoadedCell, nowMs: number, only = ''): void {
  console.log(`## 2. bounds stage per device kind (checkBounds; ${BOUNDS_RUNS} allowed commands each after ${BOUNDS_WARMUP_RUNS} untimed, one memory per kind)`);
  console.log(`| device kind / command | p50 | p99 | checks/s (1 core) |`);
  console.log(`|---|---|---|---|`);
  for (const sample of boundsSamples()) {
    if (!sample.label.includes(only)) continue;
    const b = stats(benchBounds(cell, sample, nowMs));
    console.log(`| ${sample.label} | ${us(b.p50)} | ${us(b.p99)} | ${(1000 / b.mean).toFixed(0)} |`);
  }
  console.log('');
}

// `node dist/scripts/bench-bounds.js [--only TEXT]` runs this section alone (npm run build first), on a scratch copy
// of the demo cell; repeat the command for repeated runs (each in a fresh process).
if (process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const { cpSync, mkdtempSync, rmSync } = await import('node:fs');
  const { cpus, tmpdir } = await import('node:os');
  const { dirname, join, resolve } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const { parseArgs } = await import('node:util');
  const { ensureCellAgentKeys, ensureCellDriverKeys } = await import('../src/keys/cell-agent-keys.js');
  const { loadCell } = await import('../src/declarations/load.js');
  const { values } = parseArgs({ options: { only: { type: 'string', default: '' } } });
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = mkdtempSync(join(tmpdir(), 'interlock-bench-bounds-'));
  cpSync(join(root, 'safety-bounds', 'demo-cell'), join(dir, 'cell'), { recursive: true, filter: (src) => !src.endsWith('/keys') });
  ensureCellAgentKeys(join(dir, 'cell'), join(dir, 'private'));
  ensureCellDriverKeys(join(dir, 'cell'), join(dir, 'private'));
  const loaded = loadCell(join(dir, 'cell'));
  if (!loaded.ok) throw new Error('bench-bounds: the demo cell does not load');
  console.log(`# node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}; node dist/scripts/bench-bounds.js${values.only === '' ? '' : ` --only '${values.only}'`} (${new Date().toISOString()})\n`);
  printBoundsBench(loaded.cell, Date.now(), values.only);
  rmSync(dir, { recursive: true, force: true });
}
