// The DynamoDB receiver store and the Lambda handler, with the DynamoDB client mocked by aws-sdk-client-mock (no local
// DynamoDB runs here). The mock keeps items in a map and honours the conditions the store sends, so batches from a real
// audit log go through receiveBatch end to end: records are written with attribute_not_exists(seq); a resend meets
// ConditionalCheckFailedException with the same hash (a duplicate), another history one with another hash (a conflict,
// refused and reported); throttling, access denied and a missing table surface as clear errors and no ack is sent.

import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import t, { type Test } from 'tap';
import { auditAckTopic, makeBatch, type AuditAck } from '../../../src/cloud/audit-batch.js';
import { DynamoReceiverStore, ReceiverStoreError } from '../../../src/cloud/receiver/dynamodb-receiver-store.js';
import { createAuditReceiverHandler, thingDirectoryFromJson } from '../../../src/cloud/receiver/lambda-handler.js';
import { filledLog, wireRecords } from '../../helpers/audit-forwarding.js';

const THING = 'dynamo-cell';
const TABLE = 'interlock-audit';

type Item = Record<string, AttributeValue>;

/** A mocked DynamoDB that stores items and evaluates the store's conditions. */
function fakeDynamo(t: Test) {
  const items = new Map<string, Item>();
  const id = (k: Record<string, AttributeValue> | undefined): string => `${k?.['thing']?.S}#${k?.['seq']?.N}`;
  const mock = mockClient(DynamoDBClient);
  t.teardown(() => mock.restore());
  const ccfe = (item: Item | undefined): ConditionalCheckFailedException => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {}, ...(item === undefined ? {} : { Item: item }) });
  mock.on(GetItemCommand).callsFake((input: { Key: Item }) => ({ Item: items.get(id(input.Key)) }));
  mock.on(PutItemCommand).callsFake((input: { Item: Item; ConditionExpression?: string; ReturnValuesOnConditionCheckFailure?: string }) => {
    const k = id(input.Item);
    if (input.ConditionExpression !== 'attribute_not_exists(seq)') throw new Error(`unexpected condition ${input.ConditionExpression}`);
    const held = items.get(k);
    if (held !== undefined) throw ccfe(input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' ? held : undefined);
    items.set(k, input.Item);
    return {};
  });
  mock.on(UpdateItemCommand).callsFake((input: { Key: Item; UpdateExpression: string; ExpressionAttributeValues: Item }) => {
    const k = id(input.Key);
    const held = items.get(k) ?? { ...input.Key };
    const [field, other] = input.UpdateExpression.startsWith('SET headSeq') ? ['headSeq', ['headHash', ':h']] : ['checkpointSeq', ['checkpoint', ':c']];
    const s = Number(input.ExpressionAttributeValues[':s']?.N);
    if (held[field as string] !== undefined && !(Number(held[field as string]?.N) < s)) throw ccfe(undefined);
    items.set(k, { ...held, [field as string]: { N: String(s) }, [other?.[0] as string]: input.ExpressionAttributeValues[other?.[1] as string] as AttributeValue });
    return {};
  });
  return { mock, items, client: new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }) };
}

async function setup(t: Test) {
  const device = await filledLog(t, 60);
  const dynamo = fakeDynamo(t);
  const store = new DynamoReceiverStore(dynamo.client, TABLE);
  const acks: { topic: string; ack: AuditAck }[] = [];
  const handler = createAuditReceiverHandler({
    store,
    things: { publicKey: (thing) => (thing === THING ? device.publicKey : undefined) },
    publishAck: async (topic, payload) => void acks.push({ topic, ack: JSON.parse(payload) as AuditAck }),
    log: () => undefined,
  });
  const event = (from: number, n: number, records = wireRecords(device.log, from, n)) => ({
    payload: Buffer.from(JSON.stringify(makeBatch(THING, records, device.log.latestCheckpoint()))).toString('base64'),
    thing: THING,
  });
  return { device, dynamo, store, handler, acks, event };
}

t.test('batches are written with conditional puts; a resend is a duplicate; the ack goes to the thing', async (t) => {
  const { device, dynamo, handler, acks, event } = await setup(t);
  const ack = await handler(event(1, 40));
  t.same({ seq: ack.seq, hash: ack.hash, problem: ack.problem }, { seq: 40, hash: device.log.read(40, 1)[0]?.hash, problem: undefined });
  t.equal(acks[0]?.topic, auditAckTopic(THING));
  const puts = dynamo.mock.commandCalls(PutItemCommand);
  t.equal(puts.length, 40);
  t.ok(puts.every((c) => c.args[0].input.ConditionExpression === 'attribute_not_exists(seq)' && c.args[0].input.TableName === TABLE), 'every put is conditional on (thing, seq) being free');
  t.equal(dynamo.items.get(`${THING}#7`)?.['body']?.S, wireRecords(device.log, 7, 1)[0]?.body, 'the exact body text is stored');
  const again = await handler(event(30, 31));
  t.equal(again.seq, 60, 'the overlap adds 41..60');
  t.equal(again.problem, undefined, 'held records with the same hash are duplicates, not conflicts');
  t.equal([...dynamo.items.keys()].filter((k) => k !== `${THING}#0`).length, 60);
});

t.test('another history at a held seq: ConditionalCheckFailedException with another hash is a conflict, refused', async (t) => {
  const { handler, event } = await setup(t);
  await handler(event(1, 20));
  const impostor = await filledLog(t, 30);
  const records = wireRecords(impostor.log, 1, 30);
  const ack = await handler({ payload: Buffer.from(JSON.stringify(makeBatch(THING, records, undefined))).toString('base64'), thing: THING });
  t.equal(ack.problem?.code, 'conflict');
  t.match(ack.problem?.message, /seq 1: held with hash [0-9a-f]{64}, this batch has [0-9a-f]{64}/);
  t.equal(ack.seq, 20, 'the watermark is unchanged');
});

t.test('the put itself meeting another hash (a concurrent writer) is reported as a conflict', async (t) => {
  const { dynamo, store, device } = await setup(t);
  const records = wireRecords(device.log, 1, 3).map((r, i) => ({ ...r, prevHash: i === 0 ? '0'.repeat(64) : '' }));
  dynamo.items.set(`${THING}#2`, { thing: { S: THING }, seq: { N: '2' }, hash: { S: 'b'.repeat(64) } });
  const outcomes = await store.putRecords(THING, records);
  t.same(outcomes, [{ kind: 'stored' }, { kind: 'conflict', heldHash: 'b'.repeat(64) }], 'stops at the conflict, record 3 not written');
  t.notOk(dynamo.items.has(`${THING}#3`));
});

t.test('throttling, access denied and a missing table are clear errors, and no ack is sent', async (t) => {
  const cases: [string, RegExp, string][] = [
    ['ThrottlingException', /DynamoDB throttled PutItem on table interlock-audit .*the device sends it again after its ack timeout/, 'throttled'],
    ['AccessDeniedException', /DynamoDB refused PutItem on table interlock-audit .*needs dynamodb:GetItem, dynamodb:PutItem and dynamodb:UpdateItem/, 'access-denied'],
    ['ResourceNotFoundException', /table interlock-audit does not exist .*partition key thing \(S\) and sort key seq \(N\)/, 'table-missing'],
  ];
  for (const [name, message, kind] of cases) {
    const { dynamo, handler, acks, event } = await setup(t);
    const error = Object.assign(new Error(`${name} from AWS`), { name });
    dynamo.mock.on(PutItemCommand).rejects(error);
    const failure = await handler(event(1, 5)).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(failure instanceof ReceiverStoreError, `${name}: a ReceiverStoreError`);
    t.equal((failure as ReceiverStoreError).kind, kind);
    t.match((failure as Error).message, message);
    t.equal(acks.length, 0, `${name}: no ack, so the device resends`);
  }
});

t.test('the handler refuses an event not shaped by the rule; thing keys are read from JSON with clear errors', async (t) => {
  const { handler } = await setup(t);
  await t.rejects(handler({ payload: 42 } as unknown as { payload: string; thing: string }), /the event must be \{payload: base64 string, thing: string\}/);
  t.throws(() => thingDirectoryFromJson('nope'), /not JSON/);
  t.throws(() => thingDirectoryFromJson('{"a": "not a key"}'), /public key of thing a is not a PEM public key/);
  const device = await filledLog(t, 1);
  const pem = device.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.ok(thingDirectoryFromJson(JSON.stringify({ [THING]: pem })).publicKey(THING));
});
