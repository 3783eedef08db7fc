// `interlock audit archive` and `interlock audit verify --archive` through the CLI entry point: usage errors (exit 2)
// name the option, an archive with no covering checkpoint is exit 1 and says why, an archive verifies with the state
// folder's key or --key, fails with another key, and an archive without any public key is never reported ok.

import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { main, type MainOutput } from '../../src/cli/main.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';

function captured(): MainOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (text) => out.push(text), stderr: (text) => err.push(text) };
}

const keys = generateEd25519KeyPair();
const other = generateEd25519KeyPair();

async function stateDir(records: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-archive-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'keys'));
  writeFileSync(join(dir, 'keys', 'interlock.pub.pem'), keys.publicKeyPem);
  const log = openSqliteAuditLog(join(dir, 'audit.db'), { ballastBytes: 0, checkpoints: { privateKey: keys.privateKey, origin: 'cell-a', everyRecords: 10, setTimer: () => () => {} } });
  for (let i = 1; i <= records; i++) await log.record({ kind: 'decision', timeMs: 1_000 + i, commandId: `c-${i}`, verdict: 'allow' });
  // Open while archiving: as with a running interlock (close would write a final checkpoint).
  t.teardown(() => log.close());
  return dir;
}

t.test('usage errors name the option', async (t) => {
  const dir = await stateDir(0);
  const run = async (...args: string[]): Promise<{ code: number; err: string }> => {
    const io = captured();
    const code = await main(['audit', ...args, '--state-dir', dir], io);
    return { code, err: io.err.join('') };
  };
  t.match(await run('archive'), { code: 2, err: /audit archive needs --out/ });
  t.match(await run('archive', '--out', dir, '--upto', 'ten'), { code: 2, err: /--upto must be a record seq/ });
  t.match(await run('archive', '--out', dir, '--json'), { code: 2, err: /--json does not apply to audit archive/ });
  t.match(await run('archive', 'extra', '--out', dir), { code: 2, err: /takes no arguments/ });
  t.match(await run('export', '--out', dir), { code: 2, err: /--out and --upto apply to audit archive only/ });
  t.match(await run('tail', '--archive', 'x.jsonl'), { code: 2, err: /--archive applies to audit verify only/ });
});

t.test('archive, then verify it with the state folder key, --key, and a wrong key', async (t) => {
  const dir = await stateDir(15);
  const out = mkdtempSync(join(tmpdir(), 'interlock-archive-cli-out-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const io = captured();
  t.equal(await main(['audit', 'archive', '--state-dir', dir, '--out', out, '--upto', '12'], io), 0, io.err.join(''));
  t.match(io.out.join(''), /archived records 1\.\.10 \(checkpoint 1\) to .*audit-000000000001-000000000010\.jsonl; acknowledged up to 10; event record 16/);
  const file = join(out, readdirSync(out)[0] ?? '');
  const again = captured();
  t.equal(await main(['audit', 'archive', '--state-dir', dir, '--out', out], again), 1, 'nothing more is covered');
  t.match(again.err.join(''), /no signed checkpoint covers any unacknowledged record \(first unacknowledged: 11/);

  const verify = async (...extra: string[]): Promise<{ code: number; out: string; err: string }> => {
    const v = captured();
    const code = await main(['audit', 'verify', '--archive', file, ...extra], v);
    return { code, out: v.out.join(''), err: v.err.join('') };
  };
  t.match(await verify('--state-dir', dir), { code: 0, out: /^ok: 10 records, head [0-9a-f]{64}/ });
  const keyFile = join(out, 'interlock.pub.pem');
  writeFileSync(keyFile, keys.publicKeyPem);
  t.match(await verify('--key', keyFile, '--state-dir', out), { code: 0, out: /^ok: 10 records/ });
  const otherKey = join(out, 'other.pub.pem');
  writeFileSync(otherKey, other.publicKeyPem);
  t.match(await verify('--key', otherKey), { code: 1, out: /^broken at seq 10: checkpoint 1: signature does not verify/ });
  t.match(await verify('--state-dir', join(out, 'nowhere')), { code: 1, err: /needs the interlock's public key/ }, 'no key: never ok');
  t.match(await verify('--key', join(out, 'missing.pem')), { code: 1, err: /--key .*missing\.pem: no such file/ });
  writeFileSync(file, readFileSync(file, 'utf8').replace('c-3', 'c-X'));
  t.match(await verify('--state-dir', dir), { code: 1, out: /^broken at seq 3: hash does not match its body/ });
});
