// Loads one cell folder: reads every file, validates it (ajv strict JSON Schema, Cedar strict validation),
// converts units, and returns the declarations or every problem found. It never returns a partial cell.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type {
  AgentDeclaration,
  AgentKey,
  ApprovalSettings,
  AuditSettings,
  CommandLimits,
  Declarations,
  DeviceDeclaration,
  DriftTolerance,
  OperatorDeclaration,
  OperatorRole,
  PeopleSources,
  SharedZone,
  TrustPolicy,
} from '../core/declarations.js';
import { stateFieldDimension } from '../core/state-fields.js';
import { toInternal, unitsOf } from '../core/units.js';
import { kindSpec, type DeviceKind } from '../core/kinds/index.js';
import { convertQuantity, convertZone, type CommonDeviceDeclaration, type ConvertIssue, type RateLimit, type RawQuantity, type RawZone } from '../core/kinds/kind-spec.js';
import type { Zone } from '../core/zones.js';
import type { DeclarationProblem } from '../core/problems.js';
import { ed25519PublicKeyFromPem } from '../crypto/jws.js';
import { compilePolicies, type CompiledPolicies } from '../policy/cedar-policy.js';
import { AGENTS_SCHEMA, CELL_SCHEMA, DEVICE_SCHEMA } from './schemas.js';

export interface LoadedCell {
  readonly directory: string;
  readonly declarations: Declarations;
  readonly policies: CompiledPolicies;
  /**
   * A candidate policy set (policies-shadow/*.cedar) evaluated beside the enforced one in log-only mode: each
   * decision records what it would have said; it never changes a verdict. Absent when the folder is.
   */
  readonly shadowPolicies?: CompiledPolicies;
}

export type LoadResult = { readonly ok: true; readonly cell: LoadedCell } | { readonly ok: false; readonly problems: readonly DeclarationProblem[] };

/** The files of a cell folder, relative to it. */
export const CELL_LAYOUT = {
  cell: 'cell.yaml',
  agents: 'agents.yaml',
  devicesDir: 'devices',
  policiesDir: 'policies',
  cedarSchema: 'policies/schema.cedarschema',
  shadowPoliciesDir: 'policies-shadow',
} as const;

// discriminator: a device file is checked against its own kind's schema only, so errors name real fields.
const ajv = new Ajv({ strict: true, allErrors: true, discriminator: true, verbose: true });
const validators = {
  cell: ajv.compile(CELL_SCHEMA),
  device: ajv.compile(DEVICE_SCHEMA),
  agents: ajv.compile(AGENTS_SCHEMA),
};

interface ParsedYaml {
  readonly file: string;
  readonly value: unknown;
  readonly doc: Document;
  readonly lines: LineCounter;
}

class CellReader {
  readonly problems: DeclarationProblem[] = [];
  /** Every file read, for the content digest: relative path -> sha256 of its bytes. */
  readonly fileDigests = new Map<string, string>();

  constructor(readonly directory: string) {}

  readText(relativePath: string): string | undefined {
    const absolute = join(this.directory, relativePath);
    try {
      const bytes = readFileSync(absolute);
      this.fileDigests.set(relativePath, createHash('sha256').update(bytes).digest('hex'));
      return bytes.toString('utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      this.problem(relativePath, '', code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`);
      return undefined;
    }
  }

  problem(file: string, path: string, message: string, line?: number): void {
    this.problems.push(line === undefined ? { file, path, message } : { file, path, message, line });
  }

  readYaml(relativePath: string, validate: ValidateFunction): ParsedYaml | undefined {
    const text = this.readText(relativePath);
    if (text === undefined) return undefined;
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        this.problem(relativePath, '', `YAML: ${error.message.split('\n')[0] ?? error.code}`, lines.linePos(error.pos[0]).line);
      }
      return undefined;
    }
    let value: unknown;
    try {
      // Aliases and anchors are refused: a bound that silently equals another is hard to review.
      value = doc.toJS({ maxAliasCount: 0 });
    } catch (error) {
      this.problem(relativePath, '', `YAML: ${(error as Error).message} (anchors and aliases are not allowed; write each value out)`);
      return undefined;
    }
    const parsed: ParsedYaml = { file: relativePath, value, doc, lines };
    if (!validate(value)) {
      for (const error of compactErrors(validate.errors ?? [])) this.schemaProblem(parsed, error);
      return undefined;
    }
    return parsed;
  }

  private schemaProblem(parsed: ParsedYaml, error: ErrorObject): void {
    const segments = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const path = segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let detail = error.message ?? error.keyword;
    let where = error.instancePath;
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      detail = `unknown field "${extra}"`;
      where = `${error.instancePath}/${extra}`;
      path.push(extra);
    } else if (error.keyword === 'required') {
      detail = `missing required field "${(error.params as { missingProperty: string }).missingProperty}"`;
    } else if (error.keyword === 'oneOf') {
      detail = 'does not match any of the allowed forms';
      const description = (error.parentSchema as { description?: string } | undefined)?.description;
      if (description !== undefined) detail += ` (${description})`;
    } else if (error.keyword === 'enum') {
      detail = `${detail}: ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    this.problem(parsed.file, where, detail, lineOf(parsed, path));
  }
}

/**
 * When a value matches none of a oneOf's forms, ajv reports why each form failed. If exactly one form has the
 * value's shape (no missing or unknown fields at that place), its errors are what the author needs ("unit must be
 * one of ..."); otherwise one error for the oneOf, naming the allowed forms, is clearer than every form's details.
 */
function compactErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  let result = [...errors];
  for (const oneOf of oneOfs) {
    const prefix = `${oneOf.schemaPath}/`;
    const children = result.filter((e) => e.schemaPath.startsWith(prefix));
    const branches = new Map<string, ErrorObject[]>();
    for (const child of children) {
      const branch = child.schemaPath.slice(prefix.length).split('/')[0] ?? '';
      branches.set(branch, [...(branches.get(branch) ?? []), child]);
    }
    const shaped = [...branches.values()].filter(
      (group) => !group.some((e) => (e.keyword === 'required' || e.keyword === 'additionalProperties') && e.instancePath === oneOf.instancePath),
    );
    result = result.filter((e) => !e.schemaPath.startsWith(prefix) && e !== oneOf);
    if (shaped.length === 1) result.push(...(shaped[0] as ErrorObject[]));
    else result.push(oneOf);
  }
  return result;
}

function lineOf(parsed: ParsedYaml, path: (string | number)[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = parsed.doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return parsed.lines.linePos(node.range[0]).line;
    if (depth === 0 && parsed.doc.contents?.range) return parsed.lines.linePos(parsed.doc.contents.range[0]).line;
  }
  return undefined;
}

function listFiles(reader: CellReader, relativeDir: string, suffix: string, alsoAllowed: readonly string[] = []): string[] {
  const absolute = join(reader.directory, relativeDir);
  if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
    reader.problem(relativeDir, '', 'folder not found');
    return [];
  }
  const names = readdirSync(absolute).filter((name) => !name.startsWith('.')).sort();
  const allowed = [suffix, ...alsoAllowed];
  for (const name of names) {
    // A forbid policy saved as .txt, or a device as .yml, would otherwise be ignored without a word.
    if (!allowed.some((ending) => name.endsWith(ending))) reader.problem(`${relativeDir}/${name}`, '', `unexpected file: only *${allowed.join(', *')} files belong in ${relativeDir}/`);
  }
  return names.filter((name) => name.endsWith(suffix)).map((name) => `${relativeDir}/${name}`);
}

function pointerToPath(pointer: string): (string | number)[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function convertRate(raw: { commands: number; per: RawQuantity } | undefined): RateLimit | undefined {
  return raw === undefined ? undefined : { commands: raw.commands, perMs: convertQuantity('duration', raw.per) };
}

interface RawCommonDevice {
  readonly id: string;
  readonly kind: DeviceKind;
  readonly maxStateAge: RawQuantity;
  readonly rateLimit?: { commands: number; per: RawQuantity };
  readonly modes?: { reducedWhen?: { personInZones?: string[]; autonomyScopeAtMost?: number }; holdReduced?: RawQuantity };
}

/** Scope 3 and below get the reduced set unless a device says otherwise (AWS scoping matrix: scope 3 = reduced). */
export const DEFAULT_REDUCED_FOR_SCOPE_AT_MOST = 3;

function loadDevice(reader: CellReader, file: string): { device: DeviceDeclaration; idLine: number | undefined; parsed: ParsedYaml } | undefined {
  const parsed = reader.readYaml(file, validators.device);
  if (parsed === undefined) return undefined;
  const raw = parsed.value as RawCommonDevice & Record<string, unknown>;
  const rateLimit = convertRate(raw.rateLimit);
  const common: CommonDeviceDeclaration = {
    id: raw.id,
    maxStateAgeMs: convertQuantity('duration', raw.maxStateAge),
    ...(rateLimit === undefined ? {} : { rateLimit }),
    modes: {
      reducedWhenPersonInZones: raw.modes?.reducedWhen?.personInZones ?? [],
      reducedForScopeAtMost: raw.modes?.reducedWhen?.autonomyScopeAtMost ?? DEFAULT_REDUCED_FOR_SCOPE_AT_MOST,
      holdReducedForMs: raw.modes?.holdReduced === undefined ? 0 : convertQuantity('duration', raw.modes.holdReduced),
    },
  };
  const converted = kindSpec(raw.kind).convert(raw, common);
  if (!converted.ok) {
    for (const issue of converted.issues) reader.problem(file, issue.path, issue.message, lineOf(parsed, pointerToPath(issue.path)));
    return undefined;
  }
  return { device: converted.device, idLine: lineOf(parsed, ['id']), parsed };
}

interface RawKey {
  readonly kid: string;
  readonly publicKeyFile: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
}

interface RawRegistry {
  readonly agents: { id: string; owner: string; autonomyScope: number; keys: RawKey[] }[];
  readonly operators?: { id: string; name: string; roles: OperatorRole[]; keys: RawKey[] }[];
  readonly revoked?: { kid: string; reason: string }[];
  readonly trust?: { demoteAfter: { denials: number; within: RawQuantity }; demoteTo: 'reduced' | 'quarantine' };
  readonly approvals?: {
    pendingFor?: RawQuantity;
    maxAnswerTtl?: RawQuantity;
    maxPendingPerAgentDevice?: number;
    stateDrift?: { device: string; tolerances: { field: string; within: { value: number; unit: string } }[] }[];
  };
}

type Registry = Pick<Declarations, 'agents' | 'operators' | 'keys' | 'trust' | 'approvals'>;

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

function loadRegistry(reader: CellReader, devices: ReadonlyMap<string, DeviceDeclaration>): Registry {
  const agents = new Map<string, AgentDeclaration>();
  const operators = new Map<string, OperatorDeclaration>();
  const keys = new Map<string, AgentKey>();
  const empty: Registry = { agents, operators, keys, trust: DEFAULT_TRUST, approvals: { ...DEFAULT_APPROVALS, drift: new Map() } };
  const file = CELL_LAYOUT.agents;
  const parsed = reader.readYaml(file, validators.agents);
  if (parsed === undefined) return empty;
  const raw = parsed.value as RawRegistry;
  const at = (path: (string | number)[]): number | undefined => lineOf(parsed, path);

  const revoked = new Map<string, string>();
  (raw.revoked ?? []).forEach((entry, index) => {
    if (revoked.has(entry.kid)) reader.problem(file, `/revoked/${index}/kid`, `kid "${entry.kid}" is revoked twice`, at(['revoked', index, 'kid']));
    revoked.set(entry.kid, entry.reason);
  });

  const loadKeys = (section: 'agents' | 'operators', index: number, ownerId: string, owner: 'agent' | 'operator', rawKeys: readonly RawKey[]): void => {
    rawKeys.forEach((key, keyIndex) => {
      const path = `/${section}/${index}/keys/${keyIndex}`;
      const line = at([section, index, 'keys', keyIndex]);
      const existing = keys.get(key.kid);
      if (existing !== undefined) {
        reader.problem(file, `${path}/kid`, `kid "${key.kid}" is already registered to ${existing.owner} ${existing.agentId}`, line);
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
        keys.set(key.kid, { kid: key.kid, agentId: ownerId, owner, publicKey: ed25519PublicKeyFromPem(pem), ...window, ...(reason === undefined ? {} : { revoked: reason }) });
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
  (raw.revoked ?? []).forEach((entry, index) => {
    // SAFETY: a revocation that names no key (a typo) would leave the key it meant in force.
    if (!keys.has(entry.kid)) reader.problem(file, `/revoked/${index}/kid`, `kid "${entry.kid}" is not registered under agents or operators`, at(['revoked', index, 'kid']));
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
  return { agents, operators, keys, trust, approvals };
}

function escapesThroughLink(directory: string, path: string): boolean {
  if (!existsSync(path)) return false; // a missing file is reported when it is read
  const inside = relative(realpathSync(directory), realpathSync(path));
  return inside.startsWith('..') || isAbsolute(inside);
}

interface RawCell {
  readonly cell: string;
  readonly commands: Record<'maxTtl' | 'clockSkew' | 'maxTokenSize', RawQuantity> & { readonly ratePerAgent?: { commands: number; per: RawQuantity } };
  readonly zones?: RawZone[];
  readonly sharedZones?: { zone: string; devices: string[] }[];
  readonly people?: { sources: string[]; maxAge: RawQuantity };
  readonly audit?: { retention?: RawQuantity; maxSize?: RawQuantity };
}

type CellLevel = Pick<Declarations, 'cellId' | 'commandLimits' | 'zones' | 'sharedZones' | 'people' | 'audit'>;

/** cell.yaml's own sections, and every reference between files checked: zone ids and device ids must exist. */
function loadCellLevel(
  reader: CellReader,
  parsed: ParsedYaml,
  devices: ReadonlyMap<string, DeviceDeclaration>,
  deviceYaml: ReadonlyMap<string, ParsedYaml>,
): CellLevel | undefined {
  const raw = parsed.value as RawCell;
  const file = parsed.file;
  const before = reader.problems.length;
  const issues: ConvertIssue[] = [];
  const zones = new Map<string, Zone>();
  (raw.zones ?? []).forEach((rawZone, index) => {
    if (zones.has(rawZone.id)) issues.push({ path: `/zones/${index}/id`, message: `zone id "${rawZone.id}" is used twice` });
    else zones.set(rawZone.id, convertZone(rawZone, `/zones/${index}`, issues));
  });
  const sharedZones: SharedZone[] = (raw.sharedZones ?? []).map((shared, index) => {
    if (!zones.has(shared.zone)) issues.push({ path: `/sharedZones/${index}/zone`, message: `no zone "${shared.zone}" is declared in zones` });
    shared.devices.forEach((id, d) => {
      const device = devices.get(id);
      if (device === undefined) issues.push({ path: `/sharedZones/${index}/devices/${d}`, message: `no device "${id}" is declared` });
      // SAFETY: a kind that cannot say where it is would never count as occupying the zone: refuse it here.
      else if (kindSpec(device.kind).occupiesZones !== true) {
        issues.push({ path: `/sharedZones/${index}/devices/${d}`, message: `${id} is a ${device.kind}, which does not report where it is in the cell, so it cannot share a zone` });
      }
    });
    return { zoneId: shared.zone, devices: [...shared.devices] };
  });
  // SAFETY: with no people section, nobody reports people: person-dependent checks see "unknown" and fail safe.
  const people: PeopleSources = { devices: raw.people?.sources ?? [], maxAgeMs: raw.people === undefined ? 0 : convertQuantity('duration', raw.people.maxAge) };
  (raw.people?.sources ?? []).forEach((id, index) => {
    if (!devices.has(id)) issues.push({ path: `/people/sources/${index}`, message: `no device "${id}" is declared` });
  });
  if (raw.audit?.maxSize !== undefined && convertQuantity('size', raw.audit.maxSize) < 262_144) {
    issues.push({ path: '/audit/maxSize', message: 'must be at least 256 KiB (a smaller log could not hold its own reserve for safe-state records)' });
  }
  for (const issue of issues) reader.problem(file, issue.path, issue.message, lineOf(parsed, pointerToPath(issue.path)));
  for (const [id, device] of devices) {
    device.modes.reducedWhenPersonInZones.forEach((zoneId, index) => {
      if (!zones.has(zoneId)) {
        const deviceFile = deviceYaml.get(id);
        const path = `/modes/reducedWhen/personInZones/${index}`;
        reader.problem(deviceFile?.file ?? id, path, `no zone "${zoneId}" is declared in cell.yaml`, deviceFile && lineOf(deviceFile, pointerToPath(path)));
      }
    });
  }
  if (reader.problems.length > before) return undefined;
  const ratePerAgent = convertRate(raw.commands.ratePerAgent);
  const commandLimits: CommandLimits = {
    maxTtlMs: convertQuantity('duration', raw.commands.maxTtl),
    clockSkewMs: convertQuantity('duration', raw.commands.clockSkew),
    maxTokenBytes: convertQuantity('size', raw.commands.maxTokenSize),
    ...(ratePerAgent === undefined ? {} : { ratePerAgent }),
  };
  const audit: AuditSettings = {
    ...(raw.audit?.retention === undefined ? {} : { retentionMs: convertQuantity('duration', raw.audit.retention) }),
    ...(raw.audit?.maxSize === undefined ? {} : { maxBytes: Math.floor(convertQuantity('size', raw.audit.maxSize)) }),
  };
  return { cellId: raw.cell, commandLimits, zones, sharedZones, people, audit };
}

/** Loads and validates the cell folder `directory`. Reports every problem rather than stopping at the first. */
export function loadCell(directory: string): LoadResult {
  const reader = new CellReader(resolve(directory));
  if (!existsSync(reader.directory) || !statSync(reader.directory).isDirectory()) {
    return { ok: false, problems: [{ file: directory, path: '', message: 'cell folder not found' }] };
  }
  const cellFile = reader.readYaml(CELL_LAYOUT.cell, validators.cell);
  const devices = new Map<string, DeviceDeclaration>();
  const deviceFiles = new Map<string, string>();
  const deviceYaml = new Map<string, ParsedYaml>();
  for (const file of listFiles(reader, CELL_LAYOUT.devicesDir, '.yaml')) {
    const loaded = loadDevice(reader, file);
    if (loaded === undefined) continue;
    const { device, idLine } = loaded;
    deviceYaml.set(device.id, loaded.parsed);
    if (devices.has(device.id)) reader.problem(file, '/id', `device id "${device.id}" is already declared in ${deviceFiles.get(device.id) ?? '?'}`, idLine);
    else {
      devices.set(device.id, device);
      deviceFiles.set(device.id, file);
    }
  }
  if (devices.size === 0 && reader.problems.length === 0) reader.problem(CELL_LAYOUT.devicesDir, '', 'no device declared (*.yaml)');
  const cellLevel = cellFile === undefined ? undefined : loadCellLevel(reader, cellFile, devices, deviceYaml);
  const registry = loadRegistry(reader, devices);

  const schemaText = reader.readText(CELL_LAYOUT.cedarSchema);
  const policyFiles = listFiles(reader, CELL_LAYOUT.policiesDir, '.cedar', ['.cedarschema']).map((file) => ({ file, text: reader.readText(file) }));
  let policies: CompiledPolicies | undefined;
  // Compiled even when other files have problems, so that every problem is reported in one pass.
  if (schemaText !== undefined && policyFiles.every((p) => p.text !== undefined)) {
    const compiled = compilePolicies({
      schemaFile: CELL_LAYOUT.cedarSchema,
      schemaText,
      files: policyFiles.map(({ file, text }) => ({ file, text: text ?? '' })),
    });
    if (compiled.ok) policies = compiled.policies;
    else reader.problems.push(...compiled.problems);
  }
  let shadowPolicies: CompiledPolicies | undefined;
  if (existsSync(join(reader.directory, CELL_LAYOUT.shadowPoliciesDir))) {
    // Validated as strictly as the enforced set, against the same schema: a shadow set that would not load as the
    // enforced one cannot tell what enforcing it would do.
    const shadowFiles = listFiles(reader, CELL_LAYOUT.shadowPoliciesDir, '.cedar').map((file) => ({ file, text: reader.readText(file) }));
    if (schemaText !== undefined && shadowFiles.every((p) => p.text !== undefined)) {
      const compiled = compilePolicies({ schemaFile: CELL_LAYOUT.cedarSchema, schemaText, files: shadowFiles.map(({ file, text }) => ({ file, text: text ?? '' })) });
      if (compiled.ok) shadowPolicies = compiled.policies;
      else reader.problems.push(...compiled.problems);
    }
  }
  if (reader.problems.length > 0 || cellFile === undefined || cellLevel === undefined || policies === undefined) {
    return { ok: false, problems: reader.problems.length > 0 ? reader.problems : [{ file: directory, path: '', message: 'cell could not be loaded' }] };
  }

  const digest = createHash('sha256');
  for (const [file, fileDigest] of [...reader.fileDigests].sort(([a], [b]) => (a < b ? -1 : 1))) digest.update(`${file}\0${fileDigest}\n`);
  return {
    ok: true,
    cell: {
      directory: reader.directory,
      policies,
      ...(shadowPolicies === undefined ? {} : { shadowPolicies }),
      declarations: {
        ...cellLevel,
        digest: digest.digest('hex'),
        devices,
        ...registry,
      },
    },
  };
}
