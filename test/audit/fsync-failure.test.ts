// An fsync that fails, for real: a child process records into the audit log under strace, which makes the Nth
// fsync of the WAL file return EIO. The record whose commit that was rejects as AUDIT_OUTCOME_UNKNOWN, every record
// after it is refused, and after a restart the log says in its own chain which attempted records are on disk and
// that none was released; no acknowledged record is lost and the chain verifies. Needs strace (root, as CI has);
// it fails, never skips, without it.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const child = path.join(here, 'fsync-child.ts');
const loader = path.join(repo, 'node_modules/@tapjs/typescript/dist/esm/import.mjs');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-fsync-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

try {
  execFileSync('strace', ['-qq', '-e', 'trace=none', 'true'], { stdio: 'pipe' });
} catch (error) {
  // SAFETY: a fault test that cannot set its fault up must fail, or "fsync failure handled" would be claimed untested.
  throw new Error(`strace cannot trace here (install it: apt-get install -y strace; run as root): ${error instanceof Error ? error.message : String(error)}`);
}

type Line = { i?: number; seq?: number; hash?: string; code?: string; notice?: string };

function runChild(file: string, count: number, failWalFsyncAt?: number): Line[] {
  const node = [process.execPath, `--import=${loader}`, child, file, String(count)];
  const argv =
    failWalFsyncAt === undefined
      ? node
      : ['strace', '-f', '-qq', '-o', '/dev/null', '-P', `${file}-wal`, '-e', 'trace=fsync,fdatasync', '-e', `inject=fsync,fdatasync:error=EIO:when=${failWalFsyncAt}`, ...node];
  const [command, ...args] = argv as [string, ...string[]];
  const out = execFileSync(command, args, { encoding: 'utf8', cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
}

// The 2nd to 5th fsync of the WAL: the first commit after a WAL reset syncs twice, so these hit several records.
for (const at of [2, 3, 4, 5]) {
  t.test(`fsync ${at} of the WAL fails`, async (t) => {
    const file = path.join(dir, `audit-${at}.db`);
    const before = runChild(file, 2);
    t.same(before.map((l) => l.seq), [1, 2], 'two records written normally first');
    const lines = runChild(file, 6, at);
    const failed = lines.findIndex((l) => l.code !== undefined);
    t.ok(failed >= 0, `a commit failed: ${JSON.stringify(lines)}`);
    const acknowledged = [...before, ...lines.slice(0, failed)];
    t.equal(lines[failed]?.code, 'AUDIT_OUTCOME_UNKNOWN', 'the failed commit is an unknown outcome, not a plain error');
    t.ok(lines.slice(failed + 1).every((l) => l.code === 'AUDIT_UNAVAILABLE'), 'every record after it is refused');
    t.ok(fs.existsSync(`${file}.unknown-outcome.json`), 'the attempt is remembered beside the database');

    // Restart: the reconcile notice, then normal writing again.
    const after = runChild(file, 1);
    t.match(after[0]?.notice, /reconciled a failed commit/);
    const log = openSqliteAuditLog(file, { ballastBytes: 0 });
    t.teardown(() => log.close());
    const records = log.read(0, 100);
    for (const a of acknowledged) t.equal(records.find((r) => r.seq === a.seq)?.hash, a.hash, `acknowledged record ${a.seq} is there, unchanged`);
    const reconcile = records.find((r) => r.detail?.['event'] === 'audit-reconciled');
    const attemptedSeq = (acknowledged.at(-1)?.seq ?? 0) + 1;
    const named = [...((reconcile?.detail?.['present'] as number[]) ?? []), ...((reconcile?.detail?.['absent'] as number[]) ?? [])];
    t.same(named, [attemptedSeq], `the reconcile record names the attempted record ${attemptedSeq}`);
    t.match(reconcile?.detail, { note: /none of them was released/ });
    t.match(log.verify(), { ok: true }, 'the chain verifies');
    t.notOk(fs.existsSync(`${file}.unknown-outcome.json`));
  });
}
