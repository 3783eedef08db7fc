// Child process of the forwarding crash test: the interlock as `interlock run` composes it (startRuntime on the given
// cell and state folders, embedded local broker) with a cloud link to the given MQTT url and audit forwarding at the
// given rate. Reports `ready` over IPC once the forwarder runs, then the log's head and cursor every 20 ms.
// The parent kills it with SIGKILL mid-drain. Not a test file.

import { startRuntime } from '../../src/app/compose.js';
import { silentLogger } from '../../src/core/log.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';

const [cellDirectory, stateDirectory, cloudUrl, thingName, rate] = process.argv.slice(2);
if (cellDirectory === undefined || stateDirectory === undefined || cloudUrl === undefined || thingName === undefined || rate === undefined) {
  throw new Error('usage: forward-child CELL STATE CLOUD_URL THING RECORDS_PER_S');
}
const runtime = await startRuntime({
  cellDirectory,
  stateDirectory,
  embeddedPort: 0,
  heartbeatPeriodMs: 0,
  cloud: { transport: new MqttTransport({ url: cloudUrl, clientId: `thing-${thingName}`, reconnectPeriodMs: 100, log: () => undefined }), thingName },
  auditForwarding: { recordsPerSecond: Number(rate), maxBatchRecords: 50, idlePollMs: 20, ackTimeoutMs: 2_000 },
  log: silentLogger,
});
const timer = setInterval(() => {
  if (runtime.auditForwarder === undefined) return;
  clearInterval(timer);
  process.send?.({ type: 'ready' });
}, 10);
// The log's head and cursor, every 20 ms, for the parent to wait on.
setInterval(() => process.send?.({ type: 'status', head: runtime.audit.head(), acknowledgedSeq: runtime.audit.acknowledgedSeq() }), 20);
process.on('message', (message: { type: string }) => {
  if (message.type === 'stop') void runtime.stop().then(() => process.exit(0));
});
