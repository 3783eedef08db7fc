// The Greengrass component's configuration: its keys, their JSON Schema (ajv, strict), and which of them a live
// update may change. It never fills in a missing safety setting with something looser, and never half-applies an
// update: an update is either wholly valid and applicable now, or refused with every reason.

import type { ErrorObject } from 'ajv';
import { lazyValidator } from '../core/lazy-validator.js';
import { isAbsolute, join } from 'node:path';
import type { LogLevel } from '../core/log.js';
import { MAX_METRICS_INTERVAL_MS, metricsSettingsProblem, MIN_METRICS_INTERVAL_MS, type MetricsSettings } from '../cloud/metrics/metrics-settings.js';

/** The settings the component runs with, after validation (paths absolute, defaults filled in). */
export interface ComponentSettings {
  /** The cell's declarations folder (bounds, agents, policies). */
  readonly cellDirectory: string;
  /** The declarations digest the operator approved; start-up and every update are refused on a mismatch. */
  readonly expectedDigest: string | undefined;
  /** Where the audit database, the replay memory and the interlock's key live (the component's work folder). */
  readonly stateDirectory: string;
  readonly topicPrefix: string;
  readonly heartbeatPeriodMs: number;
  /** Worker threads verifying signatures ahead of the decision queue; 0 verifies on the main thread. */
  readonly verifierThreads: number;
  readonly logLevel: LogLevel;
  /** Cloud metrics over the nucleus's IoT Core connection; undefined when both destinations are off. */
  readonly metrics: MetricsSettings | undefined;
  /** Audit forwarding over the same IoT Core connection (docs/audit-forwarding.md); on by default. */
  readonly auditForwarding: { readonly enabled: boolean; readonly recordsPerSecond: number };
}

/** The keys a live update may change; any other change needs a restart of the component. */
export const LIVE_KEYS = ['cellDirectory', 'expectedDigest', 'logLevel'] as const satisfies readonly (keyof ComponentSettings)[];

/**
 * Every key, with its meaning and default, in one place: the recipe's DefaultConfiguration and the docs/deploying.md table
 * follow this list (a test holds them to it). `accessControl` is Greengrass's own and read by the nucleus only.
 */
export const CONFIGURATION_KEYS: Readonly<Record<keyof ComponentSettings | 'accessControl', string>> = {
  cellDirectory: 'Absolute path of the cell declarations folder; empty for the demo cell shipped in the artifact. Live: a new folder (or new content) is validated in full, then swapped.',
  expectedDigest: 'The declarations digest the operator approved (`interlock validate` prints it); empty for none. Live.',
  stateDirectory: "Absolute path for the audit database, replay memory and the interlock's key; empty for `state/` in the component's work folder. Restart.",
  topicPrefix: 'Prefix of every local topic (empty for none). Restart.',
  heartbeatPeriodMs: 'How often interlock/heartbeat is published (50-10000 ms); drivers stop when it stops. Restart.',
  verifierThreads: 'Worker threads for signature checks (0-4; 1 suits a 2-core device). Restart.',
  logLevel: 'info, warn or error. Live.',
  metrics:
    'Cloud metrics over IoT Core: {intervalSeconds (300-86400), defender (Device Defender reports on or off), topic (a plain topic for the same numbers, {thing} for the thing name; "" for none)}; both off: no metrics. Restart.',
  auditForwarding:
    'Audit records to the cloud receiver over IoT Core: {enabled (default true; off: only `interlock audit archive` lets retention delete), recordsPerSecond (1-100000, default 1000)}. Restart.',
  accessControl: 'Greengrass IPC authorization (which topics this component may publish and subscribe); read by the nucleus.',
};

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['cellDirectory', 'stateDirectory'],
  properties: {
    cellDirectory: { type: 'string', maxLength: 4096 },
    expectedDigest: { type: 'string', pattern: '^([0-9a-f]{64})?$' },
    stateDirectory: { type: 'string', maxLength: 4096 },
    topicPrefix: { type: 'string', maxLength: 128, pattern: '^[^#+\\u0000]*$' },
    heartbeatPeriodMs: { type: 'integer', minimum: 50, maximum: 10_000 },
    verifierThreads: { type: 'integer', minimum: 0, maximum: 4 },
    logLevel: { enum: ['info', 'warn', 'error'] },
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: {
        // SAFETY (of the account): under 300 s Device Defender throttles; a shorter interval is refused, not raised.
        intervalSeconds: { type: 'integer', minimum: MIN_METRICS_INTERVAL_MS / 1000, maximum: MAX_METRICS_INTERVAL_MS / 1000 },
        defender: { type: 'boolean' },
        topic: { type: 'string', maxLength: 256 },
      },
    },
    auditForwarding: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        recordsPerSecond: { type: 'integer', minimum: 1, maximum: 100_000 },
      },
    },
    // Greengrass's authorization map; its shape is the nucleus's business, so only its type is checked here.
    accessControl: { type: 'object' },
  },
} as const;

// Compiled at the first configuration read (only the Greengrass component reads one).
const configurationValidator = lazyValidator(SCHEMA, { strict: true, allErrors: true });

export interface ConfigurationProblem {
  /** JSON pointer into the configuration, e.g. `/heartbeatPeriodMs`. */
  readonly path: string;
  readonly message: string;
}

export type ParsedSettings = { readonly ok: true; readonly settings: ComponentSettings } | { readonly ok: false; readonly problems: readonly ConfigurationProblem[] };

function describe(error: ErrorObject): ConfigurationProblem {
  if (error.keyword === 'additionalProperties') {
    const extra = String((error.params as { additionalProperty?: unknown }).additionalProperty);
    return { path: `${error.instancePath}/${extra}`, message: `unknown configuration key "${extra}" (known: ${Object.keys(CONFIGURATION_KEYS).join(', ')})` };
  }
  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty?: unknown }).missingProperty);
    return { path: `/${missing}`, message: `required key "${missing}" is missing` };
  }
  return { path: error.instancePath || '/', message: error.message ?? error.keyword };
}

/**
 * Where the component runs, as its lifecycle script tells it (the nucleus always interpolates recipe variables in
 * lifecycle scripts, but in configuration only when its `interpolateComponentConfiguration` option is on, and that
 * is off by default). The empty defaults of cellDirectory and stateDirectory are resolved against these.
 */
export interface ComponentPlaces {
  /** The component's work folder (`{work:path}`): writable, kept across restarts and updates. */
  readonly workPath?: string;
  /** The unpacked artifact's own folder (`{artifacts:decompressedPath}/<archive name>`): read-only. */
  readonly artifactPath?: string;
}

/** The demo cell inside the artifact, and the state folder inside the work folder: what the empty defaults mean. */
export const DEMO_CELL_IN_ARTIFACT = join('safety-bounds', 'demo-cell');
export const STATE_IN_WORK = 'state';

function resolvePlace(key: 'cellDirectory' | 'stateDirectory', value: string, places: ComponentPlaces, problems: ConfigurationProblem[]): string {
  if (value === '') {
    const base = key === 'cellDirectory' ? places.artifactPath : places.workPath;
    const flag = key === 'cellDirectory' ? '--artifact-path' : '--work-path';
    if (base === undefined || !isAbsolute(base)) {
      problems.push({ path: `/${key}`, message: `is empty (the default), but the component was not started with an absolute ${flag} (the recipe's Startup script passes it); set ${key} to an absolute path` });
      return value;
    }
    return key === 'cellDirectory' ? join(base, DEMO_CELL_IN_ARTIFACT) : join(base, STATE_IN_WORK);
  }
  // SAFETY: a path still holding a recipe variable names a folder that does not exist, or worse, a literal one.
  if (/\{[a-z0-9._-]+:[^}]*\}/i.test(value)) {
    problems.push({
      path: `/${key}`,
      message: `contains a recipe variable the nucleus did not replace: "${value}" (it replaces them in configuration only when its interpolateComponentConfiguration option is on; leave ${key} empty for the default, or give an absolute path)`,
    });
    return value;
  }
  // SAFETY: a relative path would depend on the working directory Greengrass happens to start us in.
  if (!isAbsolute(value)) problems.push({ path: `/${key}`, message: `must be an absolute path (or empty for the default), got "${value}"` });
  return value;
}

/** Validates the component configuration as Greengrass hands it over (the whole object under the component). */
export function parseComponentConfiguration(value: unknown, places: ComponentPlaces = {}): ParsedSettings {
  const validate = configurationValidator();
  if (!validate(value)) return { ok: false, problems: (validate.errors ?? []).map(describe) };
  const config = value as unknown as { [key: string]: unknown };
  const problems: ConfigurationProblem[] = [];
  const cellDirectory = resolvePlace('cellDirectory', config['cellDirectory'] as string, places, problems);
  const stateDirectory = resolvePlace('stateDirectory', config['stateDirectory'] as string, places, problems);
  const metrics = metricsOf(config['metrics'] as RawMetrics | undefined, problems);
  if (problems.length > 0) return { ok: false, problems };
  const digest = config['expectedDigest'];
  return {
    ok: true,
    settings: {
      cellDirectory,
      expectedDigest: typeof digest === 'string' && digest !== '' ? digest : undefined,
      stateDirectory,
      topicPrefix: (config['topicPrefix'] as string | undefined) ?? '',
      heartbeatPeriodMs: (config['heartbeatPeriodMs'] as number | undefined) ?? 250,
      verifierThreads: (config['verifierThreads'] as number | undefined) ?? 1,
      logLevel: (config['logLevel'] as LogLevel | undefined) ?? 'info',
      metrics,
      auditForwarding: {
        enabled: (config['auditForwarding'] as { enabled?: boolean } | undefined)?.enabled ?? true,
        recordsPerSecond: (config['auditForwarding'] as { recordsPerSecond?: number } | undefined)?.recordsPerSecond ?? 1_000,
      },
    },
  };
}

interface RawMetrics {
  readonly intervalSeconds?: number;
  readonly defender?: boolean;
  readonly topic?: string;
}

/** The plain topic when the configuration names none: the one the recipe's accessControl grants. */
export const DEFAULT_COMPONENT_METRICS_TOPIC = 'interlock/{thing}/metrics';

/** Defaults: every 300 s, Device Defender on, the plain topic interlock/{thing}/metrics. Both off: no metrics. */
function metricsOf(raw: RawMetrics | undefined, problems: ConfigurationProblem[]): MetricsSettings | undefined {
  const topic = raw?.topic ?? DEFAULT_COMPONENT_METRICS_TOPIC;
  const settings: MetricsSettings = { intervalMs: (raw?.intervalSeconds ?? 300) * 1000, defender: raw?.defender ?? true, topic: topic === '' ? undefined : topic };
  if (!settings.defender && settings.topic === undefined) return undefined;
  const problem = metricsSettingsProblem(settings);
  if (problem !== undefined) problems.push({ path: '/metrics', message: problem });
  return settings;
}

/** What a live update asks for, once validated against the settings in force. */
export type SettingsChange =
  | { readonly ok: true; readonly changedKeys: readonly (keyof ComponentSettings)[]; readonly next: ComponentSettings }
  | { readonly ok: false; readonly problems: readonly ConfigurationProblem[] };

/** Refuses any change to a key that needs a restart; the running settings then stay in force unchanged. */
export function planSettingsChange(current: ComponentSettings, next: ComponentSettings): SettingsChange {
  const keys = Object.keys(current) as (keyof ComponentSettings)[];
  // Values compared as JSON: metrics is an object, equal when its fields are.
  const changedKeys = keys.filter((key) => JSON.stringify(current[key] ?? null) !== JSON.stringify(next[key] ?? null));
  const live: readonly string[] = LIVE_KEYS;
  const restart = changedKeys.filter((key) => !live.includes(key));
  if (restart.length > 0) {
    return {
      ok: false,
      problems: restart.map((key) => ({
        path: `/${key}`,
        message: `${key} cannot change while the component runs (${JSON.stringify(current[key])} -> ${JSON.stringify(next[key])}); restart the component to apply it`,
      })),
    };
  }
  return { ok: true, changedKeys, next };
}

export function formatConfigurationProblems(problems: readonly ConfigurationProblem[]): string {
  return problems.map((p) => `configuration ${p.path}: ${p.message}`).join('; ');
}
