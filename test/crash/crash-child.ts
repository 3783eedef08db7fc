// The child process of the crash test; it works until the parent kills it with SIGKILL. Over IPC it reports each
// acknowledgement (record() resolved, so the row is durable: its audit seq) and each command the "actuator"
// received. Messages sent just before the kill may be lost; the parent relies only on what it did receive.
//
// Two modes:
// - `interlock`: a real interlock (real SQLite audit log and identity store in the state folder, real Cedar and
//   keys) deciding a stream of commands on an in-memory bus; the actuator is a subscriber on the actuator topic.
// - `log`: the audit log alone under concurrent record() calls, each "actuated" only once its record resolved,
//   as the interlock does. It starts in a fraction of the interlock's time, so it can be killed many more times.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [mode, stateDir, cellDir, privateKeyDir] = process.argv.slice(2);
if ((mode !== 'interlock' && mode !== 'log') || stateDir === undefined) throw new Error('usage: crash-child interlock|log <state> [<cell> <keys>]');
const send = (message: Record<string, unknown>): void => {
  process.send?.(message);
};

const { openSqliteAuditLog } = await import('../../src/audit/sqlite-audit-log.js');
const audit = openSqliteAuditLog(join(stateDir, 'audit.db'));

if (mode === 'log') {
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
} else {
  if (cellDir === undefined || privateKeyDir === undefined) throw new Error('interlock mode needs <cell> <keys>');
  const { CommandSigner } = await import('../../src/agent-sdk/command-signer.js');
  const { systemClock } = await import('../../src/core/clock.js');
  const { ed25519PrivateKeyFromPem, generateEd25519KeyPair } = await import('../../src/crypto/jws.js');
  const { loadCell } = await import('../../src/declarations/load.js');
  const { SqliteIdentityStore } = await import('../../src/identity/sqlite-identity-store.js');
  const { Interlock } = await import('../../src/interlock/interlock.js');
  const { topicSet } = await import('../../src/transport/topics.js');
  const { InMemoryBus } = await import('../helpers/memory-bus.js');
  const loaded = loadCell(cellDir);
  if (!loaded.ok) throw new Error('cell does not load');
  const identity = SqliteIdentityStore.open(join(stateDir, 'identity.db'), { nowMs: () => Date.now() });
  const bus = new InMemoryBus();
  const topics = topicSet();
  const interlock = new Interlock({
    cell: loaded.cell,
    transport: bus,
    audit,
    signingKey: generateEd25519KeyPair().privateKey,
    clock: systemClock,
    heartbeatPeriodMs: 0,
    metricsPeriodMs: 0,
    identity,
  });
  interlock.onDecision((event) => {
    if (event.auditSeq !== null) send({ type: 'ack', seq: event.auditSeq, commandId: event.report.commandId, verdict: event.report.verdict, released: event.released });
  });
  await bus.subscribe(topics.actuatorCommand('+'), (_topic, payload) => {
    // The simulated actuator: what it receives is reported at once (a released command's claims name its id).
    const claims = JSON.parse(Buffer.from(payload.toString().split('.')[1] ?? '', 'base64url').toString()) as { commandId?: string };
    send({ type: 'actuated', commandId: claims.commandId });
  });
  await interlock.start();
  const signer = new CommandSigner({
    agentId: 'observer-1',
    kid: 'observer-1-k1',
    privateKey: ed25519PrivateKeyFromPem(readFileSync(join(privateKeyDir, 'observer-1-k1.key.pem'), 'utf8')),
  });
  send({ type: 'ready' });
  // Under load: authenticated stops (allowed and released) and moves from a scope 1 agent (denied), eight at a time.
  for (let i = 0; ; i++) {
    const burst = [];
    for (let j = 0; j < 8; j++) {
      const token = (i + j) % 3 === 0 ? signer.sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }) : signer.sign('conveyor-1', 'stop', {});
      burst.push(bus.publish(topics.command('conveyor-1'), token));
    }
    await Promise.all(burst);
    // The bus delivers on setImmediate: let it, then wait until the interlock has decided the burst.
    await new Promise((resolveTick) => setImmediate(resolveTick));
    await interlock.idle();
  }
}
