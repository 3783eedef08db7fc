// A Transport that hands every call to a real one, for fault injection in the interlock's own broker connection: a
// test overrides `publish` (refuse, hold back the acknowledgement) and leaves the rest real.

import type { MessageHandler, PublishOptions, Subscription, Transport } from '../../src/transport/transport.js';

export class DelegatingTransport implements Transport {
  constructor(protected readonly inner: Transport) {}
  get name(): string {
    return this.inner.name;
  }
  start(): Promise<void> {
    return this.inner.start();
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
  isConnected(): boolean {
    return this.inner.isConnected();
  }
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void> {
    return this.inner.publish(topic, payload, options);
  }
  subscribe(filter: string, handler: MessageHandler): Promise<Subscription> {
    return this.inner.subscribe(filter, handler);
  }
  onConnectionChange(listener: (connected: boolean) => void): () => void {
    return this.inner.onConnectionChange(listener);
  }
}
