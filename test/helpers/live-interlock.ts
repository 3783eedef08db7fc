// The interlock exactly as `interlock run` composes it (startRuntime: declarations from a folder, SQLite audit log and
// identity store in a state folder, the interlock's own key, the embedded broker or a real mosquitto), with the
// outside world on a real MQTT connection over TCP: agents, operators and drivers publish through it, and a
// subscriber on the actuator topics receives every release as a device would, verifies it with the interlock's key
// and checks that its record was already committed. Not a test file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Test } from 'tap';
import { startRuntime, type Runtime, type RuntimeOptions } from '../../src/app/compose.js';
import type { SqliteAuditSurface } from '../../src/audit/sqlite-audit-surface.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { silentLogger, type Logger } from '../../src/core/log.js';
import { verifyReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import type { DecisionEvent, Interlock } from '../../src/interlock/interlock.js';
import { signOperatorMessage, type OperatorParams } from '../../src/operator/operator-message.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import { cellBrokerIdentities } from '../../src/transport/broker-clients.js';
import { CellClients } from './cell-clients.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { topicSet } from '../../src/transport/topics.js';
import type { Transport } from '../../src/transport/transport.js';
import { startMosquitto } from './mosquitto.js';
import { amrStateMessage, conveyorStateMessage, stateFeed, type StateFeed } from './state-messages.js';
import { makeTestCell, type TestCell } from './test-cell.js';
import type { DeviceReporter } from '../../src/driver-sdk/device-reporter.js';
import { modesSettled } from './modes-settled.js';
import { waitFor } from './wait-for.js';
import type { CloudLink } from '../../src/cloud/cloud-link.js';
import type { AuditForwardingOptions } from '../../src/cloud/audit-forwarder.js';

export const topics = topicSet();

/** How long a rig waits for something the interlock does (a bound, not a sleep: on a loaded machine, be generous). */
const WAIT_MS = 15_000;

export interface LiveInterlockOptions {
  /** Files of the demo cell to replace (null deletes), as makeTestCell takes them. */
  readonly files?: Record<string, string | null>;
  /**
   * The state-age limits of every device and of the people report, in ms (default 10 000): the rig runs on the real
   * clock, and its tests are not about freshness. null keeps the declared limits.
   */
  readonly stateAgeMs?: number | null;
  readonly clock?: Clock;
  /** Default 0 (no heartbeat). */
  readonly heartbeatPeriodMs?: number;
  /** Default: as `interlock run` (one worker on a multi-core machine). */
  readonly verifierThreads?: number;
  /** 'embedded' (default, as `npm start`) or 'mosquitto' (a real mosquitto, the interlock connects as a client). */
  readonly broker?: 'embedded' | 'mosquitto';
  /**
   * Device state the rig publishes every 20 ms from outside, as drivers would (device id → message now). Default: the
   * conveyor at rest with every permissive true and the AMR (the people source) in the aisle seeing nobody. false:
   * none (the test plays the drivers itself, or runs simulator drivers).
   */
  readonly feed?: false | Record<string, () => Record<string, unknown>>;
  /** Where the interlock logs (default: nowhere). */
  readonly log?: Logger;
  /**
   * Fault injection in the interlock's own broker connection: the rig builds the MQTT transport as startRuntime does
   * for a broker url, passes it through this, and hands the result to startRuntime (which starts and stops it). Only
   * with broker 'mosquitto': the embedded broker's connection is in-process.
   */
  readonly wrapTransport?: (transport: Transport) => Transport;
  /**
   * More startRuntime options, made afresh for every start (restart() too): e.g. a cloud link and metrics settings,
   * whose transport startRuntime then starts and stops.
   */
  readonly runtimeOptions?: () => Partial<RuntimeOptions>;
  /** The cloud link, made anew for every start (RuntimeOptions.cloud: a transport is started once). */
  readonly cloud?: () => CloudLink;
  /** RuntimeOptions.auditForwarding. */
  readonly auditForwarding?: AuditForwardingOptions;
}

/** A release as the device received it. */
export interface LiveRelease {
  readonly topic: string;
  readonly token: string;
  readonly command: ReleasedCommand;
  /** Whether the release's audit record was readable from another connection when the release arrived. */
  readonly committedBefore: boolean;
}

export interface LiveInterlock {
  readonly cell: TestCell;
  readonly stateDirectory: string;
  readonly clock: Clock;
  /** The runtime in force (replaced by restart()). */
  readonly runtime: Runtime;
  readonly interlock: Interlock;
  readonly audit: SqliteAuditSurface;
  /** The outside world's connection to the broker (MQTT over TCP): agents, operators and drivers. */
  readonly client: Transport;
  /** Every decision, as the interlock reported it, across restarts. */
  readonly decisions: DecisionEvent[];
  /** Every release the actuator topics carried, in arrival order, verified. */
  readonly releases: LiveRelease[];
  /** Releases that did not verify (signature, device, order): always empty unless something is badly wrong. */
  readonly badReleases: string[];
  /** Every answer on the operator result topic. */
  readonly operatorResults: Record<string, unknown>[];
  /** The state feed, when the rig runs one. */
  readonly feed: StateFeed | undefined;
  /** The driver run that signs `deviceId`'s reports (one per device for the rig's life, on the rig's clock). */
  reporter(deviceId: string): DeviceReporter;
  /** Publishes `message` as `deviceId`'s driver would (signed, QoS 1) on its state topic. */
  report(deviceId: string, message: Record<string, unknown>): Promise<void>;
  /** Publishes a signed command to the device's command topic and resolves with the decision on it. */
  send(deviceId: string, token: string): Promise<DecisionEvent>;
  /** Publishes the commands together (one event-loop turn) and resolves with their decisions, in decision order. */
  burst(deviceId: string, tokens: readonly string[]): Promise<DecisionEvent[]>;
  /** Signs an operator message with the test cell's key for `operatorId` (default shift-lead), sends it, returns the answer. */
  operator(request: OperatorParams, operatorId?: string, options?: { seq?: number; jti?: string; token?: string }): Promise<Record<string, unknown> & { token: string }>;
  /**
   * Waits until every decision so far that released a command has its release at the outside client (a release is
   * published when decided, but reaches another client of the broker a moment later).
   */
  releasesArrived(): Promise<void>;
  /** Stops the interlock cleanly and starts it again on the same state folder and declarations. */
  restart(): Promise<void>;
  /**
   * Waits (on the rig's clock) until no device holds reduced after a state trigger. After a start people were
   * unknown until the people source's first report, so the person-watching devices hold reduced for their
   * holdReduced after it; a test about normal limits waits that out first.
   */
  modesSettled(): Promise<void>;
}

export async function liveInterlock(t: Test, options: LiveInterlockOptions = {}): Promise<LiveInterlock> {
  const stateAgeMs = options.stateAgeMs === undefined ? 10_000 : options.stateAgeMs;
  const cell = makeTestCell(options.files ?? {}, stateAgeMs === null ? {} : { stateAgeMs });
  const stateDirectory = mkdtempSync(join(tmpdir(), 'interlock-live-'));
  const clock = options.clock ?? systemClock;
  const wrapTransport = options.wrapTransport;
  if (wrapTransport !== undefined && options.broker !== 'mosquitto') throw new Error("liveInterlock: wrapTransport needs broker: 'mosquitto'");
  const mosquitto = options.broker === 'mosquitto' ? await startMosquitto() : undefined;
  const decisions: DecisionEvent[] = [];
  const releases: LiveRelease[] = [];
  const badReleases: string[] = [];
  const operatorResults: Record<string, unknown>[] = [];
  const lastSeq = new Map<string, number>();

  let runtime!: Runtime;
  let client!: Transport;
  let reader!: Database.Database;
  let feed: StateFeed | undefined;

  const start = async (): Promise<void> => {
    runtime = await startRuntime({
      cellDirectory: cell.cellDir,
      stateDirectory,
      ...(mosquitto === undefined
        ? { embeddedPort: 0 }
        : wrapTransport === undefined
          ? { brokerUrl: mosquitto.url }
          : { transport: wrapTransport(new MqttTransport({ url: mosquitto.url, clientId: 'interlock-live-rig', log: (message) => (options.log ?? silentLogger).child('mqtt').info(message) })) }),
      heartbeatPeriodMs: options.heartbeatPeriodMs ?? 0,
      ...(options.cloud === undefined ? {} : { cloud: options.cloud() }),
      ...(options.auditForwarding === undefined ? {} : { auditForwarding: options.auditForwarding }),
      ...(options.verifierThreads === undefined ? {} : { verifierThreads: options.verifierThreads }),
      clock,
      log: options.log ?? silentLogger,
      ...options.runtimeOptions?.(),
    });
    runtime.interlock.onDecision((event) => decisions.push(event));
    reader = new Database(join(stateDirectory, 'audit.db'), { readonly: true });
    const committed = reader.prepare('SELECT 1 FROM records WHERE seq = ?');
    // On the embedded broker every identity of the cell logs in with its own password; mosquitto here has no ACL.
    client =
      mosquitto !== undefined || runtime.brokerClientsPath === undefined
        ? new MqttTransport({ url: mosquitto?.url ?? runtime.brokerUrl, clientId: `outside-${Math.random().toString(16).slice(2, 12)}`, log: () => undefined })
        : new CellClients({ url: runtime.brokerUrl, clientsPath: runtime.brokerClientsPath, topics, identities: cellBrokerIdentities(runtime.cell.declarations), label: 'rig' });
    await client.start();
    await client.subscribe(topics.actuatorCommand('+'), (topic, payload) => {
      const token = payload.toString('utf8');
      const deviceId = topic.split('/')[1] ?? '';
      const verified = verifyReleasedCommand(token, runtime.interlockPublicKey, { deviceId, nowMs: clock.nowMs(), lastAuditSeq: lastSeq.get(deviceId) ?? 0 });
      if (!verified.ok) {
        badReleases.push(`${topic}: ${verified.problem}`);
        return;
      }
      if (verified.command.auditSeq > 0) lastSeq.set(deviceId, verified.command.auditSeq);
      releases.push({ topic, token, command: verified.command, committedBefore: committed.get(verified.command.auditSeq) !== undefined });
    });
    await client.subscribe(topics.operatorResult, (_topic, payload) => operatorResults.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  };

  const stopRuntime = async (): Promise<void> => {
    // Tolerates a start that failed half way (a failing test must not leave a broker or a runtime behind).
    await client?.stop();
    await runtime?.stop();
    reader?.close();
  };

  // Registered before anything starts, so a failure during start-up still cleans up.
  t.teardown(async () => {
    feed?.stop();
    await stopRuntime();
    await mosquitto?.stop();
    cell.cleanup();
    rmSync(stateDirectory, { recursive: true, force: true });
  });

  await start();
  const reporters = new Map<string, DeviceReporter>();
  const reporterOf = (deviceId: string): DeviceReporter => {
    let reporter = reporters.get(deviceId);
    if (reporter === undefined) {
      reporter = cell.reporter(deviceId, () => clock.nowMs());
      reporters.set(deviceId, reporter);
    }
    return reporter;
  };

  const sources = options.feed === false ? undefined : (options.feed ?? { 'conveyor-1': () => conveyorStateMessage(), 'amr-1': () => amrStateMessage() });
  if (sources !== undefined) {
    feed = stateFeed(() => client, sources, (deviceId, message) => reporterOf(deviceId).state(message));
    await feed.publishNow();
    await waitFor(() => Object.keys(sources).every((id) => runtime.interlock.states.latest(id) !== undefined), 'the fed device state to reach the interlock', WAIT_MS);
  }

  let operatorSeq = 0;
  const decisionFor = async (token: string): Promise<DecisionEvent> => {
    const digest = commandDigest(token);
    let found: DecisionEvent | undefined;
    await waitFor(() => (found = decisions.find((d) => d.report.commandDigest === digest)) !== undefined, `the decision on command ${digest.slice(0, 12)}`, WAIT_MS);
    return found as unknown as DecisionEvent;
  };

  const rig: LiveInterlock = {
    cell,
    stateDirectory,
    clock,
    get runtime() {
      return runtime;
    },
    get interlock() {
      return runtime.interlock;
    },
    get audit() {
      return runtime.audit;
    },
    get client() {
      return client;
    },
    decisions,
    releases,
    badReleases,
    operatorResults,
    get feed() {
      return feed;
    },
    reporter: reporterOf,
    async report(deviceId, message) {
      await client.publish(topics.actuatorState(deviceId), reporterOf(deviceId).state(message), { qos: 1 });
    },
    async send(deviceId, token) {
      await client.publish(topics.command(deviceId), token, { qos: 1 });
      return decisionFor(token);
    },
    async burst(deviceId, tokens) {
      await Promise.all(tokens.map((token) => client.publish(topics.command(deviceId), token, { qos: 1 })));
      const decided = await Promise.all(tokens.map(decisionFor));
      await runtime.interlock.idle();
      return decided.sort((a, b) => decisions.indexOf(a) - decisions.indexOf(b));
    },
    async operator(request, operatorId = 'shift-lead', opts = {}) {
      operatorSeq += 1;
      let token = opts.token;
      if (token === undefined) {
        const key = cell.agentKeys.get(operatorId);
        if (key === undefined) throw new Error(`the test cell has no key for operator ${operatorId}`);
        token = signOperatorMessage({
          operatorId,
          kid: key.kid,
          privateKey: key.privateKey,
          cellId: runtime.cell.declarations.cellId,
          request,
          nowMs: clock.nowMs(),
          ttlMs: 30_000,
          seq: opts.seq ?? Math.floor(clock.nowMs()) + operatorSeq,
          ...(opts.jti === undefined ? {} : { jti: opts.jti }),
        });
      }
      const digest = commandDigest(token);
      // Only an answer that comes after this send counts: the same token sent again (a replay) gets a new one.
      const from = operatorResults.length;
      await client.publish(topics.operator, token, { qos: 1 });
      let answer: Record<string, unknown> | undefined;
      await waitFor(() => (answer = operatorResults.slice(from).find((r) => r['messageDigest'] === digest)) !== undefined, `the answer to operator message ${digest.slice(0, 12)}`, WAIT_MS);
      return { ...(answer as Record<string, unknown>), token };
    },
    async releasesArrived() {
      await runtime.interlock.idle();
      await waitFor(
        () => decisions.every((d) => !d.released || releases.some((r) => r.command.commandId === d.report.commandId)),
        'every release decided so far to reach the outside client',
        WAIT_MS,
      );
    },
    async modesSettled() {
      await modesSettled(runtime.interlock, clock, WAIT_MS);
    },
    async restart() {
      // Every release already decided reaches the outside client first: the broker (embedded) stops with the
      // runtime, and a release still in flight would be lost to the observer, not to the product.
      await rig.releasesArrived();
      await stopRuntime();
      await start();
      if (sources !== undefined) {
        await feed?.publishNow();
        await waitFor(() => Object.keys(sources).every((id) => runtime.interlock.states.latest(id) !== undefined), 'device state after the restart', WAIT_MS);
      }
    },
  };
  return rig;
}
