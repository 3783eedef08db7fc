// The outside world of a test cell on the embedded broker: one MQTT connection per identity (each driver, agent,
// operator, the observer), each logged in with its own password from broker-clients.json. A publish goes out on the
// connection of an identity whose grant allows it (a device's state through that device's driver, a command
// through an agent, an operator message through an operator); a subscription through the observer when it may read
// it. A topic no identity may write is refused here, as the broker would refuse it.

import { grantFor, mayPublish, maySubscribe } from '../../src/transport/broker-acl.js';
import { brokerLogin, type BrokerIdentity } from '../../src/transport/broker-clients.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import type { TopicSet } from '../../src/transport/topics.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from '../../src/transport/transport.js';

export class CellClients implements Transport {
  readonly name = 'cell-clients';
  private readonly connections = new Map<string, Promise<MqttTransport>>();
  private stopped = false;

  constructor(
    private readonly options: {
      readonly url: string;
      readonly clientsPath: string;
      readonly topics: TopicSet;
      /** In the order they are tried: the first whose grant fits carries the message. */
      readonly identities: readonly BrokerIdentity[];
      readonly label?: string;
    },
  ) {}

  async start(): Promise<void> {
    await this.connection('observer');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map(async (c) => (await c.catch(() => undefined))?.stop()));
  }

  isConnected(): boolean {
    return !this.stopped;
  }

  onConnectionChange(): () => void {
    return () => undefined;
  }

  /** The identity whose connection carries a publish to `topic`, or undefined when none may. */
  writerOf(topic: string): string | undefined {
    return this.options.identities.find((i) => mayPublish(grantFor(i.role, i.username, this.options.topics), topic))?.username;
  }

  async publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void> {
    const writer = this.writerOf(topic);
    if (writer === undefined) throw new Error(`no identity of the cell may publish to ${topic}`);
    await (await this.connection(writer)).publish(topic, payload, options);
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    const reader = this.options.identities.find((i) => maySubscribe(grantFor(i.role, i.username, this.options.topics), filter))?.username;
    if (reader === undefined) throw new Error(`no identity of the cell may subscribe to ${filter}`);
    return (await this.connection(reader)).subscribe(filter, handler);
  }

  /** The connection of `username` (made on first use). */
  connection(username: string): Promise<MqttTransport> {
    if (this.stopped) return Promise.reject(new Error('cell clients stopped'));
    let connection = this.connections.get(username);
    if (connection === undefined) {
      const login = brokerLogin(this.options.clientsPath, username, `${this.options.label ?? 'test'}-${Math.random().toString(16).slice(2, 10)}`);
      const transport = new MqttTransport({ url: this.options.url, ...login, log: () => undefined });
      connection = transport.start().then(() => transport);
      this.connections.set(username, connection);
    }
    return connection;
  }
}
