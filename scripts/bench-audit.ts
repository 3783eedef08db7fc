// Benchmark section for the audit log (called from scripts/bench.ts): the fsync floor of this disk, then durable
// records per second and commit latency with one transaction per record against group commit, in one run.
// It writes only inside its own temp dir and removes it.

import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AuditEntry } from '../src/audit/audit-log.js';
import { openSqliteAuditLog, type SqliteAuditLogOptions } from '../src/audit/sqlite-audit-log.js';
import { generateEd25519KeyPair } from '../src/crypto/jws.js';
import { reason } from '../src/core/reasons.js';
import { stats, us, type Stats } from './bench-stats.js';

const perS = (count: number, ms: number): number => Math.round(count / (ms / 1000));

const FSYNC_RUNS = 1_000;
const SINGLE_RECORDS = 2_000;
const WAVES = 100;
const WAVE_SIZE = 100;
const BURST = 10_000;
const STREAM_RATE_PER_S = 5_000;
const STREAM_RECORDS = 10_000;

/** A deny decision shaped like the interlock's (about 600 bytes of canonical JSON). */
export function decisionEntry(i: number): AuditEntry {
  return {
    kind: 'decision',
    timeMs: 1_732_000_000_000 + i,
    commandId: `cmd-${i}`,
    agentId: 'planner-1',
    deviceId: 'arm-1',
    action: 'move_joints',
    commandDigest: 'a'.repeat(64),
    declarationsDigest: 'b'.repeat(64),
    verdict: 'deny',
    reasons: [{ ...reason('BOUNDS_JOINT_POSITION', 'elbow target 2.5 rad exceeds 2.0 rad'), limit: 2, actual: 2.5, unit: 'rad' }],
    trace: { session: 's-1', plan: 'c'.repeat(64) },
  };
}

/** write + fsync of 64 bytes at the end of one file: the least a durable commit can cost on this disk. */
export function fsyncFloor(dir: string): Stats {
  const fd = openSync(join(dir, 'fsync-probe'), 'w');
  const block = Buffer.alloc(64, 0x61);
  const samples: number[] = [];
  try {
    for (let i = 0; i < FSYNC_RUNS; i += 1) {
      const start = performance.now();
      writeSync(fd, block);
      fsyncSync(fd);
      samples.push(performance.now() - start);
    }
  } finally {
    closeSync(fd);
  }
  return stats(samples);
}

interface Run {
  readonly records: number;
  readonly elapsedMs: number;
  readonly commits: number;
  /** From the record() call to its resolution, per record. */
  readonly latency: Stats;
}

/** Issues `waves` groups of `size` record() calls, each group after the previous one resolved. */
async function runWaves(file: string, waves: number, size: number, offset: number, options: SqliteAuditLogOptions = {}): Promise<Run> {
  const log = openSqliteAuditLog(file, options);
  try {
    const samples: number[] = [];
    const started = performance.now();
    for (let w = 0; w < waves; w += 1) {
      const calls: Promise<void>[] = [];
      for (let i = 0; i < size; i += 1) {
        const issued = performance.now();
        calls.push(log.record(decisionEntry(offset + w * size + i)).then(() => {
          samples.push(performance.now() - issued);
        }));
      }
      await Promise.all(calls);
    }
    const elapsedMs = performance.now() - started;
    const { commits } = log.stats();
    const verified = log.verify();
    if (!verified.ok) throw new Error(`bench log does not verify: ${verified.problem}`);
    return { records: waves * size, elapsedMs, commits, latency: stats(samples) };
  } finally {
    log.close();
  }
}

/**
 * Offers `ratePerS` records per second for `count` records (open loop: latency counts from when each record was
 * due, so a stalled loop shows up as latency rather than as a lower offered rate).
 */
async function runStream(file: string, ratePerS: number, count: number): Promise<Run> {
  const log = openSqliteAuditLog(file);
  try {
    const samples: number[] = [];
    const calls: Promise<void>[] = [];
    const started = performance.now();
    while (calls.length < count) {
      const due = Math.min(count, Math.floor(((performance.now() - started) * ratePerS) / 1000) + 1);
      while (calls.length < due) {
        const dueAt = started + (calls.length * 1000) / ratePerS;
        calls.push(log.record(decisionEntry(calls.length)).then(() => {
          samples.push(performance.now() - dueAt);
        }));
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(calls);
    const elapsedMs = performance.now() - started;
    const { commits } = log.stats();
    return { records: count, elapsedMs, commits, latency: stats(samples) };
  } finally {
    log.close();
  }
}

export async function benchAudit(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'audit-bench-'));
  try {
    const floor = fsyncFloor(dir);
    // Untimed warm-up so the timed runs measure optimised code and a file that already exists.
    await runWaves(join(dir, 'warmup.db'), 10, 100, 0);
    const single = await runWaves(join(dir, 'single.db'), SINGLE_RECORDS, 1, 0);
    const waves = await runWaves(join(dir, 'waves.db'), WAVES, WAVE_SIZE, 0);
    const burst = await runWaves(join(dir, 'burst.db'), 1, BURST, 0);
    const checkpoints = { privateKey: generateEd25519KeyPair().privateKey, origin: 'bench', everyRecords: 100 };
    const signed = await runWaves(join(dir, 'signed.db'), WAVES, WAVE_SIZE, 0, { checkpoints });
    const stream = await runStream(join(dir, 'stream.db'), STREAM_RATE_PER_S, STREAM_RECORDS);

    console.log(`## 5. audit log (SQLite WAL, synchronous=FULL, decision records of about 600 bytes, temp dir ${tmpdir()})`);
    console.log('');
    console.log(`fsync floor of this disk (write 64 bytes + fsync, ${FSYNC_RUNS} times): p50 ${us(floor.p50)}, p99 ${us(floor.p99)}`);
    console.log('');
    console.log('| mode | records | commits | durable records/s | latency p50 | latency p99 | p50 in fsyncs |');
    console.log('|---|---|---|---|---|---|---|');
    const row = (label: string, run: Run): void => {
      const inFsyncs = (run.latency.p50 / floor.p50).toFixed(1);
      console.log(
        `| ${label} | ${run.records} | ${run.commits} | ${perS(run.records, run.elapsedMs).toLocaleString('en-US')} | ` +
          `${us(run.latency.p50)} | ${us(run.latency.p99)} | ${inFsyncs} |`,
      );
    };
    row('one transaction per record (await each)', single);
    row(`group commit, waves of ${WAVE_SIZE} (await each wave)`, waves);
    row(`group commit, ${BURST.toLocaleString('en-US')} calls at once`, burst);
    row(`group commit, waves of ${WAVE_SIZE}, signed checkpoint every 100 records`, signed);
    row(`group commit, steady ${STREAM_RATE_PER_S.toLocaleString('en-US')} records/s offered`, stream);
    console.log('');
    const ratio = (run: Run): string => (perS(run.records, run.elapsedMs) / perS(single.records, single.elapsedMs)).toFixed(1);
    console.log(`Group commit vs one transaction per record: ${ratio(waves)}x (waves of ${WAVE_SIZE}), ${ratio(burst)}x (${BURST.toLocaleString('en-US')} at once).`);
    const added = (run: Run): string => {
      const ms = run.latency.p50 - single.latency.p50;
      return `${us(ms)} (${(ms / floor.p50).toFixed(1)} fsyncs, ${(ms / single.latency.p50).toFixed(1)} single-record commits)`;
    };
    console.log(
      `Latency p50 added over one transaction per record: ${added(stream)} at a steady ${STREAM_RATE_PER_S.toLocaleString('en-US')}/s, ` +
        `${added(waves)} in waves of ${WAVE_SIZE}. Target: >= 20,000 records/s, <= 1 fsync added.`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the decision records of an audit database take: stored body bytes per decision, and file bytes per record. */
export interface AuditBytes {
  readonly decisions: number;
  readonly records: number;
  /** Sum of the stored bodies (canonical JSON, the hashed bytes) of decision records, divided by their count. */
  readonly bodyBytesPerDecision: number;
  /** The database file's size after a full WAL checkpoint, divided by every record (indexes and pages included). */
  readonly fileBytesPerRecord: number;
}

/** Measures a closed audit database (the interlock stopped): checkpoints its WAL into the file first. */
export function auditBytesPerDecision(path: string): AuditBytes {
  const db = new Database(path);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const { n, bytes } = db.prepare("SELECT count(*) AS n, sum(length(CAST(body AS BLOB))) AS bytes FROM records WHERE kind = 'decision'").get() as { n: number; bytes: number | null };
    const { records } = db.prepare('SELECT count(*) AS records FROM records').get() as { records: number };
    const pages = Number(db.pragma('page_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
    if (n === 0) throw new Error(`bench: ${path} holds no decision record to measure`);
    return { decisions: n, records, bodyBytesPerDecision: Math.round((bytes ?? 0) / n), fileBytesPerRecord: Math.round(pages / records) };
  } finally {
    db.close();
  }
}

/** The figure as the bench prints it (section 3's audit log: allowed move_joints on the demo cell's arm). */
export function printAuditBytes(path: string): void {
  const b = auditBytesPerDecision(path);
  console.log(
    `audit bytes per decision: ${b.bodyBytesPerDecision} B of record body (sum of stored bodies / ${b.decisions} decisions), ` +
      `${b.fileBytesPerRecord} B of database file per record (after a checkpoint, ${b.records} records)`,
  );
}
