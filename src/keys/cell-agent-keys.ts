// Creates (on first use) and reads the key pairs of the agents and operators listed in a cell's agents.yaml: public halves
// where agents.yaml points, private halves in a separate private folder. For demos and tests, not production.

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

/** Returns the private keys of every agent and operator key in the cell, creating missing pairs. Keyed by id (first key). */
export function ensureCellAgentKeys(cellDirectory: string, privateKeyDirectory: string): Map<string, AgentPrivateKey> {
  type RawPrincipal = { id?: unknown; keys?: { kid?: unknown; publicKeyFile?: unknown }[] };
  const raw = parse(readFileSync(join(cellDirectory, CELL_LAYOUT.agents), 'utf8')) as { agents?: RawPrincipal[]; operators?: RawPrincipal[] };
  const result = new Map<string, AgentPrivateKey>();
  for (const agent of [...(raw.agents ?? []), ...(raw.operators ?? [])]) {
    for (const key of agent.keys ?? []) {
      if (typeof agent.id !== 'string' || typeof key.kid !== 'string' || typeof key.publicKeyFile !== 'string') continue;
      const publicKeyPath = resolve(cellDirectory, key.publicKeyFile);
      // Refuse to write outside the cell folder, whatever agents.yaml says.
      if (relative(resolve(cellDirectory), publicKeyPath).startsWith('..')) continue;
      const pair = ensureKeyPair(privateKeyPathFor(privateKeyDirectory, key.kid), publicKeyPath);
      if (!result.has(agent.id)) result.set(agent.id, { agentId: agent.id, kid: key.kid, privateKey: pair.privateKey });
    }
  }
  return result;
}
