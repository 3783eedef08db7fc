// `interlock audit archive` at the library level, against real SQLite files with a running log open beside it: the
// archive holds the unacknowledged records up to the newest signed checkpoint, the cursor moves only after the file
// is durable and the running log sees it, the `audit-archived` event continues the chain, files are never
// overwritten, and standalone verification catches an edited body, a dropped record, a dropped last record, a
// re-hashed edit and a forged checkpoint.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { archiveAuditLog, verifyAuditArchive } from '../../src/audit/audit-archive.js';
import { verifyArchiveText } from '../../src/audit/audit-archive-format.js';
import { signCheckpoint } from '../../src/audit/audit-checkpoint.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { openSqliteAuditLog, type SqliteAuditLogOptions } from '../../src/audit/sqlite-audit-log.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { createHash } from 'node:crypto';
import { manualClock } from '../helpers/clocks.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-archive-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let count = 0;
function freshDir(): string {
  count += 1;
  const d = path.join(dir, `case-${count}`);
  fs.mkdirSync(d);
  return d;
}

const keys = generateEd25519KeyPair();
const other = generateEd25519KeyPair();
const DAY_MS = 86_400_000;

function entry(i: number, timeMs = 1_000 + i): AuditEntry {
  return { kind: 'decision', timeMs, commandId: `cmd-${i}`, verdict: 'allow' };
}

function options(extra: SqliteAuditLogOptions = {}): SqliteAuditLogOptions {
  // No time-based checkpoints (the timer never fires, everyMs is far away): checkpoints at every 10th record only.
  return { ballastBytes: 0, checkpoints: { privateKey: keys.privateKey, origin: 'cell-a', everyRecords: 10, everyMs: 10 * DAY_MS, nowMs: () => 5_000, setTimer: () => () => {} }, ...extra };
}

t.test('archives up to the newest checkpoint while the log runs; the running log sees the cursor and goes on', async (t) => {
  const d = freshDir();
  const db = path.join(d, 'audit.db');
  const out = freshDir();
  const log = openSqliteAuditLog(db, options());
  t.teardown(() => log.close());
  for (let i = 1; i <= 25; i++) await log.record(entry(i));
  const outcome = archiveAuditLog(db, out, { publicKey: keys.publicKey, nowMs: () => 9_000 });
  if (!outcome.ok) return t.fail(outcome.problem);
  t.match(outcome, { firstSeq: 1, lastSeq: 20, checkpointSeq: 2, eventSeq: 26, acknowledgedSeq: 20 });
  t.equal(path.basename(outcome.file), 'audit-000000000001-000000000020.jsonl', 'named by its seq range inside the folder');
  t.equal(log.acknowledgedSeq(), 20, 'the running log reads the cursor the archive moved');
  t.match(log.health(), { acknowledgedSeq: 20, unacknowledged: 6 });
  const next = await log.record(entry(27));
  t.equal(next.seq, 27, 'the running log appends after the archive event');
  t.match(log.read(26, 1)[0], { kind: 'event', detail: { event: 'audit-archived', firstSeq: 1, lastSeq: 20, checkpointSeq: 2, file: path.basename(outcome.file) } });
  const fileSha256 = createHash('sha256').update(fs.readFileSync(outcome.file)).digest('hex');
  t.equal((log.read(26, 1)[0]?.detail as { fileSha256?: string }).fileSha256, fileSha256, 'the event names the file by its sha256');
  t.match(log.verify(keys.publicKey), { ok: true, records: 27 }, 'the chain with the archive event verifies');
  t.match(verifyAuditArchive(outcome.file, keys.publicKey), { ok: true, records: 20 });
  const lines = fs.readFileSync(outcome.file, 'utf8').trimEnd().split('\n');
  t.equal(lines.length, 21, 'a header and 20 records');
  t.match(JSON.parse(lines[0] ?? ''), { format: 'interlock-audit-archive', version: 1, origin: 'cell-a', firstSeq: 1, lastSeq: 20, baseHash: '0'.repeat(64), checkpoint: { seq: 2, size: 20 } });

  const again = archiveAuditLog(db, out, { publicKey: keys.publicKey });
  t.match(again, { ok: false, problem: /no signed checkpoint covers any unacknowledged record \(first unacknowledged: 21/ }, 'nothing new is covered');
  t.equal(log.acknowledgedSeq(), 20, 'a refused archive moves nothing');
  for (let i = 28; i <= 31; i++) await log.record(entry(i));
  const second = archiveAuditLog(db, out, { publicKey: keys.publicKey });
  if (!second.ok) return t.fail(second.problem);
  t.match(second, { firstSeq: 21, lastSeq: 30, acknowledgedSeq: 30 });
  const secondHeader = JSON.parse(fs.readFileSync(second.file, 'utf8').split('\n')[0] ?? '') as { baseHash: string };
  t.equal(secondHeader.baseHash, JSON.parse(lines[20] ?? '').hash, 'the next archive starts where the previous one ended');
  t.match(verifyAuditArchive(second.file, keys.publicKey), { ok: true, records: 10 });
});

t.test('--upto ends at the newest checkpoint at or before it; a file is never overwritten; a bad key fails verify', async (t) => {
  const d = freshDir();
  const db = path.join(d, 'audit.db');
  const log = openSqliteAuditLog(db, options());
  t.teardown(() => log.close());
  for (let i = 1; i <= 25; i++) await log.record(entry(i));
  const target = path.join(freshDir(), 'first.jsonl');
  fs.writeFileSync(target, 'someone else\'s file\n');
  t.match(archiveAuditLog(db, target, { uptoSeq: 15 }), { ok: false, problem: /already exists; an archive never overwrites/ });
  t.equal(fs.readFileSync(target, 'utf8'), 'someone else\'s file\n', 'the existing file is untouched');
  t.equal(log.acknowledgedSeq(), 0);
  const other_target = path.join(path.dirname(target), 'second.jsonl');
  const outcome = archiveAuditLog(db, other_target, { uptoSeq: 15 });
  t.match(outcome, { ok: true, firstSeq: 1, lastSeq: 10, file: other_target });
  t.equal(log.acknowledgedSeq(), 10);
  t.match(verifyAuditArchive(other_target, other.publicKey), { ok: false, problem: /signature does not verify/ }, 'another key does not verify it');
  t.match(archiveAuditLog(db, path.join(dir, 'missing-folder', 'x.jsonl')), { ok: false, problem: /does not exist/ });
  t.match(archiveAuditLog(path.join(d, 'nope.db'), path.join(d, 'y.jsonl')), { ok: false, problem: /no audit database/ });
  t.same(fs.readdirSync(path.dirname(target)).sort(), ['first.jsonl', 'second.jsonl'], 'no temp file is left behind');
});

t.test('no checkpoint yet: says so and moves nothing', async (t) => {
  const d = freshDir();
  const db = path.join(d, 'audit.db');
  const log = openSqliteAuditLog(db, options());
  t.teardown(() => log.close());
  for (let i = 1; i <= 5; i++) await log.record(entry(i));
  t.match(archiveAuditLog(db, freshDir()), { ok: false, problem: /no signed checkpoint covers any unacknowledged record/ });
  t.equal(log.acknowledgedSeq(), 0);
  t.equal(log.head().seq, 5, 'no event was appended');
});

t.test('standalone verification catches tampering with the archive', async (t) => {
  const d = freshDir();
  const db = path.join(d, 'audit.db');
  const log = openSqliteAuditLog(db, options());
  t.teardown(() => log.close());
  for (let i = 1; i <= 20; i++) await log.record(entry(i));
  const outcome = archiveAuditLog(db, freshDir(), { publicKey: keys.publicKey });
  if (!outcome.ok) return t.fail(outcome.problem);
  const text = fs.readFileSync(outcome.file, 'utf8');
  const lines = text.trimEnd().split('\n');
  const join = (ls: readonly string[]): string => `${ls.join('\n')}\n`;
  const edit = (index: number, change: (value: { seq: number; hash: string; body: string }) => object): string[] =>
    lines.map((line, i) => (i === index ? JSON.stringify(change(JSON.parse(line) as { seq: number; hash: string; body: string })) : line));
  const sha = (body: string): string => createHash('sha256').update(body, 'utf8').digest('hex');
  t.match(verifyArchiveText(text, keys.publicKey), { ok: true, records: 20 }, 'untouched, it verifies');
  t.match(verifyArchiveText(join(edit(5, (r) => ({ ...r, body: r.body.replace('cmd-5', 'cmd-x') }))), keys.publicKey), { ok: false, seq: 5, problem: /hash does not match its body/ }, 'an edited body');
  t.match(
    verifyArchiveText(join(edit(5, (r) => { const body = r.body.replace('cmd-5', 'cmd-x'); return { ...r, body, hash: sha(body) }; })), keys.publicKey),
    { ok: false, seq: 6, problem: /prevHash does not match the hash of record 5/ },
    'an edited body with its hash recomputed',
  );
  t.match(verifyArchiveText(join(lines.filter((_, i) => i !== 7)), keys.publicKey), { ok: false, seq: 7, problem: /record 7 missing/ }, 'a dropped record');
  t.match(verifyArchiveText(join(lines.slice(0, -1)), keys.publicKey), { ok: false, seq: 20, problem: /record 20 missing: the checkpoint covers 20 records/ }, 'a dropped last record');
  const header = JSON.parse(lines[0] ?? '') as { checkpoint: { seq: number; size: number; head: string; origin: string; timeMs: number; signature: string }; lastSeq: number };
  const shortened = [JSON.stringify({ ...header, lastSeq: 19 }), ...lines.slice(1, -1)];
  t.match(verifyArchiveText(join(shortened), keys.publicKey), { ok: false, problem: /the checkpoint covers 20 records but the archive says it ends at record 19/ }, 'a dropped last record with the header changed to match');
  const forged = { ...header.checkpoint, size: 19, head: (JSON.parse(lines[19] ?? '') as { hash: string }).hash };
  t.match(verifyArchiveText(join([JSON.stringify({ ...header, lastSeq: 19, checkpoint: forged }), ...lines.slice(1, -1)]), keys.publicKey), { ok: false, problem: /signature does not verify/ }, 'a forged checkpoint');
  const resigned = signCheckpoint({ seq: forged.seq, size: 19, head: forged.head, origin: forged.origin, timeMs: forged.timeMs }, other.privateKey);
  t.match(verifyArchiveText(join([JSON.stringify({ ...header, lastSeq: 19, checkpoint: resigned }), ...lines.slice(1, -1)]), keys.publicKey), { ok: false, problem: /signature does not verify/ }, 'a checkpoint signed with another key');
  t.match(verifyArchiveText(join([...lines, lines[20] ?? '']), keys.publicKey), { ok: false, problem: /after the last one/ }, 'an added record');
  t.match(verifyArchiveText(join(lines.slice(1)), keys.publicKey), { ok: false, seq: 0, problem: /header/ }, 'no header');
  t.match(verifyArchiveText('', keys.publicKey), { ok: false, problem: /empty/ });
});

t.test('retention deletes what an archive acknowledged, and the log still verifies', async (t) => {
  const d = freshDir();
  const db = path.join(d, 'audit.db');
  const clock = manualClock(DAY_MS);
  const log = openSqliteAuditLog(db, options({ retentionMs: DAY_MS, nowMs: clock.nowMs }));
  t.teardown(() => log.close());
  for (let i = 1; i <= 25; i++) await log.record(entry(i, DAY_MS));
  clock.set(3 * DAY_MS);
  t.match(log.applyRetention(), { deleted: 0 }, 'old but not acknowledged: kept');
  const outcome = archiveAuditLog(db, freshDir(), { publicKey: keys.publicKey });
  t.match(outcome, { ok: true, lastSeq: 20 });
  t.match(log.applyRetention(), { deleted: 20, firstSeq: 21 }, 'the archived records go');
  t.match(log.verify(keys.publicKey), { ok: true });
});

t.test('a log whose records or checkpoint do not verify is not archived, and nothing moves', async (t) => {
  const tamperedLog = async (change: (db: import('better-sqlite3').Database) => void, withKey: boolean): Promise<void> => {
    const d = freshDir();
    const db = path.join(d, 'audit.db');
    const log = openSqliteAuditLog(db, options());
    t.teardown(() => log.close());
    for (let i = 1; i <= 20; i++) await log.record(entry(i));
    const { default: Database } = await import('better-sqlite3');
    const raw = new Database(db);
    change(raw);
    raw.close();
    const out = freshDir();
    t.match(archiveAuditLog(db, out, withKey ? { publicKey: keys.publicKey } : {}), { ok: false, problem: /do not verify, nothing written/ });
    t.same(fs.readdirSync(out), [], 'no file, no temp file');
    t.equal(log.acknowledgedSeq(), 0, 'the cursor did not move');
    t.equal(log.head().seq, 20, 'no event was appended');
  };
  await tamperedLog((db) => db.prepare("UPDATE records SET body = replace(body, 'cmd-7', 'cmd-x') WHERE seq = 7").run(), false);
  await tamperedLog((db) => db.prepare("UPDATE checkpoints SET head = ? WHERE seq = 2").run('f'.repeat(64)), true);
});
