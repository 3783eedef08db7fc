// Start-up and memory of the real `interlock run` (embedded broker, a keyed copy of the demo cell), measured from
// outside as an operator would feel it: time from spawn to the ready line, resident memory once ready and after a
// spell of idling, whether aws-crt's native binary was mapped, and optionally a --cpu-prof summary of where start-up
// spends its time. Runnable alone (`node dist/scripts/bench-startup.js [--runs 5] [--idle 5s] [--profile]`) and
// from the bench through benchStartup(). It never leaves a child running: every child is stopped with SIGTERM.

import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ensureCellAgentKeys, ensureCellDriverKeys } from '../src/keys/cell-agent-keys.js';

const here = dirname(fileURLToPath(import.meta.url));
const inDist = here.split(/[\\/]/).includes('dist');
const root = resolve(here, inDist ? '../..' : '..');
/** The built CLI: start-up is measured on what ships, not on TypeScript transpiled on the fly. */
const CLI = join(root, 'dist', 'src', 'cli', 'main.js');
/** What `interlock run` logs once it takes commands (and its stop signal handler is in place). */
export const READY_LINE = /\] running; drivers verify releases with /;
const UNCLEAN_LINE = /replay memory starts a new epoch .*unclean stop/;

export interface StartupRun {
  readonly readyMs: number;
  readonly rssReadyMiB: number;
  readonly rssIdleMiB: number;
  /** Peak resident memory (VmHWM) by the end of the idle spell. */
  readonly hwmMiB: number;
  readonly awsCrtMapped: boolean;
  readonly exitCode: number | null;
  readonly reportedUnclean: boolean;
}

export interface StartupProfileEntry {
  /** A package (node_modules/NAME), a source folder of ours (src/NAME), node's own code, or a V8 bucket. */
  readonly group: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface StartupFigures {
  readonly runs: readonly StartupRun[];
  readonly idleMs: number;
  /** Self time by module group over one profiled start (spawn to ready and the stop), largest first. */
  readonly profile: readonly StartupProfileEntry[] | undefined;
  readonly profiledReadyMs: number | undefined;
}

export interface StartupOptions {
  readonly runs?: number;
  readonly idleMs?: number;
  readonly profile?: boolean;
}

function mib(kb: number): number {
  return kb / 1024;
}

function memory(pid: number): { rssKb: number; hwmKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

function awsCrtMapped(pid: number): boolean {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('aws-crt');
}

interface Child {
  readonly pid: number;
  readonly ready: Promise<number>;
  readonly exited: Promise<number | null>;
  output(): string;
  stop(): void;
}

function startCli(args: readonly string[], nodeArgs: readonly string[]): Child {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let resolveReady: (ms: number) => void = () => undefined;
  let rejectReady: (error: Error) => void = () => undefined;
  const ready = new Promise<number>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  const onData = (chunk: Buffer): void => {
    const before = text;
    text += chunk.toString('utf8');
    if (!READY_LINE.test(before) && READY_LINE.test(text)) resolveReady(performance.now() - spawnedAt);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  void exited.then((code) => rejectReady(new Error(`interlock run exited (${code}) before it was ready:\n${text}`)));
  if (child.pid === undefined) throw new Error('could not spawn the interlock');
  return { pid: child.pid, ready, exited, output: () => text, stop: () => child.kill('SIGTERM') };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Self time per module group from a .cpuprofile (V8's sampled call tree). */
export function summariseProfile(path: string): StartupProfileEntry[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: { id: number; callFrame: { url: string; functionName: string } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const groupOf = new Map<number, string>();
  for (const node of profile.nodes) groupOf.set(node.id, moduleGroup(node.callFrame.url, node.callFrame.functionName));
  const selfUs = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    // A sample's time is the delta to the next sample.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const group = groupOf.get(id) ?? '(unknown)';
    selfUs.set(group, (selfUs.get(group) ?? 0) + dt);
    total += dt;
  });
  return [...selfUs]
    .map(([group, us]) => ({ group, selfMs: us / 1000, share: total > 0 ? us / total : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs);
}

function moduleGroup(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf(`${sep}node_modules${sep}`);
  if (modules >= 0) {
    const parts = path.slice(modules + '/node_modules/'.length).split(sep);
    return `node_modules/${parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '')}`;
  }
  const src = path.indexOf(`${sep}src${sep}`);
  if (src >= 0) return `src/${path.slice(src + 5).split(sep)[0] ?? ''}`;
  return path;
}

async function oneRun(args: readonly string[], idleMs: number): Promise<StartupRun> {
  const child = startCli(args, []);
  try {
    const readyMs = await child.ready;
    const atReady = memory(child.pid);
    await delay(idleMs);
    const idle = memory(child.pid);
    const crt = awsCrtMapped(child.pid);
    child.stop();
    const exitCode = await child.exited;
    return {
      readyMs,
      rssReadyMiB: mib(atReady.rssKb),
      rssIdleMiB: mib(idle.rssKb),
      hwmMiB: mib(idle.hwmKb),
      awsCrtMapped: crt,
      exitCode,
      reportedUnclean: UNCLEAN_LINE.test(child.output()),
    };
  } finally {
    child.stop();
  }
}

async function profiledRun(args: readonly string[], folder: string): Promise<{ readyMs: number; profile: StartupProfileEntry[] }> {
  const dir = join(folder, 'profile');
  const child = startCli(args, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '200']);
  let readyMs: number;
  try {
    readyMs = await child.ready;
  } finally {
    child.stop();
  }
  await child.exited;
  const code = await child.exited;
  if (!existsSync(dir)) throw new Error(`no CPU profile (exit ${code}):\n${child.output()}`);
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no CPU profile written in ${dir}`);
  return { readyMs, profile: summariseProfile(join(dir, file)) };
}

/** Starts `interlock run` `runs` times on the same state folder (after one unmeasured first start) and measures it. */
export async function benchStartup(options: StartupOptions = {}): Promise<StartupFigures> {
  const runs = options.runs ?? 5;
  const idleMs = options.idleMs ?? 5000;
  const folder = mkdtempSync(join(tmpdir(), 'interlock-startup-'));
  try {
    const cellDir = join(folder, 'cell');
    cpSync(join(root, 'safety-bounds', 'demo-cell'), cellDir, { recursive: true, filter: (src) => !src.includes(`demo-cell${sep}keys`) });
    ensureCellAgentKeys(cellDir, join(folder, 'private'));
    ensureCellDriverKeys(cellDir, join(folder, 'private'));
    const args = ['run', '--port', '0', '--cell', cellDir, '--state-dir', join(folder, 'state')];
    // The first start makes the keys, databases and broker passwords; restarts are what is measured.
    await oneRun(args, 0);
    const results: StartupRun[] = [];
    for (let i = 0; i < runs; i++) results.push(await oneRun(args, idleMs));
    const profiled = options.profile === true ? await profiledRun(args, folder) : undefined;
    return { runs: results, idleMs, profile: profiled?.profile, profiledReadyMs: profiled?.readyMs };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function range(values: readonly number[], digits = 0): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo.toFixed(digits) === hi.toFixed(digits) ? lo.toFixed(digits) : `${lo.toFixed(digits)}-${hi.toFixed(digits)}`;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export function printStartup(figures: StartupFigures): void {
  const { runs } = figures;
  console.log(`\ninterlock run (embedded broker, demo cell), ${runs.length} restarts on one state folder:`);
  console.log(`  spawn to ready           ${range(runs.map((r) => r.readyMs))} ms (median ${median(runs.map((r) => r.readyMs)).toFixed(0)}; target < 1000)`);
  console.log(`  resident memory, ready   ${range(runs.map((r) => r.rssReadyMiB))} MiB`);
  console.log(`  after ${(figures.idleMs / 1000).toFixed(0)} s idle          ${range(runs.map((r) => r.rssIdleMiB))} MiB (peak ${range(runs.map((r) => r.hwmMiB))} MiB; target < 150)`);
  console.log(`  aws-crt mapped           ${runs.filter((r) => r.awsCrtMapped).length} of ${runs.length} runs`);
  console.log(`  clean stops (exit 0)     ${runs.filter((r) => r.exitCode === 0).length} of ${runs.length}; restarts reported unclean: ${runs.filter((r) => r.reportedUnclean).length}`);
  if (figures.profile !== undefined) {
    console.log(`  start-up profile (one run, ready after ${figures.profiledReadyMs?.toFixed(0) ?? '?'} ms under the profiler), self time:`);
    for (const entry of figures.profile.slice(0, 12)) console.log(`    ${entry.group.padEnd(40)} ${entry.selfMs.toFixed(0).padStart(5)} ms ${(entry.share * 100).toFixed(0).padStart(3)}%`);
  }
}

const invokedAs = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAs) {
  const argv = process.argv.slice(2);
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const idle = value('--idle');
  const figures = await benchStartup({
    runs: Number(value('--runs') ?? 5),
    idleMs: idle === undefined ? 5000 : Number(/^(\d+(?:\.\d+)?)s?$/.exec(idle)?.[1] ?? 5) * 1000,
    profile: argv.includes('--profile'),
  });
  printStartup(figures);
}
