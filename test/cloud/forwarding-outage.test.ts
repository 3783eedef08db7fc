// Audit forwarding from the interlock as `interlock run` composes it (live rig, embedded local broker) to a receiver on
// a second, real mosquitto standing in for IoT Core, while commands are decided:
// (a) the cloud broker is stopped under load and started again: every record arrives exactly once (after dedup), with
//     no gap, and the device's cursor equals the receiver's watermark;
// (b) the cloud broker is SIGKILLed with batches in flight: nothing is lost end to end.

import t, { type Test } from 'tap';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { liveInterlock, type LiveInterlock } from '../helpers/live-interlock.js';
import { startMosquitto, type RunningMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait-for.js';
import { cloudPeer, type CloudPeer } from '../helpers/audit-forwarding.js';

const THING = 'outage-cell';
const DRAIN_WAIT_MS = 60_000;

interface Load {
  /** Decisions made since the load began. */
  readonly count: () => number;
  stop(): Promise<void>;
}

/** Sends safe-state commands (each one audit record) in bursts of 10 until stopped. */
function load(rig: LiveInterlock): Load {
  const planner = rig.cell.signer('planner-1');
  let running = true;
  let decided = 0;
  const loop = (async () => {
    while (running) {
      const tokens = Array.from({ length: 10 }, () => planner.sign('conveyor-1', 'stop', {}));
      decided += (await rig.burst('conveyor-1', tokens)).length;
    }
  })();
  return {
    count: () => decided,
    async stop() {
      running = false;
      await loop;
    },
  };
}

async function rigWithCloud(t: Test): Promise<{ rig: LiveInterlock; cloud: { broker: RunningMosquitto }; peer: CloudPeer }> {
  const cloud = { broker: await startMosquitto() };
  t.teardown(() => cloud.broker.stop());
  const port = cloud.broker.port;
  const rig = await liveInterlock(t, {
    cloud: () => ({ transport: new MqttTransport({ url: `mqtt://127.0.0.1:${port}`, clientId: `thing-${THING}`, reconnectPeriodMs: 100, publishTimeoutMs: 3_000, log: () => undefined }), thingName: THING }),
    auditForwarding: { ackTimeoutMs: 3_000, idlePollMs: 50 },
  });
  const peer = await cloudPeer(t, cloud.broker.url, new Map([[THING, rig.runtime.interlockPublicKey]]));
  await waitFor(() => rig.runtime.auditForwarder !== undefined, 'the forwarder to start once the cloud link is up', 20_000);
  return { rig, cloud, peer };
}

/** Everything the device holds arrives exactly once, gapless, and the cursor equals the receiver's watermark. */
async function assertComplete(t: Test, rig: LiveInterlock, peer: CloudPeer): Promise<void> {
  await rig.interlock.idle();
  const head = rig.audit.head();
  await waitFor(() => rig.audit.acknowledgedSeq() === head.seq, `the device cursor to reach its head ${head.seq}`, DRAIN_WAIT_MS, 20);
  const held = peer.store.records(THING);
  t.equal(held.length, head.seq, `the receiver holds ${head.seq} records`);
  t.ok(held.every((r, i) => r.seq === i + 1), 'seqs 1..head, each once, no gap');
  const local = rig.audit.read(1, head.seq);
  t.ok(held.every((r, i) => r.hash === local[i]?.hash), 'every held hash is the device record hash');
  t.same(await peer.receiver.watermark(THING), { seq: rig.audit.acknowledgedSeq(), hash: head.hash }, 'device cursor = receiver watermark');
  t.equal(rig.runtime.auditForwarder?.status().mismatches, 0, 'no watermark mismatched');
}

t.test('(a) the cloud broker stops under load and comes back: every record arrives exactly once', async (t) => {
  const { rig, cloud, peer } = await rigWithCloud(t);
  const traffic = load(rig);
  await waitFor(() => traffic.count() >= 200 && peer.store.count(THING) > 0, 'load under way and records arriving', 30_000, 20);
  await cloud.broker.stop();
  const atStop = traffic.count();
  await waitFor(() => traffic.count() >= atStop + 300, 'decisions to go on during the outage', 30_000, 20);
  const heldDuring = peer.store.count(THING);
  t.ok(rig.audit.head().seq > heldDuring, 'records piled up on the device while the cloud was away');
  cloud.broker = await startMosquitto({ port: cloud.broker.port });
  await waitFor(() => traffic.count() >= atStop + 500, 'more decisions after the cloud came back', 30_000, 20);
  await traffic.stop();
  await assertComplete(t, rig, peer);
  t.ok((rig.runtime.auditForwarder?.status().resends ?? 0) >= 1, 'the forwarder went back to its cursor after the outage');
});

t.test('(b) the cloud broker is SIGKILLed with batches in flight: nothing is lost', async (t) => {
  const { rig, cloud, peer } = await rigWithCloud(t);
  const traffic = load(rig);
  await waitFor(() => traffic.count() >= 300, 'a backlog', 30_000, 20);
  const forwarder = rig.runtime.auditForwarder;
  if (forwarder === undefined) return t.fail('the forwarder runs');
  await waitFor(() => forwarder.status().inFlight > 0 && rig.audit.acknowledgedSeq() < rig.audit.head().seq, 'batches in flight', 30_000, 1);
  await cloud.broker.kill();
  const atKill = traffic.count();
  await waitFor(() => traffic.count() >= atKill + 200, 'decisions to go on with the cloud dead', 30_000, 20);
  cloud.broker = await startMosquitto({ port: cloud.broker.port });
  await traffic.stop();
  await assertComplete(t, rig, peer);
});
