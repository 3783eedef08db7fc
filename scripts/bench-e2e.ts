// `npm run bench`, section 11 (also alone: `node dist/scripts/bench-e2e.js [--quick] [--json FILE]`): what an agent's
// command costs on its way to a driver through a real broker, directly and through `interlock run` in its own process,
// at offered loads from 20 to 5,000 commands/s, against the floor measured in the same run. Every command is
// legitimate and must be allowed: any other decision fails the bench. Loopback only; everything it starts it stops.

import { createPrivateKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { brokerLogin, BROKER_CLIENTS_FILE } from '../src/transport/broker-clients.js';
import { topicSet } from '../src/transport/topics.js';
import { startMosquitto, type RunningMosquitto } from '../test/helpers/mosquitto.js';
import { fsyncFloor } from './bench-audit.js';
import { BENCH_AGENT, BENCH_SPEED_M_PER_S, BENCH_TTL_MS, writeBenchCell, type BenchCell } from './bench-e2e-cell.js';
import { connectRig, runLoad, type Rig, type RigOptions } from './bench-e2e-load.js';
import { startEmbeddedBrokerProcess, startInterlockProcess, type RunningChild } from './bench-e2e-processes.js';
import { printEndToEnd, row, targets, type BrokerKind, type BrokerResult, type EndToEndResults, type Floor, type Row } from './bench-e2e-report.js';
import { TokenSupply } from './bench-e2e-signer.js';
import { stats } from './bench-stats.js';
import { wideLogin } from './wide-broker.js';

export { printEndToEnd } from './bench-e2e-report.js';
export type { EndToEndResults } from './bench-e2e-report.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
const MAIN_JS = join(here, '..', 'src', 'cli', 'main.js');
const BROKER_JS = join(here, 'bench-e2e-broker.js');

export const LOADS_PER_S = [20, 100, 1000, 2000, 5000] as const;
const FULL_MS = 10_000;
const QUICK_MS = 2_000;
/** After the last send, how long a command may still arrive before it counts as lost. */
const GRACE_MS = 2_000;
const WARMUP_TIMEOUT_MS = 30_000;
const topics = topicSet();

export interface EndToEndOptions {
  /** 2 s per load instead of 10 s: a smoke test, not a figure to quote. */
  readonly quick?: boolean;
  readonly loads?: readonly number[];
  readonly brokers?: readonly BrokerKind[];
  readonly conveyors?: number;
}

export async function benchEndToEnd(options: EndToEndOptions = {}): Promise<EndToEndResults> {
  const quick = options.quick === true;
  const durationMs = quick ? QUICK_MS : FULL_MS;
  const loads = options.loads ?? LOADS_PER_S;
  const conveyors = options.conveyors ?? 32;
  const work = mkdtempSync(join(tmpdir(), 'interlock-bench-e2e-'));
  try {
    const cell = writeBenchCell(work, conveyors, root);
    const supply = new TokenSupply(cell.deviceIds, cell.agentKey, { ttlMs: BENCH_TTL_MS, speedMPerS: BENCH_SPEED_M_PER_S });
    const brokers: BrokerResult[] = [];
    try {
      for (const broker of options.brokers ?? (['mosquitto', 'embedded'] as const)) {
        brokers.push(await benchBroker(broker, { cell, supply, loads, durationMs, stateDir: join(work, `state-${broker}`) }));
      }
    } finally {
      await supply.close();
    }
    return {
      format: 'interlock-bench-e2e/1',
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
      node: process.version,
      command: `node dist/scripts/bench-e2e.js${quick ? ' --quick' : ''}`,
      quick,
      durationMsPerLoad: durationMs,
      conveyors,
      brokers,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface BrokerBench {
  readonly cell: BenchCell;
  readonly supply: TokenSupply;
  readonly loads: readonly number[];
  readonly durationMs: number;
  readonly stateDir: string;
}

/** The interlock process and the clients that talk to it; rebuilt when the interlock is restarted. */
interface Through {
  readonly interlock: RunningChild;
  readonly rig: Rig;
}

async function benchBroker(broker: BrokerKind, bench: BrokerBench): Promise<BrokerResult> {
  const { cell, supply } = bench;
  mkdirSync(bench.stateDir, { recursive: true });
  const fsyncMs = fsyncFloor(bench.stateDir).p50;
  const verifyMs = verifyFloorMs();
  const readyMs: number[] = [];
  const opened: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of opened.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    let mosquitto: RunningMosquitto | undefined;
    if (broker === 'mosquitto') {
      // As the shipped configuration (greengrass/standalone/mosquitto.conf) has it: defaults for queues and in-flight,
      // and Nagle off (set_tcp_nodelay). BENCH_MOSQUITTO_NAGLE=1 measures mosquitto's default (Nagle on) instead.
      mosquitto = await startMosquitto(process.env['BENCH_MOSQUITTO_NAGLE'] === '1' ? {} : { extraConfig: ['set_tcp_nodelay true'] });
      opened.push(() => mosquitto?.stop() ?? Promise.resolve());
    }
    const startThrough = async (): Promise<Through> => {
      const interlock = await startInterlockProcess(MAIN_JS, cell.cellDir, bench.stateDir, mosquitto?.url);
      readyMs.push(interlock.readyMs);
      const url = mosquitto?.url ?? interlock.url;
      if (url === undefined) throw new Error(`bench: interlock run printed no broker url:\n${interlock.tail()}`);
      const clients = join(bench.stateDir, BROKER_CLIENTS_FILE);
      // mosquitto here is anonymous on loopback; the embedded broker admits only the cell's ids, each with its password.
      const login = (id: string): RigOptions['agentLogin'] => (mosquitto === undefined ? brokerLogin(clients, id, 'bench') : { clientId: `bench-${id}` });
      const rig = await connectRig({
        url,
        deviceIds: cell.deviceIds,
        agentLogin: login(BENCH_AGENT),
        driverLogin: login,
        ...(mosquitto === undefined ? {} : { directTopic: (id: string) => topics.actuatorCommand(id) }),
        interlock: { driverKeys: cell.driverKeys },
      }).catch(async (error: unknown) => {
        await interlock.stop();
        throw error;
      });
      await warmUp(rig, supply, cell.deviceIds.length);
      return { interlock, rig };
    };
    let through = await startThrough();
    const stopThrough = async (): Promise<void> => {
      await through.rig.close();
      await through.interlock.stop();
    };
    opened.push(() => stopThrough());
    // The direct path: on mosquitto the same clients publish straight to the driver's topic; the embedded broker
    // cannot carry that inside the interlock (its ACL lets only the interlock write there), so the same broker code
    // runs alone in a process of its own.
    let directRig = through.rig;
    if (mosquitto === undefined) {
      const alone = await startEmbeddedBrokerProcess(BROKER_JS);
      opened.push(() => alone.stop());
      const url = alone.url;
      if (url === undefined) throw new Error('bench: the embedded broker printed no url');
      directRig = await connectRig({ url, deviceIds: cell.deviceIds, agentLogin: wideLogin('agent'), driverLogin: (id) => wideLogin(`driver-${id}`), directTopic: (id) => `bench/direct/${id}` });
      const rig = directRig;
      opened.push(() => rig.close());
    }
    await runLoad(directRig, supply, { path: 'direct', ratePerS: 100, durationMs: 500, graceMs: GRACE_MS }); // warm-up, untimed

    const rows: Row[] = [];
    for (const ratePerS of bench.loads) {
      const spec = { ratePerS, durationMs: bench.durationMs, graceMs: GRACE_MS };
      const direct = row(ratePerS, 'direct', await runLoad(directRig, supply, { ...spec, path: 'direct' }));
      const run = await runLoad(through.rig, supply, { ...spec, path: 'interlock' });
      const memory = through.interlock.memory();
      // SAFETY of the figure: a bench of the decision path must measure allowed commands only.
      if (run.decisions.other > 0) {
        throw new Error(`bench: ${run.decisions.other} of ${run.sent} commands at ${ratePerS}/s on ${broker} were not allowed (${JSON.stringify(run.decisions.otherCodes)}); the bench cell or the interlock is wrong, and no figure is printed`);
      }
      // Not caught up: a backlog would spill into the next load's figures, so the next load gets a fresh process.
      const behind = run.lost > 0 || run.decisions.missing > 0;
      const restarted = behind && ratePerS !== bench.loads[bench.loads.length - 1];
      rows.push(direct, row(ratePerS, 'interlock', run, { rssMiB: memory.rssMiB, hwmMiB: memory.hwmMiB, restarted }));
      if (restarted) {
        await stopThrough();
        through = await startThrough();
        if (mosquitto !== undefined) directRig = through.rig;
      }
    }
    const hopMs = rows.find((r) => r.path === 'direct')?.p50Ms ?? null;
    const floor: Floor = { hopMs, fsyncMs, verifyMs, totalMs: hopMs === null ? null : hopMs + fsyncMs + verifyMs };
    const withAdded = rows.map((r) => {
      const direct = rows.find((d) => d.path === 'direct' && d.loadPerS === r.loadPerS);
      if (r.path !== 'interlock' || r.p99Ms === null || direct?.p99Ms === null || direct === undefined) return r;
      const addedP99Ms = r.p99Ms - direct.p99Ms;
      return { ...r, addedP99Ms, timesFloor: floor.totalMs === null ? null : addedP99Ms / floor.totalMs };
    });
    return { broker, floor, readyMs, rows: withAdded, targets: targets(withAdded, floor, readyMs) };
  } finally {
    await close();
  }
}

/**
 * One command per device through the interlock, until all are allowed: the first may meet a device whose first
 * signed state has not reached the interlock yet (BOUNDS_STATE_MISSING; state and commands travel on different
 * connections). Those are sent again; any other denial means the bench cell is wrong, and fails the bench.
 */
async function warmUp(rig: Rig, supply: TokenSupply, devices: number): Promise<void> {
  const deadline = performance.now() + WARMUP_TIMEOUT_MS;
  for (;;) {
    const run = await runLoad(rig, supply, { path: 'interlock', ratePerS: 200, durationMs: (devices * 1000) / 200, graceMs: 5_000 });
    const codes = Object.keys(run.decisions.otherCodes);
    if (run.decisions.allow === run.sent && run.lost === 0) return;
    if (codes.some((code) => code !== 'BOUNDS_STATE_MISSING') || performance.now() > deadline) {
      throw new Error(`bench: warm-up through the interlock: ${run.decisions.allow}/${run.sent} allowed, ${run.lost} not received (${JSON.stringify(run.decisions.otherCodes)})`);
    }
  }
}

/** p50 of one Ed25519 verification of a 300-byte message with a prebuilt public key. */
function verifyFloorMs(): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const message = Buffer.alloc(300, 0x62);
  const signature = sign(null, message, createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })));
  const samples: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const start = performance.now();
    const ok = verify(null, message, publicKey, signature);
    samples.push(performance.now() - start);
    if (!ok) throw new Error('bench: the floor signature did not verify');
  }
  return stats(samples.slice(500)).p50;
}

async function cli(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: { quick: { type: 'boolean' }, json: { type: 'string' }, loads: { type: 'string' }, brokers: { type: 'string' }, conveyors: { type: 'string' } },
  });
  const loads = values.loads?.split(',').map(Number);
  if (loads !== undefined && !loads.every((l) => Number.isInteger(l) && l > 0)) throw new Error(`--loads: whole numbers > 0, comma-separated, not "${values.loads}"`);
  const brokers = values.brokers?.split(',');
  if (brokers !== undefined && !brokers.every((b): b is BrokerKind => b === 'mosquitto' || b === 'embedded')) throw new Error(`--brokers: mosquitto and/or embedded, not "${values.brokers}"`);
  const conveyors = values.conveyors === undefined ? undefined : Number(values.conveyors);
  if (conveyors !== undefined && !(Number.isInteger(conveyors) && conveyors >= 1 && conveyors <= 1000)) throw new Error(`--conveyors: 1-1000, not "${values.conveyors}"`);
  const results = await benchEndToEnd({
    quick: values.quick === true,
    ...(loads === undefined ? {} : { loads }),
    ...(brokers === undefined ? {} : { brokers }),
    ...(conveyors === undefined ? {} : { conveyors }),
  });
  printEndToEnd(results);
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
