// Standalone mode against a real mosquitto run from the shipped example (greengrass/standalone/mosquitto.conf and
// acl, certificates from make-certs.sh): TLS only, client certificates required, identities from the certificate,
// and an ACL under which only the interlock can publish actuator commands. The interlock connects with the TLS
// material `interlock run --tls-*` loads, a conveyor driver and an agent connect with their own certificates.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SimulatedConveyor } from '../../simulator/conveyor-driver.js';
import { startRuntime } from '../../src/app/compose.js';
import { silentLogger } from '../../src/core/log.js';
import type { DecisionReport } from '../../src/pipeline/decision-report.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { loadTlsFiles } from '../../src/transport/tls-files.js';
import { topicSet } from '../../src/transport/topics.js';
import { startShippedMosquitto, type RunningMosquitto } from '../helpers/mosquitto.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const topics = topicSet();
const CONVEYOR = 'conveyor-1';
const STANDALONE = join(REPO_ROOT, 'greengrass', 'standalone');
const dir = mkdtempSync(join(tmpdir(), 'interlock-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// The documented way to make certificates, run as documented; a second CA stands for anyone else's PKI.
const certs = join(dir, 'certs');
const rogue = join(dir, 'rogue');
execFileSync(join(STANDALONE, 'make-certs.sh'), [certs, 'localhost', 'interlock', CONVEYOR, 'planner-1', 'intruder'], { stdio: 'pipe' });
execFileSync(join(STANDALONE, 'make-certs.sh'), [rogue, 'localhost', 'interlock'], { stdio: 'pipe' });

// The example files as shipped, with the listener moved to a free loopback port and the paths to the test's folder.
const broker: RunningMosquitto = await startShippedMosquitto(STANDALONE, certs);
t.teardown(() => broker.stop());
const url = `mqtts://localhost:${broker.port}`;

/** A client identified by `identity`'s certificate (made by make-certs.sh in `from`). */
function client(identity: string, extra: { from?: string; protocolVersion?: 4 | 5; username?: string; trustSystemCasOnly?: boolean } = {}): MqttTransport {
  const from = extra.from ?? certs;
  const tls = loadTlsFiles(url, {
    ...(extra.trustSystemCasOnly === true ? {} : { caFile: join(certs, 'ca.crt') }),
    certFile: join(from, `${identity}.crt`),
    keyFile: join(from, `${identity}.key`),
  });
  return new MqttTransport({
    url,
    ...tls,
    clientId: `${identity}-${Math.random().toString(16).slice(2, 8)}`,
    connectTimeoutMs: 3_000,
    log: () => undefined,
    ...(extra.protocolVersion === undefined ? {} : { protocolVersion: extra.protocolVersion }),
    ...(extra.username === undefined ? {} : { username: extra.username }),
  });
}

async function refusal(transport: MqttTransport): Promise<string> {
  try {
    await transport.start();
    return 'connected';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await transport.stop();
  }
}

t.test('the broker admits only clients with a certificate from the cell CA, and only over TLS', { timeout: 30_000 }, async (t) => {
  const anonymous = new MqttTransport({ url, ca: readFileSync(join(certs, 'ca.crt')), connectTimeoutMs: 3_000, log: () => undefined });
  t.match(await refusal(anonymous), /cannot connect to mqtts:\/\/localhost/, 'no client certificate: refused in the handshake');
  t.match(await refusal(client('interlock', { from: rogue })), /cannot connect/, "a certificate from another CA (same CN 'interlock'): refused");
  t.match(await refusal(client('interlock', { trustSystemCasOnly: true })), /self.signed|unable to verify|certificate/i, 'the interlock refuses a broker whose certificate does not chain to a CA it was given');
  const plain = new MqttTransport({ url: `mqtt://127.0.0.1:${broker.port}`, connectTimeoutMs: 2_000, log: () => undefined });
  t.match(await refusal(plain), /cannot connect/, 'plain text to the TLS port: no connection');
  const planner = client('planner-1');
  t.equal(await refusal(planner), 'connected', 'a certificate from the cell CA connects');
});

t.test('through the TLS broker: the interlock releases a safe command; only it may publish to the actuator', { timeout: 60_000 }, async (t) => {
  // State-age limits relaxed: the runtime is on the real clock, and this test is about TLS and the ACL.
  const cell = makeTestCell({}, { stateAgeMs: 10_000 });
  t.teardown(() => cell.cleanup());
  const stateDirectory = join(dir, 'state');
  const brokerTls = loadTlsFiles(url, { caFile: join(certs, 'ca.crt'), certFile: join(certs, 'interlock.crt'), keyFile: join(certs, 'interlock.key') });
  const runtime = await startRuntime({ cellDirectory: cell.cellDir, stateDirectory, brokerUrl: url, brokerTls, log: silentLogger });
  t.teardown(() => runtime.stop());
  t.equal(runtime.brokerUrl, url);

  const driverBus = client(CONVEYOR, { protocolVersion: 5 });
  const agentBus = client('planner-1', { protocolVersion: 5 });
  // A valid certificate from the cell CA whose identity the ACL grants nothing, claiming to be the interlock in
  // its CONNECT username: the broker goes by the certificate.
  const intruderBus = client('intruder', { protocolVersion: 5, username: 'interlock' });
  await Promise.all([driverBus.start(), agentBus.start(), intruderBus.start()]);
  t.teardown(() => Promise.allSettled([driverBus.stop(), agentBus.stop(), intruderBus.stop()]).then(() => undefined));
  const conveyor = new SimulatedConveyor({
    deviceId: CONVEYOR,
    transport: driverBus,
    interlockPublicKey: runtime.interlockPublicKey,
    driverKey: cell.driverKey(CONVEYOR),
    defaultRampMPerS2: 0.25,
    heartbeatTimeoutMs: 0,
    permissives: { guardClosed: true, estopReleased: true, downstreamReady: true },
  });
  await conveyor.start();
  t.teardown(() => conveyor.stop());
  const decisions: DecisionReport[] = [];
  await agentBus.subscribe(topics.decision(CONVEYOR), (_topic, payload) => decisions.push(JSON.parse(payload.toString()) as DecisionReport));
  await waitFor(() => runtime.interlock.states.latest(CONVEYOR) !== undefined, 'conveyor state over TLS');

  const planner = cell.signer('planner-1');
  await agentBus.publish(topics.command(CONVEYOR), planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  await waitFor(() => decisions.length === 1, 'the decision');
  t.equal(decisions[0]?.verdict, 'allow', JSON.stringify(decisions[0]?.reasons));
  await waitFor(() => conveyor.executed.length === 1, 'the conveyor to execute the release');

  // Forged releases: refused by the broker (MQTT 5 reason code 0x87), whoever sends them.
  await t.rejects(agentBus.publish(topics.actuatorCommand(CONVEYOR), 'forged', { qos: 1 }), /not authori[sz]ed|reason code 135/i, 'an agent cannot publish a release');
  await t.rejects(driverBus.publish(topics.actuatorCommand(CONVEYOR), 'forged', { qos: 1 }), /not authori[sz]ed|reason code 135/i, 'a driver cannot publish to its own actuator topic');
  await t.rejects(intruderBus.publish(topics.actuatorCommand(CONVEYOR), 'forged', { qos: 1 }), /not authori[sz]ed|reason code 135/i, "a CONNECT username 'interlock' does not make a client the interlock");
  await t.rejects(driverBus.publish(topics.decision(CONVEYOR), '{"verdict":"allow"}', { qos: 1 }), /not authori[sz]ed|reason code 135/i, 'nobody else speaks for the interlock');
  // Listening to releases: mosquitto 2 may grant the SUBSCRIBE and check each message against the ACL on
  // delivery instead; either way nothing may arrive.
  const overheard: string[] = [];
  const listen = (bus: MqttTransport, who: string): Promise<unknown> =>
    bus.subscribe(topics.actuatorCommand('+'), (topic) => overheard.push(`${who}: ${topic}`)).catch((error: unknown) => error);
  await listen(intruderBus, 'intruder');
  await listen(agentBus, 'planner-1');

  // A later allowed command is the barrier: once it is executed, any forged message sent before it would have
  // reached the conveyor too. Only the two releases arrived.
  await agentBus.publish(topics.command(CONVEYOR), planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.2, rampMPerS2: 0.2 }));
  await waitFor(() => conveyor.executed.length === 2, 'the second release');
  t.equal(conveyor.received.length, 2, 'the conveyor received only the two releases of the interlock');
  // The interlock publishes the decision after the release, so the agent has the release before the decision if
  // it was delivered at all; the intruder's acknowledged publish comes back on its connection after anything the
  // broker had queued for it.
  await waitFor(() => decisions.length === 2, 'the second decision');
  await intruderBus.publish('interlock/sentinel', 'x', { qos: 1 }).catch(() => undefined);
  t.same(overheard, [], 'no release reached an identity the ACL does not let read it');
  t.match(runtime.audit.verify(), { ok: true });
});

t.test('a driver speaks only for its own device', { timeout: 30_000 }, async (t) => {
  const driverBus = client(CONVEYOR, { protocolVersion: 5 });
  await driverBus.start();
  t.teardown(() => driverBus.stop());
  await t.resolves(driverBus.subscribe(topics.actuatorCommand(CONVEYOR), () => undefined), 'its own actuator topic');
  await t.resolves(driverBus.publish(topics.actuatorOutcome(CONVEYOR), '{}', { qos: 1 }), 'its own outcome topic');
  await t.rejects(driverBus.publish(topics.actuatorOutcome('arm-1'), '{}', { qos: 1 }), /not authori[sz]ed|reason code 135/i, "another device's outcome topic");
  await t.resolves(driverBus.publish(topics.actuatorState(CONVEYOR), '{}', { qos: 1 }), 'its own state topic');
  await t.rejects(driverBus.publish(topics.actuatorState('arm-1'), '{}', { qos: 1 }), /not authori[sz]ed|reason code 135/i, "another device's state topic");
});

t.test('the example config stays TLS-only with certificates required', async (t) => {
  const text = readFileSync(join(STANDALONE, 'mosquitto.conf'), 'utf8');
  const active = text.split('\n').filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
  t.same(active.filter((line) => line.startsWith('listener')), ['listener 8883'], 'one listener');
  for (const line of ['require_certificate true', 'use_identity_as_username true', 'allow_anonymous false']) t.ok(active.includes(line), line);
  const acl = readFileSync(join(STANDALONE, 'acl'), 'utf8');
  // Every grant of actuator/+/command writing (or readwrite) sits in the interlock's block.
  let user = '';
  const writers = new Set<string>();
  for (const line of acl.split('\n')) {
    const u = /^user (\S+)/.exec(line);
    if (u) user = u[1] as string;
    if (/^(topic|pattern)\s+(write|readwrite)\s+actuator\/[^/]+\/command/.test(line) || /^(topic|pattern)\s+actuator\/[^/]+\/command/.test(line)) writers.add(user);
  }
  t.same([...writers], ['interlock'], 'only the interlock may write actuator commands');
});
