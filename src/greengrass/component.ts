// The interlock as a Greengrass v2 component: configuration from the nucleus, the interlock on the IPC transport,
// RUNNING reported only once declarations are loaded, the audit log is open and the subscriptions are active,
// ERRORED with the reason on a fatal start-up error (everything opened is closed again), deployments' proposed
// configurations judged before the nucleus applies them (a refusal fails the deployment), live configuration updates
// validated in full before they are swapped in (or refused, the running configuration staying in force), and a
// clean stop on SIGTERM.

import { startRuntime, type Runtime } from '../app/compose.js';
import { formatConfigurationProblems, parseComponentConfiguration, type ComponentPlaces, type ComponentSettings } from '../app/component-config.js';
import type { Logger, LogLevel } from '../core/log.js';
import { formatProblem } from '../core/problems.js';
import { IpcConnection, IpcTransport, type IpcConnectionOptions } from '../transport/greengrass-ipc.js';
import { ComponentIpc } from './component-ipc.js';
import { assessConfiguration } from './configuration-updates.js';
import { thingNameProblem } from '../cloud/cloud-link.js';

export interface ComponentOptions {
  /** Where to reach the nucleus; default the environment the nucleus sets (socket path and SVCUID). */
  readonly ipc?: IpcConnectionOptions;
  /** The work folder and the unpacked artifact's folder, as the recipe's Startup script passes them. */
  readonly places?: ComponentPlaces;
  /** Writes one log line; default stderr (Greengrass keeps it in the component's log file). */
  readonly write?: (line: string) => void;
  /** The AWS IoT thing of the core device; default AWS_IOT_THING_NAME, which the nucleus sets. */
  readonly thingName?: string;
}

export interface RunningComponent {
  readonly runtime: Runtime;
  readonly settings: () => ComponentSettings;
  /** Configuration updates handled so far (applied or refused), for tests and the log. */
  readonly updates: () => readonly ConfigurationUpdateResult[];
  /** Deployments' proposed configurations judged so far (before the nucleus applied them). */
  readonly validations: () => readonly ValidationResult[];
  /** Stops taking commands, finishes those in flight, closes the log and the IPC connection. */
  stop(): Promise<void>;
}

export type ConfigurationUpdateResult =
  | { readonly applied: true; readonly changedKeys: readonly string[]; readonly fromDigest: string; readonly toDigest: string }
  | { readonly applied: false; readonly problem: string };

export type ValidationResult = { readonly deploymentId: string; readonly accepted: true } | { readonly deploymentId: string; readonly accepted: false; readonly problem: string };

const ORDER: Record<LogLevel, number> = { info: 0, warn: 1, error: 2, silent: 3 };

/** A logger whose level can be changed while it runs (logLevel is a live key). */
function leveledLogger(namespace: string, level: () => LogLevel, write: (line: string) => void): Logger {
  const emit = (at: 'info' | 'warn' | 'error', message: string): void => {
    if (ORDER[at] >= ORDER[level()]) write(`${new Date().toISOString()} ${at.toUpperCase().padEnd(5)} [${namespace}] ${message}`);
  };
  return {
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (child) => leveledLogger(`${namespace}:${child}`, level, write),
  };
}

export class ComponentStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ComponentStartError';
  }
}

/**
 * Starts the component. On a fatal start-up error it reports ERRORED to the nucleus (when it could connect), logs
 * why, closes what it opened and throws ComponentStartError.
 */
export async function startComponent(options: ComponentOptions = {}): Promise<RunningComponent> {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const places = options.places ?? {};
  let level: LogLevel = 'info';
  const log = leveledLogger('interlock', () => level, write);
  const connection = new IpcConnection({ ...options.ipc, log: (m) => log.child('ipc').warn(m) });
  try {
    await connection.start();
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    log.error(`cannot reach the Greengrass nucleus, so the component cannot even report ERRORED: ${why}`);
    await connection.stop();
    throw new ComponentStartError(why, { cause: error });
  }
  const component = new ComponentIpc(connection);
  const fail = async (why: string, cause?: unknown): Promise<never> => {
    log.error(`start-up failed: ${why}`);
    await component.updateState('ERRORED').catch((e: unknown) => log.error(`ERRORED not reported: ${e instanceof Error ? e.message : String(e)}`));
    await connection.stop();
    throw new ComponentStartError(why, { cause });
  };

  let settings: ComponentSettings;
  try {
    const parsed = parseComponentConfiguration(await component.getConfiguration([]), places);
    if (!parsed.ok) return await fail(formatConfigurationProblems(parsed.problems));
    settings = parsed.settings;
  } catch (error) {
    if (error instanceof ComponentStartError) throw error;
    return await fail(`configuration could not be read: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  level = settings.logLevel;

  // The cloud link is the nucleus's own IoT Core connection (its MQTT proxy), on the component's IPC connection.
  const thingName = options.thingName ?? process.env['AWS_IOT_THING_NAME'];
  if (thingName !== undefined && thingNameProblem(thingName) !== undefined) return await fail(`AWS_IOT_THING_NAME: ${thingNameProblem(thingName) ?? ''}`);
  if (thingName === undefined && (settings.metrics !== undefined || settings.auditForwarding.enabled)) log.warn('no AWS_IOT_THING_NAME (not started by a nucleus?): no cloud link, metrics are not reported and audit records are not forwarded');
  const cloud = thingName === undefined ? undefined : { transport: new IpcTransport({ connection, channel: 'iot-core' }), thingName };

  let runtime: Runtime;
  try {
    runtime = await startRuntime({
      cellDirectory: settings.cellDirectory,
      stateDirectory: settings.stateDirectory,
      topicPrefix: settings.topicPrefix,
      heartbeatPeriodMs: settings.heartbeatPeriodMs,
      verifierThreads: settings.verifierThreads,
      transport: new IpcTransport({ connection }),
      ...(cloud === undefined ? {} : { cloud }),
      ...(cloud === undefined || settings.metrics === undefined ? {} : { metrics: settings.metrics }),
      auditForwarding: settings.auditForwarding,
      ...(settings.expectedDigest === undefined ? {} : { expectedDigest: settings.expectedDigest }),
      log: log.child('runtime'),
    });
  } catch (error) {
    const problems = (error as { problems?: readonly Parameters<typeof formatProblem>[0][] }).problems;
    const why = problems === undefined ? (error instanceof Error ? error.message : String(error)) : problems.map(formatProblem).join('; ');
    return await fail(why, error);
  }

  const updates: ConfigurationUpdateResult[] = [];
  // Updates are applied one at a time, in the order they arrive.
  let applying: Promise<void> = Promise.resolve();
  const onUpdate = (): void => {
    applying = applying.then(async () => {
      const result = await applyUpdate();
      updates.push(result);
      if (result.applied) {
        log.info(`configuration update applied (${result.changedKeys.join(', ') || 'no setting changed'}; declarations ${result.fromDigest} -> ${result.toDigest})`);
      } else {
        log.error(`configuration update refused, the running configuration stays in force: ${result.problem}`);
      }
    });
  };

  const audit = async (event: string, detail: Record<string, unknown>): Promise<void> => {
    await runtime.audit
      .record({ kind: 'event', timeMs: Date.now(), declarationsDigest: runtime.interlock.declarations.declarations.digest, detail: { event, source: 'greengrass configuration update', ...detail } })
      .catch((e: unknown) => log.error(`audit event ${event} not recorded: ${e instanceof Error ? e.message : String(e)}`));
  };

  const applyUpdate = async (): Promise<ConfigurationUpdateResult> => {
    const refuse = async (problem: string): Promise<ConfigurationUpdateResult> => {
      await audit('configuration-update-refused', { problem });
      return { applied: false, problem };
    };
    let raw: unknown;
    try {
      raw = await component.getConfiguration([]);
    } catch (error) {
      return refuse(`the new configuration could not be read: ${error instanceof Error ? error.message : String(error)}`);
    }
    const assessed = assessConfiguration(raw, { settings, cell: runtime.interlock.declarations, places });
    if (!assessed.ok) return refuse(assessed.problem);
    const change = await runtime.interlock.replaceCell(assessed.cell, { source: 'greengrass configuration update', by: 'deployment' });
    if (!change.ok) return refuse(change.problem);
    const { changedKeys, next } = assessed;
    if (changedKeys.length > 0) {
      await audit('settings-changed', { changedKeys, from: pick(settings, changedKeys), to: pick(next, changedKeys) });
    }
    settings = next;
    level = next.logLevel;
    return { applied: true, changedKeys, fromDigest: change.fromDigest, toDigest: change.toDigest };
  };

  // Before a deployment applies a configuration, the nucleus asks; a REJECTED answer fails the deployment with the
  // reason and the nucleus keeps the configuration in force (the update below never comes).
  const validations: ValidationResult[] = [];
  const judge = async ({ deploymentId, configuration }: { deploymentId: string; configuration: unknown }) => {
    await applying;
    const assessed = assessConfiguration(configuration, { settings, cell: runtime.interlock.declarations, places });
    if (assessed.ok) {
      validations.push({ deploymentId, accepted: true });
      log.info(`deployment ${deploymentId}: proposed configuration accepted`);
      return { valid: true } as const;
    }
    validations.push({ deploymentId, accepted: false, problem: assessed.problem });
    log.error(`deployment ${deploymentId}: proposed configuration rejected, the deployment fails: ${assessed.problem}`);
    await audit('configuration-update-rejected', { deploymentId, problem: assessed.problem });
    return { valid: false, message: assessed.problem } as const;
  };

  let cancelUpdates: () => void;
  let cancelValidations: () => void = () => undefined;
  try {
    cancelValidations = await component.subscribeToValidateConfigurationUpdates(judge, (why) => log.error(why));
    cancelUpdates = await component.subscribeToConfigurationUpdate([], onUpdate);
    // SAFETY: RUNNING only now: declarations loaded, audit log open, command and state subscriptions active.
    await component.updateState('RUNNING');
  } catch (error) {
    cancelValidations();
    await runtime.stop().catch(() => undefined);
    return await fail(`could not finish start-up with the nucleus: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  log.info(`running as a Greengrass component; cell ${runtime.cell.declarations.cellId}, declarations ${runtime.cell.declarations.digest}`);

  let stopping: Promise<void> | undefined;
  return {
    runtime,
    settings: () => settings,
    updates: () => updates,
    validations: () => validations,
    stop() {
      stopping ??= (async () => {
        cancelValidations();
        cancelUpdates();
        await applying;
        await runtime.stop();
        await connection.stop();
      })();
      return stopping;
    },
  };
}

function pick(settings: ComponentSettings, keys: readonly (keyof ComponentSettings)[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, settings[key] ?? null]));
}
