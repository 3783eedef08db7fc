// Loads agents.yaml: the agents, the operators and the device drivers, each with their Ed25519 keys (validity
// windows, revocations), plus the trust and approval settings. One kid space for every key in the cell.

import { isAbsolute, relative, resolve } from 'node:path';
import type {
  AgentDeclaration,
  AgentKey,
  ApprovalSettings,
  Declarations,
  DeviceDeclaration,
  DriftTolerance,
  DriverKey,
  OperatorDeclaration,
  OperatorRole,
  TrustPolicy,
} from '../core/declarations.js';
import { stateFieldDimension } from '../core/state-fields.js';
import { toInternal, unitsOf } from '../core/units.js';
import { convertQuantity, type RawQuantity } from '../core/kinds/kind-spec.js';
import { ed25519PublicKeyFromPem } from '../crypto/jws.js';
/** The registry's file in the cell folder (CELL_LAYOUT.agents). */
export const AGENTS_FILE = 'agents.yaml';

import { escapesThroughLink, lineOf, validators, type CellReader } from './cell-reader.js';

interface RawKey {
  readonly kid: string;
  readonly publicKeyFile: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
}

interface RawRegistry {
  readonly agents: { id: string; owner: string; autonomyScope: number; keys: RawKey[] }[];
  readonly operators?: { id: string; name: string; roles: OperatorRole[]; keys: RawKey[] }[];
  readonly drivers?: { device: string; keys: RawKey[] }[];
  readonly revoked?: { kid: string; reason: string }[];
  readonly trust?: { demoteAfter: { denials: number; within: RawQuantity }; demoteTo: 'reduced' | 'quarantine' };
  readonly approvals?: {
    pendingFor?: RawQuantity;
    maxAnswerTtl?: RawQuantity;
    maxPendingPerAgentDevice?: number;
    stateDrift?: { device: string; tolerances: { field: string; within: { value: number; unit: string } }[] }[];
  };
}

type Registry = Pick<Declarations, 'agents' | 'operators' | 'keys' | 'driverKeys' | 'trust' | 'approvals'>;

/** Without a trust section: quarantine after 10 denials in 60 s (a default must never be looser than none). */
export const DEFAULT_TRUST: TrustPolicy = { denials: 10, windowMs: 60_000, demoteTo: 'quarantine' };
export const DEFAULT_APPROVALS = { pendingTtlMs: 120_000, maxAnswerTtlMs: 60_000, maxPendingPerAgentDevice: 3 } as const;

/** An RFC 3339 time as ms since the epoch, or undefined when it is not a real instant (2026-02-30). */
function instantMs(text: string): number | undefined {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) return undefined;
  // Date.parse rolls 2026-02-30 over to March: compare the calendar date back.
  const date = text.slice(0, 10);
  const offset = /([+-])(\d{2}):(\d{2})$/.exec(text);
  const shiftMs = offset === null ? 0 : (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000;
  return new Date(ms + shiftMs).toISOString().slice(0, 10) === date ? ms : undefined;
}

export function loadRegistry(reader: CellReader, devices: ReadonlyMap<string, DeviceDeclaration>): Registry {
  const agents = new Map<string, AgentDeclaration>();
  const operators = new Map<string, OperatorDeclaration>();
  const keys = new Map<string, AgentKey>();
  const driverKeys = new Map<string, DriverKey>();
  const empty: Registry = { agents, operators, keys, driverKeys, trust: DEFAULT_TRUST, approvals: { ...DEFAULT_APPROVALS, drift: new Map() } };
  const file = AGENTS_FILE;
  const parsed = reader.readYaml(file, validators.agents);
  if (parsed === undefined) return empty;
  const raw = parsed.value as RawRegistry;
  const at = (path: (string | number)[]): number | undefined => lineOf(parsed, path);

  const revoked = new Map<string, string>();
  (raw.revoked ?? []).forEach((entry, index) => {
    if (revoked.has(entry.kid)) reader.problem(file, `/revoked/${index}/kid`, `kid "${entry.kid}" is revoked twice`, at(['revoked', index, 'kid']));
    revoked.set(entry.kid, entry.reason);
  });

  const loadKeys = (section: 'agents' | 'operators' | 'drivers', index: number, ownerId: string, owner: 'agent' | 'operator' | 'driver', rawKeys: readonly RawKey[]): void => {
    rawKeys.forEach((key, keyIndex) => {
      const path = `/${section}/${index}/keys/${keyIndex}`;
      const line = at([section, index, 'keys', keyIndex]);
      const existing = keys.get(key.kid);
      const existingDriver = driverKeys.get(key.kid);
      // SAFETY: one kid space for the whole cell: a kid names exactly one key and one owner.
      if (existing !== undefined || existingDriver !== undefined) {
        const holder = existing === undefined ? `the driver of ${existingDriver?.deviceId ?? '?'}` : `${existing.owner} ${existing.agentId}`;
        reader.problem(file, `${path}/kid`, `kid "${key.kid}" is already registered to ${holder}`, line);
        return;
      }
      const window: { notBeforeMs: number; notAfterMs: number } = { notBeforeMs: -Infinity, notAfterMs: Infinity };
      for (const bound of ['notBefore', 'notAfter'] as const) {
        const text = key[bound];
        if (text === undefined) continue;
        const ms = instantMs(text);
        if (ms === undefined) reader.problem(file, `${path}/${bound}`, `${JSON.stringify(text)} is not a real date and time`, at([section, index, 'keys', keyIndex, bound]));
        else window[bound === 'notBefore' ? 'notBeforeMs' : 'notAfterMs'] = ms;
      }
      // SAFETY: an empty window would make the key useless without saying so; an inverted one is a typo.
      if (!(window.notBeforeMs < window.notAfterMs)) {
        reader.problem(file, `${path}/notAfter`, 'notAfter must be later than notBefore', line);
        return;
      }
      const keyPath = resolve(reader.directory, key.publicKeyFile);
      const keyRelative = relative(reader.directory, keyPath);
      // SAFETY: compared after resolving symlinks too, so a link inside the cell cannot point outside it.
      if (keyRelative.startsWith('..') || isAbsolute(keyRelative) || escapesThroughLink(reader.directory, keyPath)) {
        reader.problem(file, `${path}/publicKeyFile`, 'the key file must lie inside the cell folder', line);
        return;
      }
      const pem = reader.readText(keyRelative);
      if (pem === undefined) {
        reader.problem(file, `${path}/publicKeyFile`, `public key file ${keyRelative} cannot be read (for the demo cell, \`npm start\` creates it)`, line);
        return;
      }
      try {
        const reason = revoked.get(key.kid);
        const publicKey = ed25519PublicKeyFromPem(pem);
        const revocation = reason === undefined ? {} : { revoked: reason };
        if (owner === 'driver') driverKeys.set(key.kid, { kid: key.kid, deviceId: ownerId, publicKey, ...window, ...revocation });
        else keys.set(key.kid, { kid: key.kid, agentId: ownerId, owner, publicKey, ...window, ...revocation });
      } catch (error) {
        reader.problem(file, `${path}/publicKeyFile`, `${keyRelative} is not an Ed25519 public key in PEM form: ${(error as Error).message}`, line);
      }
    });
  };

  raw.agents.forEach((agent, index) => {
    if (agents.has(agent.id)) {
      reader.problem(file, `/agents/${index}/id`, `agent id "${agent.id}" is listed twice`, at(['agents', index, 'id']));
      return;
    }
    agents.set(agent.id, { kind: 'agent', id: agent.id, owner: agent.owner, autonomyScope: agent.autonomyScope });
    loadKeys('agents', index, agent.id, 'agent', agent.keys);
  });
  (raw.operators ?? []).forEach((operator, index) => {
    // SAFETY: one id space: a human and an agent with the same id would make every audit record ambiguous.
    if (operators.has(operator.id) || agents.has(operator.id)) {
      reader.problem(file, `/operators/${index}/id`, `id "${operator.id}" is already used by ${agents.has(operator.id) ? 'an agent' : 'another operator'}`, at(['operators', index, 'id']));
      return;
    }
    operators.set(operator.id, { kind: 'operator', id: operator.id, owner: operator.name, roles: [...operator.roles] });
    loadKeys('operators', index, operator.id, 'operator', operator.keys);
  });
  const driven = new Set<string>();
  (raw.drivers ?? []).forEach((driver, index) => {
    if (!devices.has(driver.device)) {
      reader.problem(file, `/drivers/${index}/device`, `no device "${driver.device}" is declared in devices/`, at(['drivers', index, 'device']));
      return;
    }
    if (driven.has(driver.device)) {
      reader.problem(file, `/drivers/${index}/device`, `the driver of ${driver.device} is listed twice (list all its keys in one entry)`, at(['drivers', index, 'device']));
      return;
    }
    driven.add(driver.device);
    loadKeys('drivers', index, driver.device, 'driver', driver.keys);
  });
  (raw.revoked ?? []).forEach((entry, index) => {
    // SAFETY: a revocation that names no key (a typo) would leave the key it meant in force.
    if (!keys.has(entry.kid) && !driverKeys.has(entry.kid)) reader.problem(file, `/revoked/${index}/kid`, `kid "${entry.kid}" is not registered under agents, operators or drivers`, at(['revoked', index, 'kid']));
  });

  const trust: TrustPolicy =
    raw.trust === undefined
      ? DEFAULT_TRUST
      : { denials: raw.trust.demoteAfter.denials, windowMs: convertQuantity('duration', raw.trust.demoteAfter.within), demoteTo: raw.trust.demoteTo };

  const drift = new Map<string, DriftTolerance[]>();
  (raw.approvals?.stateDrift ?? []).forEach((entry, index) => {
    const base = `/approvals/stateDrift/${index}`;
    const device = devices.get(entry.device);
    if (device === undefined) {
      reader.problem(file, `${base}/device`, `no device "${entry.device}" is declared`, at(['approvals', 'stateDrift', index, 'device']));
      return;
    }
    if (drift.has(device.id)) reader.problem(file, `${base}/device`, `${device.id} is listed twice`, at(['approvals', 'stateDrift', index, 'device']));
    const tolerances: DriftTolerance[] = [];
    entry.tolerances.forEach((tolerance, t) => {
      const path = `${base}/tolerances/${t}`;
      const line = at(['approvals', 'stateDrift', index, 'tolerances', t]);
      if (tolerances.some((x) => x.field === tolerance.field)) {
        reader.problem(file, `${path}/field`, `${tolerance.field} is listed twice`, line);
        return;
      }
      const field = stateFieldDimension(device, tolerance.field);
      if (!field.ok) {
        reader.problem(file, `${path}/field`, field.problem, line);
        return;
      }
      const within = toInternal(field.dimension, tolerance.within.value, tolerance.within.unit);
      if (within === undefined) {
        reader.problem(file, `${path}/within/unit`, `${tolerance.field} is a ${field.dimension}; its unit must be one of ${unitsOf(field.dimension).join(', ')}`, line);
        return;
      }
      tolerances.push({ field: tolerance.field, within });
    });
    drift.set(device.id, tolerances);
  });
  const approvals: ApprovalSettings = {
    pendingTtlMs: raw.approvals?.pendingFor === undefined ? DEFAULT_APPROVALS.pendingTtlMs : convertQuantity('duration', raw.approvals.pendingFor),
    maxAnswerTtlMs: raw.approvals?.maxAnswerTtl === undefined ? DEFAULT_APPROVALS.maxAnswerTtlMs : convertQuantity('duration', raw.approvals.maxAnswerTtl),
    maxPendingPerAgentDevice: raw.approvals?.maxPendingPerAgentDevice ?? DEFAULT_APPROVALS.maxPendingPerAgentDevice,
    drift,
  };
  return { agents, operators, keys, driverKeys, trust, approvals };
}
