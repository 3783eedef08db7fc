// The audit receiver's storage in DynamoDB, for the Lambda behind the IoT rule: one table keyed by thing (partition,
// S) and seq (sort, N). Records are items at seq >= 1, written with PutItem conditional on attribute_not_exists(seq)
// so a held record is never replaced (a failed condition returns the held item: same hash = duplicate, another =
// conflict). The thing's watermark and newest checkpoint live in its item at seq 0, raised only upwards. Runs off the
// device: @aws-sdk/client-dynamodb is a development dependency, never shipped in the component.

import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { AuditCheckpoint } from '../../audit/audit-checkpoint.js';
import type { AuditWatermark } from '../audit-batch.js';
import type { PutOutcome, ReceiverStore, StoredRecord } from './receive-batch.js';

/** The thing's own item: watermark and newest checkpoint. Records start at seq 1. */
const META_SEQ = 0;

/** A store failure the caller cannot fix by retrying the same call at once, with what to do about it. */
export class ReceiverStoreError extends Error {
  constructor(
    readonly kind: 'throttled' | 'access-denied' | 'table-missing' | 'failed',
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ReceiverStoreError';
  }
}

export class DynamoReceiverStore implements ReceiverStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #nowMs: () => number;

  constructor(client: DynamoDBClient, tableName: string, nowMs: () => number = Date.now) {
    this.#client = client;
    this.#table = tableName;
    this.#nowMs = nowMs;
  }

  async watermark(thing: string): Promise<AuditWatermark | undefined> {
    const out = await this.#call('GetItem', () =>
      this.#client.send(new GetItemCommand({ TableName: this.#table, Key: key(thing, META_SEQ), ConsistentRead: true, ProjectionExpression: 'headSeq, headHash' })),
    );
    const seq = out.Item?.['headSeq']?.N;
    const hash = out.Item?.['headHash']?.S;
    return seq === undefined || hash === undefined ? undefined : { seq: Number(seq), hash };
  }

  async hashAt(thing: string, seq: number): Promise<string | undefined> {
    const out = await this.#call('GetItem', () =>
      this.#client.send(new GetItemCommand({ TableName: this.#table, Key: key(thing, seq), ConsistentRead: true, ProjectionExpression: '#h', ExpressionAttributeNames: { '#h': 'hash' } })),
    );
    return out.Item?.['hash']?.S;
  }

  async putRecords(thing: string, records: readonly StoredRecord[]): Promise<PutOutcome[]> {
    const outcomes: PutOutcome[] = [];
    // In order, one at a time: a record is written only after its predecessor, so what is held stays gapless.
    for (const record of records) {
      try {
        await this.#call('PutItem', () =>
          this.#client.send(
            new PutItemCommand({
              TableName: this.#table,
              Item: {
                ...key(thing, record.seq),
                body: { S: record.body },
                hash: { S: record.hash },
                prevHash: { S: record.prevHash },
                receivedMs: { N: String(this.#nowMs()) },
              },
              // SAFETY: dedup by (thing, seq): a held record is never overwritten, whatever arrives later.
              ConditionExpression: 'attribute_not_exists(seq)',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            }),
          ),
        );
        outcomes.push({ kind: 'stored' });
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const held = error.Item?.['hash']?.S ?? (await this.hashAt(thing, record.seq));
        if (held === record.hash) outcomes.push({ kind: 'duplicate' });
        else {
          outcomes.push({ kind: 'conflict', heldHash: held ?? '(unreadable)' });
          break;
        }
      }
    }
    return outcomes;
  }

  async raiseWatermark(thing: string, mark: AuditWatermark): Promise<void> {
    await this.#raise(thing, 'SET headSeq = :s, headHash = :h', 'attribute_not_exists(headSeq) OR headSeq < :s', { ':s': { N: String(mark.seq) }, ':h': { S: mark.hash } });
  }

  async putCheckpoint(thing: string, checkpoint: AuditCheckpoint): Promise<void> {
    await this.#raise(thing, 'SET checkpointSeq = :s, checkpoint = :c', 'attribute_not_exists(checkpointSeq) OR checkpointSeq < :s', {
      ':s': { N: String(checkpoint.seq) },
      ':c': { S: JSON.stringify(checkpoint) },
    });
  }

  /** An update of the thing's item that only ever moves forward; a failed condition means it is already further. */
  async #raise(thing: string, update: string, condition: string, values: Record<string, { N: string } | { S: string }>): Promise<void> {
    try {
      await this.#call('UpdateItem', () =>
        this.#client.send(new UpdateItemCommand({ TableName: this.#table, Key: key(thing, META_SEQ), UpdateExpression: update, ConditionExpression: condition, ExpressionAttributeValues: values })),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** Runs one DynamoDB call; the errors an operator must act on become ReceiverStoreErrors that say what to do. */
  async #call<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw error;
      const name = (error as { name?: string }).name ?? '';
      const why = error instanceof Error ? error.message : String(error);
      if (name === 'ThrottlingException' || name === 'ProvisionedThroughputExceededException' || name === 'RequestLimitExceeded') {
        throw new ReceiverStoreError('throttled', `DynamoDB throttled ${action} on table ${this.#table} (${name}): the batch is not acknowledged; the device sends it again after its ack timeout (raise the table's capacity if this persists)`, { cause: error });
      }
      if (name === 'AccessDeniedException' || name === 'UnrecognizedClientException') {
        throw new ReceiverStoreError('access-denied', `DynamoDB refused ${action} on table ${this.#table} (${name}: ${why}): the receiver's role needs dynamodb:GetItem, dynamodb:PutItem and dynamodb:UpdateItem on it`, { cause: error });
      }
      if (name === 'ResourceNotFoundException') {
        throw new ReceiverStoreError('table-missing', `DynamoDB table ${this.#table} does not exist (${action}): create it with partition key thing (S) and sort key seq (N)`, { cause: error });
      }
      throw new ReceiverStoreError('failed', `DynamoDB ${action} on table ${this.#table} failed (${name || 'error'}: ${why})`, { cause: error });
    }
  }
}

function key(thing: string, seq: number): { thing: { S: string }; seq: { N: string } } {
  return { thing: { S: thing }, seq: { N: String(seq) } };
}
