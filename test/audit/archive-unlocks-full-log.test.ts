// A flood no longer locks the interlock out on a site without cloud: with a small cap and a retention, records fill
// the log until ordinary records get AUDIT_LOG_FULL; without an archive they keep getting it however old the records
// are (nothing is acknowledged, so nothing may be deleted); after `interlock audit archive` (its own connection, as
// the CLI runs it) retention deletes the archived records and ordinary records are accepted again.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { archiveAuditLog } from '../../src/audit/audit-archive.js';
import { openSqliteAuditLog, type SqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { manualClock, type ManualClock } from '../helpers/clocks.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'archive-unlocks-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const keys = generateEd25519KeyPair();
const DAY_MS = 86_400_000;

async function fullLog(t: Test, name: string): Promise<{ log: SqliteAuditLog; db: string; clock: ManualClock; written: number }> {
  const db = path.join(dir, `${name}.db`);
  const clock = manualClock(DAY_MS);
  const log = openSqliteAuditLog(db, {
    maxBytes: 512 * 1024,
    reserveBytes: 64 * 1024,
    ballastBytes: 0,
    retentionMs: DAY_MS,
    nowMs: clock.nowMs,
    checkpoints: { privateKey: keys.privateKey, origin: 'cell-a', everyRecords: 50, everyMs: 10 * DAY_MS, nowMs: clock.nowMs, setTimer: () => () => {} },
  });
  t.teardown(() => log.close());
  let written = 0;
  for (;;) {
    try {
      await log.record({ kind: 'decision', timeMs: clock.nowMs(), commandId: `flood-${written}`, verdict: 'deny', detail: { pad: 'f'.repeat(300) } });
      written += 1;
    } catch (error) {
      t.match(error, { code: 'AUDIT_LOG_FULL' }, `full after ${written} records`);
      break;
    }
    if (written > 20_000) throw new Error('the cap never came');
  }
  // A day and more later: every record is past the retention, only the acknowledgement is missing.
  clock.set(3 * DAY_MS);
  return { log, db, clock, written };
}

const ordinary = { kind: 'decision' as const, timeMs: 3 * DAY_MS, commandId: 'after', verdict: 'allow' as const };

t.test('without an archive, ordinary records stay refused with AUDIT_LOG_FULL', async (t) => {
  const { log, clock } = await fullLog(t, 'no-archive');
  await t.rejects(log.record(ordinary), { code: 'AUDIT_LOG_FULL' });
  clock.advance(60_000);
  await t.rejects(log.record(ordinary), { code: 'AUDIT_LOG_FULL' }, 'retention ran and could delete nothing');
  t.equal(log.health().state, 'full');
});

t.test('after an archive, retention makes room and ordinary records are accepted again', async (t) => {
  const { log, db, written } = await fullLog(t, 'archive');
  await t.rejects(log.record(ordinary), { code: 'AUDIT_LOG_FULL' }, 'full before the archive');
  const outcome = archiveAuditLog(db, dir, { publicKey: keys.publicKey });
  if (!outcome.ok) return t.fail(outcome.problem);
  t.ok(outcome.lastSeq >= written - 50, `archived records 1..${outcome.lastSeq} of ${written}`);
  const accepted = await log.record(ordinary);
  t.ok(accepted.seq > outcome.eventSeq, 'accepted right after the archive, in the same second');
  t.equal(log.health().state, 'ok');
  t.ok(log.health().usedBytes < 0.5 * 512 * 1024, `retention freed the archived records (${log.health().usedBytes} bytes used)`);
  t.match(log.verify(keys.publicKey), { ok: true });
});
