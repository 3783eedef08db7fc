// A test-only Greengrass nucleus: an event-stream RPC server on a Unix socket that the real aws-iot-device-sdk-v2
// IPC client talks to. It does what the interlock component uses (connect with the component's auth token, local
// pub/sub, IoT Core through the MQTT proxy, UpdateState, GetConfiguration, SubscribeToConfigurationUpdate, and the
// validation of a deployment's configuration: SubscribeToValidateConfigurationUpdates, SendConfigurationValidityReport) and
// authorizes each call from the recipe's accessControl, answering UnauthorizedError as the real nucleus does.
// Several components (each its own token, accessControl and configuration) can be connected at once.

import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { topicMatches } from '../../src/transport/topics.js';
import { encodeFrame, FLAG_CONNECTION_ACCEPTED, FLAG_TERMINATE_STREAM, FrameReader, MESSAGE_TYPE, type Frame, type HeaderValue } from './event-stream.js';

// ---- the nucleus ----

/** `ComponentConfiguration.DefaultConfiguration.accessControl` of a recipe. */
export type AccessControl = Readonly<Record<string, Readonly<Record<string, { readonly operations: readonly string[]; readonly resources: readonly string[] }>>>>;

export interface NucleusComponent {
  readonly name: string;
  readonly accessControl: AccessControl;
  /** The component's configuration (what GetConfiguration reads). */
  readonly configuration?: Record<string, unknown>;
}

export interface DeploymentOutcome {
  readonly deploymentId: string;
  readonly status: 'SUCCEEDED' | 'FAILED';
  /** Why it failed: the component's own REJECTED message, or the timeout. */
  readonly message: string;
}

/**
 * How long a deployment waits for a component's validity report: the nucleus's default (20 s). In the nucleus's
 * source a report that does not come in time fails the deployment (the docs say it proceeds; the source wins here).
 */
const VALIDATION_TIMEOUT_MS = 20_000;

export interface RecordedIotPublish {
  readonly component: string;
  readonly topicName: string;
  readonly qos: string;
  readonly payload: Buffer;
}

interface Connection {
  readonly socket: Socket;
  component: string | undefined;
  readonly streams: Map<number, StreamSubscription>;
}

interface StreamSubscription {
  readonly kind: 'topic' | 'iotcore' | 'configuration' | 'validation';
  readonly filter: string;
  readonly fromOthersOnly: boolean;
  readonly keyPath: readonly string[];
}

/** `*` matches any run of characters; MQTT wildcards are literal (Greengrass pubsub resources). */
function globMatches(resource: string, value: string): boolean {
  const pattern = resource.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\#]/g, '\\$&')).join('.*');
  return new RegExp(`^${pattern}$`, 's').test(value);
}

export class TestNucleus {
  readonly socketPath: string;
  /** Each component's auth token (what the nucleus puts in SVCUID). */
  readonly tokens = new Map<string, string>();
  /** Every UpdateState, per component, in order. */
  readonly states = new Map<string, string[]>();
  /** What components published to IoT Core, in order. */
  readonly iotCorePublishes: RecordedIotPublish[] = [];
  /** The cloud side: called for every publish to IoT Core (a fake AWS service answers through cloudPublish). */
  readonly iotCoreListeners = new Set<(publish: RecordedIotPublish) => void>();
  /**
   * When true, a publish to IoT Core also reaches every SubscribeToIoTCore whose filter matches, the publisher's own
   * included, as AWS IoT Core's broker does; off by default (the cloud side then only records).
   */
  iotCoreLoopback = false;
  /** Calls refused as unauthorized: component, operation, resource. */
  readonly refused: { component: string; operation: string; resource: string }[] = [];
  /**
   * Operations (e.g. `PublishToTopic`) whose requests are taken but never answered, as a nucleus that hangs or
   * loses them would; each such request is noted in `unansweredRequests`.
   */
  readonly unanswered = new Set<string>();
  readonly unansweredRequests: { component: string; operation: string }[] = [];
  /** Every SendConfigurationValidityReport, per component, in order. */
  readonly validityReports: { component: string; deploymentId: string; status: string; message: string | undefined }[] = [];
  readonly #awaitingReports = new Map<string, { component: string; settle: (report: { status: string; message: string | undefined }) => void }>();
  readonly #components = new Map<string, NucleusComponent & { configuration: Record<string, unknown> }>();
  readonly #connections = new Set<Connection>();
  #server: Server | undefined;

  constructor(socketPath: string, components: readonly NucleusComponent[]) {
    this.socketPath = socketPath;
    for (const component of components) {
      this.#components.set(component.name, { ...component, configuration: structuredClone(component.configuration ?? {}) });
      this.tokens.set(component.name, randomBytes(16).toString('hex'));
    }
  }

  /**
   * The variables the nucleus sets for a component's lifecycle scripts (its ShellRunner, DeviceConfiguration and IPC
   * service): the auth token twice, the socket, the thing, the region, the root CA and the nucleus version.
   * `socketPathForComponent` overrides the socket path given (the nucleus gives `../../ipc.socket`, relative to the
   * work folder, when the absolute path is too long for a Unix socket).
   */
  environment(component: string, options: { socketPathForComponent?: string } = {}): Record<string, string> {
    const token = this.tokens.get(component);
    if (token === undefined) throw new Error(`no component ${component}`);
    return {
      SVCUID: token,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: token,
      AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH: this.socketPath,
      AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT: options.socketPathForComponent ?? this.socketPath,
      AWS_IOT_THING_NAME: 'test-thing',
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
      GG_ROOT_CA_PATH: '/greengrass/v2/rootCA.pem',
      GGC_VERSION: '2.14.3',
    };
  }

  async start(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.#server = server;
  }

  /**
   * Drops the client connections (a nucleus restart, as the components see it): every one, or only those of one
   * component. The listener stays.
   */
  dropConnections(component?: string): void {
    for (const connection of [...this.#connections]) {
      if (component !== undefined && connection.component !== component) continue;
      connection.socket.destroy();
      this.#connections.delete(connection);
    }
  }

  async stop(): Promise<void> {
    this.dropConnections();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  /** How many components are connected now. */
  get connectionCount(): number {
    return [...this.#connections].filter((c) => c.component !== undefined).length;
  }

  /** The cloud publishes to a topic: delivered to every SubscribeToIoTCore whose filter matches. */
  cloudPublish(topicName: string, payload: Buffer | string): void {
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    for (const connection of this.#connections) {
      for (const [streamId, sub] of connection.streams) {
        if (sub.kind !== 'iotcore' || !topicMatches(sub.filter, topicName)) continue;
        this.#event(connection, streamId, 'aws.greengrass#IoTCoreMessage', { message: { topicName, payload: bytes.toString('base64') } });
      }
    }
  }

  configuration(component: string): Record<string, unknown> {
    const found = this.#components.get(component);
    if (found === undefined) throw new Error(`no component ${component}`);
    return found.configuration;
  }

  /** A deployment merged new configuration: replace it and tell the component's configuration subscribers. */
  setConfiguration(component: string, configuration: Record<string, unknown>): void {
    const found = this.#components.get(component);
    if (found === undefined) throw new Error(`no component ${component}`);
    found.configuration = structuredClone(configuration);
    for (const connection of this.#connections) {
      if (connection.component !== component) continue;
      for (const [streamId, sub] of connection.streams) {
        if (sub.kind !== 'configuration') continue;
        this.#event(connection, streamId, 'aws.greengrass#ConfigurationUpdateEvents', { configurationUpdateEvent: { componentName: component, keyPath: [...sub.keyPath] } });
      }
    }
  }

  /**
   * A deployment that sets a component's whole configuration, as the nucleus runs one: when the component has
   * subscribed to validation, it is sent the proposed configuration first and the deployment waits for its report;
   * REJECTED fails the deployment with the component's message and leaves the configuration as it was. Accepted (or
   * nobody subscribed), the configuration is replaced and configuration subscribers are told.
   */
  async deploy(component: string, configuration: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<DeploymentOutcome> {
    const deploymentId = randomUUID();
    const validators = [...this.#connections].filter((c) => c.component === component).flatMap((c) => [...c.streams].filter(([, sub]) => sub.kind === 'validation').map(([id]) => [c, id] as const));
    if (validators.length > 0) {
      const report = await new Promise<{ status: string; message: string | undefined } | undefined>((resolve) => {
        const timer = setTimeout(() => {
          this.#awaitingReports.delete(deploymentId);
          resolve(undefined);
        }, options.timeoutMs ?? VALIDATION_TIMEOUT_MS);
        this.#awaitingReports.set(deploymentId, {
          component,
          settle: (r) => {
            clearTimeout(timer);
            this.#awaitingReports.delete(deploymentId);
            resolve(r);
          },
        });
        for (const [connection, streamId] of validators) {
          this.#event(connection, streamId, 'aws.greengrass#ValidateConfigurationUpdateEvents', { validateConfigurationUpdateEvent: { deploymentId, configuration: structuredClone(configuration) } });
        }
      });
      if (report === undefined) return { deploymentId, status: 'FAILED', message: `${component} did not report whether the configuration is valid in time` };
      if (report.status !== 'ACCEPTED') return { deploymentId, status: 'FAILED', message: report.message ?? '' };
    }
    this.setConfiguration(component, configuration);
    return { deploymentId, status: 'SUCCEEDED', message: '' };
  }

  #accept(socket: Socket): void {
    const connection: Connection = { socket, component: undefined, streams: new Map() };
    this.#connections.add(connection);
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) this.#onFrame(connection, frame);
      } catch {
        socket.destroy();
      }
    });
    socket.on('close', () => this.#connections.delete(connection));
    socket.on('error', () => undefined);
  }

  #send(connection: Connection, streamId: number, type: number, flags: number, headers: Record<string, HeaderValue>, body: unknown): void {
    if (connection.socket.destroyed) return;
    const payload = Buffer.from(JSON.stringify(body ?? {}), 'utf8');
    connection.socket.write(
      encodeFrame({ ':message-type': type, ':message-flags': flags, ':stream-id': streamId, ':content-type': 'application/json', ...headers }, payload),
    );
  }

  #respond(connection: Connection, streamId: number, shape: string, body: unknown, terminate: boolean): void {
    this.#send(connection, streamId, MESSAGE_TYPE.application, terminate ? FLAG_TERMINATE_STREAM : 0, { 'service-model-type': shape }, body);
  }

  #event(connection: Connection, streamId: number, shape: string, body: unknown): void {
    this.#send(connection, streamId, MESSAGE_TYPE.application, 0, { 'service-model-type': shape }, body);
  }

  #error(connection: Connection, streamId: number, shape: string, message: string): void {
    connection.streams.delete(streamId);
    this.#send(connection, streamId, MESSAGE_TYPE.error, FLAG_TERMINATE_STREAM, { 'service-model-type': shape }, { message });
  }

  #onFrame(connection: Connection, frame: Frame): void {
    const type = frame.headers.get(':message-type');
    const streamId = Number(frame.headers.get(':stream-id') ?? 0);
    const flags = Number(frame.headers.get(':message-flags') ?? 0);
    if (type === MESSAGE_TYPE.connect) {
      let token: unknown;
      try {
        token = (JSON.parse(frame.payload.toString('utf8')) as { authToken?: unknown }).authToken;
      } catch {
        token = undefined;
      }
      const component = [...this.tokens].find(([, t]) => t === token)?.[0];
      if (component === undefined || frame.headers.get(':version') !== '0.1.0') {
        this.#send(connection, 0, MESSAGE_TYPE.connectAck, 0, {}, {});
        connection.socket.end();
        return;
      }
      connection.component = component;
      this.#send(connection, 0, MESSAGE_TYPE.connectAck, FLAG_CONNECTION_ACCEPTED, {}, {});
      return;
    }
    if (connection.component === undefined) {
      connection.socket.destroy();
      return;
    }
    if ((flags & FLAG_TERMINATE_STREAM) !== 0) {
      connection.streams.delete(streamId);
      return;
    }
    const operation = frame.headers.get('operation');
    if (typeof operation !== 'string') return; // a later message on an open stream: nothing this nucleus expects
    let request: Record<string, unknown>;
    try {
      request = JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.#error(connection, streamId, 'aws.greengrass#InvalidArgumentsError', 'request is not JSON');
      return;
    }
    this.#operate(connection, connection.component, streamId, operation, request);
  }

  #authorized(component: string, service: string, operation: string, resource: string, mqttWildcards: boolean): boolean {
    const policies = this.#components.get(component)?.accessControl[service] ?? {};
    const ok = Object.values(policies).some(
      (policy) =>
        (policy.operations.includes(operation) || policy.operations.includes('*')) &&
        policy.resources.some((r) => r === '*' || (mqttWildcards ? topicMatches(r, resource) || r === resource : globMatches(r, resource))),
    );
    if (!ok) this.refused.push({ component, operation, resource });
    return ok;
  }

  #operate(connection: Connection, component: string, streamId: number, operation: string, request: Record<string, unknown>): void {
    const name = operation.replace(/^aws\.greengrass#/, '');
    if (this.unanswered.has(name)) {
      this.unansweredRequests.push({ component, operation: name });
      return;
    }
    const unauthorized = (resource: string): void =>
      this.#error(connection, streamId, 'aws.greengrass#UnauthorizedError', `Principal ${component} is not authorized to perform ${operation} on resource ${resource}`);
    switch (name) {
      case 'PublishToTopic': {
        const topic = String(request['topic']);
        if (!this.#authorized(component, 'aws.greengrass.ipc.pubsub', operation, topic, false)) return unauthorized(topic);
        const message = request['publishMessage'] as { jsonMessage?: { message: unknown }; binaryMessage?: { message: string } };
        for (const other of this.#connections) {
          for (const [otherStream, sub] of other.streams) {
            if (sub.kind !== 'topic' || !topicMatches(sub.filter, topic)) continue;
            if (sub.fromOthersOnly && other === connection) continue;
            const delivered =
              message.binaryMessage !== undefined
                ? { binaryMessage: { message: message.binaryMessage.message, context: { topic } } }
                : { jsonMessage: { message: message.jsonMessage?.message, context: { topic } } };
            this.#event(other, otherStream, 'aws.greengrass#SubscriptionResponseMessage', delivered);
          }
        }
        return this.#respond(connection, streamId, 'aws.greengrass#PublishToTopicResponse', {}, true);
      }
      case 'SubscribeToTopic': {
        const topic = String(request['topic']);
        if (!this.#authorized(component, 'aws.greengrass.ipc.pubsub', operation, topic, false)) return unauthorized(topic);
        const wildcard = topic.includes('+') || topic.includes('#');
        const mode = request['receiveMode'];
        // As the nucleus does: without an explicit mode, a wildcard subscription gets messages from others only.
        const fromOthersOnly = mode === 'RECEIVE_MESSAGES_FROM_OTHERS' || (mode === undefined && wildcard);
        connection.streams.set(streamId, { kind: 'topic', filter: topic, fromOthersOnly, keyPath: [] });
        return this.#respond(connection, streamId, 'aws.greengrass#SubscribeToTopicResponse', {}, false);
      }
      case 'PublishToIoTCore': {
        const topicName = String(request['topicName']);
        if (!this.#authorized(component, 'aws.greengrass.ipc.mqttproxy', operation, topicName, true)) return unauthorized(topicName);
        const published: RecordedIotPublish = { component, topicName, qos: String(request['qos']), payload: Buffer.from(String(request['payload'] ?? ''), 'base64') };
        this.iotCorePublishes.push(published);
        this.#respond(connection, streamId, 'aws.greengrass#PublishToIoTCoreResponse', {}, true);
        if (this.iotCoreLoopback) this.cloudPublish(topicName, published.payload);
        for (const listener of this.iotCoreListeners) listener(published);
        return;
      }
      case 'SubscribeToIoTCore': {
        const topicName = String(request['topicName']);
        if (!this.#authorized(component, 'aws.greengrass.ipc.mqttproxy', operation, topicName, true)) return unauthorized(topicName);
        connection.streams.set(streamId, { kind: 'iotcore', filter: topicName, fromOthersOnly: false, keyPath: [] });
        return this.#respond(connection, streamId, 'aws.greengrass#SubscribeToIoTCoreResponse', {}, false);
      }
      case 'UpdateState': {
        const list = this.states.get(component) ?? [];
        list.push(String(request['state']));
        this.states.set(component, list);
        return this.#respond(connection, streamId, 'aws.greengrass#UpdateStateResponse', {}, true);
      }
      case 'GetConfiguration': {
        const keyPath = (request['keyPath'] as string[] | undefined) ?? [];
        let value: unknown = this.configuration(String(request['componentName'] ?? component));
        for (const key of keyPath) value = (value as Record<string, unknown> | undefined)?.[key];
        if (value === undefined) return this.#error(connection, streamId, 'aws.greengrass#ResourceNotFoundError', `no configuration at ${keyPath.join('/')}`);
        return this.#respond(connection, streamId, 'aws.greengrass#GetConfigurationResponse', { componentName: component, value: keyPath.length === 0 || typeof value === 'object' ? value : { [keyPath.at(-1) as string]: value } }, true);
      }
      case 'SubscribeToConfigurationUpdate': {
        const keyPath = (request['keyPath'] as string[] | undefined) ?? [];
        connection.streams.set(streamId, { kind: 'configuration', filter: '', fromOthersOnly: false, keyPath });
        return this.#respond(connection, streamId, 'aws.greengrass#SubscribeToConfigurationUpdateResponse', {}, false);
      }
      case 'SubscribeToValidateConfigurationUpdates': {
        connection.streams.set(streamId, { kind: 'validation', filter: '', fromOthersOnly: false, keyPath: [] });
        return this.#respond(connection, streamId, 'aws.greengrass#SubscribeToValidateConfigurationUpdatesResponse', {}, false);
      }
      case 'SendConfigurationValidityReport': {
        const report = (request['configurationValidityReport'] ?? {}) as { status?: unknown; deploymentId?: unknown; message?: unknown };
        const deploymentId = String(report.deploymentId);
        const status = String(report.status);
        const message = typeof report.message === 'string' ? report.message : undefined;
        const awaiting = this.#awaitingReports.get(deploymentId);
        if (awaiting === undefined || awaiting.component !== component || (status !== 'ACCEPTED' && status !== 'REJECTED')) {
          return this.#error(connection, streamId, 'aws.greengrass#InvalidArgumentsError', `no validation of deployment ${deploymentId} is awaiting ${component}'s report, or status ${status} is not ACCEPTED/REJECTED`);
        }
        this.validityReports.push({ component, deploymentId, status, message });
        awaiting.settle({ status, message });
        return this.#respond(connection, streamId, 'aws.greengrass#SendConfigurationValidityReportResponse', {}, true);
      }
      default:
        return this.#error(connection, streamId, 'aws.greengrass#ServiceError', `the test nucleus does not implement ${operation}`);
    }
  }
}
