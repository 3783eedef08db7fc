// The flood on the running interlock, as on a site without cloud: with a 512 KiB audit cap and a 1 s retention in
// cell.yaml, filler records fill the log until commands are denied with AUDIT_LOG_FULL; `interlock audit archive`,
// run through the CLI's own entry point against the state folder while the interlock runs, archives and acknowledges
// the records; the running interlock's retention then deletes them and the same command is allowed again. The archive
// verifies on its own with the interlock's public key (`interlock audit verify --archive`).

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { main, type MainOutput } from '../../src/cli/main.js';
import { liveInterlock } from '../helpers/live-interlock.js';
import { DEMO_CELL } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);

function captured(): MainOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (text) => out.push(text), stderr: (text) => err.push(text) };
}

t.test('commands denied with AUDIT_LOG_FULL are allowed again after interlock audit archive', async (t) => {
  const original = readFileSync(join(DEMO_CELL, 'cell.yaml'), 'utf8');
  const cellYaml = original.replace('maxSize: { value: 256, unit: MiB }', 'maxSize: { value: 512, unit: KiB }').replace('retention: { value: 90, unit: d }', 'retention: { value: 1, unit: s }');
  t.not(cellYaml, original, 'the cap and the retention were replaced');
  const rig = await liveInterlock(t, { files: { 'cell.yaml': cellYaml } });
  t.equal(rig.audit.health().maxBytes, 512 * 1024);
  let filled = 0;
  let lastFillMs = 0;
  // 20 at a time, then one at a time: the log counts records still waiting for their commit pessimistically, so a
  // refusal with 20 in flight can come while one more record (the command's) would still fit.
  for (const together of [20, 1]) {
    for (;;) {
      const results = await Promise.allSettled(
        Array.from({ length: together }, () => rig.audit.record({ kind: 'event', timeMs: Date.now(), detail: { event: 'filler', pad: 'z'.repeat(500) } })),
      );
      filled += results.filter((r) => r.status === 'fulfilled').length;
      lastFillMs = Date.now();
      if (results.some((r) => r.status === 'rejected')) break;
      if (filled > 10_000) throw new Error('the cap never came');
    }
  }
  t.equal(rig.audit.health().spaceAlarm, true, 'the 80% alarm is on');
  const planner = rig.cell.signer('planner-1');
  const move = (): Promise<DecisionEvent> => rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  const denied = await move();
  t.equal(denied.report.verdict, 'deny');
  t.ok(codes(denied).includes('AUDIT_LOG_FULL'), codes(denied).join(','));

  const outDir = mkdtempSync(join(tmpdir(), 'interlock-archive-out-'));
  t.teardown(() => rmSync(outDir, { recursive: true, force: true }));
  const archived = captured();
  const exit = await main(['audit', 'archive', '--state-dir', rig.stateDirectory, '--out', outDir], archived);
  t.equal(exit, 0, `archive exit 0: ${archived.err.join('')}`);
  t.match(archived.out.join(''), /^archived records 1\.\.\d+ \(checkpoint \d+\) to .*; acknowledged up to \d+; event record \d+/);
  const files = readdirSync(outDir);
  t.equal(files.length, 1, 'one archive file');
  const verified = captured();
  t.equal(await main(['audit', 'verify', '--archive', join(outDir, files[0] ?? ''), '--state-dir', rig.stateDirectory], verified), 0, verified.err.join(''));
  t.match(verified.out.join(''), /^ok: \d+ records, head [0-9a-f]{64}/);

  // Retention deletes acknowledged records older than 1 s: wait until the last filler is that old, then retry.
  await waitFor(() => Date.now() - lastFillMs > 1_500, 'the fillers to pass the 1 s retention');
  const allowed = await move();
  t.equal(allowed.report.verdict, 'allow', `allowed again: ${codes(allowed).join(',')}`);
  t.equal(allowed.released, true);
  t.equal(rig.audit.health().state, 'ok');
  t.match(rig.audit.verify(), { ok: true }, 'the chain, with the archive event and the retention record, verifies');
});
