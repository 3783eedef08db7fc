// The processes the end-to-end bench runs beside itself: the interlock as users start it (`interlock run`), and the
// embedded broker alone. Ready is a line the process prints, never a sleep; every wait is bounded, and no process
// outlives the bench (SIGTERM, then SIGKILL; killed on exit too).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface ChildMemory {
  /** VmRSS and VmHWM from /proc/PID/status, in MiB. */
  readonly rssMiB: number;
  readonly hwmMiB: number;
}

export interface RunningChild {
  readonly pid: number;
  /** From spawn to the ready line. */
  readonly readyMs: number;
  /** The broker url it printed (the embedded broker's), or undefined. */
  readonly url: string | undefined;
  memory(): ChildMemory;
  /** The last lines it wrote, for an error message. */
  tail(): string;
  stop(): Promise<void>;
}

interface SpawnSpec {
  readonly what: string;
  readonly args: readonly string[];
  /** Which stream carries the ready line. */
  readonly stream: 'stdout' | 'stderr';
  readonly ready: RegExp;
  /** A line with the broker url in group 1 (may be the ready line). */
  readonly url?: RegExp;
}

/** `interlock run` on the bench cell: against `brokerUrl`, or with its embedded broker on a free loopback port. */
export function startInterlockProcess(mainJs: string, cellDir: string, stateDir: string, brokerUrl?: string): Promise<RunningChild> {
  const broker = brokerUrl === undefined ? ['--host', '127.0.0.1', '--port', '0'] : ['--broker', brokerUrl];
  return startChild({
    what: 'interlock run',
    // BENCH_INTERLOCK_NODE_ARGS: Node options for the interlock alone (e.g. --cpu-prof --cpu-prof-dir=DIR for a profile).
    args: [...(process.env['BENCH_INTERLOCK_NODE_ARGS']?.split(' ').filter((a) => a !== '') ?? []), mainJs, 'run', '--cell', cellDir, '--state-dir', stateDir, ...broker],
    stream: 'stderr',
    ready: /\] running; /,
    url: /embedded broker listening on (mqtt:\/\/\S+)/,
  });
}

/** The embedded broker alone (scripts/bench-e2e-broker.js), for the direct path on the same broker software. */
export function startEmbeddedBrokerProcess(brokerJs: string): Promise<RunningChild> {
  return startChild({ what: 'embedded broker', args: [brokerJs], stream: 'stdout', ready: /^listening (mqtt:\/\/\S+)/, url: /^listening (mqtt:\/\/\S+)/ });
}

function startChild(spec: SpawnSpec): Promise<RunningChild> {
  const started = performance.now();
  const child = spawn(process.execPath, [...spec.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) return Promise.reject(new Error(`bench: ${spec.what} did not spawn`));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let tail = '';
  let url: string | undefined;
  return new Promise<RunningChild>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(`not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stopChild(child, exited).then(() => reject(new Error(`bench: ${spec.what} ${why}:\n${tail.trim()}`)));
    };
    for (const name of ['stdout', 'stderr'] as const) {
      let partial = '';
      child[name].setEncoding('utf8');
      // Read to the end, ready or not: a full pipe would block the child's logging, and with it the child.
      child[name].on('data', (chunk: string) => {
        tail = (tail + chunk).slice(-4_000);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        if (settled || name !== spec.stream) return;
        for (const line of lines) {
          const found = spec.url?.exec(line);
          if (found?.[1] !== undefined) url = found[1];
          if (!spec.ready.test(line)) continue;
          settled = true;
          clearTimeout(timer);
          resolve({
            pid,
            readyMs: performance.now() - started,
            url,
            memory: () => procMemory(pid),
            tail: () => tail,
            stop: async () => {
              process.off('exit', killOnExit);
              await stopChild(child, exited);
            },
          });
          return;
        }
      });
    }
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before it was ready`));
  });
}

function procMemory(pid: number): ChildMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const value = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
    if (value === undefined) throw new Error(`bench: no ${field} in /proc/${pid}/status`);
    return Number(value) / 1024;
  };
  return { rssMiB: kib('VmRSS'), hwmMiB: kib('VmHWM') };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
  });
  const outcome = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}
