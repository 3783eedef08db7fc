// The runner's empty-subtest check (scripts/tap-check.mjs) on tap's real output: a fixture file is run through tap,
// and every subtest that ended without an assertion is named (tap itself counts them as passes), while skipped and
// todo subtests are not; the test and file counts the runner prints beside its closing line come from here too.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/test-cell.js';

const tapBin = join(REPO_ROOT, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs');

t.test('subtests without an assertion are named; skipped and todo ones are not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tap-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const report = join(dir, 'run.tap');
  let output = '';
  try {
    output = execFileSync(process.execPath, [tapBin, '--reporter=tap', '--disable-coverage', 'test/scripts/fixtures/empty-subtests.fixture.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, TAP: '0' },
    });
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? '');
  }
  writeFileSync(report, output);
  const lines = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'tap-check.mjs'), report], { encoding: 'utf8' }).trim().split('\n');
  t.same(lines, [
    'empty test/scripts/fixtures/empty-subtests.fixture.ts > returns early without asserting',
    'empty test/scripts/fixtures/empty-subtests.fixture.ts > nests > inner, without asserting',
    'tests 5 files 1',
  ]);
});
