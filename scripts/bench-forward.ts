// Bench section: audit forwarding. (a) How fast a backlog drains, unthrottled, through a local broker to the SQLite
// receiver (in a worker thread, as the real one is off the device). (b) One hour of records at 10 decisions/s
// (36,000) drained at the default rate while the interlock decides, with the decision latency (p99) before, during
// and after the drain in the same run.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { CommandSigner } from '../src/agent-sdk/command-signer.js';
import { openSqliteAuditLog, type SqliteAuditLog } from '../src/audit/sqlite-audit-log.js';
import { AuditForwarder, DEFAULT_FORWARDING } from '../src/cloud/audit-forwarder.js';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/log.js';
import { generateEd25519KeyPair } from '../src/crypto/jws.js';
import type { LoadedCell } from '../src/declarations/load.js';
import { Interlock } from '../src/interlock/interlock.js';
import { commandDigest } from '../src/pipeline/pipeline.js';
import { topicSet } from '../src/transport/topics.js';
import { stats, us } from './bench-stats.js';
import { wideBroker, wideClient } from './wide-broker.js';

const HOUR_AT_10_PER_S = 36_000;

/** Fills the log with `n` decision records shaped as the interlock writes them (a signed token, reasons, state). */
async function fill(log: SqliteAuditLog, n: number, planner: CommandSigner): Promise<void> {
  const token = planner.sign('conveyor-1', 'set_speed', { speedMPerS: 0.2 });
  for (let i = 0; i < n; i += 1_000) {
    const wave: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + 1_000); k++) {
      wave.push(
        log.record({
          kind: 'decision',
          timeMs: Date.now(),
          commandId: `bench-${k}`,
          agentId: 'planner-1',
          deviceId: 'conveyor-1',
          action: 'set_speed',
          commandDigest: commandDigest(token),
          verdict: 'allow',
          reasons: [],
          commandToken: token,
          state: { speedMPerS: { value: 0.1, ageMs: 12 } },
          decisionUs: 480,
        }),
      );
    }
    await Promise.all(wave);
  }
}

async function startReceiver(url: string, dbPath: string, publicKeyPem: string): Promise<Worker> {
  const worker = new Worker(new URL('./bench-forward-receiver.js', import.meta.url), { workerData: { url, dbPath, publicKeyPem } });
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: { type: string }) => m.type === 'ready' && resolve());
  });
  return worker;
}

async function until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`bench: ${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function benchForward(cell: LoadedCell, planner: CommandSigner): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'interlock-bench-forward-'));
  const keys = generateEd25519KeyPair();
  const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const broker = wideBroker({ log: () => undefined });
  await broker.start();
  const receiver = await startReceiver(broker.url, join(work, 'receiver.db'), publicKeyPem);
  const device = wideClient(broker.url, 'device-cloud-link');
  await device.start();

  // (a) Backlog drain, unthrottled.
  const backlog = openSqliteAuditLog(join(work, 'backlog.db'), { checkpoints: { privateKey: keys.privateKey, origin: 'bench' }, ballastBytes: 0 });
  await fill(backlog, HOUR_AT_10_PER_S, planner);
  const bytes = backlog.read(1, 1).map(({ hash: _h, ...r }) => JSON.stringify(r).length)[0] ?? 0;
  const fast = new AuditForwarder({ log: backlog, transport: device, thingName: 'bench-backlog', logger: silentLogger, options: { recordsPerSecond: 1e9 } });
  let start = performance.now();
  await fast.start();
  await until(() => backlog.acknowledgedSeq() === backlog.head().seq, 'the unthrottled drain', 300_000);
  const fastMs = performance.now() - start;
  await fast.stop();
  const fastStatus = fast.status();
  backlog.close();

  // (b) The same hour at the default rate while the interlock decides; latency before, during and after.
  const topics = topicSet();
  const audit = openSqliteAuditLog(join(work, 'interlock.db'), { checkpoints: { privateKey: keys.privateKey, origin: 'bench' }, ballastBytes: 0 });
  await fill(audit, HOUR_AT_10_PER_S, planner);
  const bus = broker.transport();
  await bus.start();
  const interlock = new Interlock({ cell, transport: bus, audit, signingKey: keys.privateKey, clock: systemClock, heartbeatPeriodMs: 0 });
  await interlock.start();
  const agent = wideClient(broker.url, 'agent');
  await agent.start();
  const decided = new Map<string, (verdict: string) => void>();
  await agent.subscribe(topics.decision('+'), (_topic, payload) => {
    const report = JSON.parse(payload.toString('utf8')) as { commandDigest: string; verdict: string };
    decided.get(report.commandDigest)?.(report.verdict);
  });
  const decide = async (): Promise<number> => {
    const token = planner.sign('conveyor-1', 'stop', {});
    const begin = performance.now();
    const done = new Promise<string>((resolve) => decided.set(commandDigest(token), resolve));
    await agent.publish(topics.command('conveyor-1'), token, { qos: 1 });
    const verdict = await done;
    if (verdict !== 'allow') throw new Error(`bench: a stop was decided ${verdict}; the figures would not be of allowed commands`);
    return performance.now() - begin;
  };
  const before: number[] = [];
  for (let i = 0; i < 300; i++) before.push(await decide());
  const steady = new AuditForwarder({ log: audit, transport: device, thingName: 'bench-hour', logger: silentLogger });
  const during: number[] = [];
  start = performance.now();
  await steady.start();
  while (audit.acknowledgedSeq() < HOUR_AT_10_PER_S) {
    during.push(await decide());
    if (performance.now() - start > 300_000) throw new Error('bench: the hour of records did not drain within 300 s');
  }
  const hourMs = performance.now() - start;
  await steady.stop();
  const after: number[] = [];
  for (let i = 0; i < 300; i++) after.push(await decide());

  await agent.stop();
  await interlock.stop();
  await bus.stop();
  audit.close();
  await device.stop();
  receiver.postMessage('stop');
  const received = await new Promise<{ stored: number; duplicates: number; refused: number }>((resolve) => receiver.on('message', (m: { type: string; stored: number; duplicates: number; refused: number }) => m.type === 'stats' && resolve(m)));
  await broker.stop();
  rmSync(work, { recursive: true, force: true });

  const without = stats([...before, ...after]);
  const withDrain = stats(during);
  console.log(`## 10. audit forwarding (embedded broker, receiver on SQLite in a worker thread; records of about ${bytes} bytes)`);
  console.log('| what | figure |');
  console.log('|---|---|');
  console.log(`| backlog drain, unthrottled (${HOUR_AT_10_PER_S} records, ${fastStatus.batchesSent} batches, ${fastStatus.resends} resends) | ${((HOUR_AT_10_PER_S * 1000) / fastMs).toFixed(0)} records/s (${(fastMs / 1000).toFixed(1)} s) |`);
  console.log(`| one hour at 10 decisions/s (${HOUR_AT_10_PER_S} records) at the default ${DEFAULT_FORWARDING.recordsPerSecond} records/s, while deciding | ${(hourMs / 1000).toFixed(1)} s |`);
  console.log(`| decision latency without drain (${before.length + after.length} stops, before and after) | p50 ${us(without.p50)}, p99 ${us(without.p99)} |`);
  console.log(`| decision latency during the drain (${during.length} stops) | p50 ${us(withDrain.p50)}, p99 ${us(withDrain.p99)} |`);
  console.log(`| p99 during / without | ${(withDrain.p99 / without.p99).toFixed(2)} (target <= 1.10) |`);
  console.log(`receiver: ${received.stored} stored, ${received.duplicates} duplicates, ${received.refused} refused\n`);
}

// `node dist/scripts/bench-forward.js` runs this section alone (npm run build first).
if (process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const { cpSync } = await import('node:fs');
  const { cpus } = await import('node:os');
  const { dirname, resolve } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const { ensureCellAgentKeys, ensureCellDriverKeys } = await import('../src/keys/cell-agent-keys.js');
  const { loadCell } = await import('../src/declarations/load.js');
  const { CommandSigner } = await import('../src/agent-sdk/command-signer.js');
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = mkdtempSync(join(tmpdir(), 'interlock-bench-forward-cell-'));
  cpSync(join(root, 'safety-bounds', 'demo-cell'), join(dir, 'cell'), { recursive: true, filter: (src) => !src.endsWith('/keys') });
  const keys = ensureCellAgentKeys(join(dir, 'cell'), join(dir, 'private'));
  ensureCellDriverKeys(join(dir, 'cell'), join(dir, 'private'));
  const loaded = loadCell(join(dir, 'cell'));
  const planner = keys.get('planner-1');
  if (!loaded.ok || planner === undefined) throw new Error('bench: the demo cell does not load');
  console.log(`# node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}; node dist/scripts/bench-forward.js (${new Date().toISOString()})\n`);
  await benchForward(loaded.cell, new CommandSigner({ agentId: 'planner-1', kid: planner.kid, privateKey: planner.privateKey, ttlMs: 5000 }));
  rmSync(dir, { recursive: true, force: true });
}
