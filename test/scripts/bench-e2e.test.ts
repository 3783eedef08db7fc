// The end-to-end bench section as a smoke test: compiled into a checkout of its own, run alone with --quick at one
// low load against the embedded broker (`interlock run` in its own process), it must report a complete row for each
// path: numbers present, nothing lost at 20/s, every decision an allow, the floor's parts and the interlock's memory
// and ready time. No figure is compared with a limit here: speed is the bench's to report, not a test's to assert.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { EndToEndResults } from '../../scripts/bench-e2e.js';
import { REPO_ROOT } from '../helpers/test-cell.js';

// A compile of the project and two interlock starts on a busy 2-core machine.
t.setTimeout(300_000);

t.test('bench-e2e --quick at 20/s on the embedded broker reports a complete row per path, all allowed, none lost', async (t) => {
  // Laid out as a checkout (dist/, safety-bounds/, node_modules/, an ESM package.json), so the repository's own dist/
  // is never touched and the bench finds what it reads as it would after `npm run build`.
  const dir = mkdtempSync(join(tmpdir(), 'interlock-bench-e2e-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bench-e2e-test', private: true, type: 'module' }));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  symlinkSync(join(REPO_ROOT, 'safety-bounds'), join(dir, 'safety-bounds'), 'dir');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { stdio: 'pipe' });

  const jsonPath = join(dir, 'e2e.json');
  const printed = execFileSync(process.execPath, [join(dir, 'dist', 'scripts', 'bench-e2e.js'), '--quick', '--loads', '20', '--brokers', 'embedded', '--conveyors', '4', '--json', jsonPath], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 240_000,
  });
  const results = JSON.parse(readFileSync(jsonPath, 'utf8')) as EndToEndResults;
  t.equal(results.format, 'interlock-bench-e2e/1');
  t.equal(results.quick, true);
  t.same(results.brokers.map((b) => b.broker), ['embedded']);
  const broker = results.brokers[0];
  if (broker === undefined) return t.fail('no broker result');
  t.same(broker.rows.map((r) => [r.loadPerS, r.path]), [[20, 'direct'], [20, 'interlock']], 'one row per path at the one load');
  for (const r of broker.rows) {
    t.ok(r.sent > 0 && r.received === r.sent && r.lost === 0, `${r.path}: every command arrived (${r.received}/${r.sent})`);
    for (const figure of [r.p50Ms, r.p99Ms, r.maxMs]) t.type(figure, 'number', `${r.path}: latency figures present`);
    t.ok(r.achievedPerS > 0, `${r.path}: an achieved rate`);
  }
  const through = broker.rows[1];
  t.same(through?.decisions, { allow: through?.sent, other: 0, missing: 0, otherCodes: {} }, 'every decision through the interlock was an allow');
  t.type(through?.addedP99Ms, 'number', 'added p99 against the direct path');
  t.type(through?.timesFloor, 'number', 'and its ratio to the floor');
  t.ok((through?.rssMiB ?? 0) > 0 && (through?.hwmMiB ?? 0) > 0, 'the interlock process memory, from /proc');
  for (const part of [broker.floor.hopMs, broker.floor.fsyncMs, broker.floor.verifyMs, broker.floor.totalMs]) t.type(part, 'number', 'floor part measured');
  t.ok(broker.readyMs.length >= 1 && broker.readyMs.every((ms) => ms > 0), 'time from spawn to ready');
  t.same(broker.targets.map((target) => target.met === null), [true, true, false, false], 'targets at loads not offered are "not measured", memory and ready time are judged');
  t.match(printed, /\| 20 \| interlock \| [\d.]+ ms \| [\d.]+ ms \|/, 'the table row is printed');
});
