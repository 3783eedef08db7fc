// Creates (on first use) and reads the key pairs of the agents, operators and device drivers listed in a cell's
// agents.yaml: public halves where agents.yaml points, private halves in a separate private folder. For demos and
// tests, not production.

import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { parse } from 'yaml';
import { CELL_LAYOUT } from '../declarations/load.js';
import { ensureKeyPair, privateKeyPathFor } from './key-files.js';

export interface AgentPrivateKey {
  readonly agentId: string;
  readonly kid: string;
  readonly privateKey: KeyObject;
}

/** A device driver's private key, for the simulator and tests. */
export interface DriverPrivateKey {
  readonly deviceId: string;
  readonly kid: string;
  readonly privateKey: KeyObject;
}

type RawKeys = { kid?: unknown; publicKeyFile?: unknown }[];
type RawRegistry = { agents?: { id?: unknown; keys?: RawKeys }[]; operators?: { id?: unknown; keys?: RawKeys }[]; drivers?: { device?: unknown; keys?: RawKeys }[] };

function readRegistry(cellDirectory: string): RawRegistry {
  return parse(readFileSync(join(cellDirectory, CELL_LAYOUT.agents), 'utf8')) as RawRegistry;
}

/** Creates the pairs of `owners` that are missing; returns each owner's first key. */
function ensureKeys(cellDirectory: string, privateKeyDirectory: string, owners: readonly { id?: unknown; keys?: RawKeys }[]): Map<string, { kid: string; privateKey: KeyObject }> {
  const result = new Map<string, { kid: string; privateKey: KeyObject }>();
  for (const owner of owners) {
    for (const key of owner.keys ?? []) {
      if (typeof owner.id !== 'string' || typeof key.kid !== 'string' || typeof key.publicKeyFile !== 'string') continue;
      const publicKeyPath = resolve(cellDirectory, key.publicKeyFile);
      // Refuse to write outside the cell folder, whatever agents.yaml says.
      if (relative(resolve(cellDirectory), publicKeyPath).startsWith('..')) continue;
      const pair = ensureKeyPair(privateKeyPathFor(privateKeyDirectory, key.kid), publicKeyPath);
      if (!result.has(owner.id)) result.set(owner.id, { kid: key.kid, privateKey: pair.privateKey });
    }
  }
  return result;
}

/** Returns the private keys of every agent and operator key in the cell, creating missing pairs. Keyed by id (first key). */
export function ensureCellAgentKeys(cellDirectory: string, privateKeyDirectory: string): Map<string, AgentPrivateKey> {
  const raw = readRegistry(cellDirectory);
  const keys = ensureKeys(cellDirectory, privateKeyDirectory, [...(raw.agents ?? []), ...(raw.operators ?? [])]);
  return new Map([...keys].map(([agentId, key]) => [agentId, { agentId, ...key }]));
}

/** Returns the private key of every device driver in the cell, creating missing pairs. Keyed by device id (first key). */
export function ensureCellDriverKeys(cellDirectory: string, privateKeyDirectory: string): Map<string, DriverPrivateKey> {
  const raw = readRegistry(cellDirectory);
  const keys = ensureKeys(cellDirectory, privateKeyDirectory, (raw.drivers ?? []).map((d) => ({ id: d.device, ...(d.keys === undefined ? {} : { keys: d.keys }) })));
  return new Map([...keys].map(([deviceId, key]) => [deviceId, { deviceId, ...key }]));
}
