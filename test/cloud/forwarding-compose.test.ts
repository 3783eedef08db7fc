// How startRuntime wires audit forwarding: on by default once the cloud link is up, off with enabled: false (nothing
// is sent, nothing acknowledged), and a bad option refuses the start naming it before anything opens.

import t from 'tap';
import { startRuntime } from '../../src/app/compose.js';
import { auditTopic } from '../../src/cloud/audit-batch.js';
import { silentLogger } from '../../src/core/log.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { liveInterlock } from '../helpers/live-interlock.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';
import { tempDir } from '../helpers/audit-forwarding.js';

const THING = 'compose-cell';

t.test('with enabled: false the cloud link comes up and no audit batch leaves', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const watcher = new MqttTransport({ url: broker.url, clientId: 'watcher', log: () => undefined });
  await watcher.start();
  t.teardown(() => watcher.stop());
  let batches = 0;
  await watcher.subscribe(auditTopic(THING), () => (batches += 1));
  const rig = await liveInterlock(t, {
    cloud: () => ({ transport: new MqttTransport({ url: broker.url, clientId: `thing-${THING}`, log: () => undefined }), thingName: THING }),
    auditForwarding: { enabled: false },
  });
  const up = rig.runtime.cloud?.started;
  if (up === undefined) return t.fail('the runtime has a cloud link');
  await up;
  const planner = rig.cell.signer('planner-1');
  await rig.send('conveyor-1', planner.sign('conveyor-1', 'stop', {}));
  // A forwarder, had one started, sends at once: a decision later, still nothing on the audit topic.
  await rig.send('conveyor-1', planner.sign('conveyor-1', 'stop', {}));
  t.equal(rig.runtime.auditForwarder, undefined, 'no forwarder');
  t.equal(batches, 0, 'no batch published');
  t.equal(rig.audit.acknowledgedSeq(), 0, 'nothing acknowledged');
});

t.test('forwarding is on by default with a cloud link', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const rig = await liveInterlock(t, {
    cloud: () => ({ transport: new MqttTransport({ url: broker.url, clientId: `thing-${THING}`, log: () => undefined }), thingName: THING }),
  });
  await waitFor(() => rig.runtime.auditForwarder !== undefined, 'the forwarder to start with the link');
  await waitFor(() => (rig.runtime.auditForwarder?.status().batchesSent ?? 0) > 0, 'a batch to be sent');
  t.equal(rig.audit.acknowledgedSeq(), 0, 'nobody answers: nothing acknowledged');
});

t.test('a bad forwarding option refuses the start, named', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  await t.rejects(
    startRuntime({ cellDirectory: cell.cellDir, stateDirectory: tempDir(t, 'compose-forward-'), embeddedPort: 0, auditForwarding: { recordsPerSecond: -1 }, log: silentLogger }),
    /audit forwarding: recordsPerSecond must be a number > 0/,
  );
});
