// The one seam between the interlock and any message bus. The pipeline knows only this interface; MQTT, the
// embedded broker (and later Greengrass IPC) implement it. An implementation never interprets payloads.

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface PublishOptions {
  /** 1 (default): resolve only when the broker has accepted the message. 0: fire and forget. */
  readonly qos?: 0 | 1;
  readonly retain?: boolean;
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface Transport {
  /** Short name for logs: `mqtt`, `embedded`, `ipc`. */
  readonly name: string;
  start(): Promise<void>;
  /** Stops delivering and releases sockets; safe to call twice. */
  stop(): Promise<void>;
  isConnected(): boolean;
  /** Rejects when the message could not be handed to the bus (not connected, refused by the broker). */
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void>;
  /** `filter` may use MQTT wildcards (`+`, `#`). Subscriptions survive a reconnect. */
  subscribe(filter: string, handler: MessageHandler): Promise<Subscription>;
  /** Returns a function that removes the listener. */
  onConnectionChange(listener: (connected: boolean) => void): () => void;
}
