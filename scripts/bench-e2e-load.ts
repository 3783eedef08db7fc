// The end-to-end bench's load: an agent and one driver connection per device on a broker, and an open-loop run that
// sends signed commands on a schedule (never waiting for one to arrive before the next) and times each from its
// publish to its receipt by the driver, in this one process (performance.now on both ends). It never verifies a
// release before stamping it: the time is when the driver has the message.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { DeviceReporter } from '../src/driver-sdk/device-reporter.js';
import type { DriverPrivateKey } from '../src/keys/cell-agent-keys.js';
import { topicSet } from '../src/transport/topics.js';
import { CONVEYOR_AT_REST } from './bench-e2e-cell.js';
import type { SignedCommand, TokenSupply } from './bench-e2e-signer.js';
import { percentile } from './bench-stats.js';

const CONNECT_TIMEOUT_MS = 10_000;
/** How often each driver reports its signed state. */
const STATE_PERIOD_MS = 250;
const topics = topicSet();

export interface Login {
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
}

export interface RigOptions {
  readonly url: string;
  readonly deviceIds: readonly string[];
  readonly agentLogin: Login;
  driverLogin(deviceId: string): Login;
  /** The topic the direct path publishes to (the driver subscribes to it); undefined: this rig has no direct path. */
  directTopic?(deviceId: string): string;
  /** With the interlock: drivers report signed state and subscribe to their releases; the agent reads decisions. */
  readonly interlock?: { readonly driverKeys: ReadonlyMap<string, DriverPrivateKey> };
}

export interface Decision {
  readonly verdict: string;
  readonly codes: readonly string[];
}

/** Connected clients; receipts and decisions go to whatever run is current. */
export interface Rig {
  readonly options: RigOptions;
  readonly agent: MqttClient;
  onReceipt: (commandId: string, atMs: number) => void;
  onDecision: (commandId: string, decision: Decision) => void;
  close(): Promise<void>;
}

export async function connectRig(options: RigOptions): Promise<Rig> {
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  const rig: Rig = {
    options,
    agent: await connect(options.url, options.agentLogin, clients),
    onReceipt: () => undefined,
    onDecision: () => undefined,
    async close() {
      for (const timer of timers) clearInterval(timer);
      await Promise.all(clients.map((client) => client.endAsync(true).catch(() => undefined)));
    },
  };
  try {
    if (options.interlock !== undefined) {
      rig.agent.on('message', (_topic, payload) => {
        const message = JSON.parse(payload.toString('utf8')) as { verdict: string; commandId?: string; reasons?: { code: string }[] };
        if (message.commandId !== undefined) rig.onDecision(message.commandId, { verdict: message.verdict, codes: (message.reasons ?? []).map((r) => r.code) });
      });
      await rig.agent.subscribeAsync(topics.decision('+'), { qos: 1 });
    }
    await Promise.all(
      options.deviceIds.map(async (deviceId) => {
        const driver = await connect(options.url, options.driverLogin(deviceId), clients);
        driver.on('message', (_topic, payload) => {
          const atMs = performance.now();
          rig.onReceipt(commandIdOf(payload), atMs);
        });
        const filters = [...(options.directTopic === undefined ? [] : [options.directTopic(deviceId)]), ...(options.interlock === undefined ? [] : [topics.actuatorCommand(deviceId)])];
        await driver.subscribeAsync([...new Set(filters)], { qos: 1 });
        const key = options.interlock?.driverKeys.get(deviceId);
        if (options.interlock !== undefined) {
          if (key === undefined) throw new Error(`bench: no driver key for ${deviceId}`);
          const reporter = new DeviceReporter(deviceId, key);
          const report = (): void => {
            driver.publish(topics.actuatorState(deviceId), reporter.state(CONVEYOR_AT_REST), { qos: 0 });
          };
          report();
          timers.push(setInterval(report, STATE_PERIOD_MS));
        }
      }),
    );
  } catch (error) {
    await rig.close();
    throw error;
  }
  return rig;
}

async function connect(url: string, login: Login, clients: MqttClient[]): Promise<MqttClient> {
  const client = mqtt.connect(url, { ...login, protocolVersion: 4, clean: true, connectTimeout: CONNECT_TIMEOUT_MS, reconnectPeriod: 1000 });
  clients.push(client);
  // mqtt.js opens its socket with Nagle on: a bench client would then measure its own delayed-ACK stalls.
  client.on('connect', () => (client.stream as Socket).setNoDelay?.(true));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench: ${login.clientId} did not connect to ${url} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    client.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`bench: ${login.clientId} could not connect to ${url}: ${error.message}`));
    });
  });
  return client;
}

/** The command id in a message to a driver: `commandId` of a release, `jti` of an agent's command sent direct. */
function commandIdOf(payload: Buffer): string {
  const text = payload.toString('latin1');
  const claims = JSON.parse(Buffer.from(text.slice(text.indexOf('.') + 1, text.lastIndexOf('.')), 'base64url').toString('utf8')) as { commandId?: string; jti?: string };
  return claims.commandId ?? claims.jti ?? '';
}

export type Path = 'direct' | 'interlock';

export interface RunSpec {
  readonly path: Path;
  readonly ratePerS: number;
  readonly durationMs: number;
  /** After the last send, how long a command may still arrive before it counts as lost. */
  readonly graceMs: number;
}

export interface RunResult {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  /** Publish to receipt, ms, in receipt order. */
  readonly latenciesMs: readonly number[];
  readonly elapsedMs: number;
  /** Sends that left later than 5 ms after their slot (the bench itself falling behind). */
  readonly lateSends: number;
  /** How late sends left after their slot, ms, p99 (0 when the bench kept its schedule). */
  readonly sendLagP99Ms: number;
  readonly publishErrors: number;
  readonly decisions: { readonly allow: number; readonly other: number; readonly missing: number; readonly otherCodes: Readonly<Record<string, number>> };
}

/**
 * Sends `ratePerS × durationMs` commands, command i at start + i/rate, round-robin over the devices; then waits until
 * every command (and, through the interlock, every decision) has arrived or the grace period is over.
 */
export async function runLoad(rig: Rig, supply: TokenSupply, spec: RunSpec): Promise<RunResult> {
  const total = Math.max(1, Math.round((spec.ratePerS * spec.durationMs) / 1000));
  const intervalMs = 1000 / spec.ratePerS;
  // Signed about 100 ms of load ahead, never more than this run needs: a leftover would be signed before the
  // interlock's next start and refused there as issued before its epoch.
  const batch = Math.max(1, Math.ceil(spec.ratePerS / 10));
  const requestAhead = (sentSoFar: number): void => supply.request(Math.min(3 * batch, total - sentSoFar));
  requestAhead(0);
  await supply.waitReady(Math.min(batch, total));

  const sentAt = new Map<string, number>();
  const decided = new Set<string>();
  const latenciesMs: number[] = [];
  const otherCodes: Record<string, number> = {};
  let allow = 0;
  let other = 0;
  let lastReceiptMs = 0;
  rig.onReceipt = (commandId, atMs) => {
    const sent = sentAt.get(commandId);
    if (sent === undefined) return; // another run's, or a duplicate
    sentAt.delete(commandId);
    latenciesMs.push(atMs - sent);
    lastReceiptMs = atMs;
  };
  const ours = new Set<string>();
  rig.onDecision = (commandId, decision) => {
    if (!ours.has(commandId) || decided.has(commandId)) return;
    decided.add(commandId);
    if (decision.verdict === 'allow') allow += 1;
    else {
      other += 1;
      for (const code of decision.codes.length === 0 ? [decision.verdict] : decision.codes) otherCodes[code] = (otherCodes[code] ?? 0) + 1;
    }
  };

  const topicOf = (command: SignedCommand): string =>
    spec.path === 'interlock' ? topics.command(command.deviceId) : (rig.options.directTopic?.(command.deviceId) ?? topics.actuatorCommand(command.deviceId));
  let sent = 0;
  let lateSends = 0;
  const lagsMs: number[] = [];
  let publishErrors = 0;
  const start = performance.now();
  await new Promise<void>((done) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * intervalMs <= now) {
        const command = supply.take();
        if (command === undefined) break; // the signer is behind; sent as soon as it catches up (counted late)
        const at = performance.now();
        const lagMs = at - (start + sent * intervalMs);
        lagsMs.push(lagMs);
        if (lagMs > 5) lateSends += 1;
        sentAt.set(command.commandId, at);
        ours.add(command.commandId);
        rig.agent.publish(topicOf(command), command.token, { qos: 1 }, (error) => {
          if (error !== undefined && error !== null) publishErrors += 1;
        });
        sent += 1;
        if (sent % batch === 0) requestAhead(sent);
      }
      if (sent >= total) return done();
      setTimeout(tick, Math.max(1, Math.min(intervalMs, start + sent * intervalMs - performance.now())));
    };
    tick();
  });
  // Bounded: what has not arrived by the deadline is lost (a condition, polled; no fixed wait).
  const deadline = performance.now() + spec.graceMs;
  const settled = (): boolean => sentAt.size === 0 && (spec.path === 'direct' || decided.size >= total);
  while (!settled() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  rig.onReceipt = () => undefined;
  rig.onDecision = () => undefined;
  const received = latenciesMs.length;
  return {
    sent,
    received,
    lost: total - received,
    latenciesMs,
    elapsedMs: Math.max(spec.durationMs, (received === 0 ? performance.now() : lastReceiptMs) - start),
    lateSends,
    sendLagP99Ms: percentile(lagsMs.sort((a, b) => a - b), 99),
    publishErrors,
    decisions: { allow, other, missing: spec.path === 'direct' ? 0 : total - decided.size, otherCodes },
  };
}
