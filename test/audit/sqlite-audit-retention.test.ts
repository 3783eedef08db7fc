// The audit log as the cloud's outbox: the acknowledgement cursor, retention (only acknowledged AND old records go,
// and the chain still verifies and still catches tampering after it), the size cap with its safe-state reserve, and
// a damaged file moved aside with a new segment linked to its last checkpoint. Real SQLite files.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { manualClock } from '../helpers/clocks.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { openSqliteAuditLog, type SqliteAuditLogOptions } from '../../src/audit/sqlite-audit-log.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-audit-retention-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const freshPath = (): string => path.join(dir, `audit-${++counter}.db`);
const keys = generateEd25519KeyPair();

const DAY_MS = 86_400_000;

function entry(i: number, timeMs: number): AuditEntry {
  return { kind: 'decision', timeMs, commandId: `cmd-${i}`, agentId: 'planner-1', deviceId: 'arm-1', action: 'move_joints', verdict: 'deny', detail: { pad: 'x'.repeat(200) } };
}

/** A log whose clock the test moves. */
function clocked(file: string, extra: SqliteAuditLogOptions = {}) {
  const clock = manualClock(10 * DAY_MS);
  const log = openSqliteAuditLog(file, { nowMs: clock.nowMs, retentionMs: 7 * DAY_MS, ballastBytes: 0, ...extra });
  return { log, clock };
}

t.test('the acknowledgement cursor persists, never moves back, and refuses a seq beyond the head', async (t) => {
  const file = freshPath();
  const { log } = clocked(file);
  for (let i = 1; i <= 5; i++) await log.record(entry(i, DAY_MS));
  t.equal(log.acknowledgedSeq(), 0);
  t.same(log.unacknowledged(10).map((r) => r.seq), [1, 2, 3, 4, 5], 'the outbox holds everything');
  t.equal(log.acknowledge(3), 3);
  t.equal(log.acknowledge(2), 3, 'a lower watermark changes nothing');
  t.throws(() => log.acknowledge(6), /beyond the last record/);
  t.throws(() => log.acknowledge(1.5), /non-negative integer/);
  t.same(log.unacknowledged(10).map((r) => r.seq), [4, 5]);
  log.close();
  const reopened = openSqliteAuditLog(file, { ballastBytes: 0 });
  t.teardown(() => reopened.close());
  t.equal(reopened.acknowledgedSeq(), 3, 'kept in the database');
  t.match(reopened.health(), { state: 'ok', headSeq: 5, acknowledgedSeq: 3, unacknowledged: 2 });
});

t.test('retention deletes only records that are acknowledged and older than the retention', async (t) => {
  const file = freshPath();
  const { log, clock } = clocked(file, { checkpoints: { privateKey: keys.privateKey, origin: 'test-cell', everyRecords: 2 } });
  t.teardown(() => log.close());
  // Records 1-4 are 9 days old, 5-6 are 1 day old.
  for (let i = 1; i <= 4; i++) await log.record(entry(i, 1 * DAY_MS));
  for (let i = 5; i <= 6; i++) await log.record(entry(i, 9 * DAY_MS));
  t.match(log.applyRetention(), { deleted: 0 }, 'nothing is acknowledged: nothing goes, however old');
  log.acknowledge(2);
  t.match(log.applyRetention(), { deleted: 2, firstSeq: 3 }, 'old and acknowledged: 1 and 2 go');
  log.acknowledge(6);
  t.match(log.applyRetention(), { deleted: 2, firstSeq: 5 }, 'acknowledged, but 5 and 6 are young: only 3 and 4 go');
  const stored = log.read(0, 100).map((r) => r.seq);
  t.same(stored, [5, 6, 7, 8], 'the young records and the two retention records remain');
  t.match(log.read(8, 1)[0]?.detail, { event: 'audit-retention', deletedFrom: 3, deletedTo: 4, baseSeq: 4 });
  t.match(log.verify(keys.publicKey), { ok: true, records: 8 }, 'the chain verifies from its new base, checkpoints of deleted records too');
  clock.set(20 * DAY_MS);
  t.match(log.applyRetention(), { deleted: 2, firstSeq: 7 }, 'once old enough, 5 and 6 go too (7 and 8 are not acknowledged)');
  t.equal((await log.record(entry(9, 20 * DAY_MS))).seq, 10, 'the chain continues');
  t.match(log.verify(keys.publicKey), { ok: true });
});

t.test('after retention, verify still catches an edit, a deletion and a moved base', async (t) => {
  const make = async (): Promise<string> => {
    const file = freshPath();
    const { log } = clocked(file);
    for (let i = 1; i <= 6; i++) await log.record(entry(i, DAY_MS));
    log.acknowledge(3);
    log.applyRetention();
    await log.record(entry(7, DAY_MS));
    log.close();
    return file;
  };
  const tampered = async (edit: (db: Database.Database) => void): Promise<string> => {
    const file = await make();
    const db = new Database(file);
    edit(db);
    db.close();
    const log = openSqliteAuditLog(file, { ballastBytes: 0 });
    const result = log.verify();
    log.close();
    return result.ok ? 'ok' : result.problem;
  };
  t.equal(await tampered(() => undefined), 'ok', 'untouched, it verifies');
  t.match(await tampered((db) => db.prepare("UPDATE records SET body = replace(body, 'cmd-5', 'cmd-x') WHERE seq = 5").run()), /record 5: hash does not match/);
  t.match(await tampered((db) => db.prepare('DELETE FROM records WHERE seq = 5').run()), /record 5 missing/);
  // Deleting the oldest remaining records and moving the base past them, as retention would, but without its record.
  t.match(
    await tampered((db) => {
      const hash = (db.prepare('SELECT hash FROM records WHERE seq = 5').get() as { hash: string }).hash;
      db.prepare('DELETE FROM records WHERE seq <= 5').run();
      db.prepare("UPDATE meta SET value = '5' WHERE key = 'base_seq'").run();
      db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(hash, 'base_hash');
    }),
    /no retention or segment record attests/,
  );
});

t.test('at the size cap, ordinary records are refused, safe-state records use the reserve, and retention makes room', async (t) => {
  const file = freshPath();
  const { log, clock } = clocked(file, { maxBytes: 512 * 1024, reserveBytes: 128 * 1024 });
  t.teardown(() => log.close());
  let refused: unknown;
  let written = 0;
  for (let i = 1; i <= 5_000 && refused === undefined; i++) {
    try {
      await log.record(entry(i, DAY_MS));
      written += 1;
    } catch (error) {
      refused = error;
    }
  }
  t.ok(written > 100, `${written} records fit under the cap`);
  t.match(refused, { code: 'AUDIT_LOG_FULL', message: /at its cap .* records the cloud has not acknowledged/ });
  t.match(log.health(), { state: 'full', unacknowledged: written });
  await t.rejects(log.record(entry(0, DAY_MS)), { code: 'AUDIT_LOG_FULL' }, 'still full');
  const stop = await log.record({ kind: 'decision', timeMs: DAY_MS, commandId: 'stop-1', action: 'stop', verdict: 'allow' }, { safeState: true });
  t.equal(stop.seq, written + 1, 'a safe-state record still goes in');
  // The cloud acknowledges everything; retention (run when the cap is reached) then makes room.
  log.acknowledge(stop.seq);
  clock.set(30 * DAY_MS);
  const next = await log.record(entry(99, 30 * DAY_MS));
  t.ok(next.seq > stop.seq, 'room again after acknowledgement and retention');
  t.match(log.health(), { state: 'ok' });
  t.match(log.verify(), { ok: true });
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  t.ok(Number(db.pragma('page_count', { simple: true })) <= 128, 'the file never grew past the cap');
});

t.test('the cap is set on every open', async (t) => {
  const file = freshPath();
  openSqliteAuditLog(file, { maxBytes: 1024 * 1024, ballastBytes: 0 }).close();
  const log = openSqliteAuditLog(file, { maxBytes: 1024 * 1024, ballastBytes: 0 });
  t.teardown(() => log.close());
  t.equal(log.health().maxBytes, 1024 * 1024);
  t.throws(() => openSqliteAuditLog(freshPath(), { maxBytes: 1024 * 1024, reserveBytes: 600 * 1024 }), /under half/);
  t.throws(() => openSqliteAuditLog(freshPath(), { maxBytes: 1000 }), /maxBytes must be an integer/);
});

t.test('a damaged file is moved aside and a new segment starts, linked to its last checkpoint', async (t) => {
  const file = freshPath();
  const log = openSqliteAuditLog(file, { ballastBytes: 0, checkpoints: { privateKey: keys.privateKey, origin: 'test-cell', everyRecords: 50 } });
  for (let i = 1; i <= 400; i++) void log.record(entry(i, DAY_MS));
  await log.record(entry(401, DAY_MS));
  log.close();
  const checkpoint = new Database(file, { readonly: true }).prepare('SELECT seq, size, head FROM checkpoints ORDER BY seq DESC LIMIT 1').get() as { seq: number; size: number; head: string };
  // Garbage over the middle of page 3 (a b-tree page of the records table).
  const bytes = fs.readFileSync(file);
  const pageSize = bytes.readUInt16BE(16);
  bytes.fill(0xa5, pageSize * 2 + 8, pageSize * 3);
  fs.writeFileSync(file, bytes);

  const messages: string[] = [];
  const reopened = openSqliteAuditLog(file, { ballastBytes: 0, log: (m) => messages.push(m), checkpoints: { privateKey: keys.privateKey, origin: 'test-cell' } });
  t.teardown(() => reopened.close());
  const moved = fs.readdirSync(dir).filter((name) => name.startsWith(`${path.basename(file)}.corrupt-`) && !/-(wal|shm)$/.test(name));
  t.equal(moved.length, 1, `the damaged file is kept: ${moved.join(', ')}`);
  t.match(reopened.notices, [new RegExp(`damaged log moved to .*corrupt-.*new segment starts after checkpoint ${checkpoint.seq} \\(record ${checkpoint.size}\\)`)]);
  t.ok(messages.some((m) => /is damaged/.test(m)), 'reported through the log callback');
  const first = reopened.read(0, 10)[0];
  t.equal(first?.seq, checkpoint.size + 1, 'the new segment continues after the checkpoint');
  t.equal(first?.prevHash, checkpoint.head, 'linked to the checkpoint head');
  t.match(first?.detail, { event: 'audit-segment-started', baseSeq: checkpoint.size, lastCheckpoint: { seq: checkpoint.seq, size: checkpoint.size } });
  await reopened.record(entry(500, DAY_MS));
  t.match(reopened.verify(keys.publicKey), { ok: true });
});
