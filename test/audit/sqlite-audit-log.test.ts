// Runs the audit-log contract against real SQLite files, then checks durability settings, persistence and
// that every kind of tampering with the file is caught by verify(). It must never touch files outside its temp dir.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { GENESIS_HASH, type AuditEntry } from '../../src/audit/audit-log.js';
import { AUDIT_SCHEMA_VERSION, openSqliteAuditLog, type SqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { reason } from '../../src/core/reasons.js';
import { runAuditLogContract } from './audit-log-contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-audit-log-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function freshPath(): string {
  fileCount += 1;
  return path.join(dir, `audit-${fileCount}.db`);
}

function removeDb(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${file}${suffix}`, { force: true });
}

runAuditLogContract(t, 'sqlite', async () => {
  const file = freshPath();
  const log = openSqliteAuditLog(file);
  return {
    log,
    cleanup: async () => {
      log.close();
      removeDb(file);
    },
  };
});

function sampleEntry(i: number): AuditEntry {
  return i % 2 === 0
    ? {
        kind: 'decision',
        timeMs: 1_000 + i,
        commandId: `cmd-${i}`,
        agentId: 'planner-1',
        deviceId: 'arm-1',
        action: 'move_joints',
        verdict: 'deny',
        reasons: [{ ...reason('BOUNDS_JOINT_POSITION', 'out of range'), limit: 2, actual: 2.5, unit: 'rad' }],
      }
    : { kind: 'outcome', timeMs: 1_000 + i, parentSeq: i, detail: { ok: true } };
}

/** The path of a closed log file holding `count` records. */
async function filledLogFile(count: number): Promise<string> {
  const file = freshPath();
  const log = openSqliteAuditLog(file);
  for (let i = 1; i <= count; i += 1) await log.record(sampleEntry(i));
  log.close();
  return file;
}

/** Edits the file behind the log's back, the way an attacker with file access would. */
function tamper(file: string, edit: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    edit(db);
  } finally {
    db.close();
  }
}

function verifyFile(t: Test, file: string): ReturnType<SqliteAuditLog['verify']> {
  const log = openSqliteAuditLog(file);
  t.teardown(() => log.close());
  return log.verify();
}

t.test('open', async (t) => {
  t.test('creates the schema at the known version and logs it', async (t) => {
    const file = freshPath();
    const messages: string[] = [];
    const log = openSqliteAuditLog(file, { log: (msg) => messages.push(msg) });
    log.close();
    t.match(messages, [/created .*audit-\d+\.db \(schema 3, head seq 0\)/]);
    const db = new Database(file, { readonly: true });
    t.teardown(() => db.close());
    t.equal(db.pragma('user_version', { simple: true }), AUDIT_SCHEMA_VERSION);
    const columns = (db.prepare("SELECT name FROM pragma_table_info('records')").all() as { name: string }[]).map(
      (c) => c.name,
    );
    t.strictSame(columns, [
      'seq', 'time_ms', 'kind', 'command_id', 'parent_seq', 'agent_id', 'device_id', 'action', 'verdict',
      'body', 'prev_hash', 'hash',
    ]);
    const indexed = (db.prepare("SELECT name FROM pragma_index_list('records')").all() as { name: string }[]).map(
      (i) => i.name,
    );
    for (const column of ['time_ms', 'command_id', 'parent_seq', 'agent_id', 'device_id']) {
      t.ok(indexed.includes(`records_${column}`), `${column} is indexed`);
    }
    // A handful of values each: an index on them costs every insert more than it saves any query.
    for (const column of ['kind', 'action', 'verdict']) t.notOk(indexed.includes(`records_${column}`), `${column} is not indexed`);
    const checkpointColumns = db.prepare("SELECT name FROM pragma_table_info('checkpoints')").all() as { name: string }[];
    t.strictSame(checkpointColumns.map((c) => c.name), ['seq', 'size', 'head', 'origin', 'time_ms', 'signature']);
  });

  t.test('WAL, synchronous=FULL and foreign_keys are in force', async (t) => {
    const file = freshPath();
    const log = openSqliteAuditLog(file);
    t.teardown(() => log.close());
    // synchronous is per connection, so only the log's own connection can report it.
    t.strictSame(log.pragmas(), { journalMode: 'wal', synchronous: 2, foreignKeys: true });
    await log.record(sampleEntry(1));
    // journal_mode=WAL is persistent in the file, so an independent reader sees it too.
    const reader = new Database(file, { readonly: true });
    t.teardown(() => reader.close());
    t.equal(reader.pragma('journal_mode', { simple: true }), 'wal');
    t.ok(fs.existsSync(`${file}-wal`), 'a WAL file exists while the log is open');
  });

  t.test('a garbage file at the path makes open throw, naming the path, when corruption is to be refused', async (t) => {
    const file = freshPath();
    fs.writeFileSync(file, 'this is not a database '.repeat(400));
    t.throws(() => openSqliteAuditLog(file, { onCorruption: 'refuse' }), { message: new RegExp(`cannot open audit log at ${escape(file)}`) });
  });

  t.test('a damaged page makes open throw, naming the path, when corruption is to be refused', async (t) => {
    const file = await filledLogFile(400);
    const bytes = fs.readFileSync(file);
    const pageSize = bytes.readUInt16BE(16);
    t.ok(bytes.length > pageSize * 4, 'the file spans several pages');
    // Overwrite the middle of page 3 (a table b-tree page): the header still says SQLite, the content lies.
    bytes.fill(0xa5, pageSize * 2 + 8, pageSize * 3);
    fs.writeFileSync(file, bytes);
    t.throws(() => openSqliteAuditLog(file, { onCorruption: 'refuse' }), {
      message: new RegExp(`cannot open audit log at ${escape(file)}: (quick_check failed|.*malformed)`),
    });
  });

  t.test('a missing directory makes open throw, naming the path', async (t) => {
    const file = path.join(dir, 'no-such-dir', 'audit.db');
    t.throws(() => openSqliteAuditLog(file), { message: new RegExp(escape(file)) });
  });

  t.test('an unknown schema version is refused', async (t) => {
    const file = await filledLogFile(1);
    tamper(file, (db) => db.pragma('user_version = 99'));
    t.throws(() => openSqliteAuditLog(file), { message: /unknown audit schema version 99/ });
  });

  t.test('another database (tables, version 0) is refused and left alone', async (t) => {
    const file = freshPath();
    tamper(file, (db) => db.exec('CREATE TABLE other (x)'));
    t.throws(() => openSqliteAuditLog(file), { message: /not an audit log/ });
    const db = new Database(file, { readonly: true });
    t.teardown(() => db.close());
    t.strictSame(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all(), [{ name: 'other' }]);
  });

  t.test('an in-memory database is refused: it cannot be durable', async (t) => {
    t.throws(() => openSqliteAuditLog(':memory:'), { message: /not 'wal'/ });
  });
});

t.test('persistence across close and reopen: the chain continues', async (t) => {
  const file = freshPath();
  const first = openSqliteAuditLog(file);
  const a = await first.record(sampleEntry(1));
  const b = await first.record(sampleEntry(2));
  t.strictSame(first.head(), { seq: 2, hash: b.hash });
  first.close();

  const messages: string[] = [];
  const second = openSqliteAuditLog(file, { log: (msg) => messages.push(msg) });
  t.teardown(() => second.close());
  t.match(messages, [/opened .* \(schema 3, head seq 2\)/]);
  t.strictSame(second.head(), { seq: 2, hash: b.hash });
  const c = await second.record(sampleEntry(3));
  t.equal(c.seq, 3);
  const records = second.read(1, 10);
  t.strictSame(records.map((r) => [r.seq, r.prevHash, r.hash]), [
    [1, GENESIS_HASH, a.hash],
    [2, a.hash, b.hash],
    [3, b.hash, c.hash],
  ]);
  t.strictSame(second.verify(), { ok: true, records: 3, headHash: c.hash });
});

t.test('hash is sha256 of the stored body, and the body holds seq, prevHash and every entry field', async (t) => {
  const file = freshPath();
  const log = openSqliteAuditLog(file);
  t.teardown(() => log.close());
  const entry = sampleEntry(2);
  const receipt = await log.record(entry);
  const row = new Database(file, { readonly: true });
  t.teardown(() => row.close());
  const stored = row.prepare('SELECT body, hash, prev_hash, verdict FROM records WHERE seq = 1').get() as {
    body: string;
    hash: string;
    prev_hash: string;
    verdict: string;
  };
  t.equal(stored.hash, receipt.hash);
  t.equal(createHash('sha256').update(stored.body, 'utf8').digest('hex'), stored.hash);
  t.strictSame(JSON.parse(stored.body), { ...entry, seq: 1, prevHash: GENESIS_HASH });
  t.equal(stored.prev_hash, GENESIS_HASH);
  t.equal(stored.verdict, 'deny');
});

t.test('the stored body is exactly canonicalJson of the entry plus seq and prevHash', async (t) => {
  const file = freshPath();
  const log = openSqliteAuditLog(file);
  t.teardown(() => log.close());
  // Untyped callers may add top-level keys; they must sort around seq and prevHash as canonicalJson sorts them.
  const entries = [
    sampleEntry(1),
    sampleEntry(2),
    { kind: 'event', timeMs: 0 },
    { kind: 'event', timeMs: 3, commandId: undefined, detail: { 'é': 1, Z: [-0, 1e21, 'ü'] } },
    { kind: 'event', timeMs: 4, pa: 1, prevHasi: 2, prevHashes: 3, se: 4, seq0: 5, sf: 6, 'Ω': 7, A: 8, '': 9 },
  ] as AuditEntry[];
  const receipts = await Promise.all(entries.map((entry) => log.record(entry)));
  const reader = new Database(file, { readonly: true });
  t.teardown(() => reader.close());
  const bodies = reader.prepare('SELECT body FROM records ORDER BY seq').all() as { body: string }[];
  entries.forEach((entry, index) => {
    const prevHash = index === 0 ? GENESIS_HASH : receipts[index - 1]?.hash;
    t.equal(bodies[index]?.body, canonicalJson({ ...entry, seq: index + 1, prevHash }), `body ${index + 1}`);
  });
  t.equal(log.verify().ok, true);
});

t.test('an entry carrying seq, prevHash or hash is refused (the log assigns them)', async (t) => {
  const log = openSqliteAuditLog(freshPath());
  t.teardown(() => log.close());
  const first = await log.record(sampleEntry(1));
  const replay = { ...sampleEntry(2), seq: 9, prevHash: GENESIS_HASH, hash: first.hash } as unknown as AuditEntry;
  await t.rejects(log.record(replay), { message: /must not carry 'seq'/ });
  t.equal((await log.record(sampleEntry(2))).seq, 2);
});

t.test('read, verify and head throw after close; record rejects', async (t) => {
  const log = openSqliteAuditLog(freshPath());
  log.close();
  t.throws(() => log.read(1, 1), { message: /closed/ });
  t.throws(() => log.verify(), { message: /closed/ });
  t.throws(() => log.head(), { message: /closed/ });
  await t.rejects(log.record(sampleEntry(1)), { message: /closed/ });
});

t.test('tampering is caught by verify, naming the right record', async (t) => {
  t.test('(a) a body edited without fixing its hash', async (t) => {
    const file = await filledLogFile(10);
    tamper(file, (db) => {
      const changed = db
        .prepare(`UPDATE records SET body = replace(body, '"actual":2.5', '"actual":1.5') WHERE seq = 6`)
        .run();
      t.equal(changed.changes, 1);
    });
    t.match(verifyFile(t, file), { ok: false, seq: 6, problem: 'record 6: hash does not match its body (edited?)' });
  });

  t.test('(b) a body edited and its hash recomputed: the next record\'s prevHash catches it', async (t) => {
    const file = await filledLogFile(10);
    tamper(file, (db) => {
      const row = db.prepare('SELECT body FROM records WHERE seq = 4').get() as { body: string };
      const body = JSON.parse(row.body) as Record<string, unknown>;
      body['verdict'] = 'allow';
      body['reasons'] = [];
      // Rebuild exactly as the log would (sorted keys), and fix the column too, so only the chain can tell.
      const text = JSON.stringify(Object.fromEntries(Object.entries(body).sort(([x], [y]) => (x < y ? -1 : 1))));
      const hash = createHash('sha256').update(text, 'utf8').digest('hex');
      db.prepare("UPDATE records SET body = ?, hash = ?, verdict = 'allow' WHERE seq = 4").run(text, hash);
    });
    const result = verifyFile(t, file);
    t.match(result, { ok: false, seq: 5, problem: /^record 5: prevHash does not match the hash of record 4/ });
  });

  t.test('(c) a middle record deleted', async (t) => {
    const file = await filledLogFile(10);
    tamper(file, (db) => db.prepare('DELETE FROM records WHERE seq = 4').run());
    t.match(verifyFile(t, file), { ok: false, seq: 4, problem: 'record 4 missing (gap between 3 and 5)' });
  });

  t.test('(c\') several records deleted, and the first record deleted', async (t) => {
    const middle = await filledLogFile(10);
    tamper(middle, (db) => db.prepare('DELETE FROM records WHERE seq BETWEEN 4 AND 6').run());
    t.match(verifyFile(t, middle), { ok: false, seq: 4, problem: 'records 4..6 missing (gap between 3 and 7)' });
    const head = await filledLogFile(3);
    tamper(head, (db) => db.prepare('DELETE FROM records WHERE seq = 1').run());
    t.match(verifyFile(t, head), { ok: false, seq: 1, problem: 'record 1 missing (log starts at 2)' });
  });

  t.test('(d) two records swapped (reordered)', async (t) => {
    const file = await filledLogFile(10);
    tamper(file, (db) => {
      db.transaction(() => {
        db.prepare('UPDATE records SET seq = -1 WHERE seq = 3').run();
        db.prepare('UPDATE records SET seq = 3 WHERE seq = 4').run();
        db.prepare('UPDATE records SET seq = 4 WHERE seq = -1').run();
      })();
    });
    t.match(verifyFile(t, file), { ok: false, seq: 3, problem: /^record 3: body says seq 4 \(reordered/ });
  });

  t.test('(e) an indexed column changed but not the body', async (t) => {
    const file = await filledLogFile(10);
    tamper(file, (db) => db.prepare("UPDATE records SET verdict = 'allow' WHERE seq = 8").run());
    t.match(verifyFile(t, file), {
      ok: false,
      seq: 8,
      problem: 'record 8: column verdict is "allow" but the body says "deny" (column edited?)',
    });
  });

  t.test('(e\') the prev_hash column or the hash column changed alone', async (t) => {
    const prev = await filledLogFile(5);
    tamper(prev, (db) => db.prepare("UPDATE records SET prev_hash = ? WHERE seq = 2").run('f'.repeat(64)));
    t.match(verifyFile(t, prev), { ok: false, seq: 2, problem: /^record 2: column prev_hash/ });
    const hash = await filledLogFile(5);
    tamper(hash, (db) => db.prepare('UPDATE records SET hash = ? WHERE seq = 2').run('f'.repeat(64)));
    t.match(verifyFile(t, hash), { ok: false, seq: 2, problem: 'record 2: hash does not match its body (edited?)' });
  });

  t.test('(f) a body that is not JSON', async (t) => {
    const file = await filledLogFile(3);
    tamper(file, (db) => db.prepare("UPDATE records SET body = 'oops' WHERE seq = 2").run());
    t.match(verifyFile(t, file), { ok: false, seq: 2, problem: /^record 2: body is not JSON/ });
  });

  t.test('known gap: without checkpoints, dropping the newest records is not detectable', async (t) => {
    // The chain alone cannot show truncation; signed checkpoints can (sqlite-audit-checkpoints.test.ts).
    const file = await filledLogFile(5);
    tamper(file, (db) => db.prepare('DELETE FROM records WHERE seq > 3').run());
    t.match(verifyFile(t, file), { ok: true, records: 3 });
  });
});

t.test('group commit', async (t) => {
  t.test('2,000 concurrent record calls share two transactions, gapless and in call order', async (t) => {
    const log = openSqliteAuditLog(freshPath());
    t.teardown(() => log.close());
    const entries = Array.from({ length: 2_000 }, (_, i) => sampleEntry(i + 1));
    const receipts = await Promise.all(entries.map((entry) => log.record(entry)));
    t.strictSame(receipts.map((r) => r.seq), entries.map((_, i) => i + 1), 'seq equals call order');
    t.strictSame(log.stats(), { commits: 2, records: 2_000, largestBatch: 1_000, pending: 0 }, 'capped at 1,000 per commit');
    const records = log.read(1, 3_000);
    t.strictSame(records.map((r) => r.hash), receipts.map((r) => r.hash), 'each receipt names its stored record');
    t.equal(records[1_000]?.prevHash, receipts[999]?.hash, 'the second transaction chains to the first');
    t.strictSame(log.verify(), { ok: true, records: 2_000, headHash: receipts[1_999]?.hash });
  });

  t.test('a caller that awaits each record gets one transaction per record', async (t) => {
    const log = openSqliteAuditLog(freshPath());
    t.teardown(() => log.close());
    for (let i = 1; i <= 5; i += 1) t.equal((await log.record(sampleEntry(i))).seq, i);
    t.strictSame(log.stats(), { commits: 5, records: 5, largestBatch: 1, pending: 0 });
  });

  t.test('maxBatch caps a transaction; records issued while a batch commits go to the next one', async (t) => {
    const log = openSqliteAuditLog(freshPath(), { maxBatch: 10 });
    t.teardown(() => log.close());
    const burst = Array.from({ length: 25 }, (_, i) => log.record(sampleEntry(i + 1)));
    t.equal(log.stats().pending, 25, 'nothing is committed synchronously');
    // Issued from the first receipt's callback, i.e. after the first batch committed: must follow the burst.
    const late = burst[0]!.then(() => log.record(sampleEntry(26)));
    const receipts = await Promise.all([...burst, late]);
    t.strictSame(receipts.map((r) => r.seq), Array.from({ length: 26 }, (_, i) => i + 1));
    t.equal(log.stats().largestBatch, 10);
    t.ok(log.stats().commits >= 3 && log.stats().commits <= 4, `3 or 4 commits (got ${log.stats().commits})`);
    t.equal(log.verify().ok, true);
  });

  t.test('maxBatch must be a positive integer', async (t) => {
    for (const maxBatch of [0, -1, 1.5, Number.NaN]) {
      t.throws(() => openSqliteAuditLog(freshPath(), { maxBatch }), { message: /maxBatch must be a positive integer/ });
    }
  });

  t.test('close commits the records still waiting, it never drops them', async (t) => {
    const file = freshPath();
    const log = openSqliteAuditLog(file);
    const calls = Array.from({ length: 20 }, (_, i) => log.record(sampleEntry(i + 1)));
    log.close();
    const receipts = await Promise.all(calls);
    t.strictSame(receipts.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    t.match(verifyFile(t, file), { ok: true, records: 20, headHash: receipts[19]?.hash });
  });

  t.test('a write failing mid-batch rejects the whole batch, and nothing is written until reopen', async (t) => {
    const file = freshPath();
    const messages: string[] = [];
    const log = openSqliteAuditLog(file, { maxBatch: 10, log: (msg) => messages.push(msg) });
    const before = [await log.record(sampleEntry(1)), await log.record(sampleEntry(2))];
    // A real SQLite error on the 3rd row of the next batch (seq 5), from another connection, as a broken disk would.
    tamper(file, (db) =>
      db.exec("CREATE TRIGGER fail_seq_5 BEFORE INSERT ON records WHEN NEW.seq = 5 BEGIN SELECT RAISE(ABORT, 'injected'); END"),
    );
    const calls = Array.from({ length: 15 }, (_, i) => log.record(sampleEntry(i + 3)));
    const settled = await Promise.allSettled(calls);
    t.ok(settled.every((s) => s.status === 'rejected'), 'every record of the batch, and every one waiting behind it, rejects');
    t.match(settled[0], { reason: { message: /write of seqs 3\.\.12 failed before commit \(injected\)/ } });
    t.match(settled[14], { reason: { message: /refuses writes/ } });
    await t.rejects(log.record(sampleEntry(99)), { message: /refuses writes: write of seqs 3\.\.12 failed/ });
    t.match(messages, [/created/, /write of seqs 3\.\.12 failed before commit/]);
    t.strictSame(log.head(), { seq: 2, hash: before[1]?.hash }, 'the batch was rolled back as a whole');
    t.strictSame(log.stats(), { commits: 2, records: 2, largestBatch: 1, pending: 0 });
    log.close();

    tamper(file, (db) => db.exec('DROP TRIGGER fail_seq_5'));
    const reopened = openSqliteAuditLog(file);
    t.teardown(() => reopened.close());
    t.strictSame(reopened.verify(), { ok: true, records: 2, headHash: before[1]?.hash });
    t.equal((await reopened.record(sampleEntry(3))).seq, 3, 'after reopen the chain continues from what is stored');
    t.equal(reopened.verify().ok, true);
  });

  t.test('a failed COMMIT rejects the whole batch as outcome unknown and poisons the log', async (t) => {
    const file = freshPath();
    const log = openSqliteAuditLog(file);
    const first = await log.record(sampleEntry(1));
    // A deferred foreign key that is violated makes COMMIT itself fail (the log's connection enforces foreign keys).
    tamper(file, (db) =>
      db.exec(`
        CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
        CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TRIGGER fault_at_commit AFTER INSERT ON records WHEN NEW.seq = 4 BEGIN INSERT INTO fault_child VALUES (1); END;
      `),
    );
    const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => log.record(sampleEntry(i + 2))));
    t.ok(settled.every((s) => s.status === 'rejected'), 'all five reject');
    for (const s of settled) t.match(s, { reason: { code: 'AUDIT_OUTCOME_UNKNOWN', message: /commit of seqs 2\.\.6 failed, outcome unknown/ } });
    await t.rejects(log.record(sampleEntry(7)), { code: 'AUDIT_UNAVAILABLE', message: /refuses writes: commit of seqs 2\.\.6 failed/ });
    t.ok(fs.existsSync(`${file}.unknown-outcome.json`), 'what was attempted is kept beside the database');
    log.close();

    tamper(file, (db) => db.exec('DROP TRIGGER fault_at_commit'));
    const reopened = openSqliteAuditLog(file);
    t.teardown(() => reopened.close());
    // Here the rollback succeeded, so reconciling by seq finds the whole batch absent, and says so in the chain.
    const reconciled = reopened.read(2, 1)[0];
    t.match(reconciled?.detail, { event: 'audit-reconciled', present: [], absent: [2, 3, 4, 5, 6], note: /none of them was released/ });
    t.match(reopened.notices, [/reconciled a failed commit: records none on disk, 2, 3, 4, 5, 6 absent/]);
    t.notOk(fs.existsSync(`${file}.unknown-outcome.json`), 'reconciled once, then forgotten');
    t.match(reopened.verify(), { ok: true, records: 2 });
    t.equal((await reopened.record(sampleEntry(2))).seq, 3);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
