// The zero-setup broker: aedes on 127.0.0.1 over TCP for the simulator and agents, plus an in-process Transport
// for the interlock. Every TCP client authenticates (username and password, checked by `access`) and may then
// publish and subscribe only within its grant (broker-acl.ts); none ever gets a message onto a protected topic (the
// interlock's voice), nor a packet larger than maxPacketBytes into the broker.

import type { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes';
import { createLogger } from '../core/log.js';
import { mayPublish, mayRead, maySubscribe } from './broker-acl.js';
import type { BrokerAccess, ClientAccess } from './broker-clients.js';
import { limitPacketSize } from './packet-size-guard.js';
import { MAX_PACKET_BYTES, MQTT_MAX_PACKET_BYTES } from './payload-limits.js';
import { topicFilterProblem, topicMatches, topicNameProblem } from './topics.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from './transport.js';

export interface EmbeddedBrokerOptions {
  /**
   * Who may connect, and what each client may do. No default: a broker without it would be open to any local
   * process. A client that is refused gets CONNACK 4 (bad username or password) and is disconnected.
   */
  readonly access: BrokerAccess;
  /** Default 127.0.0.1: the broker is for one host; listening on a reachable interface is a deliberate choice. */
  readonly host?: string;
  /** Default 0: any free port; read `port` or `url` after `start()`. */
  readonly port?: number;
  /** Topic filters only the in-process transport may publish to, whatever a client's grant says. Default `['actuator/+/command']`. */
  readonly protectedPublishFilters?: readonly string[];
  /** Called for every refused publish (including Last Will messages); a forged actuator command is worth an alert. */
  readonly onPublishDenied?: (event: PublishDenied) => void;
  /** Called for every refused connection and subscription (throttle in the caller if it logs). */
  readonly onClientDenied?: (event: ClientDenied) => void;
  /**
   * Largest MQTT packet a TCP client may send, header included (default MAX_PACKET_BYTES). A client that announces
   * a larger one is disconnected before its body is read. Publishes through `transport()` are not limited.
   */
  readonly maxPacketBytes?: number;
  readonly log?: (msg: string) => void;
}

export interface PublishDenied {
  /** MQTT client id of the offender, or undefined for a will published after its client was gone. */
  readonly clientId: string | undefined;
  readonly topic: string;
  readonly reason: string;
}

export interface ClientDenied {
  readonly clientId: string;
  readonly username: string | undefined;
  /** `connect` (authentication) or `subscribe` (outside the grant). */
  readonly stage: 'connect' | 'subscribe';
  readonly reason: string;
}

export const DEFAULT_PROTECTED_PUBLISH_FILTERS: readonly string[] = ['actuator/+/command'];

type BrokerState = 'new' | 'starting' | 'running' | 'stopped';

export class EmbeddedBroker {
  readonly protectedPublishFilters: readonly string[];
  readonly maxPacketBytes: number;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly options: EmbeddedBrokerOptions;
  private readonly log: (msg: string) => void;
  private state: BrokerState = 'new';
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private boundPort: number | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly transports = new Set<InProcessTransport>();

  /** The access of each connected TCP client, set when it authenticated. */
  private readonly clients = new WeakMap<Client, ClientAccess>();

  constructor(options: EmbeddedBrokerOptions) {
    // Load-time error: a JavaScript caller could leave it out, and the broker would then be open.
    if (typeof options?.access?.authenticate !== 'function') throw new Error('embedded broker: options.access is required (who may connect)');
    const filters = options.protectedPublishFilters ?? DEFAULT_PROTECTED_PUBLISH_FILTERS;
    for (const filter of filters) {
      const problem = topicFilterProblem(filter);
      // Load-time error: a typo here would silently leave actuator topics open.
      if (problem !== undefined) throw new Error(`embedded broker: bad protected filter: ${problem}`);
    }
    this.protectedPublishFilters = [...filters];
    const maxPacketBytes = options.maxPacketBytes ?? MAX_PACKET_BYTES;
    // Load-time error: a limit always applies (aedes has none of its own); at most MQTT's own maximum (for a bench to
    // compare with), at least enough for a CONNECT.
    if (!Number.isSafeInteger(maxPacketBytes) || maxPacketBytes < 64 || maxPacketBytes > MQTT_MAX_PACKET_BYTES) {
      throw new Error(`embedded broker: maxPacketBytes must be an integer from 64 to ${MQTT_MAX_PACKET_BYTES} (got ${maxPacketBytes})`);
    }
    this.maxPacketBytes = maxPacketBytes;
    this.host = options.host ?? '127.0.0.1';
    this.requestedPort = options.port ?? 0;
    this.options = options;
    this.log = options.log ?? createLogger('transport:embedded-broker').warn;
  }

  /** The TCP port actually bound; only after `start()`. */
  get port(): number {
    if (this.boundPort === undefined) throw new Error('embedded broker is not started');
    return this.boundPort;
  }

  /** `mqtt://host:port` for external clients; only after `start()`. */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `mqtt://${host}:${this.port}`;
  }

  isRunning(): boolean {
    return this.state === 'running';
  }

  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error(`embedded broker cannot start: it is ${this.state}`));
    this.state = 'starting';
    this.starting = this.listen();
    return this.starting;
  }

  private async listen(): Promise<void> {
    // aedes 1.x: the constructor no longer starts the broker; createBroker() awaits persistence setup.
    const aedes = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        const reason = this.authenticate(client, username, password);
        if (reason === undefined) return done(null, true);
        this.clientDenied({ clientId: client.id, username, stage: 'connect', reason });
        done(Object.assign(new Error(reason), { returnCode: 4 as const }), null);
      },
      authorizeSubscribe: (client, subscription, done) => {
        const access = client === null ? undefined : this.clients.get(client);
        if (access !== undefined && maySubscribe(access.grant, subscription.topic)) return done(null, subscription);
        const reason = `${subscription.topic} is outside what ${access === undefined ? 'an unauthenticated client' : `${access.role} ${access.username}`} may read`;
        this.clientDenied({ clientId: client?.id ?? '', username: access?.username, stage: 'subscribe', reason });
        // A null subscription is answered with SUBACK 0x80 (failure); the client stays connected.
        done(null, null);
      },
      authorizeForward: (client, packet) => {
        // A second wall behind authorizeSubscribe: nothing reaches a client outside its grant.
        const access = this.clients.get(client);
        return access !== undefined && mayRead(access.grant, packet.topic) ? packet : null;
      },
      authorizePublish: (client, packet, callback) => {
        const reason = this.publishDenial(packet.topic, packet.retain, client === null ? undefined : this.clients.get(client));
        if (reason === undefined) return callback(null);
        const clientId = client?.id;
        // Told once: to the caller's handler when there is one (which may throttle: a client chooses how often), or logged.
        if (this.options.onPublishDenied !== undefined) this.options.onPublishDenied({ clientId, topic: packet.topic, reason });
        else this.log(`refused publish to ${packet.topic} from ${clientId ?? '(will of a departed client)'}: ${reason}`);
        // MQTT 3.1.1 has no negative PUBACK: aedes closes the offender's connection and delivers nothing.
        callback(new Error(reason));
      },
    });
    aedes.on('clientError', (client: Client, error: Error) => this.log(`client ${client.id}: ${error.message}`));
    aedes.on('connectionError', (client: Client, error: Error) => this.log(`connection ${client.id}: ${error.message}`));
    // An 'error' event without a listener would throw and take the interlock down with it.
    // aedes's typings omit 'error' (it emits it on persistence failures), hence the widening to EventEmitter.
    const emitter: EventEmitter = aedes;
    emitter.on('error', (error: Error) => this.log(`broker error: ${error.message}`));
    this.aedes = aedes;

    const server = createServer((socket) => {
      this.sockets.add(socket);
      // Nagle off, as on the client side (mqtt-transport.ts): a PUBACK or a delivery must not wait for a delayed ACK.
      socket.setNoDelay(true);
      socket.on('close', () => this.sockets.delete(socket));
      // SAFETY: aedes (1.2.0, mqtt-packet 9) buffers a packet whole, however large its header says it is; copying,
      // converting and parsing a 100 MB publish stalls the event loop past the drivers' heartbeat timeout.
      aedes.handle(limitPacketSize(socket, this.maxPacketBytes));
    });
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.requestedPort, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error: unknown) {
      this.state = 'stopped';
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`embedded broker cannot listen on ${this.host}:${this.requestedPort}: ${reason}`);
    }
    server.on('error', (error: Error) => this.log(`server error: ${error.message}`));
    this.boundPort = (server.address() as AddressInfo).port;
    // stop() may have been called meanwhile; it waits for this start and then closes what it opened.
    if (this.state === 'starting') this.state = 'running';
  }

  /**
   * A Transport for the interlock that talks to aedes directly, without a socket. It is the only way to publish
   * to a protected topic: aedes.publish() does not pass through authorizePublish.
   */
  transport(): Transport {
    const transport = new InProcessTransport({
      aedes: () => (this.state === 'running' ? this.aedes : undefined),
      forget: (t) => this.transports.delete(t),
      log: this.log,
    });
    this.transports.add(transport);
    return transport;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private clientDenied(event: ClientDenied): void {
    if (this.options.onClientDenied !== undefined) this.options.onClientDenied(event);
    else this.log(`refused ${event.stage === 'connect' ? 'connection' : 'subscription'} of client ${event.clientId} (user ${event.username ?? 'none'}): ${event.reason}`);
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined): string | undefined {
    if (username === undefined || password === undefined) return 'anonymous clients are refused (give a username and password from broker-clients.json)';
    const access = this.options.access.authenticate(username, password);
    if (access === undefined) return 'unknown username or wrong password';
    // SAFETY: a client id is bound to its user: otherwise one client could take over (disconnect) another's
    // session by connecting with its id, a way to silence a driver or an operator.
    if (client.id !== username && !client.id.startsWith(`${username}:`)) return `client id must be "${username}" or start with "${username}:"`;
    this.clients.set(client, access);
    return undefined;
  }

  private publishDenial(topic: string, retain: boolean, access: ClientAccess | undefined): string | undefined {
    // Kept from aedes's default authorizePublish, which ours replaces.
    if (topic.startsWith('$SYS/')) return '$SYS/ topics are reserved for the broker';
    for (const filter of this.protectedPublishFilters) {
      // SAFETY: the same matcher the subscribers use, so anything a subscriber to the filter would receive is refused.
      if (topicMatches(filter, topic)) return `topic is reserved for the interlock (matches ${filter})`;
    }
    if (access === undefined) return 'the client is not authenticated';
    if (!mayPublish(access.grant, topic)) return `${access.role} ${access.username} may not publish there`;
    // SAFETY: the broker keeps a retained message until it is cleared, one per topic; an agent may name any device
    // in its command topics, so retained commands would be memory without bound (and replayed to every restart).
    // Only the interlock retains (approvals, standings), in process.
    if (retain) return 'retained messages are refused from clients (only the interlock retains)';
    return undefined;
  }

  private async shutdown(): Promise<void> {
    this.state = 'stopped';
    for (const transport of [...this.transports]) transport.brokerStopped();
    await this.starting?.catch(() => undefined);
    const server = this.server;
    const aedes = this.aedes;
    // Stop accepting first, so nobody connects while the clients are being closed.
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    // Sockets that never sent CONNECT are not aedes clients yet; they would hold server.close() open.
    for (const socket of this.sockets) socket.destroy();
    await serverClosed;
  }
}

interface InProcessHost {
  aedes(): Aedes | undefined;
  forget(transport: InProcessTransport): void;
  log(msg: string): void;
}

interface InProcessSubscription {
  readonly filter: string;
  readonly deliver: (packet: AedesPublishPacket, callback: () => void) => void;
  active: boolean;
}

/** The interlock's side of the embedded broker: same semantics as MqttTransport, no socket, no ACL. */
class InProcessTransport implements Transport {
  readonly name = 'embedded';
  private state: 'new' | 'started' | 'stopped' = 'new';
  private connected = false;
  private stopping: Promise<void> | undefined;
  private readonly subscriptions = new Set<InProcessSubscription>();
  private readonly connectionListeners = new Set<(connected: boolean) => void>();

  constructor(private readonly host: InProcessHost) {}

  async start(): Promise<void> {
    if (this.state === 'stopped') throw new Error('embedded transport was stopped; create a new one');
    if (this.host.aedes() === undefined) throw new Error('embedded transport cannot start: the broker is not running');
    this.state = 'started';
    this.setConnected(true);
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  isConnected(): boolean {
    return this.state === 'started' && this.host.aedes() !== undefined;
  }

  onConnectionChange(listener: (connected: boolean) => void): () => void {
    this.connectionListeners.add(listener);
    return () => {
      this.connectionListeners.delete(listener);
    };
  }

  async publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<void> {
    const aedes = this.requireConnected(`publish to ${topic}`);
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new Error(`embedded publish rejected: ${problem}`);
    const packet: PublishPacket = {
      cmd: 'publish',
      topic,
      // A private copy: the caller may reuse its buffer while TCP subscribers are still being written to.
      payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload),
      qos: options.qos ?? 1,
      retain: options.retain ?? false,
      dup: false,
    };
    // Resolves once aedes has handed the message to every matching subscriber (what a PUBACK stands for here).
    await new Promise<void>((resolve, reject) => {
      aedes.publish(packet, (error) => {
        if (error) reject(new Error(`embedded publish to ${topic} failed: ${error.message}`));
        else resolve();
      });
    });
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    const aedes = this.requireConnected(`subscribe to ${filter}`);
    const problem = topicFilterProblem(filter);
    if (problem !== undefined) throw new Error(`embedded subscribe rejected: ${problem}`);
    const subscription: InProcessSubscription = {
      filter,
      active: true,
      // One deliver function per subscription: mqemitter calls each registered function once per message, which
      // gives "once per matching subscription" even for identical or overlapping filters.
      deliver: (packet, callback) => {
        const topic = packet.topic;
        // aedes's own `#` matches `$SYS/...` internally; MQTT says a leading wildcard must not (topicMatches).
        if (subscription.active && topicMatches(filter, topic)) {
          const body = typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : Buffer.from(packet.payload);
          // Deliver on a later turn, as a network would: a handler never runs inside its publisher's call, and
          // a slow handler does not hold aedes's delivery to TCP clients.
          setImmediate(() => {
            if (!subscription.active) return;
            try {
              handler(topic, body);
            } catch (error: unknown) {
              this.host.log(`handler for ${filter} threw: ${error instanceof Error ? error.message : String(error)}`);
            }
          });
        }
        callback();
      },
    };
    this.subscriptions.add(subscription);
    try {
      await new Promise<void>((resolve, reject) => {
        aedes.subscribe(filter, subscription.deliver, (error?: Error) => {
          if (error) reject(new Error(`embedded subscribe to ${filter} failed: ${error.message}`));
          else resolve();
        });
      });
    } catch (error: unknown) {
      subscription.active = false;
      this.subscriptions.delete(subscription);
      throw error;
    }
    return { unsubscribe: () => this.unsubscribe(subscription) };
  }

  /** Called by the broker when it stops: from then on this transport is disconnected for good. */
  brokerStopped(): void {
    for (const subscription of this.subscriptions) subscription.active = false;
    this.subscriptions.clear();
    this.setConnected(false);
  }

  private requireConnected(what: string): Aedes {
    const aedes = this.host.aedes();
    if (this.state !== 'started' || aedes === undefined) {
      const why = this.state === 'new' ? 'not started' : this.state === 'stopped' ? 'stopped' : 'broker not running';
      throw new Error(`embedded ${what} rejected: ${why}`);
    }
    return aedes;
  }

  private async unsubscribe(subscription: InProcessSubscription): Promise<void> {
    if (!subscription.active) return;
    subscription.active = false;
    this.subscriptions.delete(subscription);
    await this.removeFromBroker(subscription);
  }

  private async removeFromBroker(subscription: InProcessSubscription): Promise<void> {
    const aedes = this.host.aedes();
    if (aedes === undefined) return;
    await new Promise<void>((resolve) => aedes.unsubscribe(subscription.filter, subscription.deliver, () => resolve()));
  }

  private async shutdown(): Promise<void> {
    this.state = 'stopped';
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    for (const subscription of subscriptions) subscription.active = false;
    await Promise.all(subscriptions.map((s) => this.removeFromBroker(s)));
    this.host.forget(this);
    this.setConnected(false);
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    for (const listener of [...this.connectionListeners]) {
      try {
        listener(connected);
      } catch (error: unknown) {
        this.host.log(`connection listener threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

// The same checks as in mqtt-transport.ts: aedes validates wire packets but not its in-process API, and a
// wildcard "topic" published in-process would otherwise reach subscribers.
