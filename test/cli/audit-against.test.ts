// `interlock audit verify --against SEQ:HASH|FILE`, the off-device witness, on real audit databases with signed
// checkpoints: deleting the newest records together with the checkpoints that cover them passes plain verify (the
// device alone cannot tell), and --against the cloud's acknowledged head fails naming the missing records. A replaced
// record at the acknowledged seq and unreadable --against values are reported too.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { main } from '../../src/cli/main.js';
import { ensureKeyPair } from '../../src/keys/key-files.js';

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function verify(dir: string, ...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(['audit', 'verify', ...args, '--state-dir', dir], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

/** A state folder as `interlock run` leaves it: keys/ and an audit.db of 50 records, a checkpoint every 10. */
async function stateDir(t: Test): Promise<{ dir: string; head: { seq: number; hash: string } }> {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-against-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keys = ensureKeyPair(join(dir, 'keys', 'interlock.key.pem'), join(dir, 'keys', 'interlock.pub.pem'));
  const log = openSqliteAuditLog(join(dir, 'audit.db'), { checkpoints: { privateKey: keys.privateKey, origin: 'demo-cell', everyRecords: 10 }, ballastBytes: 0 });
  for (let i = 1; i <= 50; i++) await log.record({ kind: 'decision', timeMs: 1_000 + i, commandId: `cmd-${i}`, verdict: 'allow' });
  const head = log.head();
  log.close();
  return { dir, head };
}

/** A copy of the state folder whose newest records after `keep`, and every checkpoint covering them, are deleted. */
function truncatedCopy(t: Test, dir: string, keep: number): string {
  const copy = mkdtempSync(join(tmpdir(), 'interlock-against-copy-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(dir, copy, { recursive: true });
  const db = new Database(join(copy, 'audit.db'));
  db.prepare('DELETE FROM records WHERE seq > ?').run(keep);
  db.prepare('DELETE FROM checkpoints WHERE size > ?').run(keep);
  db.close();
  return copy;
}

t.test('the newest records deleted with their checkpoints: plain verify passes, --against names the missing records', async (t) => {
  const { dir, head } = await stateDir(t);
  const copy = truncatedCopy(t, dir, 40);
  const plain = await verify(copy);
  t.equal(plain.code, 0, 'the device alone cannot tell');
  t.match(plain.stdout, /^ok: 40 records, head [0-9a-f]{64}\n$/);
  const against = await verify(copy, '--against', `${head.seq}:${head.hash}`);
  t.equal(against.code, 1);
  t.equal(against.stdout, `broken at seq 41: records 41..50 missing: the cloud acknowledged seq 50 (hash ${head.hash}), this log ends at seq 40 (newest records deleted?)\n`);
  // The same from the receiver's watermark file (an ack message carries it).
  const file = join(copy, 'watermark.json');
  writeFileSync(file, JSON.stringify({ v: 1, thing: 'demo-cell', seq: head.seq, hash: head.hash }));
  const fromFile = await verify(copy, '--against', file);
  t.equal(fromFile.code, 1);
  t.match(fromFile.stdout, /records 41\.\.50 missing/);
  const intact = await verify(dir, '--against', file);
  t.equal(intact.code, 0, 'the untouched log holds the acknowledged head');
  t.match(intact.stdout, /^ok: 50 records, head [0-9a-f]{64}; the cloud's acknowledged head, seq 50, is here with the same hash\n$/);
});

t.test('another hash at the acknowledged seq is reported; a lower watermark passes', async (t) => {
  const { dir, head } = await stateDir(t);
  const other = 'e'.repeat(64);
  const run = await verify(dir, '--against', `${head.seq}:${other}`);
  t.equal(run.code, 1);
  t.equal(run.stdout, `broken at seq 50: record 50 has hash ${head.hash}, the cloud holds ${other} (records replaced?)\n`);
  const log = openSqliteAuditLog(join(dir, 'audit.db'), { ballastBytes: 0 });
  const at30 = log.read(30, 1)[0]?.hash;
  log.close();
  const lower = await verify(dir, '--against', `30:${at30}`);
  t.equal(lower.code, 0);
});

t.test('an unreadable --against is a usage error naming why', async (t) => {
  const { dir } = await stateDir(t);
  const short = await verify(dir, '--against', '50:abc');
  t.equal(short.code, 2);
  t.match(short.stderr, /--against 50:abc: expected SEQ:HASH with a 64-digit lowercase hex hash/);
  const missing = await verify(dir, '--against', join(dir, 'nope.json'));
  t.equal(missing.code, 2);
  t.match(missing.stderr, /is neither SEQ:HASH nor a readable file/);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ seq: 'ten', hash: 'x' }));
  t.match((await verify(dir, '--against', bad)).stderr, /--against: .*bad\.json: seq: must be a non-negative integer/);
  t.match((await main(['audit', 'export', '--against', '1:' + 'a'.repeat(64), '--state-dir', dir], { stdout: () => undefined, stderr: () => undefined })).toString(), /^2$/);
});
