// Starts a real mosquitto on 127.0.0.1 with a throwaway config, for integration tests.
// It never skips: a missing binary is an error, and it never leaves a broker running after the test process.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, copyFileSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const MOSQUITTO_MISSING = "mosquitto is not installed: run 'apt-get install -y mosquitto'";

export interface MosquittoOptions {
  /** Default: a free ephemeral port. Pass the port of a stopped broker to restart "the same" broker. */
  readonly port?: number;
  /** Appended to the config verbatim: ACLs, password files, TLS listeners. */
  readonly extraConfig?: readonly string[];
  /**
   * The whole configuration instead of the default plain-text listener (a deployment's own file, e.g. TLS only).
   * `{port}` in it is replaced by the port; it must listen there. `user root` is added when running as root.
   */
  readonly config?: readonly string[];
  /** Bounds the wait for the listener. Default 5000. */
  readonly startTimeoutMs?: number;
}

export interface RunningMosquitto {
  readonly url: string;
  readonly port: number;
  readonly configPath: string;
  /** Kills the broker and removes its temp directory; safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or power cut: no clean shutdown, nothing saved. Then as stop(). */
  kill(): Promise<void>;
}

const POLL_MS = 20;
const STOP_TIMEOUT_MS = 3_000;

export function findMosquitto(): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  // Debian installs it in /usr/sbin, which is often not on a non-root PATH.
  for (const dir of [...dirs, '/usr/sbin', '/usr/local/sbin']) {
    const candidate = join(dir, 'mosquitto');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<RunningMosquitto> {
  const binary = findMosquitto();
  if (binary === undefined) throw new Error(MOSQUITTO_MISSING);
  if (options.port !== undefined) return startOn(binary, options.port, options);
  // A port found free can be taken by someone else before mosquitto binds it; try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(binary, await freePort(), options);
    } catch (error: unknown) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startOn(binary: string, port: number, options: MosquittoOptions): Promise<RunningMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'interlock-mosquitto-'));
  const configPath = join(dir, 'mosquitto.conf');
  // mosquitto refuses to keep running as root unless told which user to be.
  const asRoot = process.getuid?.() === 0 ? ['user root'] : [];
  const logging = ['log_dest stderr', 'log_type error', 'log_type warning'];
  const lines =
    options.config !== undefined
      ? [...options.config.map((line) => line.replaceAll('{port}', String(port))), ...logging, ...asRoot]
      : [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ...logging, ...asRoot, ...(options.extraConfig ?? [])];
  await writeFile(configPath, `${lines.join('\n')}\n`);

  const child = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // If the test process dies without calling stop(), do not leave a broker holding the port.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      process.off('exit', killOnExit);
      await killAndWait(child, exited);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await waitForListener(port, child, options.startTimeoutMs ?? 5_000);
  } catch (error: unknown) {
    await stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`mosquitto did not start on port ${port}: ${reason}\n${stderr.trim()}`);
  }
  const kill = (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return stop();
  };
  return { url: `mqtt://127.0.0.1:${port}`, port, configPath, stop, kill };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForListener(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`mosquitto exited (code ${child.exitCode ?? child.signalCode})`);
    }
    if (await accepts(port)) return;
    if (Date.now() >= deadline) throw new Error(`no listener after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function killAndWait(child: ChildProcess, exited: Promise<void>): Promise<void> {
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

// tap runs every file under test/, this one included: run by itself it checks that the helper starts a broker
// that accepts connections and that stop() really frees the port.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { default: tap } = await import('tap');
  tap.test('startMosquitto starts a listening broker and stop() kills it', { timeout: 15_000 }, async (t) => {
    const broker = await startMosquitto();
    t.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    t.ok(await accepts(broker.port), 'accepts TCP connections');
    await Promise.all([broker.stop(), broker.stop()]);
    t.notOk(await accepts(broker.port), 'nothing listens after stop');
  });
}

/**
 * Starts mosquitto on the example configuration shipped in greengrass/standalone (mosquitto.conf and acl), with the
 * listener moved to a free loopback port and the paths pointed at `certs` (made by make-certs.sh).
 */
export async function startShippedMosquitto(standaloneDir: string, certs: string): Promise<RunningMosquitto> {
  copyFileSync(join(standaloneDir, 'acl'), join(certs, 'acl'));
  const config = readFileSync(join(standaloneDir, 'mosquitto.conf'), 'utf8')
    .split('\n')
    .map((line) => (line === 'listener 8883' ? 'listener {port} 127.0.0.1' : line.replaceAll('/etc/mosquitto/interlock', certs)));
  return startMosquitto({ config });
}
