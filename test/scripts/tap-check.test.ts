// The runner's empty-subtest check (scripts/tap-check.mjs) on tap's real output: a fixture file is run through tap,
// and every subtest that ended without an assertion is named (tap itself counts them as passes), while skipped and
// todo subtests are not; the test and file counts the runner prints beside its closing line come from here too.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/test-cell.js';

const tapBin = join(REPO_ROOT, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs');

t.test('subtests without an assertion are named; skipped and todo ones are not', async (t) => {
  // The fixture runs in a project folder of its own (its node_modules linked to ours): tap clears the coverage of
  // the project it runs in, and this suite's coverage must survive the nested run.
  const dir = mkdtempSync(join(tmpdir(), 'tap-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'tap-check-fixture', private: true, type: 'module' }));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  mkdirSync(join(dir, 'test'));
  copyFileSync(join(REPO_ROOT, 'test', 'scripts', 'fixtures', 'empty-subtests.fixture.ts'), join(dir, 'test', 'empty-subtests.fixture.ts'));
  const report = join(dir, 'run.tap');
  let output = '';
  try {
    output = execFileSync(process.execPath, [tapBin, '--reporter=tap', '--disable-coverage', 'test/empty-subtests.fixture.ts'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, TAP: '0' },
    });
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? '');
  }
  writeFileSync(report, output);
  const lines = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'tap-check.mjs'), report], { encoding: 'utf8' }).trim().split('\n');
  t.same(lines, [
    'empty test/empty-subtests.fixture.ts > returns early without asserting',
    'empty test/empty-subtests.fixture.ts > nests > inner, without asserting',
    'tests 5 files 1',
  ], output);
});
