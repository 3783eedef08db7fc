// Rate windows rebuilt at start from the audit log's recent decision records (a real SQLite audit log in a temp
// folder): exactly the decisions that were counted when they were made fill the windows; when the records inside the
// window are not all there (a new segment after a damaged file, records gone, unreadable), every window starts full.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { AuditEntry, AuditRecord } from '../../src/audit/audit-log.js';
import { recentDecisions, type AuditReading } from '../../src/audit/recent-decisions.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { deviceRateKey, RateMemory, rebuildRateWindows } from '../../src/bounds/rate-limits.js';
import { reason } from '../../src/core/reasons.js';
import { loaded } from '../bounds/process-unit/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'recent-decisions-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const declarations = loaded.declarations;
const NOW = 1_700_000_000_000;
const CONVEYOR_LIMIT = { commands: 10, perMs: 1000 };

function decision(timeMs: number, fields: Partial<AuditEntry> = {}): AuditEntry {
  return { kind: 'decision', timeMs, agentId: 'planner-1', deviceId: 'conveyor-1', action: 'set_speed', verdict: 'allow', reasons: [], ...fields };
}

/** How many commands the conveyor's window holds after a rebuild (the next count minus this one). */
function heldAfter(rates: RateMemory): number {
  return rates.count(deviceRateKey('conveyor-1'), CONVEYOR_LIMIT, NOW) - 1;
}

t.test('the decisions counted when they were made fill the windows again; nothing else does', async (t) => {
  const log = openSqliteAuditLog(join(dir, 'counted.db'));
  t.teardown(() => log.close());
  const entries: AuditEntry[] = [
    decision(NOW - 5000), // outside the 1 s window
    decision(NOW - 900),
    decision(NOW - 800, { verdict: 'deny', reasons: [reason('BOUNDS_CONVEYOR_SPEED', 'too fast')] }), // denied in bounds: counted
    decision(NOW - 700, { verdict: 'hold', reasons: [reason('POLICY_APPROVAL_REQUIRED', 'scope 2')] }),
    decision(NOW - 600, { reasons: [reason('SAFE_STATE_COMMAND', 'stop')], action: 'stop' }), // never counted
    decision(NOW - 500, { verdict: 'deny', reasons: [reason('ENVELOPE_EXPIRED', 'expired')] }), // stopped before the count
    decision(NOW - 400, { verdict: 'deny', reasons: [reason('COMMAND_INVALID_PARAMS', 'params')] }),
    { kind: 'decision', timeMs: NOW - 300, deviceId: 'conveyor-1', verdict: 'deny', reasons: [reason('ENVELOPE_BAD_SIGNATURE', 'bad')] }, // nobody authenticated
    { kind: 'event', timeMs: NOW - 200, detail: { event: 'interlock-stopped' } },
    decision(NOW - 100, { agentId: 'trainee-1' }),
    decision(NOW, { deviceId: 'pump-1' }), // another device's window
  ];
  for (const entry of entries) await log.record(entry);
  const recent = recentDecisions(log, NOW - 1000);
  t.equal(recent.complete, true);
  const rates = new RateMemory();
  const notes = rebuildRateWindows(rates, recent, declarations, NOW);
  t.equal(heldAfter(rates), 4, 'four counted decisions on the conveyor in the last second');
  t.equal(rates.count(deviceRateKey('pump-1'), { commands: 10, perMs: 1000 }, NOW) - 1, 1, 'one on the pump');
  t.match(notes, [/rebuilt from 5 recorded decision/]);
});

t.test('an empty log rebuilds empty windows', async (t) => {
  const log = openSqliteAuditLog(join(dir, 'empty.db'));
  t.teardown(() => log.close());
  const rates = new RateMemory();
  t.same(rebuildRateWindows(rates, recentDecisions(log, NOW - 1000), declarations, NOW), []);
  t.equal(heldAfter(rates), 0);
});

t.test('a window that reaches into a new segment, past the records kept, or into an unreadable record starts full', async (t) => {
  const segmented = openSqliteAuditLog(join(dir, 'segment.db'));
  t.teardown(() => segmented.close());
  await segmented.record(decision(NOW - 200));
  await segmented.record({ kind: 'event', timeMs: NOW - 100, detail: { event: 'audit-segment-started', previousFile: 'audit.db.damaged' } });
  const record = (seq: number): AuditRecord => ({ ...decision(NOW - 10), seq, prevHash: '', hash: '' });
  const cut: AuditReading = {
    head: () => ({ seq: 50, hash: '' }),
    // Records 1..40 were deleted: only 41..50 remain, all inside the window.
    read: (fromSeq, limit) => Array.from({ length: limit }, (_, i) => fromSeq + i).filter((seq) => seq > 40 && seq <= 50).map(record),
  };
  const unreadable: AuditReading = {
    head: () => ({ seq: 3, hash: '' }),
    read: () => {
      throw new Error('record 2: body is not JSON');
    },
  };
  for (const [name, reading, why] of [
    ['new segment', segmented, /new audit segment started at record 2/],
    ['records gone', cut, /keeps no records before 41/],
    ['unreadable', unreadable, /cannot be read: record 2: body is not JSON/],
  ] as const) {
    const recent = recentDecisions(reading, NOW - 1000);
    t.match(recent, { complete: false, why }, `${name}: incomplete, saying why`);
    const rates = new RateMemory();
    t.match(rebuildRateWindows(rates, recent, declarations, NOW), [/start full/], `${name}: the windows start full`);
    t.equal(heldAfter(rates), 10, `${name}: the conveyor's next command is over its limit`);
    t.equal(rates.count(deviceRateKey('conveyor-1'), CONVEYOR_LIMIT, NOW + 1000) - 1, 0, `${name}: until its window has passed`);
  }
});
