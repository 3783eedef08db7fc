// (c) The interlock is SIGKILLed in the middle of an audit drain (a child process, as the crash tests run it): after a
// restart on the same state folder the drain resumes from the persisted cursor, the receiver on a real mosquitto ends
// holding every record exactly once and gapless, the cursor equals its watermark, and the device's chain verifies.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startRuntime } from '../../src/app/compose.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { silentLogger } from '../../src/core/log.js';
import { cloudPeer } from '../helpers/audit-forwarding.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const THING = 'crash-cell';
const BACKLOG = 3_000;
const here = dirname(fileURLToPath(import.meta.url));
const loader = join(REPO_ROOT, 'node_modules/@tapjs/typescript/dist/esm/import.mjs');

interface Status {
  readonly head: { seq: number; hash: string };
  readonly acknowledgedSeq: number;
}

function startChild(args: readonly string[]): { child: ChildProcess; ready: Promise<void>; latest: () => Status | undefined; exited: Promise<void> } {
  const child = fork(join(here, 'forward-child.ts'), [...args], { execArgv: [`--import=${loader}`], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let latest: Status | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type: string } & Status) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'status') latest = m;
    });
    child.once('exit', (code, signal) => reject(new Error(`child exited before ready (${code ?? signal}): ${stderr}`)));
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, ready, latest: () => latest, exited };
}

t.test('(c) SIGKILL mid-drain: the drain resumes after restart and nothing is lost', async (t) => {
  const cell = makeTestCell();
  const stateDirectory = mkdtempSync(join(tmpdir(), 'forward-crash-'));
  t.teardown(() => {
    cell.cleanup();
    rmSync(stateDirectory, { recursive: true, force: true });
  });
  // A backlog written by the interlock itself while no cloud link was configured.
  const offline = await startRuntime({ cellDirectory: cell.cellDir, stateDirectory, embeddedPort: 0, heartbeatPeriodMs: 0, log: silentLogger });
  await Promise.all(Array.from({ length: BACKLOG }, (_, i) => offline.audit.record({ kind: 'event', timeMs: Date.now(), detail: { event: 'test-backlog', i } })));
  await offline.stop();

  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const cloud = await startRuntimeKey(stateDirectory);
  const peer = await cloudPeer(t, broker.url, new Map([[THING, cloud]]));
  // 300 records/s: the 3,000-record backlog takes about 10 s, so the kill lands mid-drain on a loaded machine too.
  const args = [cell.cellDir, stateDirectory, broker.url, THING, '300'];

  const first = startChild(args);
  t.teardown(() => void first.child.kill('SIGKILL'));
  await first.ready;
  await waitFor(() => peer.store.count(THING) >= 500, 'part of the backlog to reach the receiver', 60_000, 5);
  first.child.kill('SIGKILL');
  await first.exited;
  const atKill = peer.store.count(THING);
  t.ok(atKill < BACKLOG, `killed mid-drain: the receiver held ${atKill} records`);

  const second = startChild(args);
  t.teardown(() => void second.child.kill('SIGKILL'));
  await second.ready;
  await waitFor(
    () => peer.store.count(THING) >= BACKLOG && second.latest()?.acknowledgedSeq === second.latest()?.head.seq,
    'the drain to resume and the cursor to reach the head',
    60_000,
    20,
  );
  second.child.send({ type: 'stop' });
  await second.exited;

  // The log as the interlock left it (its stop record may have been written after the last watermark: it goes next start).
  const log = openSqliteAuditLog(join(stateDirectory, 'audit.db'), { onCorruption: 'refuse', ballastBytes: 0 });
  t.teardown(() => log.close());
  const cursor = log.acknowledgedSeq();
  const mark = await peer.receiver.watermark(THING);
  t.ok(cursor >= BACKLOG, `the cursor passed the backlog (${cursor})`);
  t.ok(mark !== undefined && mark.seq >= cursor && mark.hash === log.read(mark.seq, 1)[0]?.hash, 'the receiver watermark is at or past the cursor, on our record');
  const held = peer.store.records(THING);
  t.equal(held.length, mark?.seq, 'the receiver holds every record up to its watermark');
  t.ok(held.every((r, i) => r.seq === i + 1), 'each seq once, no gap');
  t.ok(held.every((r) => log.read(r.seq, 1)[0]?.hash === r.hash), 'every held record is the device record');
  const verified = log.verify();
  t.ok(verified.ok, `the device chain verifies${verified.ok ? '' : `: ${verified.problem}`}`);
});

/** The interlock's public key, as its state folder holds it. */
async function startRuntimeKey(stateDirectory: string) {
  const { readFileSync } = await import('node:fs');
  const { ed25519PublicKeyFromPem } = await import('../../src/crypto/jws.js');
  return ed25519PublicKeyFromPem(readFileSync(join(stateDirectory, 'keys', 'interlock.pub.pem'), 'utf8'));
}
