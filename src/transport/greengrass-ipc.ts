// Greengrass IPC (aws-iot-device-sdk-v2 greengrasscoreipc) behind the Transport seam: local pub/sub, IoT Core through
// the nucleus's MQTT proxy, and the component calls (updateState, configuration). The SDK client never reconnects by
// itself, so IpcConnection builds a new client after every drop, with backoff, and replays each subscription on it.
// It never logs the SVCUID token, and while disconnected nothing is published (every publish rejects).
//
// Every call is bounded (IpcConnection.call): the SDK never settles a request, or a stream activation, whose
// connection dropped after it was sent, so without a bound one lost answer would stall a device's releases (and a
// reconnect waiting on a resubscription) for ever. A call still waiting when the connection drops is cancelled at
// once; one that outlives callTimeoutMs is cancelled then. Either way it rejects, saying the outcome is unknown.

import { eventstream_rpc, greengrasscoreipc, io } from 'aws-iot-device-sdk-v2';
import { topicFilterProblem, topicNameProblem } from './topics.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from './transport.js';

type Client = greengrasscoreipc.Client;
type OperationOptions = eventstream_rpc.OperationOptions;
const { model } = greengrasscoreipc;

/**
 * The SDK's cancel hook (ICancelController), with a reason. Listeners registered after the cancel run at once, as
 * the SDK expects.
 */
class CallCancel {
  #reason: string | undefined;
  readonly #listeners = new Set<() => void>();

  get reason(): string | undefined {
    return this.#reason;
  }

  cancel(reason = 'cancelled'): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const listener of listeners) listener();
  }

  hasBeenCancelled(): boolean {
    return this.#reason !== undefined;
  }

  addListener(listener: () => void): (() => void) | undefined {
    if (this.#reason !== undefined) {
      listener();
      return undefined;
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** A call that did not complete: not connected, or cancelled (dropped, timed out) with its outcome unknown. */
export class IpcCallError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IpcCallError';
  }
}

export interface IpcConnectionOptions {
  /** The nucleus's Unix socket; default AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT. */
  readonly socketPath?: string;
  /** The component's auth token; default SVCUID. A secret: it is never logged. */
  readonly authToken?: string;
  /** The connect handshake has no timeout of its own in the SDK; this bounds it. Default 5,000 ms. */
  readonly connectTimeoutMs?: number;
  /** Bounds every request (publish, updateState, getConfiguration) and stream activation. Default 5,000 ms. */
  readonly callTimeoutMs?: number;
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
  readonly #callTimeoutMs: number;
  /** Calls waiting for the nucleus's answer on the current client: cancelled when it drops. */
  readonly #inFlight = new Set<CallCancel>();
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
    this.#callTimeoutMs = options.callTimeoutMs ?? 5_000;
    for (const [name, value] of [['connectTimeoutMs', this.#connectTimeoutMs], ['callTimeoutMs', this.#callTimeoutMs]] as const) {
      if (!(Number.isFinite(value) && value > 0)) throw new Error(`greengrass ipc: ${name} must be > 0 (got ${value})`);
    }
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

  /**
   * Runs one call on `client` (default: the current one), bounded by callTimeoutMs and cancelled at once when the
   * connection drops. Rejects with `<what>: ... outcome unknown` in both cases: the nucleus may have acted on it.
   */
  async call<T>(what: string, run: (client: Client, options: OperationOptions) => Promise<T>, on?: Client): Promise<T> {
    const client = on ?? this.client();
    if (client === undefined) throw new IpcCallError(`${what}: not connected to the nucleus`);
    const cancel = new CallCancel();
    this.#inFlight.add(cancel);
    const timer = setTimeout(() => cancel.cancel(`no answer from the nucleus within ${this.#callTimeoutMs} ms`), this.#callTimeoutMs);
    try {
      return await run(client, { cancelController: cancel });
    } catch (error) {
      if (cancel.reason !== undefined) throw new IpcCallError(`${what}: ${cancel.reason}; outcome unknown`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
      this.#inFlight.delete(cancel);
    }
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
    for (const cancel of [...this.#inFlight]) cancel.cancel('the connection to the nucleus was stopped before the answer');
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
    try {
      for (const restorer of [...this.#restorers]) await restorer(client);
    } catch (error) {
      // A subscription that cannot be restored (refused, or the connection dropped meanwhile): this client is not
      // reported connected; the caller retries with a new one.
      if (this.#client === client) this.#client = undefined;
      await client.close().catch(() => undefined);
      throw error;
    }
  }

  #onDrop(client: Client): void {
    if (this.#client !== client || this.#state === 'stopped') return;
    this.#client = undefined;
    // The SDK would leave these waiting for ever: no answer comes on a dropped connection.
    for (const cancel of [...this.#inFlight]) cancel.cancel('the connection to the nucleus dropped before the answer');
    void client.close().catch(() => undefined);
    // A drop while a new client is still restoring subscriptions fails that connect, whose caller retries.
    if (!this.#connected) return;
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
    const what = `${this.name}: publish to ${topic}`;
    try {
      await this.connection.call(
        what,
        (c, callOptions) =>
          this.channel === 'local'
            ? c.publishToTopic({ topic, publishMessage: { binaryMessage: { message: bytes } } }, callOptions)
            : c.publishToIoTCore({ topicName: topic, qos: options.qos === 0 ? model.QOS.AT_MOST_ONCE : model.QOS.AT_LEAST_ONCE, payload: bytes }, callOptions),
        client,
      );
    } catch (error) {
      if (error instanceof IpcCallError) throw error;
      throw new Error(`${what} refused: ${describeRpcError(error)}`);
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
      await this.connection.call(
        `${this.name}: subscribe to ${filter}`,
        async (c, callOptions) => {
          if (this.channel === 'local') {
            const stream = c.subscribeToTopic({ topic: filter, receiveMode: model.ReceiveMode.RECEIVE_ALL_MESSAGES }, callOptions);
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
            const stream = c.subscribeToIoTCore({ topicName: filter, qos: model.QOS.AT_LEAST_ONCE }, callOptions);
            stream.on('message', (event) => {
              const message = event.message;
              if (message === undefined) return;
              deliver(message.topicName, Buffer.from((message.payload ?? new Uint8Array()) as Uint8Array));
            });
            operation = stream;
            await stream.activate();
          }
        },
        client,
      );
    };
    let removeRestorer: () => void = () => undefined;
    try {
      removeRestorer = await this.connection.restore(open);
    } catch (error) {
      active = false;
      removeRestorer();
      if (error instanceof IpcCallError) throw error;
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
