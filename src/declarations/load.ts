// Loads one cell folder: reads every file, validates it (ajv strict JSON Schema, Cedar strict validation),
// converts units, and returns the declarations or every problem found. It never returns a partial cell.

import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type {
  AuditSettings,
  CommandLimits,
  Declarations,
  DeviceDeclaration,
  PeopleSources,
  SharedZone,
} from '../core/declarations.js';
import { kindSpec, type DeviceKind } from '../core/kinds/index.js';
import { convertQuantity, convertZone, type CommonDeviceDeclaration, type ConvertIssue, type RateLimit, type RawQuantity, type RawZone } from '../core/kinds/kind-spec.js';
import type { Zone } from '../core/zones.js';
import type { DeclarationProblem } from '../core/problems.js';
import { compilePolicies, type CompiledPolicies } from '../policy/cedar-policy.js';
import { CellReader, lineOf, listFiles, pointerToPath, validators, type ParsedYaml } from './cell-reader.js';
import { loadRegistry } from './load-registry.js';

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
