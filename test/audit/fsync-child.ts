// Child process for the fsync-failure test (run under strace, which fails one fsync): opens the audit log given as
// argv[2], records argv[3] entries one at a time, and prints one JSON line per record: its seq and hash, or the
// error code. It prints the reconcile notices at open, so the test can read what a restart found.

import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';

const [file, countText] = process.argv.slice(2);
if (file === undefined || countText === undefined) throw new Error('usage: fsync-child <db> <count>');
const log = openSqliteAuditLog(file, { ballastBytes: 0 });
for (const notice of log.notices) process.stdout.write(`${JSON.stringify({ notice })}\n`);
for (let i = 1; i <= Number(countText); i++) {
  try {
    const receipt = await log.record({ kind: 'decision', timeMs: 1_000 + i, commandId: `cmd-${i}`, verdict: 'allow' });
    process.stdout.write(`${JSON.stringify({ i, seq: receipt.seq, hash: receipt.hash })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ i, code: (error as { code?: string }).code ?? 'OTHER', message: (error as Error).message })}\n`);
  }
}
log.close();
