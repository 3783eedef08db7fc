// The embedded broker's clients: one username per identity of the cell (each device's driver, each agent, each
// operator, and `observer`), each with a random password kept in the state folder (broker-clients.json, 0600),
// made on first start. A client is let in only with its password, and then may do only what its role's grant
// (broker-acl.ts) allows. The interlock itself is the broker's in-process client and has no password.

import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Declarations } from '../core/declarations.js';
import { grantFor, INTERLOCK, OBSERVER, type BrokerRole, type TopicGrant } from './broker-acl.js';
import type { TopicSet } from './topics.js';

export const BROKER_CLIENTS_FILE = 'broker-clients.json';
const FORMAT = 'interlock-broker-clients/1';

export interface BrokerIdentity {
  readonly username: string;
  readonly role: Exclude<BrokerRole, 'interlock'>;
}

export interface BrokerClient extends BrokerIdentity {
  readonly password: string;
}

/** The authenticated client: who it is and what it may do. */
export interface ClientAccess {
  readonly username: string;
  readonly role: BrokerRole;
  readonly grant: TopicGrant;
}

/** Decides who gets in: the grant for a username and password, or undefined (refused). */
export interface BrokerAccess {
  authenticate(username: string | undefined, password: Buffer | undefined): ClientAccess | undefined;
}

/** Every identity of the cell that may connect to the embedded broker; throws when two roles share a name. */
export function cellBrokerIdentities(declarations: Declarations): BrokerIdentity[] {
  const identities: BrokerIdentity[] = [{ username: OBSERVER, role: 'observer' }];
  const named = new Map<string, string>([
    [OBSERVER, 'the read-only observer'],
    [INTERLOCK, 'the interlock itself'],
  ]);
  const add = (username: string, role: BrokerIdentity['role'], what: string): void => {
    const taken = named.get(username);
    // The broker names clients by id alone: one name for two roles would give one of them the other's topics.
    if (taken !== undefined) throw new Error(`embedded broker: ${what} "${username}" has the same name as ${taken}; give it another id (broker usernames are the cell's ids)`);
    named.set(username, `${what} "${username}"`);
    identities.push({ username, role });
  };
  for (const id of declarations.devices.keys()) add(id, 'driver', 'device');
  for (const id of declarations.agents.keys()) add(id, 'agent', 'agent');
  for (const id of declarations.operators.keys()) add(id, 'operator', 'operator');
  return identities;
}

/**
 * Reads `path` and adds a password for every identity that has none (or had another role), writing the file back
 * (0600) when anything was added. Throws, naming the file and the field, on a file it cannot trust.
 */
export function ensureBrokerClients(path: string, identities: readonly BrokerIdentity[]): { clients: BrokerClient[]; created: string[] } {
  const known = existsSync(path) ? readBrokerClients(path) : new Map<string, BrokerClient>();
  const created: string[] = [];
  const clients: BrokerClient[] = [];
  for (const identity of identities) {
    const had = known.get(identity.username);
    if (had !== undefined && had.role === identity.role) {
      clients.push(had);
      continue;
    }
    // SAFETY: a name that changed role (a device id reused for an agent) gets a new password: the old holder's
    // password must not carry the new role's grant.
    const client = { ...identity, password: randomBytes(24).toString('base64url') };
    known.set(identity.username, client);
    clients.push(client);
    created.push(identity.username);
  }
  if (created.length > 0) writeBrokerClients(path, known);
  return { clients, created };
}

/** The password of `username` from a broker-clients.json, or undefined when the file or the entry is missing. */
export function brokerPasswordOf(path: string, username: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return readBrokerClients(path).get(username)?.password;
}

function readBrokerClients(path: string): Map<string, BrokerClient> {
  const mode = statSync(path).mode & 0o777;
  // SAFETY: the passwords are the broker's only lock; a file others can read is as good as none.
  if ((mode & 0o077) !== 0) throw new Error(`${path}: readable by others (mode ${mode.toString(8)}); it holds broker passwords: chmod 600 ${path}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: not JSON (${error instanceof Error ? error.message : String(error)}); remove it to have new passwords made`);
  }
  const root = parsed as { format?: unknown; clients?: unknown };
  if (typeof parsed !== 'object' || parsed === null || root.format !== FORMAT) throw new Error(`${path}: /format must be "${FORMAT}"`);
  if (typeof root.clients !== 'object' || root.clients === null || Array.isArray(root.clients)) throw new Error(`${path}: /clients must be an object`);
  const result = new Map<string, BrokerClient>();
  for (const [username, entry] of Object.entries(root.clients as Record<string, unknown>)) {
    const e = entry as { role?: unknown; password?: unknown };
    if (typeof entry !== 'object' || entry === null) throw new Error(`${path}: /clients/${username} must be an object`);
    if (!['driver', 'agent', 'operator', 'observer'].includes(e.role as string)) throw new Error(`${path}: /clients/${username}/role must be driver, agent, operator or observer`);
    if (typeof e.password !== 'string' || e.password.length < 16) throw new Error(`${path}: /clients/${username}/password must be a string of at least 16 characters`);
    result.set(username, { username, role: e.role as BrokerClient['role'], password: e.password });
  }
  return result;
}

function writeBrokerClients(path: string, clients: ReadonlyMap<string, BrokerClient>): void {
  const body = { format: FORMAT, clients: Object.fromEntries([...clients.values()].map((c) => [c.username, { role: c.role, password: c.password }])) };
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/** Access for exactly these clients, each with its role's grant under `topics`. */
export function passwordAccess(clients: readonly BrokerClient[], topics: TopicSet): BrokerAccess {
  return grantedAccess(clients.map((c) => ({ username: c.username, password: c.password, role: c.role, grant: grantFor(c.role, c.username, topics) })));
}

/** Access for exactly these logins, each with the grant given (passwordAccess for a cell; a bench or a test of the broker itself). */
export function grantedAccess(logins: readonly (ClientAccess & { readonly password: string })[]): BrokerAccess {
  const digest = (value: Buffer | string): Buffer => createHash('sha256').update(value).digest();
  const byName = new Map(logins.map((l) => [l.username, { access: { username: l.username, role: l.role, grant: l.grant }, digest: digest(l.password) }]));
  return {
    authenticate(username, password) {
      if (username === undefined || password === undefined) return undefined;
      const entry = byName.get(username);
      // Compared as digests in constant time: neither the length nor a prefix of a password leaks through timing.
      const given = digest(password);
      if (entry === undefined) {
        timingSafeEqual(given, given);
        return undefined;
      }
      return timingSafeEqual(given, entry.digest) ? entry.access : undefined;
    },
  };
}

/** What a client passes to connect as `username` (MqttTransport options), read from the broker-clients file. */
export function brokerLogin(path: string, username: string, clientSuffix?: string): { username: string; password: string; clientId: string } {
  const password = brokerPasswordOf(path, username);
  if (password === undefined) throw new Error(`${path}: no broker password for "${username}" (is it an id of the cell, and has the interlock started once?)`);
  return { username, password, clientId: clientSuffix === undefined ? username : `${username}:${clientSuffix}` };
}
