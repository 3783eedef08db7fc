// An in-memory Transport for driver unit tests (no sockets): delivers asynchronously, like a broker, to every
// matching subscription, and can be told to refuse publishes to test a failing bus.

import { topicMatches } from '../../src/transport/topics.js';
import type { MessageHandler, PublishOptions, Subscription, Transport } from '../../src/transport/transport.js';

export class InMemoryBus implements Transport {
  readonly name = 'in-memory';
  failPublish = false;
  /** Publishes refused while failPublish was set. */
  refused = 0;
  readonly #subscribers = new Set<{ filter: string; handler: MessageHandler }>();

  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.#subscribers.clear();
  }
  isConnected(): boolean {
    return true;
  }
  async publish(topic: string, payload: Buffer | string, _options?: PublishOptions): Promise<void> {
    if (this.failPublish) {
      this.refused += 1;
      throw new Error('bus refused the message');
    }
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    for (const subscriber of [...this.#subscribers]) {
      if (topicMatches(subscriber.filter, topic)) setImmediate(() => subscriber.handler(topic, bytes));
    }
  }
  async subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    const entry = { filter, handler };
    this.#subscribers.add(entry);
    return { unsubscribe: async () => void this.#subscribers.delete(entry) };
  }
  onConnectionChange(): () => void {
    return () => {};
  }
  get subscriberCount(): number {
    return this.#subscribers.size;
  }
}
