// Signed checkpoints in the SQLite audit log: when they are written, the v1 -> v2 migration, and that verify()
// catches dropped newest records, replaced newest records and forged checkpoints. Only touches its temp dir.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { manualClock } from '../helpers/clocks.js';
import { checkpointMessage, signCheckpoint } from '../../src/audit/audit-checkpoint.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { AUDIT_SCHEMA_VERSION, openSqliteAuditLog, type SqliteAuditLogOptions } from '../../src/audit/sqlite-audit-log.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-audit-checkpoints-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function freshPath(): string {
  fileCount += 1;
  return path.join(dir, `audit-${fileCount}.db`);
}

const keys = generateEd25519KeyPair();
const other = generateEd25519KeyPair();

function entry(i: number): AuditEntry {
  return { kind: 'decision', timeMs: 1_000 + i, commandId: `cmd-${i}`, verdict: i % 3 === 0 ? 'deny' : 'allow' };
}

function withCheckpoints(extra: Partial<NonNullable<SqliteAuditLogOptions['checkpoints']>> = {}): SqliteAuditLogOptions {
  return { checkpoints: { privateKey: keys.privateKey, origin: 'cell-a/interlock-1', everyRecords: 10, ...extra } };
}

interface StoredCheckpoint {
  seq: number;
  size: number;
  head: string;
  origin: string;
  time_ms: number;
  signature: string;
}

function checkpointsOf(file: string): StoredCheckpoint[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT * FROM checkpoints ORDER BY seq').all() as StoredCheckpoint[];
  } finally {
    db.close();
  }
}

function tamper(file: string, edit: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    edit(db);
  } finally {
    db.close();
  }
}

/** A closed log of `count` records, written one at a time, with checkpoints every 10 and one on close. */
async function checkpointedFile(count: number): Promise<string> {
  const file = freshPath();
  const log = openSqliteAuditLog(file, withCheckpoints());
  for (let i = 1; i <= count; i += 1) await log.record(entry(i));
  log.close();
  return file;
}

function verifyFile(file: string, withKey = true): ReturnType<ReturnType<typeof openSqliteAuditLog>['verify']> {
  const log = openSqliteAuditLog(file);
  try {
    return log.verify(withKey ? keys.publicKey : undefined);
  } finally {
    log.close();
  }
}

t.test('a checkpoint every N records, and one on close, each signed and naming the head', async (t) => {
  const file = freshPath();
  const log = openSqliteAuditLog(file, withCheckpoints());
  const receipts = [];
  for (let i = 1; i <= 25; i += 1) receipts.push(await log.record(entry(i)));
  t.strictSame(checkpointsOf(file).map((c) => [c.seq, c.size]), [[1, 10], [2, 20]]);
  log.close();
  const stored = checkpointsOf(file);
  t.strictSame(stored.map((c) => [c.seq, c.size, c.head]), [
    [1, 10, receipts[9]?.hash],
    [2, 20, receipts[19]?.hash],
    [3, 25, receipts[24]?.hash],
  ]);
  t.ok(stored.every((c) => c.origin === 'cell-a/interlock-1'));
  t.match(verifyFile(file), { ok: true, records: 25, headHash: receipts[24]?.hash });
});

t.test('a batch covers many records with one checkpoint', async (t) => {
  const file = freshPath();
  const log = openSqliteAuditLog(file, withCheckpoints());
  t.teardown(() => log.close());
  await Promise.all(Array.from({ length: 35 }, (_, i) => log.record(entry(i + 1))));
  t.strictSame(checkpointsOf(file).map((c) => [c.seq, c.size]), [[1, 35]]);
  t.equal(log.verify(keys.publicKey).ok, true);
});

t.test('a checkpoint once everyMs has passed, at the next write', async (t) => {
  const file = freshPath();
  const clock = manualClock(50_000);
  const log = openSqliteAuditLog(file, withCheckpoints({ everyRecords: 1_000, everyMs: 10_000, nowMs: clock.nowMs }));
  t.teardown(() => log.close());
  await log.record(entry(1));
  clock.advance(9_999);
  await log.record(entry(2));
  t.strictSame(checkpointsOf(file), [], 'not yet');
  clock.advance(1);
  await log.record(entry(3));
  t.match(checkpointsOf(file), [{ seq: 1, size: 3, time_ms: 60_000 }]);
});

t.test('an idle log gets a checkpoint within everyMs of a write', async (t) => {
  const file = freshPath();
  const timers: { fire: () => void; ms: number; cancelled: boolean }[] = [];
  const setTimer = (fire: () => void, ms: number): (() => void) => {
    const timer = { fire, ms, cancelled: false };
    timers.push(timer);
    return () => void (timer.cancelled = true);
  };
  const log = openSqliteAuditLog(file, withCheckpoints({ everyMs: 5_000, setTimer }));
  for (let i = 1; i <= 3; i += 1) await log.record(entry(i));
  t.equal(timers.length, 1, 'one timer armed, not one per write');
  t.equal(timers[0]?.ms, 5_000);
  t.strictSame(checkpointsOf(file), []);
  timers[0]?.fire();
  t.strictSame(checkpointsOf(file).map((c) => [c.seq, c.size]), [[1, 3]]);
  await log.record(entry(4));
  t.equal(timers.length, 2, 're-armed by the next write');
  log.close();
  t.equal(timers[1]?.cancelled, true, 'close cancels it');
  timers[1]?.fire();
  t.strictSame(checkpointsOf(file).map((c) => [c.seq, c.size]), [[1, 3], [2, 4]], 'close wrote the last one; a late fire does nothing');
});

t.test('a checkpoint that cannot be written poisons the log like a failed record write', async (t) => {
  t.test('in the batch: the whole batch rejects', async (t) => {
    const file = freshPath();
    const log = openSqliteAuditLog(file, withCheckpoints());
    t.teardown(() => log.close());
    tamper(file, (db) => db.exec("CREATE TRIGGER no_checkpoints BEFORE INSERT ON checkpoints BEGIN SELECT RAISE(ABORT, 'injected'); END"));
    const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => log.record(entry(i + 1))));
    t.ok(settled.every((s) => s.status === 'rejected'));
    t.match(settled[0], { reason: { message: /write of seqs 1\.\.12 failed before commit \(injected\)/ } });
    t.equal(log.head().seq, 0, 'records and checkpoint were rolled back together');
    await t.rejects(log.record(entry(13)), { message: /refuses writes/ });
  });

  t.test('on the idle timer: later records reject until reopen', async (t) => {
    const file = freshPath();
    let fire: (() => void) | undefined;
    const log = openSqliteAuditLog(file, withCheckpoints({ setTimer: (callback) => ((fire = callback), () => {}) }));
    t.teardown(() => log.close());
    await log.record(entry(1));
    tamper(file, (db) => db.exec("CREATE TRIGGER no_checkpoints BEFORE INSERT ON checkpoints BEGIN SELECT RAISE(ABORT, 'injected'); END"));
    fire?.();
    await t.rejects(log.record(entry(2)), { message: /refuses writes: checkpoint write failed, outcome unknown \(injected\)/ });
    t.equal(log.head().seq, 1, 'the committed record stays');
  });
});

t.test('without the option no checkpoints are written', async (t) => {
  const file = freshPath();
  const log = openSqliteAuditLog(file);
  for (let i = 1; i <= 15; i += 1) await log.record(entry(i));
  log.close();
  t.strictSame(checkpointsOf(file), []);
});

t.test('bad checkpoint options refuse to open', async (t) => {
  t.throws(() => openSqliteAuditLog(freshPath(), { checkpoints: { privateKey: keys.publicKey, origin: 'x' } }), {
    message: /Ed25519 private key/,
  });
  t.throws(() => openSqliteAuditLog(freshPath(), { checkpoints: { privateKey: keys.privateKey, origin: 'a\nb' } }), {
    message: /one line/,
  });
  t.throws(() => openSqliteAuditLog(freshPath(), withCheckpoints({ everyRecords: 0 })), { message: /everyRecords/ });
});

t.test('a version 1 log is migrated: the checkpoints and meta tables are added, records are untouched', async (t) => {
  const file = await checkpointedFile(5);
  // Make it exactly what a version 1 build left behind.
  tamper(file, (db) => {
    db.exec('DROP TABLE checkpoints');
    db.exec('DROP TABLE meta');
    db.pragma('user_version = 1');
  });
  const messages: string[] = [];
  const log = openSqliteAuditLog(file, { ...withCheckpoints(), log: (msg) => messages.push(msg) });
  t.match(messages, [/migrated .* \(schema 3, head seq 5\)/]);
  t.match(log.verify(keys.publicKey), { ok: true, records: 5 });
  await log.record(entry(6));
  log.close();
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.pragma('user_version', { simple: true }), AUDIT_SCHEMA_VERSION);
  t.strictSame(checkpointsOf(file).map((c) => c.size), [6]);
});

t.test('a version 3 log without its checkpoints table is refused', async (t) => {
  const file = await checkpointedFile(2);
  tamper(file, (db) => db.exec('DROP TABLE checkpoints'));
  t.throws(() => openSqliteAuditLog(file), { message: /no checkpoints table/ });
});

t.test('dropping the newest records is detected against the checkpoint', async (t) => {
  const file = await checkpointedFile(25);
  tamper(file, (db) => db.prepare('DELETE FROM records WHERE seq > 22').run());
  const expected = { ok: false, seq: 23, problem: 'records 23..25 missing: checkpoint 3 covers 25 records (truncated?)' };
  t.strictSame(verifyFile(file), expected);
  t.strictSame(verifyFile(file, false), expected, 'the size check needs no key');
});

t.test('replacing the newest records with a valid chain is detected by the checkpoint head', async (t) => {
  const file = await checkpointedFile(25);
  tamper(file, (db) => db.prepare('DELETE FROM records WHERE seq > 20').run());
  // The attacker appends different records 21..25 through the log itself, so the chain is valid.
  const attacker = openSqliteAuditLog(file);
  for (let i = 21; i <= 25; i += 1) await attacker.record({ ...entry(i), verdict: 'allow', commandId: `forged-${i}` });
  attacker.close();
  t.match(verifyFile(file), { ok: false, seq: 25, problem: /^checkpoint 3: record 25 has hash [0-9a-f]{64}, not the checkpoint head/ });
});

t.test('a forged checkpoint is detected', async (t) => {
  t.test('signed with another key', async (t) => {
    const file = await checkpointedFile(12);
    tamper(file, (db) => {
      // Claims fewer records (to hide a later truncation) and is signed by a key that is not the interlock's.
      const head = (db.prepare('SELECT hash FROM records WHERE seq = 12').get() as { hash: string }).hash;
      const forged = signCheckpoint({ seq: 3, size: 12, head, origin: 'cell-a/interlock-1', timeMs: 1 }, other.privateKey);
      db.prepare('INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)').run(3, 12, head, forged.origin, 1, forged.signature);
    });
    t.strictSame(verifyFile(file), { ok: false, seq: 12, problem: 'checkpoint 3: signature does not verify (forged or edited?)' });
  });

  t.test('an existing checkpoint edited (size lowered)', async (t) => {
    const file = await checkpointedFile(25);
    tamper(file, (db) => {
      db.prepare('UPDATE checkpoints SET size = 22, head = (SELECT hash FROM records WHERE seq = 22) WHERE seq = 3').run();
      db.prepare('DELETE FROM records WHERE seq > 22').run();
    });
    t.match(verifyFile(file), { ok: false, problem: 'checkpoint 3: signature does not verify (forged or edited?)' });
  });

  t.test('a garbage signature', async (t) => {
    const file = await checkpointedFile(10);
    tamper(file, (db) => db.prepare("UPDATE checkpoints SET signature = 'not base64!' WHERE seq = 1").run());
    t.match(verifyFile(file), { ok: false, problem: /^checkpoint 1: signature does not verify/ });
  });

  t.test('the newest checkpoints deleted along with records leaves a gap only if a middle one is removed', async (t) => {
    const file = await checkpointedFile(25);
    tamper(file, (db) => db.prepare('DELETE FROM checkpoints WHERE seq = 2').run());
    t.match(verifyFile(file), { ok: false, problem: /^checkpoint 3: expected checkpoint 2 here/ });
  });
});

t.test('the signed message names every field on its own line', async (t) => {
  const text = checkpointMessage({ seq: 2, size: 20, head: 'a'.repeat(64), origin: 'o', timeMs: 5 }).toString('utf8');
  t.equal(text, `physical-ai-interlock audit checkpoint v1\norigin o\ncheckpoint 2\nsize 20\nhead ${'a'.repeat(64)}\ntime 5\n`);
});
