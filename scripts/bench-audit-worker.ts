// Benchmark section for the audit log on its writer thread (called from scripts/bench.ts, or alone:
// `node dist/scripts/bench-audit-worker.js`): record latency and the main thread's event-loop busy fraction with the
// log in the main thread against the log on a writer thread, at a steady offered rate and in bursts, in one run.
// It writes only inside its own temp dir and removes it.

import { sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { AuditReceipt } from '../src/audit/audit-log.js';
import { openSqliteAuditLog } from '../src/audit/sqlite-audit-log.js';
import type { SqliteAuditSurface } from '../src/audit/sqlite-audit-surface.js';
import { openWorkerAuditLog } from '../src/audit/worker-audit-log.js';
import { generateEd25519KeyPair } from '../src/crypto/jws.js';
import { decisionEntry } from './bench-audit.js';
import { stats, us, type Stats } from './bench-stats.js';

const STEADY_RATE_PER_S = 5_000;
const STEADY_SECONDS = 4;
/** With a signature check per record on the main thread (a command's least CPU), at the 1,000-2,000/s. */
const SIGNED_RATE_PER_S = 2_000;
const BURST_SIZE = 1_000;
const BURSTS = 20;
/** Between bursts, so each starts on an idle log (and the loop's idle time between them counts). */
const BURST_GAP_MS = 100;


interface Run {
  readonly latency: Stats;
  /** Fraction of the run the main thread's event loop was busy (perf_hooks eventLoopUtilization). */
  readonly busy: number;
  readonly commits: number;
  readonly recordsPerS: number;
}

type Open = (file: string) => Promise<SqliteAuditSurface>;

/**
 * Offers `ratePerS` records per second, each its own record() call, issued from a 1 ms timer (open loop: latency
 * counts from when each record was due). The timer lets the loop idle between ticks, so its busy fraction shows.
 */
async function steady(open: Open, file: string, ratePerS = STEADY_RATE_PER_S, work: () => void = () => {}): Promise<Run> {
  const log = await open(file);
  const count = ratePerS * STEADY_SECONDS;
  const samples: number[] = [];
  const calls: Promise<void>[] = [];
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(count, Math.floor(((performance.now() - started) * ratePerS) / 1000) + 1);
      while (calls.length < due) {
        const dueAt = started + (calls.length * 1000) / ratePerS;
        work();
        calls.push(log.record(decisionEntry(calls.length)).then(() => void samples.push(performance.now() - dueAt)));
      }
      if (calls.length >= count) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await Promise.all(calls);
  return finish(log, samples, elu, started, count);
}

/** `BURSTS` times: `BURST_SIZE` record() calls at once, all awaited, then a pause. */
async function bursts(open: Open, file: string): Promise<Run> {
  const log = await open(file);
  const samples: number[] = [];
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  for (let b = 0; b < BURSTS; b += 1) {
    const issued = performance.now();
    const calls: Promise<AuditReceipt>[] = [];
    for (let i = 0; i < BURST_SIZE; i += 1) calls.push(log.record(decisionEntry(b * BURST_SIZE + i)));
    await Promise.all(calls.map((call) => call.then(() => void samples.push(performance.now() - issued))));
    await new Promise((resolve) => setTimeout(resolve, BURST_GAP_MS));
  }
  return finish(log, samples, elu, started, BURSTS * BURST_SIZE);
}

function finish(log: SqliteAuditSurface, samples: number[], elu: ReturnType<typeof performance.eventLoopUtilization>, started: number, count: number): Run {
  const busy = performance.eventLoopUtilization(elu).utilization;
  const elapsedMs = performance.now() - started;
  const { commits } = log.stats();
  const verified = log.verify();
  log.close();
  if (!verified.ok) throw new Error(`bench log does not verify: ${verified.problem}`);
  return { latency: stats(samples), busy, commits, recordsPerS: Math.round(count / (elapsedMs / 1000)) };
}

export async function benchAuditWorker(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'audit-worker-bench-'));
  try {
    const inThread: Open = async (file) => openSqliteAuditLog(file, { ballastBytes: 0 });
    const onWorker: Open = (file) => openWorkerAuditLog(file, { ballastBytes: 0 });
    // Untimed warm-up of both (the writer thread starts here), so the timed runs measure optimised code.
    for (const open of [inThread, onWorker]) await bursts(open, join(dir, `warmup-${open === inThread ? 'a' : 'b'}.db`));
    // The command's own CPU before its record: one Ed25519 signature check of a 300-byte message.
    const keys = generateEd25519KeyPair();
    const message = Buffer.alloc(300, 0x61);
    const signature = sign(null, message, keys.privateKey);
    const checkSignature = (): void => {
      if (!verify(null, message, keys.publicKey, signature)) throw new Error('bench: the signature does not verify');
    };
    const rows: [string, Run][] = [];
    // Interleaved, so drift on a shared machine affects both alike.
    rows.push([`in the main thread, steady ${STEADY_RATE_PER_S.toLocaleString('en-US')}/s offered one at a time`, await steady(inThread, join(dir, 'steady-a.db'))]);
    rows.push([`writer thread, steady ${STEADY_RATE_PER_S.toLocaleString('en-US')}/s offered one at a time`, await steady(onWorker, join(dir, 'steady-b.db'))]);
    const signed = `steady ${SIGNED_RATE_PER_S.toLocaleString('en-US')}/s, a signature check before each record`;
    rows.push([`in the main thread, ${signed}`, await steady(inThread, join(dir, 'signed-a.db'), SIGNED_RATE_PER_S, checkSignature)]);
    rows.push([`writer thread, ${signed}`, await steady(onWorker, join(dir, 'signed-b.db'), SIGNED_RATE_PER_S, checkSignature)]);
    rows.push([`in the main thread, ${BURSTS} bursts of ${BURST_SIZE.toLocaleString('en-US')}`, await bursts(inThread, join(dir, 'bursts-a.db'))]);
    rows.push([`writer thread, ${BURSTS} bursts of ${BURST_SIZE.toLocaleString('en-US')}`, await bursts(onWorker, join(dir, 'bursts-b.db'))]);

    console.log(`## 5b. audit log writer: main thread vs writer thread (SQLite WAL, synchronous=FULL, ~600-byte decision records, temp dir ${tmpdir()})`);
    console.log('');
    console.log('| where the log runs, load | commits | records/s | latency p50 | latency p99 | main-thread loop busy |');
    console.log('|---|---|---|---|---|---|');
    for (const [label, run] of rows) {
      console.log(`| ${label} | ${run.commits} | ${run.recordsPerS.toLocaleString('en-US')} | ${us(run.latency.p50)} | ${us(run.latency.p99)} | ${(run.busy * 100).toFixed(0)}% |`);
    }
    console.log('');
    const ratio = (a: number, b: number): string => (b === 0 ? 'n/a' : (a / b).toFixed(2));
    const [sa, sb, ga, gb, ba, bb] = rows.map(([, run]) => run);
    if (sa !== undefined && sb !== undefined && ga !== undefined && gb !== undefined && ba !== undefined && bb !== undefined) {
      console.log(
        `Writer thread / main thread: loop busy ${ratio(sb.busy, sa.busy)}x steady, ${ratio(gb.busy, ga.busy)}x with signature checks, ${ratio(bb.busy, ba.busy)}x bursts; ` +
          `latency p99 ${ratio(sb.latency.p99, sa.latency.p99)}x steady, ${ratio(gb.latency.p99, ga.latency.p99)}x with signature checks, ${ratio(bb.latency.p99, ba.latency.p99)}x bursts.`,
      );
    }
    console.log('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchAuditWorker().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
