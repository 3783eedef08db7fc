// Worker thread of the audit forwarding bench: the cloud peer (the MQTT audit receiver on a SQLite store), kept off
// the interlock's thread, as the real receiver runs in the cloud. Posts 'ready' once subscribed, then 'stored' counts.

import { createPublicKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { silentLogger } from '../src/core/log.js';
import { MqttAuditReceiver } from '../src/cloud/receiver/mqtt-audit-receiver.js';
import { SqliteReceiverStore } from '../src/cloud/receiver/sqlite-receiver-store.js';
import { wideClient } from './wide-broker.js';

const { url, dbPath, publicKeyPem } = workerData as { url: string; dbPath: string; publicKeyPem: string };
const key = createPublicKey(publicKeyPem);
const store = new SqliteReceiverStore(dbPath);
const transport = wideClient(url, 'audit-receiver');
await transport.start();
const receiver = new MqttAuditReceiver({ transport, store, things: { publicKey: () => key }, logger: silentLogger });
await receiver.start();
parentPort?.on('message', (message: string) => {
  if (message !== 'stop') return;
  void receiver
    .stop()
    .then(() => transport.stop())
    .then(() => {
      parentPort?.postMessage({ type: 'stats', ...receiver.stats() });
      store.close();
      process.exit(0);
    });
});
parentPort?.postMessage({ type: 'ready' });
