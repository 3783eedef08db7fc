// The composition root: the one place that builds the real adapters (declarations from disk, SQLite audit log,
// MQTT or embedded broker, the interlock's key) and wires them into an Interlock. It refuses to start on any
// declaration problem.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { SqliteAuditSurface } from '../audit/sqlite-audit-surface.js';
import { openWorkerAuditLog } from '../audit/worker-audit-log.js';
import { SqliteIdentityStore } from '../identity/sqlite-identity-store.js';
import type { BoundsMemory } from '../bounds/bounds.js';
import { restoreSafetyMemory } from './restore-safety-memory.js';
import { availableParallelism } from 'node:os';
import { systemClock, type Clock } from '../core/clock.js';
import { throttledWarn, type Logger } from '../core/log.js';
import { DeclarationError } from '../core/problems.js';
import { loadCell, type LoadedCell } from '../declarations/load.js';
import { Interlock } from '../interlock/interlock.js';
import { ensureKeyPair } from '../keys/key-files.js';
import { interlockVoice } from '../transport/broker-acl.js';
import { BROKER_CLIENTS_FILE, cellBrokerIdentities, ensureBrokerClients, passwordAccess } from '../transport/broker-clients.js';
import { EmbeddedBroker } from '../transport/embedded-broker.js';
import { MqttTransport } from '../transport/mqtt-transport.js';
import type { TlsMaterial } from '../transport/tls-files.js';
import { topicSet } from '../transport/topics.js';
import type { Transport } from '../transport/transport.js';
import { CloudConnection, type CloudLink } from '../cloud/cloud-link.js';
import { MetricsReporter } from '../cloud/metrics/metrics-reporter.js';
import { metricsSettingsProblem, type MetricsSettings } from '../cloud/metrics/metrics-settings.js';
import { interlockGauges } from '../cloud/metrics/runtime-gauges.js';
import { AuditForwarder, forwardingSettings, type AuditForwardingOptions } from '../cloud/audit-forwarder.js';

export interface RuntimeOptions {
  readonly cellDirectory: string;
  /**
   * The declarations digest the operator approved. When set and the loaded cell's digest differs, start-up is
   * refused, as a robot controller refuses a safety configuration whose checksum does not match.
   */
  readonly expectedDigest?: string;
  /** Where the audit database and the interlock's key live (created if missing). */
  readonly stateDirectory: string;
  /** An external broker (mqtt://, mqtts://). Without it, an embedded broker is started. */
  readonly brokerUrl?: string;
  /** TLS material for an mqtts:// brokerUrl (CA bundle, client certificate and key), checked by loadTlsFiles. */
  readonly brokerTls?: TlsMaterial;
  /** Port of the embedded broker (0 = any free port). */
  readonly embeddedPort?: number;
  readonly embeddedHost?: string;
  readonly topicPrefix?: string;
  readonly heartbeatPeriodMs?: number;
  /**
   * A transport built by the caller (the Greengrass IPC transport), not yet started; startRuntime starts it and
   * stops it on stop(). With it, neither brokerUrl nor an embedded broker is used.
   */
  readonly transport?: Transport;
  /** Signature-checking worker threads (default: 1 on a multi-core machine, else 0). */
  readonly verifierThreads?: number;
  /** The link to AWS IoT Core for metrics and audit forwarding; without it nothing leaves the device. */
  readonly cloud?: CloudLink;
  /** Cloud metrics (Device Defender and/or a plain topic) over `cloud`; needs it. */
  readonly metrics?: MetricsSettings;
  /** Audit forwarding over the cloud link (on by default when there is one; `enabled: false` turns it off). */
  readonly auditForwarding?: AuditForwardingOptions;
  readonly clock?: Clock;
  readonly log: Logger;
}

export interface Runtime {
  readonly cell: LoadedCell;
  readonly interlock: Interlock;
  readonly audit: SqliteAuditSurface;
  /** Replay memory and demotions (SQLite), as the interlock uses them. */
  readonly identity: SqliteIdentityStore;
  readonly transport: Transport;
  /** The embedded broker, when one was started; external clients connect to its url. */
  readonly broker: EmbeddedBroker | undefined;
  /**
   * With the embedded broker: the file of its clients' passwords (broker-clients.json in the state folder); a
   * client connects as its id (device, agent, operator, or `observer`) with the password there.
   */
  readonly brokerClientsPath: string | undefined;
  /** The url device drivers and agents connect to. */
  readonly brokerUrl: string;
  readonly interlockPublicKey: KeyObject;
  readonly interlockPublicKeyPath: string;
  /** The link to AWS IoT Core, when one was configured. */
  readonly cloud: CloudConnection | undefined;
  /** The cloud metrics reporter, when metrics were configured. */
  readonly metrics: MetricsReporter | undefined;
  /** The audit forwarder, once the cloud link is up (undefined before, without a link, or with forwarding off). */
  readonly auditForwarder: AuditForwarder | undefined;
  stop(): Promise<void>;
}

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    directory: string,
  ) {
    super(`declarations digest of ${directory} is ${actual}, but ${expected} is expected: the declarations changed since they were approved`);
    this.name = 'DigestMismatchError';
  }
}

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { log } = options;
  if (options.metrics !== undefined) {
    const problem = options.cloud === undefined ? 'metrics need a cloud link (a thing and a transport to AWS IoT Core)' : metricsSettingsProblem(options.metrics);
    if (problem !== undefined) throw new RangeError(problem);
  }
  // Checked before anything opens, so a bad forwarding option refuses the start with its reason.
  const forwarding = forwardingSettings(options.auditForwarding);
  const loaded = loadCell(options.cellDirectory);
  if (!loaded.ok) throw new DeclarationError(loaded.problems);
  const cell = loaded.cell;
  if (options.expectedDigest !== undefined && options.expectedDigest !== cell.declarations.digest) {
    throw new DigestMismatchError(options.expectedDigest, cell.declarations.digest, options.cellDirectory);
  }
  log.info(`declarations digest ${cell.declarations.digest}${options.expectedDigest === undefined ? ' (no expected digest configured)' : ' (matches the expected digest)'}`);

  const stateDirectory = resolve(options.stateDirectory);
  mkdirSync(stateDirectory, { recursive: true, mode: 0o700 });
  const keys = ensureKeyPair(join(stateDirectory, 'keys', 'interlock.key.pem'), join(stateDirectory, 'keys', 'interlock.pub.pem'));
  if (keys.created) log.info(`created the interlock's signing key; drivers verify releases with ${keys.publicKeyPath}`);
  // Signed checkpoints (size, head) with the interlock's own key: verify then detects dropped newest records.
  // Retention and the size cap as cell.yaml declares them (fixed for this run; a change takes effect at the next start).
  const { retentionMs, maxBytes } = cell.declarations.audit;
  // On its own writer thread: the commits and fsyncs of the records never hold the event loop that decides.
  const audit = await openWorkerAuditLog(join(stateDirectory, 'audit.db'), {
    checkpoints: { privateKey: keys.privateKey, origin: cell.declarations.cellId },
    log: (message) => log.child('audit').info(message),
    warn: (message) => log.child('audit').warn(message),
    ...(retentionMs === undefined ? {} : { retentionMs }),
    ...(maxBytes === undefined ? {} : { maxBytes }),
  });
  for (const notice of audit.notices) log.warn(`audit log: ${notice}`);
  let identity: SqliteIdentityStore;
  try {
    identity = SqliteIdentityStore.open(join(stateDirectory, 'identity.db'), { nowMs: () => (options.clock ?? systemClock).nowMs() });
  } catch (error) {
    audit.close();
    throw error;
  }
  if (identity.startedAfterUncleanStop) {
    log.warn(`replay memory starts a new epoch (${new Date(identity.epochMs).toISOString()}): first start or unclean stop; commands issued earlier are refused`);
  }
  // Before anything is received: latched trips, released setpoints, operator modes and rate windows as the last run left them.
  let bounds: BoundsMemory;
  try {
    bounds = restoreSafetyMemory({ declarations: cell.declarations, identity, audit, nowMs: (options.clock ?? systemClock).nowMs(), log: log.child('safety-memory') });
  } catch (error) {
    audit.close();
    identity.close();
    throw error;
  }
  const topics = topicSet(options.topicPrefix ?? '');
  const brokerClientsPath = join(stateDirectory, BROKER_CLIENTS_FILE);

  let broker: EmbeddedBroker | undefined;
  let transport: Transport;
  let brokerUrl: string;
  try {
    if (options.transport !== undefined) {
      transport = options.transport;
      brokerUrl = `${transport.name}:`;
    } else if (options.brokerUrl === undefined) {
      // Every client authenticates with a password made on first start (one per driver, agent, operator and the
      // observer) and gets only its role's topics; anonymous clients are refused.
      const clients = ensureBrokerClients(brokerClientsPath, cellBrokerIdentities(cell.declarations));
      if (clients.created.length > 0) log.info(`made broker passwords for ${clients.created.join(', ')} in ${brokerClientsPath}`);
      const denials = throttledWarn(log.child('broker'), 10_000);
      broker = new EmbeddedBroker({
        access: passwordAccess(clients.clients, topics),
        host: options.embeddedHost ?? '127.0.0.1',
        port: options.embeddedPort ?? 0,
        // Only the interlock speaks for itself: releases, decisions, the heartbeat, approvals, standings, metrics.
        protectedPublishFilters: interlockVoice(topics),
        log: (message) => log.child('broker').info(message),
        onPublishDenied: (denied) => denials(`refused a publish to ${denied.topic} from client ${denied.clientId ?? '(will)'}: ${denied.reason}`),
        onClientDenied: (denied) => denials(`refused ${denied.stage === 'connect' ? 'the connection' : 'a subscription'} of client ${denied.clientId}: ${denied.reason}`),
      });
      await broker.start();
      transport = broker.transport();
      brokerUrl = broker.url;
      log.info(`embedded broker listening on ${brokerUrl} (clients authenticate with ${brokerClientsPath}; only the interlock may publish releases)`);
    } else {
      transport = new MqttTransport({
        url: options.brokerUrl,
        clientId: `interlock-${cell.declarations.cellId}`,
        ...options.brokerTls,
        log: (message) => log.child('mqtt').info(message),
      });
      brokerUrl = options.brokerUrl;
    }
    await transport.start();
  } catch (error) {
    audit.close();
    identity.close();
    await broker?.stop();
    throw error;
  }

  const interlock = new Interlock({
    cell,
    transport,
    audit,
    signingKey: keys.privateKey,
    clock: options.clock ?? systemClock,
    topics,
    log: log.child('interlock'),
    identity,
    bounds,
    // On a multi-core device one worker verifies signatures beside the thread that decides and records.
    verifierThreads: options.verifierThreads ?? (availableParallelism() > 1 ? 1 : 0),
    ...(options.heartbeatPeriodMs === undefined ? {} : { heartbeatPeriodMs: options.heartbeatPeriodMs }),
  });
  try {
    await interlock.start();
  } catch (error) {
    // SAFETY: a start that failed half-way (a subscription the broker or nucleus refused) closes everything it opened,
    // with interlock-stopped recorded after interlock-started, so nothing lingers half-alive and the log says so.
    await interlock.stop().catch((e: unknown) => log.error(`stopping after a failed start: ${e instanceof Error ? e.message : String(e)}`));
    await transport.stop().catch(() => undefined);
    await broker?.stop().catch(() => undefined);
    audit.close();
    identity.close();
    throw error;
  }
  // The cloud half starts last and in the background: the interlock decides whether or not the cloud is reachable.
  const cloud = options.cloud === undefined ? undefined : new CloudConnection(options.cloud, { log: (message) => log.child('cloud').info(message) });
  cloud?.start();
  const metrics =
    cloud === undefined || options.metrics === undefined
      ? undefined
      : new MetricsReporter({ settings: options.metrics, transport: cloud.link.transport, thingName: cloud.link.thingName, started: cloud.started, audit, gauges: interlockGauges(interlock), stateDirectory, clock: options.clock ?? systemClock, log: log.child('metrics') });
  metrics?.start();
  // Audit records leave once the link is up; the cursor moves only on the receiver's watermark (audit-forwarder.ts).
  let auditForwarder: AuditForwarder | undefined;
  let stopped = false;
  if (cloud !== undefined && forwarding.enabled) {
    const link = cloud.link;
    void cloud.started.then(async () => {
      if (stopped) return;
      const forwarder = new AuditForwarder({ log: audit, transport: link.transport, thingName: link.thingName, logger: log.child('audit-forward'), ...(options.auditForwarding === undefined ? {} : { options: options.auditForwarding }) });
      auditForwarder = forwarder;
      await forwarder.start().catch((e: unknown) => log.error(`audit forwarding did not start: ${e instanceof Error ? e.message : String(e)}`));
    });
  }
  return {
    cell,
    interlock,
    audit,
    identity,
    transport,
    broker,
    brokerClientsPath: broker === undefined ? undefined : brokerClientsPath,
    brokerUrl,
    interlockPublicKey: keys.publicKey,
    interlockPublicKeyPath: keys.publicKeyPath,
    cloud,
    metrics,
    get auditForwarder() {
      return auditForwarder;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await interlock.stop();
      await metrics?.stop().catch((e: unknown) => log.warn(`stopping the metrics reporter: ${e instanceof Error ? e.message : String(e)}`));
      await auditForwarder?.stop().catch((e: unknown) => log.warn(`stopping the audit forwarder: ${e instanceof Error ? e.message : String(e)}`));
      await cloud?.stop().catch((e: unknown) => log.warn(`stopping the cloud link: ${e instanceof Error ? e.message : String(e)}`));
      await transport.stop();
      await broker?.stop();
      audit.close();
      identity.close();
    },
  };
}
