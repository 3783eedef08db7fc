// An embedded broker for benches and for tests of the broker's mechanics: the real one, authentication included,
// with one login that may use every topic a grant can name (they publish on topics of their own). Protected topics
// stay protected. The cell's own ACL is tested in test/transport/broker-acl.test.ts.

import { randomBytes } from 'node:crypto';
import { grantedAccess, type BrokerAccess } from '../src/transport/broker-clients.js';
import { EmbeddedBroker, type EmbeddedBrokerOptions } from '../src/transport/embedded-broker.js';
import { MqttTransport, type MqttTransportOptions } from '../src/transport/mqtt-transport.js';

// Random per run, and handed down to child processes (a bench's attacker runs in one) through the environment.
const PASSWORD = (process.env['INTERLOCK_WIDE_BROKER_PASSWORD'] ??= randomBytes(18).toString('base64url'));
const USERNAME = 'bench';

export function wideAccess(): BrokerAccess {
  return grantedAccess([{ username: USERNAME, password: PASSWORD, role: 'observer', grant: { read: ['#'], write: ['#'] } }]);
}

export function wideBroker(options: Omit<EmbeddedBrokerOptions, 'access'> = {}): EmbeddedBroker {
  return new EmbeddedBroker({ ...options, access: wideAccess() });
}

/** A client of a wideBroker, named `bench:{name}`. */
export function wideClient(url: string, name: string, options: Omit<MqttTransportOptions, 'url' | 'clientId' | 'username' | 'password'> = {}): MqttTransport {
  return new MqttTransport({ log: () => undefined, ...options, url, ...wideLogin(name) });
}

export function wideLogin(name: string): { username: string; password: string; clientId: string } {
  return { username: USERNAME, password: PASSWORD, clientId: `${USERNAME}:${name}` };
}
