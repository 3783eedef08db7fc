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
import { EmbeddedBroker } from '../src/transport/embedded-broker.js';
import { MqttTransport } from '../src/transport/mqtt-transport.js';
import { topicSet } from '../src/transport/topics.js';
import { nodeVersionProblem } from '../src/cli/node-version.js';
import { benchAudit, printAuditBytes } from './bench-audit.js';
import { benchAuditWorker } from './bench-audit-worker.js';
import { ARM_AT_REST, HOME, printBoundsBench } from './bench-bounds.js';
import { benchStartup, printStartup } from './bench-startup.js';
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
  // 2. The bounds stage alone, per device kind (scripts/bench-bounds.ts; `node dist/scripts/bench-bounds.js` runs it alone).
  printBoundsBench(cell, benchNowMs);

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

  // 12. Start-up and memory of the real `interlock run` (scripts/bench-startup.ts): spawn to ready, RSS, aws-crt.
  printStartup(await benchStartup());

  rmSync(work, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
