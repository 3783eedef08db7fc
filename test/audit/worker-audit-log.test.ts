// The SQLite audit log on its writer thread: the audit-log contract, then what the thread adds: call order kept,
// group commit, close() flushing what was asked before it, failure codes crossing intact, a killed thread confirming
// nothing it did not commit, and the main thread's event loop turning while the thread commits. Real files only.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AuditWriteError, type AuditEntry, type AuditReceipt } from '../../src/audit/audit-log.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { openWorkerAuditLog, type WorkerAuditLog } from '../../src/audit/worker-audit-log.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { runAuditLogContract } from './audit-log-contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-audit-log-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function freshPath(): string {
  fileCount += 1;
  return path.join(dir, `audit-${fileCount}.db`);
}

function entry(i: number, pad = 0): AuditEntry {
  return { kind: 'event', timeMs: 1_000 + i, detail: pad === 0 ? { i } : { i, pad: 'p'.repeat(pad) } };
}

/** A worker log closed when the test ends (close is idempotent, so tests may close it themselves). */
async function open(t: Test, file = freshPath(), options: Parameters<typeof openWorkerAuditLog>[1] = {}): Promise<WorkerAuditLog> {
  const log = await openWorkerAuditLog(file, { ballastBytes: 0, ...options });
  t.teardown(() => log.close());
  return log;
}

runAuditLogContract(t, 'sqlite on a writer thread', async () => {
  const file = freshPath();
  const log = await openWorkerAuditLog(file, { ballastBytes: 0 });
  return {
    log,
    cleanup: async () => {
      log.close();
    },
  };
});

t.test('records settle in call order with consecutive seqs, the same ones the file holds', async (t) => {
  const log = await open(t);
  const settledOrder: number[] = [];
  const calls = Array.from({ length: 300 }, (_, i) =>
    log.record(entry(i)).then((receipt) => {
      settledOrder.push(receipt.seq);
      return receipt;
    }),
  );
  const receipts = await Promise.all(calls);
  t.strictSame(receipts.map((r) => r.seq), Array.from({ length: 300 }, (_, i) => i + 1), 'seqs follow call order');
  t.strictSame(settledOrder, receipts.map((r) => r.seq), 'and the promises settle in that order');
  const stored = log.read(1, 1000);
  t.strictSame(stored.map((r) => r.detail?.['i']), Array.from({ length: 300 }, (_, i) => i), 'the file holds them in call order');
  t.strictSame(stored.map((r) => r.hash), receipts.map((r) => r.hash), 'each receipt names the stored hash');
  t.equal(log.verify().ok, true);
});

t.test('records asked for together share transactions (group commit on the writer thread)', async (t) => {
  const log = await open(t);
  await Promise.all(Array.from({ length: 1_000 }, (_, i) => log.record(entry(i))));
  const stats = log.stats();
  t.equal(stats.records, 1_000, 'every record committed');
  t.equal(stats.pending, 0, 'none waiting');
  // One transaction per record would be 1,000 commits; records queue on the thread's port during each fsync.
  t.ok(stats.commits <= 100, `1,000 records in ${stats.commits} commits (largest batch ${stats.largestBatch})`);
  t.ok(stats.largestBatch >= 10, 'batches hold many records');
});

t.test('close() commits the records asked for just before it, and they are settled when it returns', async (t) => {
  const file = freshPath();
  const log = await openWorkerAuditLog(file, { ballastBytes: 0 });
  const outcomes: (AuditReceipt | Error)[] = [];
  const calls = Array.from({ length: 50 }, (_, i) => log.record(entry(i)).then((r) => void outcomes.push(r), (e: Error) => void outcomes.push(e)));
  log.close();
  // Settled (resolve called) inside close(); the reactions run on the next microtask turn.
  await Promise.resolve();
  t.equal(outcomes.length, 50, 'every record settled by the time close() returned');
  await Promise.all(calls);
  t.strictSame(outcomes.map((o) => (o instanceof Error ? o.message : o.seq)), Array.from({ length: 50 }, (_, i) => i + 1), 'all committed, in order');
  t.equal(log.health().problem, 'closed', 'health still answers after close, from the closed state');
  await t.rejects(log.record(entry(99)), { code: 'AUDIT_UNAVAILABLE' }, 'a record after close is refused with AUDIT_UNAVAILABLE');
  t.throws(() => log.head(), /is closed/);
  const reread = openSqliteAuditLog(file, { ballastBytes: 0 });
  t.teardown(() => reread.close());
  t.equal(reread.head().seq, 50, 'the file holds all 50');
  t.equal(reread.verify().ok, true);
});

t.test('failure codes cross the thread intact: a log at its cap refuses with AUDIT_LOG_FULL, a safe-state record still goes in', async (t) => {
  const log = await open(t, freshPath(), { maxBytes: 256 * 1024, reserveBytes: 64 * 1024 });
  let written = 0;
  let refusal: unknown;
  while (refusal === undefined) {
    await log.record(entry(written, 2_000)).then(
      () => (written += 1),
      (error: unknown) => (refusal = error),
    );
    if (written > 5_000) throw new Error('the cap never came');
  }
  t.ok(refusal instanceof AuditWriteError, 'an AuditWriteError, rebuilt on this thread');
  t.match(refusal, { code: 'AUDIT_LOG_FULL', message: /at its cap/ }, `refused after ${written} records`);
  t.equal(log.health().state, 'full');
  const stop = await log.record({ kind: 'decision', timeMs: 1, verdict: 'allow', action: 'stop' }, { safeState: true });
  t.equal(stop.seq, written + 1, 'the safe-state option crossed too: the reserve took the stop record');
});

t.test('a bad call crosses back with its type and message', async (t) => {
  const log = await open(t);
  t.throws(() => log.read(1.5, 1), new RangeError('read: fromSeq must be an integer, got 1.5'));
  t.throws(() => log.acknowledge(5), { name: 'RangeError', message: /beyond the last record/ });
  await t.rejects(log.record({ kind: 'event', timeMs: 1, detail: { f: () => 1 } } as unknown as AuditEntry), { name: 'TypeError', message: /cannot be recorded/ }, 'an entry that cannot be copied is refused at once');
  t.equal((await log.record(entry(0))).seq, 1, 'and took no seq');
});

t.test('open: the same errors as in this thread, and a clock is refused', async (t) => {
  await t.rejects(openWorkerAuditLog(':memory:'), { message: /^cannot open audit log at :memory:: journal_mode is 'memory', not 'wal'/ });
  const notADb = path.join(dir, 'not-a-db.db');
  fs.writeFileSync(notADb, 'x'.repeat(8192));
  await t.rejects(openWorkerAuditLog(notADb, { onCorruption: 'refuse' }), { message: new RegExp(`^cannot open audit log at ${notADb.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`) });
  await t.rejects(openWorkerAuditLog(freshPath(), { nowMs: Date.now } as never), RangeError);
  const keys = generateEd25519KeyPair();
  await t.rejects(openWorkerAuditLog(freshPath(), { checkpoints: { privateKey: keys.privateKey, origin: 'c', setTimer: () => () => {} } }), RangeError);
});

t.test('messages and notices: log and warn reach this thread; checkpoints are signed there with the key given', async (t) => {
  const file = freshPath();
  const keys = generateEd25519KeyPair();
  const lines: string[] = [];
  const log = await open(t, file, { log: (m) => lines.push(m), checkpoints: { privateKey: keys.privateKey, origin: 'cell-w', everyRecords: 10 } });
  t.match(lines.join('\n'), /created .*\(schema \d+, head seq 0\)/, 'the open message came over');
  await Promise.all(Array.from({ length: 25 }, (_, i) => log.record(entry(i))));
  t.match(log.latestCheckpoint(), { origin: 'cell-w', size: 25 }, 'a checkpoint covers the batch');
  t.strictSame(log.verify(keys.publicKey), { ok: true, records: 25, headHash: log.head().hash }, 'its signature verifies with the public key passed over');
  t.strictSame(log.pragmas(), { journalMode: 'wal', synchronous: 2, foreignKeys: true }, 'WAL with synchronous=FULL on the writing connection');
});

t.test('a writer thread killed mid-run: every record it did not confirm rejects AUDIT_UNAVAILABLE, none resolves falsely', async (t) => {
  const file = freshPath();
  // Small batches: 300 commits, each with its fsync, so the kill lands while most records are still to come.
  const log = await openWorkerAuditLog(file, { ballastBytes: 0, maxBatch: 10 });
  const outcomes: (AuditReceipt | Error)[] = new Array(3_000);
  let settled = 0;
  const calls = Array.from({ length: 3_000 }, (_, i) =>
    log.record(entry(i, 200)).then(
      (r) => void (outcomes[i] = r),
      (e: Error) => void (outcomes[i] = e),
    ).finally(() => (settled += 1)),
  );
  // Once some are confirmed (so the kill lands mid-run, between commits or inside one).
  await calls[0];
  await log.terminateWriter();
  await Promise.all(calls);
  t.equal(settled, 3_000, 'every record settled');
  const confirmed = outcomes.filter((o): o is AuditReceipt => !(o instanceof Error));
  const refused = outcomes.filter((o): o is Error => o instanceof Error);
  t.ok(confirmed.length >= 1, `${confirmed.length} confirmed before the kill`);
  t.ok(refused.length >= 1, `${refused.length} refused`);
  for (const error of refused) {
    if (!(error instanceof AuditWriteError) || error.code !== 'AUDIT_UNAVAILABLE') {
      t.fail(`a refusal is not AUDIT_UNAVAILABLE: ${error.message}`);
      break;
    }
  }
  t.match(refused[0], { code: 'AUDIT_UNAVAILABLE', message: /writer thread .* stopped/ });
  // Confirmed records are a prefix of the calls: nothing later was confirmed while an earlier one was refused.
  t.strictSame(confirmed.map((r) => r.seq), Array.from({ length: confirmed.length }, (_, i) => i + 1), 'the confirmed records are the first ones, in order');
  await t.rejects(log.record(entry(1)), { code: 'AUDIT_UNAVAILABLE' }, 'later records are refused');
  t.throws(() => log.head(), /writer thread .* stopped/, 'later calls fail saying why');
  log.close();

  // What was confirmed is in the file, with the confirmed hashes (the file may hold more: committed, not confirmed).
  const reread = openSqliteAuditLog(file, { ballastBytes: 0 });
  t.teardown(() => reread.close());
  const stored = reread.read(1, 3_000);
  t.ok(stored.length >= confirmed.length, `the file holds ${stored.length} records`);
  t.strictSame(stored.slice(0, confirmed.length).map((r) => r.hash), confirmed.map((r) => r.hash), 'every confirmed record is stored as confirmed');
  t.equal(reread.verify().ok, true, 'and the chain verifies');

  const again = await open(t);
  t.equal((await again.record(entry(0))).seq, 1, 'a log opened afterwards gets a new writer thread');
});

t.test("the main thread's event loop keeps turning while the writer thread commits a large batch", async (t) => {
  // Counts event-loop turns (setImmediate) from the moment the records are asked for until they all settle.
  const turnsUntilSettled = async (record: (e: AuditEntry) => Promise<AuditReceipt>): Promise<number> => {
    let done = false;
    const all = Promise.all(Array.from({ length: 1_000 }, (_, i) => record(entry(i, 4_000)))).finally(() => (done = true));
    let turns = 0;
    while (!done) {
      await new Promise((resolve) => setImmediate(resolve));
      if (!done) turns += 1;
    }
    await all;
    return turns;
  };
  const inThread = openSqliteAuditLog(freshPath(), { ballastBytes: 0 });
  t.teardown(() => inThread.close());
  const worker = await open(t);
  t.equal(await turnsUntilSettled((e) => inThread.record(e)), 0, 'in this thread the batch holds the loop until it is committed');
  const turns = await turnsUntilSettled((e) => worker.record(e));
  t.ok(turns >= 3, `on the writer thread the loop turned ${turns} times while the 4 MB batch was written and fsynced`);
});
