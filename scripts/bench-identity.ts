// Benchmark section for agent identity and permissions (called from scripts/bench.ts): the Cedar policy stage
// with and without a memoised answer, and whole-interlock throughput with signature verification on the main
// thread against verification on a worker thread, side by side in one run.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CommandSigner } from '../src/agent-sdk/command-signer.js';
import { openSqliteAuditLog } from '../src/audit/sqlite-audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { generateEd25519KeyPair } from '../src/crypto/jws.js';
import type { LoadedCell } from '../src/declarations/load.js';
import { Interlock } from '../src/interlock/interlock.js';
import type { AgentPrivateKey } from '../src/keys/cell-agent-keys.js';
import type { PolicyRequest } from '../src/policy/cedar-policy.js';
import { EmbeddedBroker } from '../src/transport/embedded-broker.js';
import { topicSet } from '../src/transport/topics.js';
import { stats, us } from './bench-stats.js';
import { wideBroker } from './wide-broker.js';


/** Cedar per request: a request seen before (memoised) against requests never seen (a full Cedar evaluation). */
function benchPolicy(cell: LoadedCell): void {
  const RUNS = 3000;
  const request = (minute: number): PolicyRequest => ({
    principal: { kind: 'agent', id: 'planner-1', owner: 'cell-automation-team', autonomyScope: 4 },
    device: { id: 'conveyor-1', kind: 'conveyor', cellId: cell.declarations.cellId },
    action: 'set_speed',
    // The minute of day makes each request distinct; a day has 1440, so the misses are spread over days of week.
    context: { mode: 'normal', peopleKnown: true, peoplePresent: false, approved: false, minuteOfDay: minute % 1440, dayOfWeek: Math.floor(minute / 1440) % 7 },
  });
  const misses: number[] = [];
  const hits: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const fresh = request(i + 1);
    let start = performance.now();
    const first = cell.policies.authorize(fresh);
    misses.push(performance.now() - start);
    start = performance.now();
    const again = cell.policies.authorize(fresh);
    hits.push(performance.now() - start);
    if (first.verdict !== 'allow' || again.verdict !== 'allow') throw new Error('bench: the policy request was not allowed');
  }
  const m = stats(misses);
  const h = stats(hits);
  console.log(`## 4a. policy stage (Cedar via cedar-wasm; ${RUNS} distinct requests, each asked twice)`);
  console.log('| path | p50 | p99 | requests/s (1 core) |');
  console.log('|---|---|---|---|');
  console.log(`| first time: full Cedar evaluation | ${us(m.p50)} | ${us(m.p99)} | ${(1000 / m.mean).toFixed(0)} |`);
  console.log(`| again: memoised answer | ${us(h.p50)} | ${us(h.p99)} | ${(1000 / h.mean).toFixed(0)} |`);
  console.log(`ratio first / memoised (p50): ${(m.p50 / h.p50).toFixed(1)}x\n`);
}

/**
 * Decisions per second through the whole interlock (envelope, decide, SQLite FULL commit, signed release) for a
 * burst of authenticated stops, which pass policy and bounds by design: what is left is verification, recording
 * and release, so the comparison isolates where verification runs.
 */
async function interlockThroughput(cell: LoadedCell, key: AgentPrivateKey, verifierThreads: number): Promise<number> {
  // Small enough that the last command is decided well within the 5 s maximum TTL on a loaded machine.
  const N = 600;
  const work = mkdtempSync(join(tmpdir(), 'interlock-bench-identity-'));
  const broker = wideBroker({ port: 0 });
  await broker.start();
  const transport = broker.transport();
  await transport.start();
  const audit = openSqliteAuditLog(join(work, 'audit.db'));
  const interlock = new Interlock({
    cell,
    transport,
    audit,
    signingKey: generateEd25519KeyPair().privateKey,
    clock: systemClock,
    heartbeatPeriodMs: 0,
    metricsPeriodMs: 0,
    verifierThreads,
  });
  let decided = 0;
  let allowed = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  interlock.onDecision((event) => {
    decided += 1;
    if (event.report.verdict === 'allow') allowed += 1;
    if (decided === N) done();
  });
  await interlock.start();
  const signer = new CommandSigner({ agentId: key.agentId, kid: key.kid, privateKey: key.privateKey, ttlMs: 5000 });
  const tokens = Array.from({ length: N }, () => signer.sign('conveyor-1', 'stop', {}));
  const topics = topicSet();
  const start = performance.now();
  for (const token of tokens) void transport.publish(topics.command('conveyor-1'), token, { qos: 0 });
  await finished;
  const elapsedMs = performance.now() - start;
  await interlock.stop();
  await transport.stop();
  await broker.stop();
  audit.close();
  rmSync(work, { recursive: true, force: true });
  if (allowed !== N) throw new Error(`bench: expected ${N} allowed stops, got ${allowed}`);
  return (N * 1000) / elapsedMs;
}

export async function benchIdentity(cell: LoadedCell, key: AgentPrivateKey): Promise<void> {
  benchPolicy(cell);
  console.log('## 4b. interlock throughput: signature verification on the deciding thread vs on a worker');
  console.log('(600 authenticated stops published at once; each is verified, decided, committed with synchronous=FULL and released)');
  console.log('| verification | decisions/s, run 1 | run 2 |');
  console.log('|---|---|---|');
  const rows: [string, number][] = [
    ['on the main thread (verifierThreads 0)', 0],
    ['on one worker thread (verifierThreads 1, the default on 2+ cores)', 1],
  ];
  const results = new Map<number, number[]>();
  // Interleaved, so drift on a shared machine affects both alike.
  for (let round = 0; round < 2; round++) {
    for (const [, threads] of rows) {
      const rate = await interlockThroughput(cell, key, threads);
      results.set(threads, [...(results.get(threads) ?? []), rate]);
    }
  }
  for (const [label, threads] of rows) {
    const [a, b] = results.get(threads) ?? [];
    console.log(`| ${label} | ${a?.toFixed(0)} | ${b?.toFixed(0)} |`);
  }
  const best = (threads: number): number => Math.max(...(results.get(threads) ?? [NaN]));
  console.log(`ratio worker / main thread (best of each): ${(best(1) / best(0)).toFixed(2)}x\n`);
}
