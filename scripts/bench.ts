// `npm run bench`: what the interlock costs, measured side by side in one run on this machine, reported as
// ratios to the path without it. Bounded in count and time; talks only to 127.0.0.1.

import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { verify } from 'node:crypto';
import { CommandSigner } from '../src/agent-sdk/command-signer.js';
import { openSqliteAuditLog } from '../src/audit/sqlite-audit-log.js';
import { systemClock } from '../src/core/clock.js';
import type { ObservedState } from '../src/core/device-state.js';
import { generateEd25519KeyPair, parseCompactJws } from '../src/crypto/jws.js';
import { loadCell } from '../src/declarations/load.js';
import { MemoryReplayGuard } from '../src/envelope/replay-guard.js';
import { Interlock } from '../src/interlock/interlock.js';
import { ensureCellAgentKeys, ensureCellDriverKeys } from '../src/keys/cell-agent-keys.js';
import { DeviceReporter } from '../src/driver-sdk/device-reporter.js';
import { evaluateCommand, BoundsMemory, NO_RELEASES } from '../src/pipeline/pipeline.js';
import { checkBounds } from '../src/bounds/bounds.js';
import type { VerifiedCommand } from '../src/core/command.js';
import type { LoadedCell } from '../src/declarations/load.js';
import { parseDeviceState } from '../src/interlock/state-store.js';
import { EmbeddedBroker } from '../src/transport/embedded-broker.js';
import { MqttTransport } from '../src/transport/mqtt-transport.js';
import { topicSet } from '../src/transport/topics.js';
import { nodeVersionProblem } from '../src/cli/node-version.js';
import { benchAudit, printAuditBytes } from './bench-audit.js';
import { benchAuditWorker } from './bench-audit-worker.js';
import { stats, us } from './bench-stats.js';
import { benchIdentity } from './bench-identity.js';
import { printFloodBench } from './bench-flood.js';
import { benchOversize, printOversize } from './bench-oversize.js';
import { benchReports } from './bench-reports.js';
import { benchForward } from './bench-forward.js';
import { benchEndToEnd, printEndToEnd } from './bench-e2e.js';
import { wideBroker, wideClient } from './wide-broker.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];

const BOUNDS_RUNS = 5000;
/** Untimed checks of each sample first, so that the timed ones measure optimised code, not the JIT warming up. */
const BOUNDS_WARMUP_RUNS = 2000;

/** The demo arm as its simulated driver reports it at rest: positions, zero velocities, not moving. */
const ARM_AT_REST = { positionsRad: HOME, velocitiesRadPerS: [0, 0, 0, 0, 0, 0], moving: false };

interface BoundsSample {
  readonly label: string;
  readonly deviceId: string;
  readonly action: string;
  readonly params: Record<string, unknown>;
  /** State messages by device id, as drivers publish them (people, neighbours included). */
  readonly states: Record<string, Record<string, unknown>>;
  readonly agentId?: string;
}

/** One representative allowed command per kind, against the demo cell's example devices. */
function boundsSamples(nowMs: number): BoundsSample[] {
  void nowMs;
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
      label: 'robot arm move_joints, base +0.1 rad (swept path)',
      deviceId: 'arm-1',
      action: 'move_joints',
      params: { positionsRad: [0.1, ...HOME.slice(1)], velocityRadPerS: 0.5 },
      states: { 'arm-1': arm, 'amr-1': amr },
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

async function main(): Promise<void> {
  const tooOld = nodeVersionProblem(process.versions.node);
  if (tooOld !== undefined) throw new Error(`npm run bench ${tooOld}`);
  const work = mkdtempSync(join(tmpdir(), 'interlock-bench-'));
  const cellDir = join(work, 'cell');
  cpSync(join(root, 'safety-bounds', 'demo-cell'), cellDir, { recursive: true, filter: (src) => !src.endsWith('/keys') });
  const keys = ensureCellAgentKeys(cellDir, join(work, 'private'));
  const driverKeys = ensureCellDriverKeys(cellDir, join(work, 'private'));
  const loaded = loadCell(cellDir);
  if (!loaded.ok) throw new Error('demo cell does not load');
  const cell = loaded.cell;
  const planner = keys.get('planner-1');
  if (planner === undefined) throw new Error('no planner key');
  // Part 1 signs and decides at one fixed instant, so no token expires while thousands are being prepared.
  const benchNowMs = Date.now();
  const fixedSigner = new CommandSigner({ agentId: 'planner-1', kid: planner.kid, privateKey: planner.privateKey, nowMs: () => benchNowMs });
  const signer = new CommandSigner({ agentId: 'planner-1', kid: planner.kid, privateKey: planner.privateKey });

  console.log(`# interlock bench: node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`);
  console.log(`# command: npm run bench   (${new Date().toISOString()})\n`);

  // 1. The decision pipeline in process, against its floor: the Ed25519 verification every command needs.
  const N = 5000;
  const tokens = Array.from({ length: N }, () => fixedSigner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 1 }));
  const parsed = tokens.map((token) => {
    const p = parseCompactJws(token);
    if (!p.ok) throw new Error('bad token');
    return p.jws;
  });
  const publicKey = cell.declarations.keys.get(planner.kid)?.publicKey;
  if (publicKey === undefined) throw new Error('no public key');
  const verifySamples: number[] = [];
  for (const jws of parsed) {
    const start = performance.now();
    verify(null, jws.signingInput, publicKey, jws.signature);
    verifySamples.push(performance.now() - start);
  }
  const nowMs = benchNowMs;
  const observed: ObservedState = { state: { kind: 'robot_arm', ...ARM_AT_REST }, receivedAtMs: nowMs };
  const context = { cell, replay: new MemoryReplayGuard(() => nowMs), states: { latest: () => observed }, releases: NO_RELEASES, bounds: new BoundsMemory() };
  const pipelineSamples: number[] = [];
  let allowed = 0;
  for (const token of tokens) {
    const start = performance.now();
    const decision = evaluateCommand({ token, topicDeviceId: 'arm-1' }, context, nowMs);
    pipelineSamples.push(performance.now() - start);
    if (decision.verdict === 'allow') allowed += 1;
  }
  // A bench that measured denials would measure the wrong path.
  if (allowed !== N) throw new Error(`expected every bench command to be allowed, got ${allowed}/${N}`);
  const v = stats(verifySamples);
  const p = stats(pipelineSamples);
  console.log(`## 1. decision pipeline in process (${N} allowed move_joints, envelope + Cedar + bounds)`);
  console.log(`| path | p50 | p99 | decisions/s (1 core) |`);
  console.log(`|---|---|---|---|`);
  console.log(`| Ed25519 verify only (the floor) | ${us(v.p50)} | ${us(v.p99)} | ${(1000 / v.mean).toFixed(0)} |`);
  console.log(`| evaluateCommand | ${us(p.p50)} | ${us(p.p99)} | ${(1000 / p.mean).toFixed(0)} |`);
  console.log(`ratio pipeline / verify (p50): ${(p.p50 / v.p50).toFixed(2)}x\n`);

  // 3. End to end over the embedded broker: an agent's command to the actuator, without and with the interlock.
  const broker = wideBroker({ log: () => undefined });
  await broker.start();
  const topics = topicSet();
  const interlockKeys = generateEd25519KeyPair();
  const audit = openSqliteAuditLog(join(work, 'audit.db'));
  const interlockBus = broker.transport();
  await interlockBus.start();
  const interlock = new Interlock({ cell, transport: interlockBus, audit, signingKey: interlockKeys.privateKey, clock: systemClock, heartbeatPeriodMs: 0 });
  await interlock.start();
  const agent = wideClient(broker.url, 'agent');
  const driver = wideClient(broker.url, 'driver');
  await agent.start();
  await driver.start();
  const armKey = driverKeys.get('arm-1');
  if (armKey === undefined) throw new Error('no driver key for arm-1');
  const armReports = new DeviceReporter('arm-1', armKey);
  // The simulated arm reports the last release it executed (lastCommandId), as a real driver must: the interlock
  // counts a release as finished only from the device's own report of it, and denies the next move until then.
  let lastCommandId: string | null = null;
  const armState = (): string => armReports.state({ ...ARM_AT_REST, lastCommandId });
  const stateTimer = setInterval(() => void driver.publish(topics.actuatorState('arm-1'), armState(), { qos: 0 }), 20);
  await driver.publish(topics.actuatorState('arm-1'), armState());
  while (interlock.states.latest('arm-1') === undefined) await new Promise((r) => setTimeout(r, 5));

  let arrived: (() => void) | undefined;
  let released: string | null = null;
  await driver.subscribe(topics.actuatorCommand('arm-1'), (_topic, payload) => {
    released = (JSON.parse(Buffer.from(payload.toString('utf8').split('.')[1] ?? '', 'base64url').toString('utf8')) as { commandId: string }).commandId;
    arrived?.();
  });
  await driver.subscribe('bench/direct/arm-1', () => arrived?.());
  const roundTrip = async (topic: string, payload: string): Promise<number> => {
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    // A bench must fail, not hang, when nothing arrives (a denied command is never released).
    const done = new Promise<void>((resolveDone, reject) => {
      arrived = resolveDone;
      timer = setTimeout(() => reject(new Error(`bench: nothing arrived on the driver within 10 s of a publish to ${topic} (denied? see the audit log)`)), 10_000);
    });
    await agent.publish(topic, payload);
    await done.finally(() => clearTimeout(timer));
    return performance.now() - start;
  };
  /** Untimed: the arm reports the release done, and the interlock has seen that report. */
  const finish = async (): Promise<void> => {
    lastCommandId = released;
    await driver.publish(topics.actuatorState('arm-1'), armState(), { qos: 1 });
    const deadline = Date.now() + 10_000;
    while ((interlock.states.latest('arm-1')?.state as { lastCommandId?: string | null } | undefined)?.lastCommandId !== lastCommandId) {
      if (Date.now() > deadline) throw new Error(`bench: the arm's report of ${String(lastCommandId)} did not reach the interlock`);
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  const M = 1000;
  const direct: number[] = [];
  const through: number[] = [];
  // Interleaved so that drift on a shared machine affects both paths alike.
  for (let i = 0; i < M; i++) {
    const token = signer.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 1 });
    direct.push(await roundTrip('bench/direct/arm-1', token));
    through.push(await roundTrip(topics.command('arm-1'), token));
    await finish();
  }
  clearInterval(stateTimer);
  const d = stats(direct);
  const th = stats(through);
  console.log(`## 3. agent -> actuator over MQTT (embedded broker, QoS 1, ${M} commands each, interleaved)`);
  console.log(`| path | p50 | p99 | commands/s (sequential) |`);
  console.log(`|---|---|---|---|`);
  console.log(`| direct: agent publishes straight to the driver | ${us(d.p50)} | ${us(d.p99)} | ${(1000 / d.mean).toFixed(0)} |`);
  console.log(`| through the interlock (decide + SQLite FULL commit + signed release) | ${us(th.p50)} | ${us(th.p99)} | ${(1000 / th.mean).toFixed(0)} |`);
  console.log(`ratio through / direct: p50 ${(th.p50 / d.p50).toFixed(2)}x, p99 ${(th.p99 / d.p99).toFixed(2)}x`);
  console.log(`added latency p50: ${us(th.p50 - d.p50)}; audit records written: ${audit.head().seq}`);

  await interlock.stop();
  await agent.stop();
  await driver.stop();
  await interlockBus.stop();
  await broker.stop();
  audit.close();
  printAuditBytes(join(work, 'audit.db'));
  console.log('');

  // This section once ran before the broker section and V8 aborted in its deoptimizer (Node 20.20.2, an inlined
  // JS-to-Wasm call into cedar-wasm); src/policy/cedar-policy.ts now turns that inlining off.
  // 2. The bounds stage alone, per device kind: the physical checks for one allowed command, with live state.
  console.log(`## 2. bounds stage per device kind (checkBounds; ${BOUNDS_RUNS} allowed commands each after ${BOUNDS_WARMUP_RUNS} untimed, one memory per kind)`);
  console.log(`| device kind / command | p50 | p99 | checks/s (1 core) |`);
  console.log(`|---|---|---|---|`);
  for (const sample of boundsSamples(benchNowMs)) {
    const samples = benchBounds(cell, sample, benchNowMs);
    const b = stats(samples);
    console.log(`| ${sample.label} | ${us(b.p50)} | ${us(b.p99)} | ${(1000 / b.mean).toFixed(0)} |`);
  }
  console.log('');

  // 4. Identity and permissions: Cedar memoised vs not, and where signatures are verified.
  await benchIdentity(cell, planner);

  // 5. The audit log: the fsync floor, one transaction per record, and group commit.
  await benchAudit();
  // 5b. The same log on its writer thread: latency and the main thread's busy fraction, against the main thread.
  await benchAuditWorker();

  // 6. Device reports: signed state per message, and decision latency while drivers report.
  await benchReports(cell, driverKeys, work, new CommandSigner({ agentId: 'planner-1', kid: planner.kid, privateKey: planner.privateKey, ttlMs: 5000 }));

  // 7. Hostile traffic: oversize publishes against the broker's packet limit, and an unauthenticated flood.
  printOversize([await benchOversize()]);
  await printFloodBench();

  await benchForward(cell, new CommandSigner({ agentId: 'planner-1', kid: planner.kid, privateKey: planner.privateKey, ttlMs: 5000 }));

  // 11. End to end through mosquitto and the embedded broker, direct and through `interlock run`, at offered loads.
  printEndToEnd(await benchEndToEnd());

  rmSync(work, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
