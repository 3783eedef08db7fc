// An audit receiver on an MQTT broker: subscribes to interlock/+/audit, runs receiveBatch on each batch in arrival
// order, and publishes the watermark to interlock/{thing}/audit/ack. The cloud peer of the tests and the bench (on
// mosquitto), and a self-hosted receiver for a site without AWS. On AWS the same receiveBatch runs in a Lambda.

import { auditAckTopic, AUDIT_TOPIC_FILTER, thingOfAuditTopic, type AuditAck, type AuditWatermark } from '../audit-batch.js';
import type { Logger } from '../../core/log.js';
import type { Subscription, Transport } from '../../transport/transport.js';
import { receiveBatch, type ReceiveOptions, type ReceiveResult } from './receive-batch.js';

export interface MqttAuditReceiverOptions extends ReceiveOptions {
  /** Not yet started, or started: the receiver starts it if it is not connected, and never stops it. */
  readonly transport: Transport;
  readonly logger: Logger;
}

export class MqttAuditReceiver {
  readonly #options: MqttAuditReceiverOptions;
  #subscription: Subscription | undefined;
  /** Batches are received one after another, so two of one thing never race between check and store. */
  #queue: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(result: ReceiveResult) => void>();
  #counts = { batches: 0, stored: 0, duplicates: 0, refused: 0 };

  constructor(options: MqttAuditReceiverOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    this.#subscription = await this.#options.transport.subscribe(AUDIT_TOPIC_FILTER, (topic, payload) => {
      this.#queue = this.#queue.then(() => this.#receive(topic, payload));
    });
  }

  async stop(): Promise<void> {
    await this.#subscription?.unsubscribe().catch(() => undefined);
    this.#subscription = undefined;
    await this.#queue;
  }

  /** Called after each batch with what it did (tests). Returns the unsubscribe. */
  onBatch(listener: (result: ReceiveResult) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stats(): { batches: number; stored: number; duplicates: number; refused: number } {
    return { ...this.#counts };
  }

  async watermark(thing: string): Promise<AuditWatermark | undefined> {
    return this.#options.store.watermark(thing);
  }

  async #receive(topic: string, payload: Buffer): Promise<void> {
    const thing = thingOfAuditTopic(topic);
    if (thing === undefined) return;
    const { logger, transport } = this.#options;
    let ack: AuditAck;
    try {
      const result = await receiveBatch(payload, thing, this.#options);
      this.#counts.batches += 1;
      this.#counts.stored += result.stored;
      this.#counts.duplicates += result.duplicates;
      ack = result.ack;
      if (ack.problem !== undefined) {
        this.#counts.refused += 1;
        logger.warn(`refused audit batch ${ack.key ?? '(unreadable)'} of thing ${thing}: ${ack.problem.code}: ${ack.problem.message}`);
      }
      for (const listener of this.#listeners) listener(result);
    } catch (error) {
      // The store failed: say so; the device sends again after its ack timeout.
      logger.error(`audit batch of thing ${thing} not stored: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    await transport.publish(auditAckTopic(thing), JSON.stringify(ack), { qos: 1 }).catch((error: unknown) => {
      // The device resends after its ack timeout and gets the watermark with the duplicate's answer.
      logger.warn(`could not publish the audit ack to ${thing}: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
}
