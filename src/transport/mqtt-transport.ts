// Transport over MQTT (package `mqtt`) for any broker: mosquitto, the embedded broker over TCP, AWS IoT Core.
// It never interprets payloads, and never lets a publish it has reported as failed go out later on a reconnect.

import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import type { IClientOptions, IClientSubscribeOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import { createLogger } from '../core/log.js';
import { CLIENT_MAX_PACKET_BYTES } from './payload-limits.js';
import { topicFilterProblem, topicMatches, topicNameProblem } from './topics.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from './transport.js';

export interface MqttTransportOptions {
  /** `mqtt://host:port` or `mqtts://host:port`. Credentials in the URL are never logged. */
  readonly url: string;
  /** Default: `interlock_` plus 12 random hex digits (22 characters, within the 3.1 limit of 23). */
  readonly clientId?: string;
  readonly username?: string;
  readonly password?: string | Buffer;
  /**
   * 4 = MQTT 3.1.1 (default: the only version the embedded broker, aedes, accepts; mosquitto takes it too).
   * 5 = MQTT 5 (mosquitto, AWS IoT Core): refused publishes are reported by reason code, and overlapping
   * subscriptions are told apart by subscription identifiers where the broker offers them.
   */
  readonly protocolVersion?: 4 | 5;
  /** Bounds `start()`: TCP connect, TLS and CONNACK together. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** Delay between reconnect attempts. Must be > 0: mqtt.js keeps a resubscribe list only if it reconnects. Default 1000. */
  readonly reconnectPeriodMs?: number;
  /** A QoS 1 publish without PUBACK after this long is rejected (outcome unknown). Default 10 000. */
  readonly publishTimeoutMs?: number;
  /** Bounds `stop()`: in-flight publishes get this long to be acknowledged. Default 2000. */
  readonly stopTimeoutMs?: number;
  /** Keepalive in seconds; a dead broker is noticed after about 1.5 times this. Default 30. */
  readonly keepaliveS?: number;
  /**
   * MQTT 5 only: the largest packet this client accepts, told to the broker in CONNECT (Maximum Packet Size), which
   * must then not send it a larger one (it drops the message for this client). Default CLIENT_MAX_PACKET_BYTES.
   * MQTT 3.1.1 has no way to say it: there only the broker's own limit applies.
   */
  readonly maxPacketBytes?: number;
  /** TLS material for `mqtts://`, passed through to `tls.connect`. */
  readonly ca?: Buffer | readonly Buffer[];
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly log?: (msg: string) => void;
}

interface LocalSubscription {
  readonly filter: string;
  readonly handler: MessageHandler;
  active: boolean;
}

/** One broker-side subscription, shared by every local subscription with the same filter. */
interface BrokerFilter {
  readonly filter: string;
  /** MQTT 5 subscription identifier, when the broker supports them. */
  readonly id: number | undefined;
  readonly subscriptions: Set<LocalSubscription>;
  readonly ready: Promise<void>;
}

interface PendingPublish {
  readonly topic: string;
  messageId: number | undefined;
  settled: boolean;
  settle(error?: Error): void;
  /** Resolves once settled either way; lets `stop()` wait for in-flight publishes. */
  readonly done: Promise<void>;
}

type State = 'new' | 'started' | 'stopped';

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  reconnectPeriodMs: 1_000,
  publishTimeoutMs: 10_000,
  stopTimeoutMs: 2_000,
  keepaliveS: 30,
} as const;

// MQTT 5 subscription identifiers are variable byte integers: 1 .. 268 435 455.
const MAX_SUBSCRIPTION_ID = 268_435_455;

export class MqttTransport implements Transport {
  readonly name = 'mqtt';
  private readonly options: MqttTransportOptions;
  private readonly safeUrl: string;
  private readonly log: (msg: string) => void;
  private readonly clientId: string;
  private client: MqttClient | undefined;
  private state: State = 'new';
  private starting: Promise<void> | undefined;
  private abortStart: ((error: Error) => void) | undefined;
  private stopping: Promise<void> | undefined;
  private connected = false;
  private subscriptionIdsAvailable = false;
  private nextSubscriptionId = 1;
  private lastLogged = '';
  private readonly connectionListeners = new Set<(connected: boolean) => void>();
  private readonly brokerFilters = new Map<string, BrokerFilter>();
  private readonly pending = new Set<PendingPublish>();
  /** The socket whose writes this turn are being held back for one system call (batchWrites). */
  private corkedStream: unknown;

  constructor(options: MqttTransportOptions) {
    const reconnect = options.reconnectPeriodMs ?? DEFAULTS.reconnectPeriodMs;
    // Load-time errors: a transport that cannot keep its subscriptions must not be built at all.
    if (!(reconnect > 0)) throw new Error(`mqtt transport: reconnectPeriodMs must be > 0 (got ${reconnect})`);
    for (const key of ['connectTimeoutMs', 'publishTimeoutMs', 'stopTimeoutMs', 'maxPacketBytes'] as const) {
      const value = options[key];
      if (value !== undefined && !(value > 0)) throw new Error(`mqtt transport: ${key} must be > 0 (got ${value})`);
    }
    this.options = options;
    this.safeUrl = redactUrl(options.url);
    this.clientId = options.clientId ?? `interlock_${randomBytes(6).toString('hex')}`;
    const log = options.log ?? createLogger('transport:mqtt').warn;
    this.log = (msg) => {
      // A broker that stays down produces the same error every reconnect period; say it once.
      if (msg === this.lastLogged) return;
      this.lastLogged = msg;
      log(`${this.safeUrl}: ${msg}`);
    };
  }

  start(): Promise<void> {
    if (this.state === 'stopped') {
      return Promise.reject(new Error(`mqtt transport for ${this.safeUrl} was stopped; create a new one`));
    }
    this.starting ??= this.connect().catch((error: unknown) => {
      // Allow a later retry: a broker that was down at boot may come up.
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  isConnected(): boolean {
    return this.state === 'started' && this.client?.connected === true;
  }

  onConnectionChange(listener: (connected: boolean) => void): () => void {
    this.connectionListeners.add(listener);
    return () => {
      this.connectionListeners.delete(listener);
    };
  }

  async publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<void> {
    const client = this.requireConnected(`publish to ${topic}`);
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new Error(`mqtt publish rejected: ${problem}`);
    this.batchWrites(client);
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const retain = options.retain ?? false;
    if ((options.qos ?? 1) === 0) {
      return new Promise((resolve, reject) => {
        client.publish(topic, body, { qos: 0, retain }, (error) => {
          if (error) reject(new Error(`mqtt publish to ${topic} on ${this.safeUrl} failed: ${error.message}`));
          else resolve();
        });
      });
    }
    return this.publishQos1(client, topic, body, retain);
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    const client = this.requireConnected(`subscribe to ${filter}`);
    const problem = topicFilterProblem(filter);
    if (problem !== undefined) throw new Error(`mqtt subscribe rejected: ${problem}`);
    const local: LocalSubscription = { filter, handler, active: true };
    let entry = this.brokerFilters.get(filter);
    if (entry === undefined) {
      entry = this.subscribeAtBroker(client, filter);
      this.brokerFilters.set(filter, entry);
    }
    entry.subscriptions.add(local);
    try {
      await entry.ready;
    } catch (error: unknown) {
      local.active = false;
      entry.subscriptions.delete(local);
      if (this.brokerFilters.get(filter) === entry) {
        this.brokerFilters.delete(filter);
        // A SUBSCRIBE lost with its connection stays on mqtt.js's resubscribe list and would come back after the
        // reconnect (under MQTT 5 with an identifier nobody dispatches on); take it off.
        client.unsubscribe(filter, () => undefined);
      }
      throw error;
    }
    return { unsubscribe: () => this.unsubscribe(local) };
  }

  private async connect(): Promise<void> {
    const client = mqtt.connect(this.options.url, this.clientOptions());
    this.client = client;
    client.on('connect', (connack: IConnackPacket) => {
      // Nagle off: a QoS 1 exchange (PUBLISH, PUBACK, the next PUBLISH) otherwise waits for the peer's delayed ACK,
      // about 40 ms each way on Linux, which was most of a command's round trip over the embedded broker.
      (client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.subscriptionIdsAvailable =
        this.protocolVersion() === 5 && connack.properties?.subscriptionIdentifiersAvailable !== false;
      this.lastLogged = '';
      if (this.state === 'started') this.setConnected(true);
    });
    client.on('close', () => {
      this.abandonPending('connection lost before PUBACK (outcome unknown)');
      this.setConnected(false);
    });
    client.on('error', (error: Error) => this.log(error.message));
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => this.dispatch(topic, payload, packet));

    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no CONNACK within ${timeoutMs} ms`)), timeoutMs);
        const onConnect = (): void => finish();
        const onError = (error: Error): void => finish(error);
        const finish = (error?: Error): void => {
          clearTimeout(timer);
          client.off('connect', onConnect);
          client.off('error', onError);
          this.abortStart = undefined;
          if (error) reject(error);
          else resolve();
        };
        this.abortStart = finish;
        client.on('connect', onConnect);
        client.on('error', onError);
      });
    } catch (error: unknown) {
      this.client = undefined;
      // This client is abandoned; its late 'close' must not be reported over a retry's connection.
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`mqtt transport cannot connect to ${this.safeUrl}: ${reason}`);
    }
    // stop() may have run between the CONNACK and this continuation; it has already ended the client.
    if (this.state === 'stopped') throw new Error(`mqtt transport for ${this.safeUrl} was stopped while connecting`);
    this.state = 'started';
    this.setConnected(true);
  }

  private clientOptions(): IClientOptions {
    const o = this.options;
    const options: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: this.protocolVersion(),
      clean: true,
      keepalive: o.keepaliveS ?? DEFAULTS.keepaliveS,
      reconnectPeriod: o.reconnectPeriodMs ?? DEFAULTS.reconnectPeriodMs,
      connectTimeout: o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      // Resubscribing is what makes subscriptions survive a reconnect; it is the default, stated for the reader.
      resubscribe: true,
      // QoS 0 messages queued while offline would go out late; the contract is to reject instead.
      queueQoSZero: false,
    };
    // mqtt.js checks the size only after parsing a whole packet; the point is that the broker never sends one.
    if (this.protocolVersion() === 5) options.properties = { maximumPacketSize: o.maxPacketBytes ?? CLIENT_MAX_PACKET_BYTES };
    if (o.username !== undefined) options.username = o.username;
    if (o.password !== undefined) options.password = o.password;
    // Never relaxed: a broker whose certificate does not verify (or names another host) is not connected to.
    options.rejectUnauthorized = true;
    if (o.ca !== undefined) options.ca = Array.isArray(o.ca) ? [...o.ca] : (o.ca as Buffer);
    if (o.cert !== undefined) options.cert = o.cert;
    if (o.key !== undefined) options.key = o.key;
    return options;
  }

  private protocolVersion(): 4 | 5 {
    return this.options.protocolVersion ?? 4;
  }

  /**
   * Holds this turn's writes back and sends them together once the turn is over (setImmediate), one system call for
   * every packet of the turn instead of one each: at a thousand commands a second the interlock's writes (releases,
   * decisions, PUBACKs for what it receives) were its largest single cost. Order is kept; Nagle stays off.
   */
  private batchWrites(client: MqttClient): void {
    const stream = client.stream as { cork?: () => void; uncork?: () => void } | undefined;
    if (stream === undefined || stream === this.corkedStream || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return;
    stream.cork();
    this.corkedStream = stream;
    setImmediate(() => {
      if (this.corkedStream === stream) this.corkedStream = undefined;
      stream.uncork?.();
    });
  }

  private requireConnected(what: string): MqttClient {
    const client = this.client;
    if (this.state !== 'started' || client === undefined || !client.connected) {
      const why = this.state === 'new' ? 'not started' : this.state === 'stopped' ? 'stopped' : 'not connected';
      throw new Error(`mqtt ${what} rejected: ${why} (${this.safeUrl})`);
    }
    return client;
  }

  private publishQos1(client: MqttClient, topic: string, body: Buffer, retain: boolean): Promise<void> {
    const timeoutMs = this.options.publishTimeoutMs ?? DEFAULTS.publishTimeoutMs;
    return new Promise((resolve, reject) => {
      let markDone = (): void => undefined;
      const pending: PendingPublish = {
        topic,
        messageId: undefined,
        settled: false,
        done: new Promise<void>((r) => {
          markDone = r;
        }),
        settle: (error) => {
          if (pending.settled) return;
          pending.settled = true;
          clearTimeout(timer);
          this.pending.delete(pending);
          markDone();
          if (error) {
            this.forget(client, pending);
            reject(error);
          } else {
            resolve();
          }
        },
      };
      const timer = setTimeout(
        () => pending.settle(new Error(`mqtt publish to ${topic}: no PUBACK within ${timeoutMs} ms (outcome unknown)`)),
        timeoutMs,
      );
      this.pending.add(pending);
      client.publish(
        topic,
        body,
        {
          qos: 1,
          retain,
          // publish() does not return the message id. The default store is synchronous, so when it has just
          // stored the packet the last allocated id is ours; we need it to withdraw the message on failure.
          cbStorePut: () => {
            pending.messageId = client.getLastMessageId();
            if (pending.settled) this.forget(client, pending);
          },
        },
        (error) => {
          if (!error) return pending.settle();
          const code = (error as Error & { code?: unknown }).code;
          const suffix = typeof code === 'number' ? ` (reason code ${code})` : '';
          pending.settle(new Error(`mqtt publish to ${topic} refused by ${this.safeUrl}: ${error.message}${suffix}`));
        },
      );
    });
  }

  /**
   * Withdraws a publish we have reported as failed, so that mqtt.js does not resend it after a reconnect.
   * SAFETY: a caller told "failed" may act on that (retry, deny, go to safe state); a late duplicate of an
   * actuator command arriving minutes after the broker comes back would be a stale command.
   */
  private forget(client: MqttClient, pending: PendingPublish): void {
    if (pending.messageId !== undefined) client.removeOutgoingMessage(pending.messageId);
  }

  private abandonPending(reason: string): void {
    for (const pending of [...this.pending]) pending.settle(new Error(`mqtt publish to ${pending.topic}: ${reason}`));
  }

  private subscribeAtBroker(client: MqttClient, filter: string): BrokerFilter {
    const id = this.subscriptionIdsAvailable ? this.allocateSubscriptionId() : undefined;
    const options: IClientSubscribeOptions = { qos: 1 };
    if (id !== undefined) options.properties = { subscriptionIdentifier: id };
    // mqtt.js turns a SUBACK failure code (0x80 and up) into an error, so a refusal rejects here.
    const ready = client.subscribeAsync(filter, options).then(
      () => undefined,
      (error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`mqtt subscribe to ${filter} on ${this.safeUrl} failed: ${reason}`);
      },
    );
    return { filter, id, subscriptions: new Set(), ready };
  }

  private allocateSubscriptionId(): number {
    const id = this.nextSubscriptionId;
    this.nextSubscriptionId = id >= MAX_SUBSCRIPTION_ID ? 1 : id + 1;
    return id;
  }

  private async unsubscribe(local: LocalSubscription): Promise<void> {
    if (!local.active) return;
    // Delivery stops here, synchronously; the broker side is only housekeeping.
    local.active = false;
    const entry = this.brokerFilters.get(local.filter);
    if (entry === undefined || !entry.subscriptions.delete(local) || entry.subscriptions.size > 0) return;
    this.brokerFilters.delete(local.filter);
    const client = this.client;
    if (client === undefined || this.state !== 'started') return;
    if (!client.connected) {
      // mqtt.js drops the filter from its resubscribe list now and sends UNSUBSCRIBE after reconnecting.
      client.unsubscribe(local.filter);
      return;
    }
    try {
      await client.unsubscribeAsync(local.filter);
    } catch (error: unknown) {
      this.log(`unsubscribe from ${local.filter} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.state !== 'started') return;
    const raw = packet.properties?.subscriptionIdentifier;
    // Overlapping filters: a broker may send one copy per matching subscription or one per client (both allowed).
    // MQTT 5: mosquitto sends one per subscription, each naming its subscription identifier, so a copy goes only
    // to the filter it names. MQTT 3.1.1 carries no identifiers; mosquitto 2.0 and aedes then send one copy per
    // client, which is what the matching below assumes (the contract suite checks it per broker).
    const ids = raw === undefined ? undefined : Array.isArray(raw) ? raw : [raw];
    for (const entry of [...this.brokerFilters.values()]) {
      if (ids !== undefined && (entry.id === undefined || !ids.includes(entry.id))) continue;
      if (!topicMatches(entry.filter, topic)) continue;
      for (const local of [...entry.subscriptions]) {
        if (!local.active) continue;
        try {
          // A copy per handler: one handler mutating its buffer must not change what another one sees.
          local.handler(topic, Buffer.from(payload));
        } catch (error: unknown) {
          this.log(`handler for ${local.filter} threw: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    for (const listener of [...this.connectionListeners]) {
      try {
        listener(connected);
      } catch (error: unknown) {
        this.log(`connection listener threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  private async shutdown(): Promise<void> {
    const wasStarted = this.state === 'started';
    this.state = 'stopped';
    this.abortStart?.(new Error('transport stopped while connecting'));
    for (const entry of this.brokerFilters.values()) for (const local of entry.subscriptions) local.active = false;
    this.brokerFilters.clear();
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      if (wasStarted && client.connected) {
        // Graceful: in-flight publishes get until the deadline for their PUBACK, then DISCONNECT.
        const deadline = Date.now() + (this.options.stopTimeoutMs ?? DEFAULTS.stopTimeoutMs);
        await settledWithin(Promise.all([...this.pending].map((p) => p.done)), deadline - Date.now());
        this.abandonPending('transport stopped before PUBACK (outcome unknown)');
        await endClient(client, Math.max(deadline - Date.now(), 100));
      } else {
        // Not connected (still connecting, or between reconnect attempts): nothing can finish, and a graceful
        // end would leave a socket that is still connecting to complete its handshake after we are gone.
        this.abandonPending('transport stopped before PUBACK (outcome unknown)');
        client.end(true);
      }
      client.removeAllListeners();
      // mqtt.js may still emit errors from a socket being torn down; an EventEmitter without listener throws.
      client.on('error', () => undefined);
    }
    this.setConnected(false);
  }
}

/** Ends the client gracefully (DISCONNECT), and destroys the socket if that has not finished in time. */
async function endClient(client: MqttClient, timeoutMs: number): Promise<void> {
  const ended = new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
  // end(true) is ignored once a graceful end is under way, so the socket is destroyed directly.
  if (!(await settledWithin(ended, timeoutMs))) client.stream?.destroy();
}

/** Waits for `promise` at most `ms`; true if it settled in time. Clears its timer so it never holds the process. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(ms, 0));
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Hides `user:password@` so URLs can go into logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}
