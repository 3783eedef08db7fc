// The end-to-end bench's figures: the rows it measured, the floor, the issue's targets marked met or missed, printed
// as one table per broker and written as JSON. It only formats what was measured; an absent figure prints as "–".

import { percentile } from './bench-stats.js';
import type { Path, RunResult } from './bench-e2e-load.js';

export type BrokerKind = 'mosquitto' | 'embedded';

export interface Row {
  readonly loadPerS: number;
  readonly path: Path;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  readonly achievedPerS: number;
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly lateSends: number;
  readonly sendLagP99Ms: number;
  /** Publishes the agent's broker did not acknowledge (within mqtt.js's own bounds). */
  readonly publishErrors: number;
  /** Through the interlock: p99 through − p99 direct at the same load, and that over the floor. */
  readonly addedP99Ms: number | null;
  readonly timesFloor: number | null;
  readonly decisions: RunResult['decisions'] | null;
  /** The interlock process after this load (through rows). */
  readonly rssMiB: number | null;
  readonly hwmMiB: number | null;
  /** The interlock was restarted after this load: it had not caught up by the end of the grace period. */
  readonly restarted: boolean;
}

export interface Floor {
  /** One broker hop: the direct path's p50 at the lowest load (20/s). */
  readonly hopMs: number | null;
  /** write 64 bytes + fsync, p50, on the audit log's disk. */
  readonly fsyncMs: number;
  /** One Ed25519 verification with a prebuilt key, p50. */
  readonly verifyMs: number;
  readonly totalMs: number | null;
}

export interface Target {
  readonly name: string;
  /** null: not measured in this run (e.g. that load was not offered). */
  readonly met: boolean | null;
  readonly detail: string;
}

export interface BrokerResult {
  readonly broker: BrokerKind;
  readonly floor: Floor;
  /** Spawn to the ready line, per start of the interlock process (the first, and one per restart). */
  readonly readyMs: readonly number[];
  readonly rows: readonly Row[];
  readonly targets: readonly Target[];
}

export interface EndToEndResults {
  readonly format: 'interlock-bench-e2e/1';
  readonly date: string;
  readonly machine: string;
  readonly node: string;
  readonly command: string;
  readonly quick: boolean;
  readonly durationMsPerLoad: number;
  readonly conveyors: number;
  readonly brokers: readonly BrokerResult[];
}

export function row(loadPerS: number, path: Path, run: RunResult, extra: Partial<Row> = {}): Row {
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  const some = sorted.length > 0;
  return {
    loadPerS,
    path,
    p50Ms: some ? percentile(sorted, 50) : null,
    p99Ms: some ? percentile(sorted, 99) : null,
    maxMs: some ? (sorted[sorted.length - 1] ?? null) : null,
    achievedPerS: run.received / (run.elapsedMs / 1000),
    sent: run.sent,
    received: run.received,
    lost: run.lost,
    lateSends: run.lateSends,
    sendLagP99Ms: run.sendLagP99Ms,
    publishErrors: run.publishErrors,
    addedP99Ms: null,
    timesFloor: null,
    decisions: path === 'interlock' ? run.decisions : null,
    rssMiB: null,
    hwmMiB: null,
    restarted: false,
    ...extra,
  };
}

const TARGET_LOAD_PER_S = 1000;
const SUSTAINED_PER_S = 5000;

/** The issue's targets for one broker, from the rows measured. */
export function targets(rows: readonly Row[], floor: Floor, readyMs: readonly number[]): Target[] {
  const through = (load: number): Row | undefined => rows.find((r) => r.path === 'interlock' && r.loadPerS === load);
  const at1000 = through(TARGET_LOAD_PER_S);
  const added = at1000?.addedP99Ms ?? null;
  const at5000 = through(SUSTAINED_PER_S);
  const hwm = rows.map((r) => r.hwmMiB).filter((m): m is number => m !== null);
  const peak = hwm.length === 0 ? null : Math.max(...hwm);
  const readySorted = [...readyMs].sort((a, b) => a - b);
  const ready = readySorted.length === 0 ? null : percentile(readySorted, 50);
  return [
    {
      name: 'added p99 at 1,000/s <= 3 ms and <= 2x floor',
      met: added === null || floor.totalMs === null ? null : added <= 3 && added <= 2 * floor.totalMs,
      detail: added === null ? 'not measured' : `${ms(added)} (${floor.totalMs === null ? '?' : (added / floor.totalMs).toFixed(1)}x floor)`,
    },
    {
      name: '>= 5,000/s sustained, no loss',
      // Sustained: nothing lost and at least 97% of the offered rate received per second over the run.
      met: at5000 === undefined ? null : at5000.lost === 0 && at5000.achievedPerS >= 0.97 * SUSTAINED_PER_S,
      detail: at5000 === undefined ? 'not measured' : `${at5000.achievedPerS.toFixed(0)}/s achieved, ${at5000.lost} lost`,
    },
    { name: 'resident memory < 150 MiB (peak, VmHWM)', met: peak === null ? null : peak < 150, detail: peak === null ? 'not measured' : `${peak.toFixed(0)} MiB` },
    { name: 'ready < 1 s (median of starts)', met: ready === null ? null : ready < 1000, detail: ready === null ? 'not measured' : `${ms(ready)} over ${readyMs.length} start(s)` },
  ];
}

const ms = (value: number | null): string => (value === null ? '–' : value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(0)} ms`);

export function printEndToEnd(results: EndToEndResults): void {
  console.log(
    `## 11. end to end through a real broker: agent -> broker -> driver, direct and through \`interlock run\` (open loop, ` +
      `${results.durationMsPerLoad / 1000} s per load, ${results.conveyors} conveyors${results.quick ? ', --quick' : ''})`,
  );
  for (const broker of results.brokers) {
    const f = broker.floor;
    console.log(`\n### ${broker.broker}`);
    console.log(`floor ${ms(f.totalMs)} = broker hop ${ms(f.hopMs)} + fsync ${ms(f.fsyncMs)} + Ed25519 verify ${ms(f.verifyMs)} (p50 each)`);
    console.log(`interlock ready (spawn to ready line): ${broker.readyMs.map((r) => ms(r)).join(', ')}`);
    console.log('| load/s | path | p50 | p99 | max | achieved/s | loss | added p99 | ×floor | RSS / peak MiB |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of broker.rows) {
      const loss = `${r.lost}${r.sent > 0 ? ` (${((100 * r.lost) / r.sent).toFixed(1)}%)` : ''}`;
      const memory = r.rssMiB === null || r.hwmMiB === null ? '–' : `${r.rssMiB.toFixed(0)} / ${r.hwmMiB.toFixed(0)}${r.restarted ? ' (restarted after)' : ''}`;
      console.log(
        `| ${r.loadPerS} | ${r.path} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.maxMs)} | ${r.achievedPerS.toFixed(0)} | ${loss} | ${ms(r.addedP99Ms)} | ${r.timesFloor === null ? '–' : `${r.timesFloor.toFixed(1)}x`} | ${memory} |`,
      );
    }
    for (const r of broker.rows.filter((r) => r.lateSends > 0)) {
      // The load generator's own shortfall, said beside the figure it affects (a busy machine, not the path).
      console.log(`- the bench fell behind its schedule at ${r.loadPerS}/s (${r.path}): ${r.lateSends} of ${r.sent} sends more than 5 ms after their slot, p99 ${ms(r.sendLagP99Ms)}`);
    }
    for (const t of broker.targets) console.log(`- ${t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED'}: ${t.name}: ${t.detail}`);
  }
  console.log('');
}
