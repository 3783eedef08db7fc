// Crash test: a child process under load is killed with SIGKILL at a random moment, again and again, each run
// continuing the same state folder: 200 times with the audit log alone under concurrent writes (it starts fast),
// and 15 times with the whole interlock deciding signed commands. After every kill the parent checks:
// - zero acknowledged records lost: every audit seq the child reported (record() had resolved) is in the log;
// - the hash chain verifies, and seqs stay gapless across restarts;
// - nothing reached the simulated actuator without a committed allow record for that command.
// The interlock runs as `interlock run` composes it (embedded broker, SQLite identity store); the agent and the
// actuator are MQTT clients of its broker.
// The child restarts on the same files, so the audit log's and the identity store's recovery after an unclean
// stop is exercised each time. A last case kills the interlock the moment it has latched a pump trip: the next
// start on the same state folder still refuses start until a reset_trip is released.

import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { startRuntime } from '../../src/app/compose.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { silentLogger } from '../../src/core/log.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import { cellBrokerIdentities } from '../../src/transport/broker-clients.js';
import { CellClients } from '../helpers/cell-clients.js';
import { topicSet } from '../../src/transport/topics.js';
import { restState } from '../bounds/process-unit/fixtures.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

// 200 + 15 child processes take a few minutes on a loaded 2-core machine: longer than the suite's per-file limit.
t.setTimeout(900_000);

const LOG_KILLS = Number(process.env['INTERLOCK_CRASH_KILLS'] ?? 200);
const INTERLOCK_KILLS = Number(process.env['INTERLOCK_CRASH_INTERLOCK_KILLS'] ?? 15);
const here = dirname(fileURLToPath(import.meta.url));

/**
 * Compiles the child (and what it imports) to plain JavaScript once, inside the repository so that its imports
 * resolve to node_modules: a child started through the TypeScript loader takes seconds, 200 of them too long.
 */
function buildChild(): { script: string; cleanup: () => void } {
  const outRoot = join(REPO_ROOT, '.tap', `crash-build-${process.pid}`);
  mkdirSync(outRoot, { recursive: true });
  const tsconfig = join(outRoot, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(REPO_ROOT, 'tsconfig.json'),
      compilerOptions: { outDir: join(outRoot, 'out'), rootDir: REPO_ROOT, sourceMap: false },
      files: [join(here, 'crash-child.ts')],
      include: [],
    }),
  );
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', tsconfig], { stdio: 'pipe' });
  return { script: join(outRoot, 'out', 'test', 'crash', 'crash-child.js'), cleanup: () => rmSync(outRoot, { recursive: true, force: true }) };
}

interface RunResult {
  readonly acks: { seq: number; commandId: string | null; verdict: string; released: boolean }[];
  readonly actuated: string[];
  readonly ready: boolean;
}

/** Starts the child, lets it work for `workMs` after it is ready, kills it with SIGKILL. */
function runOnce(script: string, args: readonly string[], workMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const acks: RunResult['acks'] = [];
    const actuated: string[] = [];
    let ready = false;
    let stderr = '';
    const child = fork(script, [...args], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const startTimeout = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('message', (message: { type: string; seq?: number; commandId?: string | null; verdict?: string; released?: boolean }) => {
      if (message.type === 'ready') {
        ready = true;
        clearTimeout(startTimeout);
        setTimeout(() => child.kill('SIGKILL'), workMs);
      } else if (message.type === 'ack' && typeof message.seq === 'number') {
        acks.push({ seq: message.seq, commandId: message.commandId ?? null, verdict: message.verdict ?? '', released: message.released === true });
      } else if (message.type === 'actuated' && typeof message.commandId === 'string') {
        actuated.push(message.commandId);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(startTimeout);
      if (signal !== 'SIGKILL') reject(new Error(`child ended with code ${code} signal ${signal} before it was killed:\n${stderr}`));
      else resolvePromise({ acks, actuated, ready });
    });
  });
}

interface CrashOutcome {
  readonly failures: number;
  readonly acks: number;
  readonly actuated: number;
  readonly lastSeq: number;
}

/** Runs the child `kills` times on one state folder and checks the invariants after each kill. */
async function crashLoop(t: Test, script: string, mode: 'log' | 'interlock', kills: number, extraArgs: readonly string[]): Promise<CrashOutcome> {
  const stateDir = mkdtempSync(join(tmpdir(), `interlock-crash-${mode}-`));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  let acks = 0;
  let actuated = 0;
  let lastSeq = 0;
  let failures = 0;
  // Deterministic "random" kill times (a seeded LCG), 5-120 ms after the child is ready.
  let seed = mode === 'log' ? 12345 : 54321;
  const nextMs = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return 5 + (seed % 116);
  };
  for (let run = 1; run <= kills; run++) {
    const result = await runOnce(script, [mode, stateDir, ...extraArgs], nextMs());
    if (!result.ready) {
      failures += 1;
      t.fail(`${mode} run ${run}: the child never became ready`);
      continue;
    }
    // Read what survived, through a fresh connection (the writer is dead).
    const db = new Database(join(stateDir, 'audit.db'), { readonly: true });
    const present = new Set((db.prepare('SELECT seq FROM records').all() as { seq: number }[]).map((r) => r.seq));
    const allowed = new Set(
      (db.prepare("SELECT command_id FROM records WHERE kind = 'decision' AND verdict = 'allow' AND command_id IS NOT NULL").all() as { command_id: string }[]).map(
        (r) => r.command_id,
      ),
    );
    const maxSeq = (db.prepare('SELECT max(seq) AS m FROM records').get() as { m: number | null }).m ?? 0;
    db.close();
    const lost = result.acks.filter((a) => !present.has(a.seq));
    const unrecorded = result.actuated.filter((id) => !allowed.has(id));
    if (lost.length > 0 || unrecorded.length > 0 || maxSeq < lastSeq) {
      failures += 1;
      t.fail(`${mode} run ${run}: ${lost.length} acknowledged records lost, ${unrecorded.length} actuations without an allow record, max seq ${maxSeq} after ${lastSeq}`, {
        lost: lost.slice(0, 5),
        unrecorded: unrecorded.slice(0, 5),
      });
    }
    lastSeq = maxSeq;
    acks += result.acks.length;
    actuated += result.actuated.length;
    // The chain is verified by the log itself every 20 runs and at the end (opening it writes, so not every time).
    if (run % 20 === 0 || run === kills) {
      const log = openSqliteAuditLog(join(stateDir, 'audit.db'));
      const verified = log.verify();
      log.close();
      if (!verified.ok) {
        failures += 1;
        t.fail(`${mode} run ${run}: chain broken at ${verified.seq}: ${verified.problem}`);
      } else if (verified.records !== maxSeq) {
        failures += 1;
        t.fail(`${mode} run ${run}: ${verified.records} records verified but max seq is ${maxSeq} (a gap)`);
      }
    }
  }
  return { failures, acks, actuated, lastSeq };
}

t.test('SIGKILL at random moments: no acknowledged record lost, chain intact, nothing actuated unrecorded', { timeout: 900_000 }, async (t) => {
  const cell = makeTestCell();
  const child = buildChild();
  t.teardown(() => {
    child.cleanup();
    cell.cleanup();
  });
  for (const [mode, kills, args] of [
    ['log', LOG_KILLS, []],
    ['interlock', INTERLOCK_KILLS, [cell.cellDir, cell.privateKeyDir]],
  ] as const) {
    const outcome = await crashLoop(t, child.script, mode, kills, args);
    t.equal(outcome.failures, 0, `${mode}: ${kills} kills without a lost acknowledgement, a broken chain or an unrecorded actuation`);
    // The test must have tested something: records were acknowledged and commands actuated across the runs.
    t.ok(outcome.acks > kills, `${mode}: acknowledged records seen: ${outcome.acks}`);
    t.ok(outcome.actuated > 0, `${mode}: actuations seen: ${outcome.actuated}`);
    t.ok(outcome.lastSeq >= outcome.acks, `${mode}: the log holds at least every acknowledged record (${outcome.lastSeq} >= ${outcome.acks})`);
  }
});

/** Starts the child and kills it with SIGKILL the moment it sends a message of type `killOn`. */
function runUntil(script: string, args: readonly string[], killOn: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let stderr = '';
    let told = false;
    const child = fork(script, [...args], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('message', (message: { type: string }) => {
      if (message.type !== killOn) return;
      told = true;
      child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timeout);
      if (signal === 'SIGKILL' && told) resolvePromise();
      else reject(new Error(`child ended with code ${code} signal ${signal} before it said ${killOn}:\n${stderr}`));
    });
  });
}

t.test('a pump trip latched just before SIGKILL is still latched after the restart, until a reset_trip is released', async (t) => {
  const cell = makeTestCell();
  const child = buildChild();
  const stateDir = mkdtempSync(join(tmpdir(), 'interlock-crash-trip-'));
  t.teardown(() => {
    child.cleanup();
    cell.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const { kind: _kind, ...rest } = restState();
  const atRest = { ...rest, timeMs: 0 };
  const tripped = { ...atRest, measurements: { ...atRest.measurements, discharge_pressure: 8.8e5 } };
  await runUntil(child.script, ['trip', stateDir, cell.cellDir, cell.privateKeyDir, JSON.stringify(tripped)], 'latched');

  // The next start on the same state folder; from now on the pump reports a normal pressure.
  const topics = topicSet();
  const runtime = await startRuntime({ cellDirectory: cell.cellDir, stateDirectory: stateDir, embeddedPort: 0, heartbeatPeriodMs: 0, log: silentLogger });
  const outside = new CellClients({ url: runtime.brokerUrl, clientsPath: runtime.brokerClientsPath ?? '', topics, identities: cellBrokerIdentities(runtime.cell.declarations), label: 'crash-trip' });
  const driver = cell.reporter('pump-1');
  const feed = setInterval(() => void outside.publish(topics.actuatorState('pump-1'), driver.state(atRest), { qos: 0 }).catch(() => undefined), 20);
  try {
    await outside.start();
    const decisions: DecisionEvent[] = [];
    runtime.interlock.onDecision((event) => decisions.push(event));
    await waitFor(() => runtime.interlock.states.latest('pump-1') !== undefined, 'pump-1 state after the restart', 15_000);
    const send = async (signerId: string, action: string, params: Record<string, unknown>): Promise<DecisionEvent> => {
      const token = cell.signer(signerId).sign('pump-1', action, params);
      await outside.publish(topics.command('pump-1'), token, { qos: 1 });
      let found: DecisionEvent | undefined;
      await waitFor(() => (found = decisions.find((d) => d.report.commandDigest === commandDigest(token))) !== undefined, `the decision on ${action}`, 15_000);
      return found as unknown as DecisionEvent;
    };
    const codes = (event: DecisionEvent): unknown[] => event.report.reasons.map((r) => [r.code, r.ruleId ?? null]);
    const start = await send('planner-1', 'start', {});
    t.same(codes(start), [['BOUNDS_TRIP_LATCHED', 'pump-1/trips/high_discharge_pressure']], 'still latched after the kill');
    t.equal(start.report.reasons[0]?.actual, 8.8e5, 'with the pressure that latched it');
    const reset = await send('shift-lead', 'reset_trip', { trip: 'high_discharge_pressure' });
    t.equal(reset.report.verdict, 'allow', `the reset passes with the pressure normal (${JSON.stringify(codes(reset))})`);
    const again = await send('planner-1', 'start', {});
    t.equal(again.report.verdict, 'allow', `start once the reset is released (${JSON.stringify(codes(again))})`);
  } finally {
    clearInterval(feed);
    await outside.stop();
    await runtime.stop();
  }
});
