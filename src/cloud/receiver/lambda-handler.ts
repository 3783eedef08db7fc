// The audit receiver as an AWS Lambda handler behind an IoT rule (docs/audit-forwarding.md has the rule):
//   SELECT encode(*, 'base64') AS payload, topic(2) AS thing FROM 'interlock/+/audit'
// It runs receiveBatch on the exact bytes (base64 keeps them exact), then hands the ack to `publishAck`, which in a
// deployment publishes to interlock/{thing}/audit/ack through the IoT data plane (the Lambda Node.js runtime ships
// @aws-sdk/client-iot-data-plane; this project adds no dependency for it). A store failure throws, so Lambda retries
// the event and the device, having no watermark, sends the batch again after its ack timeout.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { auditAckTopic, type AuditAck } from '../audit-batch.js';
import { receiveBatch, type ReceiverStore, type ThingDirectory } from './receive-batch.js';

/** What the IoT rule above hands the function. */
export interface AuditRuleEvent {
  /** The batch message, base64. */
  readonly payload: string;
  /** topic(2): the thing IoT Core let publish on interlock/{thing}/audit (its policy allows only its own topic). */
  readonly thing: string;
}

export interface AuditReceiverHandlerOptions {
  readonly store: ReceiverStore;
  readonly things: ThingDirectory;
  /** Publishes the ack (QoS 1) to the device: IoTDataPlaneClient's PublishCommand in a deployment. */
  readonly publishAck: (topic: string, payload: string) => Promise<void>;
  readonly log?: (line: string) => void;
}

export function createAuditReceiverHandler(options: AuditReceiverHandlerOptions): (event: AuditRuleEvent) => Promise<AuditAck> {
  const log = options.log ?? ((line: string) => console.log(line));
  return async (event) => {
    if (typeof event?.payload !== 'string' || typeof event.thing !== 'string' || event.thing === '') {
      // Not from the documented rule: nothing to answer, and nothing to retry.
      throw new TypeError("audit receiver: the event must be {payload: base64 string, thing: string} (the rule SELECT encode(*, 'base64') AS payload, topic(2) AS thing)");
    }
    const result = await receiveBatch(Buffer.from(event.payload, 'base64'), event.thing, { store: options.store, things: options.things });
    const { ack } = result;
    if (ack.problem !== undefined) log(JSON.stringify({ level: 'warn', thing: event.thing, key: ack.key, problem: ack.problem }));
    else log(JSON.stringify({ level: 'info', thing: event.thing, key: ack.key, stored: result.stored, duplicates: result.duplicates, watermark: ack.seq }));
    await options.publishAck(auditAckTopic(event.thing), JSON.stringify(ack));
    return ack;
  };
}

/**
 * Thing public keys from JSON (`{"thing-name": "-----BEGIN PUBLIC KEY-----..."}`, e.g. an environment variable set
 * at deployment from each thing's <state-dir>/keys/interlock.pub.pem). Throws naming the thing whose key is unreadable.
 */
export function thingDirectoryFromJson(json: string): ThingDirectory {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new TypeError('audit receiver: the thing key map is not JSON ({"thing": "<PEM public key>"})');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('audit receiver: the thing key map must be a JSON object');
  const keys = new Map<string, KeyObject>();
  for (const [thing, pem] of Object.entries(parsed)) {
    let key: KeyObject;
    try {
      key = createPublicKey(String(pem));
    } catch (error) {
      throw new TypeError(`audit receiver: the public key of thing ${thing} is not a PEM public key (${error instanceof Error ? error.message : String(error)})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new TypeError(`audit receiver: the public key of thing ${thing} is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`);
    keys.set(thing, key);
  }
  return { publicKey: (thing) => keys.get(thing) };
}
