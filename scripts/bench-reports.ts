// `npm run bench`, section: what authenticated device reports cost. In process, the signed path (verify the
// driver's signature, then parse and observe) against the unsigned body alone, per message; and over the embedded
// broker, the decision latency of commands while 4 devices report at 100 Hz and at 1,000 messages/s, against no
// state traffic at all, interleaved in one run.

import { performance } from 'node:perf_hooks';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/log.js';
import { BoundsMemory } from '../src/bounds/bounds.js';
import type { CommandSigner } from '../src/agent-sdk/command-signer.js';
import type { LoadedCell } from '../src/declarations/load.js';
import { DeviceReporter } from '../src/driver-sdk/device-reporter.js';
import { DeviceReports } from '../src/interlock/device-reports.js';
import { StateStore } from '../src/interlock/state-store.js';
import { observeStateMessage } from '../src/pipeline/observe-state.js';
import type { DriverPrivateKey } from '../src/keys/cell-agent-keys.js';
import { openSqliteAuditLog } from '../src/audit/sqlite-audit-log.js';
import { generateEd25519KeyPair } from '../src/crypto/jws.js';
import { Interlock } from '../src/interlock/interlock.js';
import { EmbeddedBroker } from '../src/transport/embedded-broker.js';
import { MqttTransport } from '../src/transport/mqtt-transport.js';
import { topicSet } from '../src/transport/topics.js';
import { stats, us } from './bench-stats.js';
import { wideBroker, wideClient } from './wide-broker.js';

const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
const ARM_AT_REST = { positionsRad: HOME, velocitiesRadPerS: [0, 0, 0, 0, 0, 0], moving: false };
const AMR = { pose: { xM: 4, yM: -0.5, yawRad: 0 }, velocity: { linearMPerS: 0, angularRadPerS: 0 }, localization: { ok: true, ageMs: 20 }, moving: false, safeStopped: false, people: [] };
const CONVEYOR = { speedMPerS: 0, permissives: { guardClosed: true, estopReleased: true, downstreamReady: true }, running: true, safeStopped: false };
const PUMP = {
  measurements: { suction_pressure: 50_000, discharge_pressure: 300_000, discharge_flow: 0.002, tank_level: 1.2, pump_speed: 0, suction_valve_position: 1, discharge_valve_position: 0, suction_valve_open: true },
  setpoints: { pump_speed: 0, suction_valve: 1, discharge_valve: 0 },
  running: false,
  trips: [],
  safeStopped: false,
  lastCommandId: null,
};
const BODIES: Record<string, object> = { 'arm-1': ARM_AT_REST, 'amr-1': AMR, 'conveyor-1': CONVEYOR, 'pump-1': PUMP };

export async function benchReports(cell: LoadedCell, driverKeys: ReadonlyMap<string, DriverPrivateKey>, work: string, planner: CommandSigner): Promise<void> {
  const key = (id: string): DriverPrivateKey => {
    const k = driverKeys.get(id);
    if (k === undefined) throw new Error(`bench: no driver key for ${id}`);
    return k;
  };
  // 1. Per message, in process: signed (verify + parse + observe) against the body alone (parse + observe).
  const N = 4000;
  const reporter = new DeviceReporter('arm-1', key('arm-1'));
  const body = JSON.stringify(ARM_AT_REST);
  const reportStates = new StateStore();
  const reports = new DeviceReports({
    cell: () => cell,
    states: reportStates,
    bounds: new BoundsMemory(),
    clock: systemClock,
    log: silentLogger,
    audit: openSqliteAuditLog(`${work}/reports-audit.db`),
    recordEvent: async () => undefined,
  });
  const memory = { states: new StateStore(), bounds: new BoundsMemory() };
  const signedMs: number[] = [];
  const plainMs: number[] = [];
  let accepted = 0;
  let latest = reportStates.latest('arm-1');
  for (let i = 0; i < N; i++) {
    // Signed just before (untimed): a report must arrive within 2 s of its iat, as from a live driver.
    const payload = Buffer.from(reporter.state(ARM_AT_REST));
    let start = performance.now();
    reports.onState('arm-1', payload);
    signedMs.push(performance.now() - start);
    if (reportStates.latest('arm-1') !== latest) accepted += 1;
    latest = reportStates.latest('arm-1');
    start = performance.now();
    observeStateMessage(cell.declarations, 'arm-1', body, Date.now(), memory);
    plainMs.push(performance.now() - start);
  }
  // A figure for reports the interlock refused would be the cost of a refusal, not of a report.
  if (accepted !== N) throw new Error(`bench: only ${accepted} of ${N} signed reports were accepted`);
  const s = stats(signedMs.slice(500));
  const p = stats(plainMs.slice(500));
  console.log(`## 6. authenticated device reports (${N} arm states, the first 500 untimed)`);
  console.log('| path | p50 | p99 | CPU at 4 devices x 100 Hz | CPU at 1,000 msg/s |');
  console.log('|---|---|---|---|---|');
  for (const [label, st] of [['body only (parse + observe)', p], ['signed (verify + parse + observe)', s]] as const) {
    console.log(`| ${label} | ${us(st.p50)} | ${us(st.p99)} | ${((st.mean * 400) / 10).toFixed(1)} % | ${((st.mean * 1000) / 10).toFixed(1)} % |`);
  }
  console.log(`signed / body only (mean): ${(s.mean / p.mean).toFixed(1)}x\n`);

  // 2. Decision latency over the embedded broker while drivers report, interleaved rounds.
  const broker = wideBroker({ log: () => undefined });
  await broker.start();
  const topics = topicSet();
  const interlockBus = broker.transport();
  await interlockBus.start();
  const audit = openSqliteAuditLog(`${work}/reports-latency.db`);
  const interlock = new Interlock({ cell, transport: interlockBus, audit, signingKey: generateEd25519KeyPair().privateKey, clock: systemClock, heartbeatPeriodMs: 0 });
  await interlock.start();
  const agent = wideClient(broker.url, 'agent');
  const drivers = wideClient(broker.url, 'drivers');
  await agent.start();
  await drivers.start();
  const decided = new Map<string, (verdict: string) => void>();
  await agent.subscribe(topics.decision('+'), (_topic, payload) => {
    const report = JSON.parse(payload.toString('utf8')) as { commandDigest: string; verdict: string };
    decided.get(report.commandDigest)?.(report.verdict);
  });
  let published = 0;
  const reporters = new Map(Object.keys(BODIES).map((id) => [id, new DeviceReporter(id, key(id))]));
  let timer: NodeJS.Timeout | undefined;
  /** Publishes `perSecond` signed states, spread over the 4 devices, in 10 ms ticks. */
  const flow = (perSecond: number): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    if (perSecond === 0) return;
    const perTick = perSecond / 100;
    let owed = 0;
    const ids = [...reporters.keys()];
    let next = 0;
    timer = setInterval(() => {
      owed += perTick;
      for (; owed >= 1; owed -= 1) {
        const id = ids[next++ % ids.length] as string;
        published += 1;
        void drivers.publish(topics.actuatorState(id), (reporters.get(id) as DeviceReporter).state(BODIES[id] as object), { qos: 0 }).catch(() => undefined);
      }
    }, 10);
  };
  const { commandDigest } = await import('../src/pipeline/pipeline.js');
  const decide = async (): Promise<number> => {
    const token = planner.sign('conveyor-1', 'stop', {});
    const start = performance.now();
    const done = new Promise<string>((resolve) => decided.set(commandDigest(token), resolve));
    await agent.publish(topics.command('conveyor-1'), token, { qos: 1 });
    const verdict = await done;
    // The latency of a denial is not the latency of a decision that releases.
    if (verdict !== 'allow') throw new Error(`bench: a stop was decided ${verdict}; the figures would not be of allowed commands`);
    return performance.now() - start;
  };
  const rates = [0, 400, 1000];
  const samples = new Map<number, number[]>(rates.map((r) => [r, []]));
  const achieved = new Map<number, { messages: number; ms: number }>(rates.map((r) => [r, { messages: 0, ms: 0 }]));
  for (let round = 0; round < 5; round++) {
    for (const rate of rates) {
      flow(rate);
      await new Promise((r) => setTimeout(r, 200));
      const from = published;
      const startedAt = performance.now();
      for (let i = 0; i < 40; i++) (samples.get(rate) as number[]).push(await decide());
      const a = achieved.get(rate) as { messages: number; ms: number };
      a.messages += published - from;
      a.ms += performance.now() - startedAt;
    }
  }
  flow(0);
  console.log('## 7. decision latency while drivers report (embedded broker, QoS 1 stop commands, all allowed, 5 interleaved rounds of 40)');
  console.log('| state traffic | achieved | p50 | p99 | p50 / none |');
  console.log('|---|---|---|---|---|');
  const none = stats(samples.get(0) as number[]);
  for (const rate of rates) {
    const st = stats(samples.get(rate) as number[]);
    const a = achieved.get(rate) as { messages: number; ms: number };
    console.log(`| ${rate === 0 ? 'none' : `${rate} signed msg/s`} | ${((a.messages * 1000) / a.ms).toFixed(0)} msg/s | ${us(st.p50)} | ${us(st.p99)} | ${(st.p50 / none.p50).toFixed(2)} |`);
  }
  console.log('');
  await agent.stop();
  await drivers.stop();
  await interlock.stop();
  await interlockBus.stop();
  await broker.stop();
  audit.close();
}
