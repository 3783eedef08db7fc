// Greengrass IPC (aws-iot-device-sdk-v2 greengrasscoreipc) behind the Transport seam: local pub/sub, IoT Core through
// the nucleus's MQTT proxy, and the component calls (updateState, configuration). The SDK client never reconnects by
// itself, so IpcConnection builds a new client after every drop, with backoff, and replays each subscription on it.
// It never logs the SVCUID token, and while disconnected nothing is published (every publish rejects).

import { greengrasscoreipc, io } from 'aws-iot-device-sdk-v2';
import { topicFilterProblem, topicNameProblem } from './topics.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from './transport.js';

type Client = greengrasscoreipc.Client;
const { model } = greengrasscoreipc;

export interface IpcConnectionOptions {
  /** The nucleus's Unix socket; default AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT. */
  readonly socketPath?: string;
  /** The component's auth token; default SVCUID. A secret: it is never logged. */
  readonly authToken?: string;
  /** The connect handshake has no timeout of its own in the SDK; this bounds it. Default 5,000 ms. */
  readonly connectTimeoutMs?: number;
  /** Backoff between reconnect attempts: doubles from the first to the second. Default 100 ms and 5,000 ms. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly log?: (msg: string) => void;
}

/** Something that must be set up again on every new client (a subscription); returns its cleanup. */
type Restorer = (client: Client) => Promise<void>;

/** One component's link to the nucleus: the current client, rebuilt after each drop. */
export class IpcConnection {
  readonly #socketPath: string;
  readonly #authToken: string;
  readonly #connectTimeoutMs: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #log: (msg: string) => void;
  #client: Client | undefined;
  #connected = false;
  #state: 'new' | 'started' | 'stopped' = 'new';
  #starting: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  readonly #listeners = new Set<(connected: boolean) => void>();
  readonly #restorers = new Set<Restorer>();

  constructor(options: IpcConnectionOptions = {}) {
    const socketPath = options.socketPath ?? process.env['AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT'];
    const authToken = options.authToken ?? process.env['SVCUID'];
    if (socketPath === undefined || socketPath === '') {
      throw new Error('greengrass ipc: no nucleus socket (AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT is not set: run as a Greengrass component)');
    }
    if (authToken === undefined || authToken === '') throw new Error('greengrass ipc: no auth token (SVCUID is not set: run as a Greengrass component)');
    this.#socketPath = socketPath;
    this.#authToken = authToken;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.#minMs = options.reconnectMinMs ?? 100;
    this.#maxMs = options.reconnectMaxMs ?? 5_000;
    this.#log = options.log ?? (() => undefined);
  }

  get state(): 'new' | 'started' | 'stopped' {
    return this.#state;
  }

  isConnected(): boolean {
    return this.#state === 'started' && this.#connected;
  }

  /** The client while connected; every caller must handle undefined as "not connected". */
  client(): Client | undefined {
    return this.isConnected() ? this.#client : undefined;
  }

  onConnectionChange(listener: (connected: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Registers something to redo on every new client; runs it now when connected. */
  async restore(restorer: Restorer): Promise<() => void> {
    this.#restorers.add(restorer);
    const client = this.client();
    if (client !== undefined) await restorer(client);
    return () => this.#restorers.delete(restorer);
  }

  /** The first connect: rejects on a refused token, a missing socket or the timeout (a later start may retry). */
  start(): Promise<void> {
    if (this.#state === 'stopped') return Promise.reject(new Error('greengrass ipc connection was stopped; create a new one'));
    this.#starting ??= this.#connectOnce().then(
      () => {
        this.#state = 'started';
        this.#setConnected(true);
      },
      (error: unknown) => {
        this.#starting = undefined;
        throw error;
      },
    );
    return this.#starting;
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasConnected = this.isConnected();
    this.#state = 'stopped';
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#connected = false;
    if (wasConnected) this.#emit(false);
    // An open client keeps the process alive: close it, whatever state it is in.
    await client?.close().catch(() => undefined);
  }

  #emit(connected: boolean): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(connected);
      } catch (error) {
        this.#log(`connection listener failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    this.#emit(connected);
  }

  async #connectOnce(): Promise<void> {
    const token = this.#authToken;
    const client = greengrasscoreipc.createClient({
      hostName: this.#socketPath,
      port: 0,
      socketOptions: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.LOCAL),
      connectTransform: async (options) => {
        // SAFETY: the token goes into the connect payload and nowhere else (never into a log line or an error).
        options.message.payload = JSON.stringify({ authToken: token });
        return options.message;
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.connect(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`greengrass ipc: no connect answer from ${this.#socketPath} within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
        }),
      ]);
    } catch (error) {
      await client.close().catch(() => undefined);
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(`greengrass ipc: cannot connect to the nucleus at ${this.#socketPath}: ${why}`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    if (this.#state === 'stopped') {
      await client.close().catch(() => undefined);
      throw new Error('greengrass ipc connection was stopped while connecting');
    }
    client.on('disconnection', () => this.#onDrop(client));
    this.#client = client;
    for (const restorer of [...this.#restorers]) await restorer(client);
  }

  #onDrop(client: Client): void {
    if (this.#client !== client || this.#state === 'stopped') return;
    this.#client = undefined;
    void client.close().catch(() => undefined);
    this.#log('disconnected from the nucleus; reconnecting with a new client');
    this.#setConnected(false);
    this.#attempt = 0;
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#state === 'stopped') return;
    const delay = Math.min(this.#maxMs, this.#minMs * 2 ** this.#attempt);
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connectOnce().then(
        () => {
          this.#log('reconnected to the nucleus; subscriptions restored');
          this.#setConnected(true);
        },
        (error: unknown) => {
          this.#log(`reconnect failed (retrying): ${error instanceof Error ? error.message : String(error)}`);
          this.#scheduleRetry();
        },
      );
    }, delay);
  }
}

/** Which bus a transport speaks on: the nucleus's local pub/sub, or IoT Core through its MQTT proxy. */
export type IpcChannel = 'local' | 'iot-core';

export interface IpcTransportOptions extends IpcConnectionOptions {
  /** Share one connection between several transports (local and IoT Core) and the component calls. */
  readonly connection?: IpcConnection;
  readonly channel?: IpcChannel;
}

/**
 * The Transport over Greengrass IPC. Local subscriptions ask for RECEIVE_ALL_MESSAGES explicitly, so a component
 * hears its own publishes as with an MQTT broker (the nucleus's default for wildcards is others only). Local
 * pub/sub has no retained messages: `retain` is ignored there.
 */
export class IpcTransport implements Transport {
  readonly name: string;
  readonly channel: IpcChannel;
  readonly connection: IpcConnection;
  readonly #ownsConnection: boolean;
  #state: 'new' | 'started' | 'stopped' = 'new';
  readonly #subscriptions = new Set<{ close: () => Promise<void> }>();

  constructor(options: IpcTransportOptions = {}) {
    this.channel = options.channel ?? 'local';
    this.name = this.channel === 'local' ? 'ipc' : 'ipc-iot-core';
    this.#ownsConnection = options.connection === undefined;
    this.connection = options.connection ?? new IpcConnection(options);
  }

  async start(): Promise<void> {
    if (this.#state === 'stopped') throw new Error(`${this.name} transport was stopped; create a new one`);
    await this.connection.start();
    this.#state = 'started';
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const started = this.#state === 'started';
    this.#state = 'stopped';
    const subscriptions = [...this.#subscriptions];
    this.#subscriptions.clear();
    await Promise.allSettled(subscriptions.map((s) => s.close()));
    if (this.#ownsConnection) await this.connection.stop();
    else if (started) for (const listener of [...this.#listeners]) listener(false);
  }

  isConnected(): boolean {
    return this.#state === 'started' && this.connection.isConnected();
  }

  readonly #listeners = new Set<(connected: boolean) => void>();

  onConnectionChange(listener: (connected: boolean) => void): () => void {
    // Relayed from the connection; a shared connection's events stop reaching a stopped transport's listeners.
    const relay = (connected: boolean): void => {
      if (this.#state === 'stopped' && !this.#ownsConnection) return;
      listener(connected);
    };
    const off = this.connection.onConnectionChange(relay);
    this.#listeners.add(listener);
    return () => {
      off();
      this.#listeners.delete(listener);
    };
  }

  #usable(): void {
    if (this.#state === 'new') throw new Error(`${this.name} transport not started`);
    if (this.#state === 'stopped') throw new Error(`${this.name} transport stopped`);
  }

  async publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<void> {
    this.#usable();
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new Error(`${this.name}: cannot publish: ${problem}`);
    const client = this.connection.client();
    // SAFETY: nothing is queued while disconnected: a release either reaches the nucleus now or is reported failed.
    if (client === undefined) throw new Error(`${this.name}: not connected to the nucleus; ${topic} not published`);
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    try {
      if (this.channel === 'local') {
        await client.publishToTopic({ topic, publishMessage: { binaryMessage: { message: bytes } } });
      } else {
        await client.publishToIoTCore({ topicName: topic, qos: options.qos === 0 ? model.QOS.AT_MOST_ONCE : model.QOS.AT_LEAST_ONCE, payload: bytes });
      }
    } catch (error) {
      throw new Error(`${this.name}: publish to ${topic} refused: ${describeRpcError(error)}`);
    }
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    this.#usable();
    const problem = topicFilterProblem(filter);
    if (problem !== undefined) throw new Error(`${this.name}: cannot subscribe: ${problem}`);
    let operation: { close(): Promise<void> } | undefined;
    let active = true;
    const deliver = (topic: string, payload: Buffer): void => {
      if (!active || this.#state !== 'started') return;
      try {
        handler(topic, payload);
      } catch {
        // A handler's bug must not stop delivery to the others, nor reach the SDK's event loop.
      }
    };
    const open = async (client: Client): Promise<void> => {
      if (!active) return;
      if (this.channel === 'local') {
        const stream = client.subscribeToTopic({ topic: filter, receiveMode: model.ReceiveMode.RECEIVE_ALL_MESSAGES });
        stream.on('message', (event) => {
          const binary = event.binaryMessage;
          const json = event.jsonMessage;
          const topic = binary?.context?.topic ?? json?.context?.topic ?? filter;
          const message = binary !== undefined ? Buffer.from(binary.message as Uint8Array) : Buffer.from(JSON.stringify(json?.message ?? null), 'utf8');
          deliver(topic, message);
        });
        operation = stream;
        await stream.activate();
      } else {
        const stream = client.subscribeToIoTCore({ topicName: filter, qos: model.QOS.AT_LEAST_ONCE });
        stream.on('message', (event) => {
          const message = event.message;
          if (message === undefined) return;
          deliver(message.topicName, Buffer.from((message.payload ?? new Uint8Array()) as Uint8Array));
        });
        operation = stream;
        await stream.activate();
      }
    };
    let removeRestorer: () => void = () => undefined;
    try {
      removeRestorer = await this.connection.restore(open);
    } catch (error) {
      active = false;
      removeRestorer();
      throw new Error(`${this.name}: subscribe to ${filter} refused: ${describeRpcError(error)}`);
    }
    const entry = {
      close: async (): Promise<void> => {
        if (!active) return;
        active = false;
        removeRestorer();
        this.#subscriptions.delete(entry);
        await operation?.close().catch(() => undefined);
      },
    };
    this.#subscriptions.add(entry);
    return { unsubscribe: entry.close };
  }
}

/** The nucleus's error shape and message when there is one (UnauthorizedError, ...), else the error's message. */
export function describeRpcError(error: unknown): string {
  const service = (error as { serviceError?: { message?: string; _type?: string } } | undefined)?.serviceError;
  if (service?.message !== undefined) return service.message;
  return error instanceof Error ? error.message : String(error);
}

/** The lifecycle and configuration calls a component makes, on the same connection as its transports. */
export class ComponentIpc {
  readonly connection: IpcConnection;

  constructor(connection: IpcConnection) {
    this.connection = connection;
  }

  #client(): Client {
    const client = this.connection.client();
    if (client === undefined) throw new Error('greengrass ipc: not connected to the nucleus');
    return client;
  }

  /** Reports RUNNING or ERRORED to the nucleus (what `greengrass-cli component list` shows). */
  async updateState(state: 'RUNNING' | 'ERRORED'): Promise<void> {
    await this.#client().updateState({ state: state === 'RUNNING' ? model.ReportedLifecycleState.RUNNING : model.ReportedLifecycleState.ERRORED });
  }

  /** This component's configuration under `keyPath` (all of it for []). */
  async getConfiguration(keyPath: readonly string[] = []): Promise<unknown> {
    const response = await this.#client().getConfiguration({ keyPath: [...keyPath] });
    return response.value;
  }

  /** Calls `listener` after each configuration change under `keyPath`, across reconnects. Returns the cancel. */
  async subscribeToConfigurationUpdate(keyPath: readonly string[], listener: (changedKeyPath: readonly string[]) => void): Promise<() => void> {
    let operation: { close(): Promise<void> } | undefined;
    let active = true;
    const remove = await this.connection.restore(async (client) => {
      if (!active) return;
      const stream = client.subscribeToConfigurationUpdate({ keyPath: [...keyPath] });
      stream.on('message', (event) => {
        if (!active) return;
        try {
          listener(event.configurationUpdateEvent?.keyPath ?? []);
        } catch {
          // The listener reports its own problems; the subscription stays.
        }
      });
      operation = stream;
      await stream.activate();
    });
    return () => {
      active = false;
      remove();
      void operation?.close().catch(() => undefined);
    };
  }
}
