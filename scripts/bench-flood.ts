// Benchmark section (for scripts/bench.ts, or run alone from dist/): a flood of unauthenticated commands against the
// interlock as `interlock run` composes it (embedded broker, SQLite audit log with synchronous=FULL, one verifier
// worker on 2+ cores). The attacker publishes over TCP from a child process (its own event loop, as another machine
// would be) while an honest agent sends a signed stop every 20 ms on its own connection. Reports flood commands
// decided per second, the honest stops' delay (publish to decision) and the audit records the flood cost. Talks only
// to 127.0.0.1.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CommandSigner } from '../src/agent-sdk/command-signer.js';
import { startRuntime } from '../src/app/compose.js';
import { silentLogger } from '../src/core/log.js';
import { ensureCellAgentKeys, ensureCellDriverKeys } from '../src/keys/cell-agent-keys.js';
import { commandDigest } from '../src/pipeline/pipeline.js';
import { MqttTransport } from '../src/transport/mqtt-transport.js';
import { topicSet } from '../src/transport/topics.js';
import { stats } from './bench-stats.js';
import { brokerLogin } from '../src/transport/broker-clients.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
const ATTACKER_FLAG = '--flood-attacker';
const topics = topicSet();

export type FloodKind = 'garbage' | 'forged';

export interface FloodBenchOptions {
  /** 'garbage': random bytes (refused at parsing); 'forged': a real command of planner-1 with a random signature. */
  readonly kind: FloodKind;
  /** How many flood commands (0: no flood, the baseline for the honest delay). Default 20 000. */
  readonly count?: number;
  /** Flood publishes in flight on the attacker's connection (QoS 1). Default 500. */
  readonly inFlight?: number;
  /** Interval between the honest agent's stops. Default 20 ms. */
  readonly honestEveryMs?: number;
}

export interface FloodBenchResult {
  readonly kind: FloodKind;
  readonly count: number;
  /** Flood commands decided per second, from the first decision on one to the last. */
  readonly decidedPerS: number;
  readonly honestSent: number;
  readonly honestP50Ms: number;
  readonly honestP99Ms: number;
  readonly honestMaxMs: number;
  /** Honest stops not allowed or never decided (expired in the queue, audit refused): should be 0. */
  readonly honestNotAllowed: number;
  /** Audit records added from start to stop (honest stops, start/stop events and the flood's aggregates). */
  readonly auditRecordsAdded: number;
}

export async function benchFlood(options: FloodBenchOptions): Promise<FloodBenchResult> {
  const count = options.count ?? 20_000;
  const honestEveryMs = options.honestEveryMs ?? 20;
  const work = mkdtempSync(join(tmpdir(), 'interlock-bench-flood-'));
  const cellDir = join(work, 'cell');
  cpSync(join(root, 'safety-bounds', 'demo-cell'), cellDir, { recursive: true, filter: (src) => !src.endsWith('/keys') });
  const keys = ensureCellAgentKeys(cellDir, join(work, 'private'));
  ensureCellDriverKeys(cellDir, join(work, 'private'));
  const planner = keys.get('planner-1');
  if (planner === undefined) throw new Error('bench: no planner-1 key');
  const signer = new CommandSigner({ agentId: 'planner-1', kid: planner.kid, privateKey: planner.privateKey, ttlMs: 5000 });
  const flood = Array.from({ length: count }, (_, i) => {
    if (options.kind === 'garbage') return `garbage ${i} ${randomBytes(96).toString('hex')}`;
    const [header, payload] = signer.sign('conveyor-1', 'stop', {}).split('.');
    return `${header}.${payload}.${randomBytes(64).toString('base64url')}`;
  });
  const floodFile = join(work, 'flood.json');
  writeFileSync(floodFile, JSON.stringify(flood));
  const floodDigests = new Set(flood.map(commandDigest));

  const runtime = await startRuntime({ cellDirectory: cellDir, stateDirectory: join(work, 'state'), embeddedPort: 0, heartbeatPeriodMs: 0, log: silentLogger });
  const agent = new MqttTransport({ url: runtime.brokerUrl, ...brokerLogin(runtime.brokerClientsPath ?? '', 'planner-1', 'bench'), log: () => undefined });
  let timer: NodeJS.Timeout | undefined;
  try {
    await agent.start();
    const recordsBefore = runtime.audit.read(1, 1_000_000).length;
    const honestSentAt = new Map<string, number>();
    const honestDelays: number[] = [];
    let honestNotAllowed = 0;
    let floodDecided = 0;
    let firstFloodAt = 0;
    let lastFloodAt = 0;
    runtime.interlock.onDecision((event) => {
      const digest = event.report.commandDigest;
      if (floodDigests.has(digest)) {
        if (floodDecided === 0) firstFloodAt = performance.now();
        floodDecided += 1;
        lastFloodAt = performance.now();
        return;
      }
      const sentAt = honestSentAt.get(digest);
      if (sentAt === undefined) return;
      honestDelays.push(performance.now() - sentAt);
      if (event.report.verdict !== 'allow') honestNotAllowed += 1;
    });
    const sendStop = (): void => {
      const token = signer.sign('conveyor-1', 'stop', {});
      honestSentAt.set(commandDigest(token), performance.now());
      agent.publish(topics.command('conveyor-1'), token, { qos: 1 }).catch(() => undefined);
    };
    timer = setInterval(sendStop, honestEveryMs);
    if (count > 0) await runAttacker(runtime.brokerUrl, brokerLogin(runtime.brokerClientsPath ?? '', 'trainee-1', 'attacker'), floodFile, options.inFlight ?? 500);
    await waitUntil(() => floodDecided >= count && honestSentAt.size >= 100, 300_000);
    clearInterval(timer);
    await waitUntil(() => honestDelays.length >= honestSentAt.size, 30_000);
    // The stop writes the open window's aggregate, so the count includes it.
    await runtime.interlock.stop();
    const s = stats(honestDelays);
    return {
      kind: options.kind,
      count,
      decidedPerS: count === 0 ? 0 : ((floodDecided - 1) * 1000) / (lastFloodAt - firstFloodAt),
      honestSent: honestSentAt.size,
      honestP50Ms: s.p50,
      honestP99Ms: s.p99,
      honestMaxMs: Math.max(...honestDelays),
      honestNotAllowed: honestNotAllowed + (honestSentAt.size - honestDelays.length),
      auditRecordsAdded: runtime.audit.read(1, 1_000_000).length - recordsBefore,
    };
  } finally {
    if (timer !== undefined) clearInterval(timer);
    await agent.stop();
    await runtime.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`bench: timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The attacker in a child process: publishes every token of the file on one connection, `inFlight` at a time. */
function runAttacker(url: string, login: object, floodFile: string, inFlight: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ATTACKER_FLAG, url, floodFile, String(inFlight)], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, BENCH_ATTACKER_LOGIN: JSON.stringify(login) } });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`bench: the attacker exited with ${String(code)}`))));
  });
}

async function attack(url: string, floodFile: string, inFlight: number): Promise<void> {
  const flood = JSON.parse(readFileSync(floodFile, 'utf8')) as string[];
  // The attacker holds an agent's broker login (a compromised agent host): the broker lets its commands through.
  const attacker = new MqttTransport({ url, ...(JSON.parse(process.env['BENCH_ATTACKER_LOGIN'] ?? '{}') as object), log: () => undefined });
  await attacker.start();
  for (let i = 0; i < flood.length; i += inFlight) {
    await Promise.all(flood.slice(i, i + inFlight).map((token) => attacker.publish(topics.command('conveyor-1'), token, { qos: 1 })));
  }
  await attacker.stop();
}

export async function printFloodBench(): Promise<void> {
  console.log(`## 9. unauthenticated flood: ${cpus().length} cores, node ${process.version}; attacker in a child process, an honest stop every 20 ms`);
  console.log('| flood | commands | decided/s | honest stops | honest delay p50 | p99 | max | honest not allowed | audit records added |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const runs: FloodBenchOptions[] = [{ kind: 'garbage', count: 0 }, { kind: 'garbage' }, { kind: 'forged' }];
  for (const run of runs) {
    const r = await benchFlood(run);
    const label = r.count === 0 ? 'none (baseline)' : r.kind === 'garbage' ? 'random bytes' : 'forged signature, registered kid';
    console.log(
      `| ${label} | ${r.count} | ${r.count === 0 ? '-' : r.decidedPerS.toFixed(0)} | ${r.honestSent} | ${r.honestP50Ms.toFixed(1)} ms | ${r.honestP99Ms.toFixed(1)} ms | ${r.honestMaxMs.toFixed(1)} ms | ${r.honestNotAllowed} | ${r.auditRecordsAdded} |`,
    );
  }
  console.log('');
}

const invokedAs = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAs && process.argv[2] === ATTACKER_FLAG) {
  const [url, floodFile, inFlight] = process.argv.slice(3) as [string, string, string];
  await attack(url, floodFile, Number(inFlight));
} else if (invokedAs) {
  await printFloodBench();
}
