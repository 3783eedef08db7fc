// The component's audit forwarding over Greengrass, in process against the test nucleus with the recipe's own
// configuration and accessControl: batches leave through the nucleus's IoT Core channel (PublishToIoTCore, QoS 1), a
// receiver on the nucleus's cloud side verifies and stores them and answers on interlock/{thing}/audit/ack, which
// reaches the component over SubscribeToIoTCore; only that answer moves the component's acknowledgement cursor.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { auditAckTopic, auditTopic } from '../../src/cloud/audit-batch.js';
import { receiveBatch } from '../../src/cloud/receiver/receive-batch.js';
import { SqliteReceiverStore } from '../../src/cloud/receiver/sqlite-receiver-store.js';
import { startComponent } from '../../src/greengrass/component.js';
import { TestNucleus } from '../helpers/greengrass-nucleus.js';
import { COMPONENT_NAME, loadRecipe } from '../helpers/recipe.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const fast = { reconnectMinMs: 20, reconnectMaxMs: 200, connectTimeoutMs: 3_000 };
const THING = 'test-thing';

t.test('the component forwards its audit records through the nucleus and moves its cursor only on the receiver’s answer', async (t) => {
  const cell = makeTestCell({}, { stateAgeMs: 10_000 });
  const work = mkdtempSync(join(tmpdir(), 'gg-forward-'));
  const recipe = loadRecipe();
  const nucleus = new TestNucleus(join(work, 'ipc.sock'), [
    { name: COMPONENT_NAME, accessControl: recipe.accessControl, configuration: { ...recipe.configuration, cellDirectory: cell.cellDir, heartbeatPeriodMs: 10_000 } },
  ]);
  await nucleus.start();
  const store = new SqliteReceiverStore(join(work, 'receiver.db'));
  t.teardown(async () => {
    await nucleus.stop();
    store.close();
    cell.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  let answering = false;
  const batches: string[] = [];
  let publicKey: import('node:crypto').KeyObject | undefined;
  // The cloud side: a receiver behind the nucleus's MQTT proxy, answering each batch in arrival order when told to.
  let queue = Promise.resolve();
  nucleus.iotCoreListeners.add((published) => {
    if (published.topicName !== auditTopic(THING)) return;
    batches.push(published.topicName);
    if (!answering) return;
    queue = queue.then(async () => {
      const result = await receiveBatch(published.payload, THING, { store, things: { publicKey: (thing) => (thing === THING ? publicKey : undefined) } });
      nucleus.cloudPublish(auditAckTopic(THING), JSON.stringify(result.ack));
    });
  });

  const running = await startComponent({ ipc: { socketPath: nucleus.socketPath, authToken: nucleus.tokens.get(COMPONENT_NAME) as string, ...fast }, places: { workPath: work }, write: () => undefined, thingName: THING });
  t.teardown(() => running.stop());
  publicKey = running.runtime.interlockPublicKey;
  const audit = running.runtime.audit;

  // Unanswered, batches go out at QoS 1 but nothing is acknowledged: a PUBACK from the nucleus is not the cloud's word.
  await waitFor(() => batches.length >= 1, 'a batch through PublishToIoTCore', 15_000);
  const sent = nucleus.iotCorePublishes.filter((p) => p.component === COMPONENT_NAME && p.topicName === auditTopic(THING));
  t.ok(sent.length >= 1 && sent.every((p) => p.qos === '1'), 'batches at QoS 1, as the recipe grants');
  t.equal(audit.acknowledgedSeq(), 0, 'no cursor movement without the receiver’s watermark');

  answering = true;
  const head = audit.head();
  // The forwarder resends after its ack timeout (15 s) or sends the next batch as records come: wait for the watermark.
  await waitFor(() => audit.acknowledgedSeq() >= head.seq, `the cursor to reach seq ${head.seq}`, 40_000);
  const mark = await store.watermark(THING);
  t.ok(mark !== undefined && mark.seq >= head.seq, 'the receiver holds the head');
  t.equal(await store.hashAt(THING, head.seq), head.hash, 'with the device’s own hash at that seq');
  t.ok(audit.acknowledgedSeq() <= (mark?.seq ?? 0), 'the cursor never passes what the receiver holds');
});
