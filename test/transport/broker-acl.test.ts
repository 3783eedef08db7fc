// The embedded broker's door and rooms: who gets in (a password per identity of the cell, made on first start) and
// what each may publish and read (the ACL of broker-acl.ts, which is also the shipped mosquitto ACL). Attacks from
// issue 12, finding 1: an anonymous client, or a client with one identity's password, speaking for another device,
// for the interlock (heartbeat, decisions), or listening to another device's releases.

import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { cellBrokerIdentities, brokerLogin, BROKER_CLIENTS_FILE, type BrokerIdentity } from '../../src/transport/broker-clients.js';
import { filterWithin, grantFor, INTERLOCK, type TopicGrant } from '../../src/transport/broker-acl.js';
import { loadCell } from '../../src/declarations/load.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { topicSet } from '../../src/transport/topics.js';
import { liveInterlock, topics } from '../helpers/live-interlock.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { conveyorStateMessage } from '../helpers/state-messages.js';
import { inbox } from './transport-contract.js';
import { required } from '../helpers/required.js';

const ROOT = new URL('../..', import.meta.url).pathname;

t.test('a grant covers a filter only when every topic the filter matches is inside it', async (t) => {
  const cases: [filter: string, grant: string, within: boolean][] = [
    ['actuator/arm-1/state', 'actuator/arm-1/state', true],
    ['actuator/arm-1/state', 'actuator/+/state', true],
    ['actuator/+/state', 'actuator/+/state', true],
    ['actuator/+/state', 'actuator/arm-1/state', false],
    ['actuator/#', 'actuator/+/state', false],
    ['actuator/arm-1/state/x', 'actuator/+/state', false],
    ['actuator/arm-1', 'actuator/+/state', false],
    ['a/b/c', 'a/#', true],
    ['a/#', 'a/#', true],
    ['a', 'a/#', true], // MQTT: `a/#` also matches its parent level `a`
    ['$SYS/broker', '#', false],
    ['$SYS/broker', '+/broker', false],
    ['actuator/+/state', '#', true],
    ['actuator/arm+/state', 'actuator/+/state', false],
  ];
  for (const [filter, grant, within] of cases) t.equal(filterWithin(filter, grant), within, `${filter} within ${grant}: ${String(within)}`);
});

/** The `user` blocks of a mosquitto acl_file, as sets of `read x` / `write x` lines. */
function parseAcl(text: string): Map<string, Set<string>> {
  const users = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const user = /^user (\S+)$/.exec(line);
    if (user !== null) {
      current = new Set();
      users.set(user[1] as string, current);
      continue;
    }
    const topic = /^topic (read|write) (\S+)$/.exec(line);
    if (topic === null || current === undefined) throw new Error(`acl: cannot read "${line}"`);
    current.add(`${topic[1]} ${topic[2]}`);
  }
  return users;
}

const asLines = (grant: TopicGrant): Set<string> => new Set([...grant.read.map((r) => `read ${r}`), ...grant.write.map((w) => `write ${w}`)]);

t.test('the shipped mosquitto ACL is the embedded broker\'s table, for every identity of the demo cell', async (t) => {
  const loaded = loadCell(makeTestCell().cellDir);
  if (!loaded.ok) throw new Error('the demo cell does not load');
  const shipped = parseAcl(readFileSync(join(ROOT, 'greengrass', 'standalone', 'acl'), 'utf8'));
  const expected = new Map<string, Set<string>>([[INTERLOCK, asLines(grantFor('interlock', INTERLOCK, topicSet()))]]);
  for (const identity of cellBrokerIdentities(loaded.cell.declarations)) expected.set(identity.username, asLines(grantFor(identity.role, identity.username, topicSet())));
  t.same([...shipped.keys()].sort(), [...expected.keys()].sort(), 'the same users');
  for (const [user, lines] of expected) t.same([...(shipped.get(user) ?? [])].sort(), [...lines].sort(), `the same topics for ${user}`);
});

t.test('two roles may not share a name: the broker names clients by id', async (t) => {
  const loaded = loadCell(makeTestCell().cellDir);
  if (!loaded.ok) throw new Error('the demo cell does not load');
  const declarations = loaded.cell.declarations;
  const agents = new Map(declarations.agents);
  const [someAgent] = [...agents.values()];
  agents.set('arm-1', { ...(someAgent as NonNullable<typeof someAgent>), id: 'arm-1' });
  t.throws(() => cellBrokerIdentities({ ...declarations, agents }), /agent "arm-1" has the same name as device "arm-1"/);
});

t.test('live: the door (who connects) and the rooms (what each may publish and read)', { timeout: 60_000 }, async (t) => {
  const rig = await liveInterlock(t, { feed: false });
  const path = required(rig.runtime.brokerClientsPath, 'the broker clients file');
  t.equal(path, join(rig.stateDirectory, BROKER_CLIENTS_FILE));
  t.equal(statSync(path).mode & 0o777, 0o600, 'the password file is readable by its owner only');
  const url = rig.runtime.brokerUrl;
  const identities: BrokerIdentity[] = cellBrokerIdentities(rig.runtime.cell.declarations);
  t.ok(identities.some((i) => i.username === 'observer'), 'an observer identity exists');

  const refused = async (options: mqtt.IClientOptions, what: string): Promise<void> => {
    const outcome = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options }).then(
      async (client) => {
        await client.endAsync(true);
        return 'connected';
      },
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    t.match(outcome, /Bad username or password|Not authorized/, `${what}: refused at CONNECT (${outcome})`);
  };
  const arm = brokerLogin(path, 'arm-1', 'test');
  await refused({ clientId: 'anonymous-1' }, 'anonymous');
  await refused({ clientId: 'arm-1:x', username: 'arm-1', password: 'not-the-password' }, 'a wrong password');
  await refused({ clientId: 'ghost:x', username: 'ghost', password: arm.password }, 'an unknown user with a real password');
  await refused({ clientId: 'interlock', username: INTERLOCK, password: arm.password }, 'the interlock\'s own name');
  await refused({ clientId: 'conveyor-1', username: 'arm-1', password: arm.password }, 'another identity\'s client id (a session takeover)');

  const connect = async (username: string): Promise<MqttTransport> => {
    const transport = new MqttTransport({ url, ...brokerLogin(path, username, `acl-${Math.random().toString(16).slice(2, 8)}`), reconnectPeriodMs: 50, log: () => undefined });
    t.teardown(() => transport.stop());
    await transport.start();
    return transport;
  };
  const observer = await connect('observer');
  const seen = inbox();
  for (const filter of [topics.stateFilter, topics.outcomeFilter, topics.heartbeat, topics.decision('+'), topics.actuatorCommand('+'), topics.commandFilter]) await observer.subscribe(filter, seen.handler);

  // Each attempt is refused by the broker: aedes closes the offender's connection (MQTT 3.1.1 has no negative PUBACK),
  // so each is made on a connection of its own.
  const attempts: [string, string, string][] = [
    ['arm-1', topics.actuatorState('conveyor-1'), 'arm-1 speaks for conveyor-1'],
    ['arm-1', topics.actuatorOutcome('conveyor-1'), 'arm-1 answers a conveyor release'],
    ['planner-1', topics.actuatorState('arm-1'), 'an agent reports device state'],
    ['planner-1', topics.heartbeat, 'an agent beats the interlock\'s heartbeat'],
    ['planner-1', topics.decision('arm-1'), 'an agent forges a decision'],
    ['arm-1', topics.actuatorCommand('arm-1'), 'a driver releases a command to itself'],
    ['shift-lead', topics.heartbeat, 'an operator beats the heartbeat'],
    ['observer', topics.command('arm-1'), 'the observer sends a command'],
  ];
  for (const [username, topic, what] of attempts) {
    const client = await connect(username);
    await t.rejects(client.publish(topic, `forged: ${what}`, { qos: 1 }), /outcome unknown/, what);
  }
  // Retained, even where the client may publish: the broker would keep one per topic, and an agent names any device.
  const retainer = await connect('planner-1');
  await t.rejects(retainer.publish(topics.command('ghost-7'), 'forged: a retained command', { qos: 1, retain: true }), /outcome unknown/, 'an agent retains a command');
  const armDriver = await connect('arm-1');
  const planner = await connect('planner-1');

  // What they may do still works, and proves delivery happened meanwhile.
  const conveyor = await connect('conveyor-1');
  await conveyor.publish(topics.actuatorState('conveyor-1'), rig.reporter('conveyor-1').state(conveyorStateMessage()), { qos: 1 });
  await seen.until((m) => m.some((x) => x.topic === topics.actuatorState('conveyor-1')), 'the conveyor driver\'s own state at the observer');
  t.same(seen.messages.filter((m) => m.payload.toString('utf8').startsWith('forged')).map((m) => m.topic), [], 'no refused publish reached a subscriber');

  await t.rejects(armDriver.subscribe(topics.actuatorCommand('conveyor-1'), () => undefined), /Subscribe error|failed/, 'a driver may not read another device\'s releases');
  await t.rejects(planner.subscribe(topics.stateFilter, () => undefined), /Subscribe error|failed/, 'an agent may not read device state');
  await t.resolves(armDriver.subscribe(topics.actuatorCommand('arm-1'), () => undefined), 'a driver reads its own releases');
  await t.resolves(planner.subscribe(topics.decision('+'), () => undefined), 'an agent reads decisions');
});

t.test('the password file: kept across restarts, refused when others can read it', { timeout: 60_000 }, async (t) => {
  const rig = await liveInterlock(t, { feed: false });
  const path = required(rig.runtime.brokerClientsPath, 'the broker clients file');
  const before = readFileSync(path, 'utf8');
  await rig.restart();
  t.equal(readFileSync(path, 'utf8'), before, 'the same passwords after a restart (drivers keep theirs)');
  chmodSync(path, 0o644);
  await t.rejects(rig.restart(), new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: readable by others .*chmod 600`), 'a start refuses a password file others can read');
  chmodSync(path, 0o600);
  await rig.restart();
  t.pass('and starts again once it is private');
});
