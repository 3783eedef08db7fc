// The child process of the crash test; it works until the parent kills it with SIGKILL. Over IPC it reports each
// acknowledgement (record() resolved, so the row is durable: its audit seq) and each command the "actuator"
// received. Messages sent just before the kill may be lost; the parent relies only on what it did receive.
//
// Two modes:
// - `interlock`: the interlock as `interlock run` composes it (startRuntime: the embedded broker, the SQLite audit
//   log and identity store in the state folder, real Cedar and keys) deciding a stream of signed commands that an
//   agent publishes over a real MQTT connection; the actuator is another MQTT subscriber on the actuator topics.
// - `log`: the audit log alone under concurrent record() calls, each "actuated" only once its record resolved,
//   as the interlock does. It starts in a fraction of the interlock's time, so it can be killed many more times.
// - `trip`: the interlock as in `interlock` mode, with pump-1's driver publishing the state it is given (a discharge
//   pressure over the trip), signed with the driver's key, every 20 ms; once the interlock has latched the trip it
//   says `latched`, and goes on until it is killed.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [mode, stateDir, cellDir, privateKeyDir, pumpState] = process.argv.slice(2);
if ((mode !== 'interlock' && mode !== 'log' && mode !== 'trip') || stateDir === undefined) throw new Error('usage: crash-child interlock|log|trip <state> [<cell> <keys> [<pump state>]]');
const send = (message: Record<string, unknown>): void => {
  process.send?.(message);
};

if (mode === 'log') {
  const { openSqliteAuditLog } = await import('../../src/audit/sqlite-audit-log.js');
  const audit = openSqliteAuditLog(join(stateDir, 'audit.db'));
  send({ type: 'ready' });
  for (;;) {
    const burst: Promise<void>[] = [];
    for (let j = 0; j < 16; j++) {
      const commandId = randomUUID();
      burst.push(
        audit
          .record({ kind: 'decision', timeMs: Date.now(), commandId, agentId: 'crash-agent', deviceId: 'conveyor-1', action: 'stop', verdict: 'allow', reasons: [] })
          .then((receipt) => {
            send({ type: 'ack', seq: receipt.seq, commandId, verdict: 'allow', released: true });
            send({ type: 'actuated', commandId });
          }),
      );
    }
    await Promise.all(burst);
  }
} else if (mode === 'trip') {
  if (cellDir === undefined || privateKeyDir === undefined || pumpState === undefined) throw new Error('trip mode needs <cell> <keys> <pump state>');
  const { startRuntime } = await import('../../src/app/compose.js');
  const { DeviceReporter } = await import('../../src/driver-sdk/device-reporter.js');
  const { ensureCellDriverKeys } = await import('../../src/keys/cell-agent-keys.js');
  const { silentLogger } = await import('../../src/core/log.js');
  const { processMemory } = await import('../../src/bounds/process-unit/process-memory.js');
  const { MqttTransport } = await import('../../src/transport/mqtt-transport.js');
  const { topicSet } = await import('../../src/transport/topics.js');
  const runtime = await startRuntime({ cellDirectory: cellDir, stateDirectory: stateDir, embeddedPort: 0, heartbeatPeriodMs: 0, log: silentLogger });
  const driverKey = ensureCellDriverKeys(cellDir, privateKeyDir).get('pump-1');
  if (driverKey === undefined) throw new Error('the cell declares no driver key for pump-1');
  // pump-1's driver: it signs every state it reports, as the interlock requires.
  const reporter = new DeviceReporter('pump-1', driverKey);
  const { brokerLogin } = await import('../../src/transport/broker-clients.js');
  const driver = new MqttTransport({ url: runtime.brokerUrl, ...brokerLogin(runtime.brokerClientsPath ?? '', 'pump-1', 'crash'), log: () => undefined });
  await driver.start();
  send({ type: 'ready' });
  const latches = processMemory(runtime.interlock.bounds.device('pump-1')).latched;
  let told = false;
  for (;;) {
    await driver.publish(topicSet().actuatorState('pump-1'), reporter.state(JSON.parse(pumpState) as object), { qos: 1 });
    if (!told && latches.has('high_discharge_pressure')) {
      told = true;
      send({ type: 'latched' });
    }
    await new Promise((resolveTick) => setTimeout(resolveTick, 20));
  }
} else {
  if (cellDir === undefined || privateKeyDir === undefined) throw new Error('interlock mode needs <cell> <keys>');
  const { CommandSigner } = await import('../../src/agent-sdk/command-signer.js');
  const { startRuntime } = await import('../../src/app/compose.js');
  const { silentLogger } = await import('../../src/core/log.js');
  const { ed25519PrivateKeyFromPem } = await import('../../src/crypto/jws.js');
  const { MqttTransport } = await import('../../src/transport/mqtt-transport.js');
  const { topicSet } = await import('../../src/transport/topics.js');
  const topics = topicSet();
  const runtime = await startRuntime({ cellDirectory: cellDir, stateDirectory: stateDir, embeddedPort: 0, heartbeatPeriodMs: 0, log: silentLogger });
  let decided = 0;
  runtime.interlock.onDecision((event) => {
    decided += 1;
    if (event.auditSeq !== null) send({ type: 'ack', seq: event.auditSeq, commandId: event.report.commandId, verdict: event.report.verdict, released: event.released });
  });
  // The simulated actuator, on its own connection: what it receives is reported at once (a release names its command).
  const { brokerLogin } = await import('../../src/transport/broker-clients.js');
  // The observer reads every device's releases (one login for all of them).
  const actuator = new MqttTransport({ url: runtime.brokerUrl, ...brokerLogin(runtime.brokerClientsPath ?? '', 'observer', 'crash-actuator'), log: () => undefined });
  await actuator.start();
  await actuator.subscribe(topics.actuatorCommand('+'), (_topic, payload) => {
    const claims = JSON.parse(Buffer.from(payload.toString().split('.')[1] ?? '', 'base64url').toString()) as { commandId?: string };
    send({ type: 'actuated', commandId: claims.commandId });
  });
  const agent = new MqttTransport({ url: runtime.brokerUrl, ...brokerLogin(runtime.brokerClientsPath ?? '', 'observer-1', 'crash-agent'), log: () => undefined });
  await agent.start();
  const signer = new CommandSigner({
    agentId: 'observer-1',
    kid: 'observer-1-k1',
    privateKey: ed25519PrivateKeyFromPem(readFileSync(join(privateKeyDir, 'observer-1-k1.key.pem'), 'utf8')),
  });
  send({ type: 'ready' });
  // Under load: authenticated stops (allowed and released) and moves from a scope 1 agent (denied), eight at a time,
  // each burst once the previous one is decided.
  for (let i = 0; ; i++) {
    const burst = [];
    for (let j = 0; j < 8; j++) {
      const token = (i + j) % 3 === 0 ? signer.sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }) : signer.sign('conveyor-1', 'stop', {});
      burst.push(agent.publish(topics.command('conveyor-1'), token, { qos: 1 }));
    }
    await Promise.all(burst);
    const target = (i + 1) * 8;
    while (decided < target) await new Promise((resolveTick) => setTimeout(resolveTick, 1));
  }
}
