// Disk full, for real: the audit log on a small tmpfs that a filler file fills up. Ordinary records are refused with
// AUDIT_DISK_FULL, the ballast file is given up so that a safe-state record still goes in, the state is reported, and
// the log recovers by itself once space returns. Needs root (mount), as CI has; it fails, never skips, without it.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { manualClock } from '../helpers/clocks.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';

const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-disk-full-'));
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mountPoint], { stdio: 'pipe' });
} catch (error) {
  // SAFETY: a fault test that cannot set its fault up must fail, or "disk full handled" would be claimed untested.
  throw new Error(`cannot mount a tmpfs for the disk-full test (run the tests as root): ${error instanceof Error ? error.message : String(error)}`);
}
t.teardown(() => {
  execFileSync('umount', [mountPoint]);
  fs.rmSync(mountPoint, { recursive: true, force: true });
});

const entry = (i: number): AuditEntry => ({ kind: 'decision', timeMs: 1_000 + i, commandId: `cmd-${i}`, agentId: 'planner-1', deviceId: 'arm-1', action: 'move_joints', verdict: 'deny', detail: { pad: 'y'.repeat(400) } });

/** Writes filler until the file system refuses (ENOSPC), leaving it full to the byte. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x7a);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    // Byte by byte for the last partial chunk.
    try {
      for (;;) fs.writeSync(fd, chunk, 0, 512);
    } catch {
      // full
    }
  } finally {
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
}

t.test('a full disk refuses ordinary records, lets a safe-state record through on the ballast, and recovers', async (t) => {
  const file = path.join(mountPoint, 'audit.db');
  const clock = manualClock(1_000_000);
  const messages: string[] = [];
  const log = openSqliteAuditLog(file, { ballastBytes: 1024 * 1024, nowMs: clock.nowMs, log: (m) => messages.push(m) });
  t.teardown(() => log.close());
  t.ok(fs.existsSync(`${file}.ballast`), 'the ballast file is made on open');
  for (let i = 1; i <= 20; i++) await log.record(entry(i));

  const filler = path.join(mountPoint, 'filler');
  fill(filler);
  let refused: unknown;
  for (let i = 21; i <= 50_000 && refused === undefined; i++) {
    try {
      await log.record(entry(i));
    } catch (error) {
      refused = error;
    }
  }
  t.match(refused, { code: 'AUDIT_DISK_FULL' }, 'an ordinary record is refused as disk full');
  t.notOk(fs.existsSync(`${file}.ballast`), 'the ballast was given up for room');
  t.match(log.health(), { state: 'disk-full', ballastPresent: false });
  t.ok(messages.some((m) => /disk full .*ballast deleted/.test(m)), 'and reported');
  await t.rejects(log.record(entry(0)), { code: 'AUDIT_DISK_FULL' }, 'ordinary records stay refused');

  const stop = await log.record({ kind: 'decision', timeMs: 2_000, commandId: 'stop-1', action: 'stop', verdict: 'allow' }, { safeState: true });
  t.ok(stop.seq > 20, `the safe-state record is recorded (seq ${stop.seq})`);

  // Space comes back; the next ordinary record (a second later) finds it, restores the ballast and goes in.
  fs.rmSync(filler);
  clock.advance(1_000);
  const after = await log.record(entry(99_999));
  t.equal(after.seq, stop.seq + 1, 'recorded again once space returned');
  t.match(log.health(), { state: 'ok', ballastPresent: true });
  t.ok(messages.some((m) => /space returned/.test(m)));
  t.match(log.verify(), { ok: true, records: after.seq }, 'nothing lost, the chain intact');
});
