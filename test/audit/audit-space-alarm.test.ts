// The 80% space alarm of the SQLite audit log, with a small cap: crossing 80% of maxBytes records exactly one
// `audit-space-high` event (used and cap bytes) and one warning, health() says so, more records above 80% add no
// more events, falling below 70% (after acknowledgement and retention) re-arms it, and the next crossing records a
// second event. Real SQLite files in a temp dir.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { AuditEntry, AuditRecord } from '../../src/audit/audit-log.js';
import { openSqliteAuditLog, type SqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { manualClock } from '../helpers/clocks.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-space-alarm-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const DAY_MS = 86_400_000;
const CAP = 512 * 1024;

function entry(i: number, timeMs: number): AuditEntry {
  return { kind: 'decision', timeMs, commandId: `cmd-${i}`, verdict: 'allow', detail: { padding: 'x'.repeat(400) } };
}

function alarms(log: SqliteAuditLog): AuditRecord[] {
  const all: AuditRecord[] = [];
  for (let from = 0; ; ) {
    const page = log.read(from, 500);
    all.push(...page);
    if (page.length < 500) break;
    from = (page[page.length - 1]?.seq ?? 0) + 1;
  }
  return all.filter((r) => r.kind === 'event' && r.detail?.['event'] === 'audit-space-high');
}

/** Records until health() says the alarm is on; returns how many it took. Fails the test if the cap comes first. */
async function fillUntilAlarm(t: Test, log: SqliteAuditLog, start: number, timeMs: number): Promise<number> {
  let i = start;
  while (!log.health().spaceAlarm) {
    if (i - start > 5_000) throw new Error('no alarm after 5,000 records');
    await log.record(entry(i, timeMs));
    i += 1;
  }
  t.pass(`alarm on after ${i - start} records`);
  return i;
}

t.test('one audit-space-high event and one warning per crossing of 80% of the cap, re-armed below 70%', async (t) => {
  const clock = manualClock(DAY_MS);
  const warnings: string[] = [];
  const log = openSqliteAuditLog(path.join(dir, 'alarm.db'), {
    maxBytes: CAP,
    reserveBytes: 16 * 1024,
    ballastBytes: 0,
    retentionMs: DAY_MS,
    nowMs: clock.nowMs,
    warn: (msg) => warnings.push(msg),
  });
  t.teardown(() => log.close());
  t.match(log.health(), { spaceAlarm: false, maxBytes: CAP });
  let next = await fillUntilAlarm(t, log, 1, DAY_MS);
  const health = log.health();
  t.ok(health.usedBytes >= 0.8 * CAP, `health shows ${health.usedBytes} bytes used, at least 80% of ${CAP}`);
  t.ok(health.usedFraction !== undefined && health.usedFraction >= 0.8, `usedFraction ${String(health.usedFraction)}`);
  // The event is queued by the commit that crossed; one more record flushes it for sure.
  await log.record(entry(next++, DAY_MS));
  const first = alarms(log);
  t.equal(first.length, 1, 'one event');
  t.match(first[0], { detail: { event: 'audit-space-high', maxBytes: CAP } });
  t.ok(Number(first[0]?.detail?.['usedBytes']) >= 0.8 * CAP, 'the event carries the used bytes');
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0], /of 524288 bytes used \(8\d%|9\d% of the cap\).*interlock audit archive/);
  for (let k = 0; k < 30; k++) await log.record(entry(next++, DAY_MS));
  t.equal(alarms(log).length, 1, 'still one event after more records above 80%');
  t.equal(warnings.length, 1, 'still one warning');

  // Everything acknowledged and old enough: retention frees the pages, the use falls below 70%, the alarm re-arms.
  log.acknowledge(log.head().seq);
  clock.set(3 * DAY_MS);
  t.ok(log.applyRetention().deleted > 0, 'retention deleted records');
  t.ok((log.health().usedFraction ?? 1) < 0.7, `below 70% after retention (${String(log.health().usedFraction)})`);
  t.equal(log.health().spaceAlarm, false, 'the alarm is off');
  next = await fillUntilAlarm(t, log, next, 3 * DAY_MS);
  await log.record(entry(next++, 3 * DAY_MS));
  const second = alarms(log);
  t.equal(second.length, 1, 'the first event was deleted by retention with its records; the second crossing recorded one');
  t.ok((second[0]?.seq ?? 0) > (first[0]?.seq ?? Infinity), 'a new event, after the first');
  t.equal(warnings.length, 2, 'a second warning for the second crossing');
  t.match(log.verify(), { ok: true });
});

t.test('no cap: no fraction, never an alarm', async (t) => {
  const log = openSqliteAuditLog(path.join(dir, 'uncapped.db'), { ballastBytes: 0 });
  t.teardown(() => log.close());
  for (let i = 1; i <= 50; i++) await log.record(entry(i, 1_000));
  t.match(log.health(), { usedFraction: undefined, spaceAlarm: false });
});
