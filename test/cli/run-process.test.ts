// `interlock run` as a real process (the CLI compiled to JavaScript, embedded broker, real SQLite files), stopped the
// way a service manager stops it: a clean SIGTERM, even one sent the instant the ready line appears or while the
// process is still starting, exits 0 and the next start keeps the replay memory's epoch; a SIGKILL is reported as
// an unclean stop at the next start. Without Greengrass, aws-crt's native library is never loaded.

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const READY = /\] running; drivers verify releases with /;
const UNCLEAN = /replay memory starts a new epoch .*unclean stop/;
const STARTING = /declarations digest /;

/** Compiles the CLI (and what it imports) once, inside the repository so that its imports resolve to node_modules. */
function buildCli(): { main: string; ipcTransport: string; cleanup: () => void } {
  const outRoot = join(REPO_ROOT, '.tap', `run-process-build-${process.pid}`);
  mkdirSync(outRoot, { recursive: true });
  const tsconfig = join(outRoot, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(REPO_ROOT, 'tsconfig.json'),
      compilerOptions: { outDir: join(outRoot, 'out'), rootDir: REPO_ROOT, sourceMap: false },
      files: [join(REPO_ROOT, 'src', 'cli', 'main.ts'), join(REPO_ROOT, 'src', 'transport', 'greengrass-ipc.ts')],
      include: [],
    }),
  );
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', tsconfig], { stdio: 'pipe' });
  return {
    main: join(outRoot, 'out', 'src', 'cli', 'main.js'),
    ipcTransport: join(outRoot, 'out', 'src', 'transport', 'greengrass-ipc.js'),
    cleanup: () => rmSync(outRoot, { recursive: true, force: true }),
  };
}

interface RunningCli {
  readonly pid: number;
  output(): string;
  exited(): boolean;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function startRun(main: string, cellDir: string, stateDir: string): RunningCli {
  const child = spawn(process.execPath, [main, 'run', '--port', '0', '--cell', cellDir, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let done = false;
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  if (child.pid === undefined) throw new Error('interlock run did not spawn');
  return { pid: child.pid, output: () => text, exited: () => done, exit, kill: (signal) => child.kill(signal) };
}

/** Waits for `line` in the output, failing with the output if the process ends first. */
async function waitForLine(run: RunningCli, line: RegExp, what: string): Promise<void> {
  await waitFor(() => line.test(run.output()) || run.exited(), what, 60_000);
  if (!line.test(run.output())) throw new Error(`interlock run ended before ${what}:\n${run.output()}`);
}

const build = buildCli();
t.teardown(build.cleanup);
const cell = makeTestCell();
t.teardown(() => cell.cleanup());

t.test('clean stops are recognised at the next start; a SIGKILL is reported as unclean', { timeout: 300_000 }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'interlock-run-process-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));

  const first = startRun(build.main, cell.cellDir, stateDir);
  await waitForLine(first, READY, 'the first start was ready');
  t.match(first.output(), /first start or unclean stop/, 'the first start begins an epoch (nothing was stored before)');
  t.notOk(readFileSync(`/proc/${first.pid}/maps`, 'utf8').includes('aws-crt'), 'without Greengrass, aws-crt is not loaded');
  first.kill('SIGTERM');
  t.same(await first.exit, { code: 0, signal: null }, 'first start: SIGTERM exits 0');

  // SIGTERM the instant the ready line appears: the moment a signal used to meet Node's default action.
  for (let i = 1; i <= 5; i++) {
    const run = startRun(build.main, cell.cellDir, stateDir);
    await waitForLine(run, READY, `restart ${i} was ready`);
    run.kill('SIGTERM');
    const exit = await run.exit;
    t.same(exit, { code: 0, signal: null }, `restart ${i}: SIGTERM right after ready exits 0`);
    t.notMatch(run.output(), UNCLEAN, `restart ${i}: the previous clean stop was recognised`);
  }

  // A SIGTERM while still starting: the start completes, then the process stops cleanly.
  const starting = startRun(build.main, cell.cellDir, stateDir);
  await waitForLine(starting, STARTING, 'the start was under way');
  starting.kill('SIGTERM');
  t.same(await starting.exit, { code: 0, signal: null }, 'SIGTERM during start-up exits 0');
  t.match(starting.output(), /stopping: finishing in-flight commands/, 'it stopped through the clean stop');

  const afterStarting = startRun(build.main, cell.cellDir, stateDir);
  await waitForLine(afterStarting, READY, 'the start after a stop during start-up was ready');
  t.notMatch(afterStarting.output(), UNCLEAN, 'a stop during start-up is a clean stop too');
  afterStarting.kill('SIGKILL');
  t.same(await afterStarting.exit, { code: null, signal: 'SIGKILL' }, 'killed with SIGKILL');

  const afterKill = startRun(build.main, cell.cellDir, stateDir);
  await waitForLine(afterKill, READY, 'the start after SIGKILL was ready');
  t.match(afterKill.output(), UNCLEAN, 'after a SIGKILL the next start reports an unclean stop (a new epoch)');
  afterKill.kill('SIGTERM');
  t.same(await afterKill.exit, { code: 0, signal: null }, 'and stops cleanly itself');
});

t.test('the aws-crt check can see aws-crt: loading the Greengrass IPC transport maps it', async (t) => {
  const probe = `await import(${JSON.stringify(build.ipcTransport)}); const { readFileSync } = await import('node:fs'); console.log(readFileSync('/proc/self/maps', 'utf8').includes('aws-crt'));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
  t.equal(out.trim(), 'true', 'aws-crt is mapped once the Greengrass transport is imported');
});
