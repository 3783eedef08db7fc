// `interlock provision`: the command line around src/cloud/provision. It runs on an operator's workstation or in CI,
// never on the device: @aws-sdk/client-iot is a dev dependency, loaded here with a dynamic import, and its absence
// is one line and exit 1. Credentials come from the SDK's default chain and are never printed.
// Exit codes: 0 done (or a dry run with nothing in the way), 1 failed or refused, 2 usage.

import { join, resolve } from 'node:path';
import { CellReader, validators } from '../declarations/cell-reader.js';
import { CELL_LAYOUT } from '../declarations/load.js';
import { formatProblem } from '../core/problems.js';
import { DEFAULT_THRESHOLDS, desiredState, IOT_NAME_PATTERN, thresholdProblems, type Thresholds } from '../cloud/provision/desired.js';
import { DEFAULT_RETRY, type RetryOptions } from '../cloud/provision/iot-call.js';
import type { IotSdk } from '../cloud/provision/plan.js';
import { provision } from '../cloud/provision/provision.js';
import { reportJson, reportLines, type ReportHeader } from '../cloud/provision/render.js';
import type { CliIo } from './cli-io.js';

export interface ProvisionCliOptions {
  readonly cellDirectory: string;
  readonly region?: string | undefined;
  readonly thingGroup?: string | undefined;
  readonly profile?: string | undefined;
  readonly maxDenied?: string | undefined;
  readonly maxAuditBacklog?: string | undefined;
  readonly maxAuditSpace?: string | undefined;
  readonly dryRun?: boolean | undefined;
  readonly json?: boolean | undefined;
  /** Tests inject these. */
  readonly loadSdk?: () => Promise<IotSdk>;
  readonly retry?: RetryOptions;
}

export const SDK_MISSING =
  'interlock provision needs @aws-sdk/client-iot, a development dependency the device artifact does not ship: run it from a checkout with `npm ci` done, on a workstation or in CI';

function wholeNumber(option: string, text: string | undefined, fallback: number): number | string {
  if (text === undefined) return fallback;
  // SAFETY: only plain digits; "1e3", "20.5" or "" are refused, never rounded.
  if (!/^\d{1,15}$/.test(text.trim())) return `${option} must be a whole number, not "${text}"`;
  return Number(text.trim());
}

function isModuleMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/**
 * The default profile name: interlock-<cell id>. Only cell.yaml is read (and validated): provisioning runs where the
 * cell's keys need not be, so the whole cell is not loaded.
 */
function defaultProfileName(cellDirectory: string): { name: string } | { problem: string } {
  const reader = new CellReader(resolve(cellDirectory));
  const parsed = reader.readYaml(CELL_LAYOUT.cell, validators.cell);
  const cellId = (parsed?.value as { cell?: unknown } | undefined)?.cell;
  if (parsed === undefined || typeof cellId !== 'string') {
    const first = reader.problems[0];
    return { problem: `cannot read the cell id from ${join(cellDirectory, CELL_LAYOUT.cell)} for the default profile name (${first === undefined ? 'no cell field' : formatProblem(first)}); give --profile NAME or fix the cell` };
  }
  return { name: `interlock-${cellId}` };
}

export async function runProvisionCommand(positionals: readonly string[], options: ProvisionCliOptions, io: CliIo): Promise<number> {
  if (positionals.length > 0) return io.usageError(`provision takes no arguments, got ${positionals.join(' ')}`);
  if (options.thingGroup === undefined) return io.usageError('provision needs --thing-group NAME: the thing group whose things the security profile watches');
  if (!IOT_NAME_PATTERN.test(options.thingGroup)) return io.usageError(`--thing-group "${options.thingGroup}" is not 1-128 characters of a-z, A-Z, 0-9, ':', '_' and '-'`);
  if (options.profile !== undefined && !IOT_NAME_PATTERN.test(options.profile)) {
    return io.usageError(`--profile "${options.profile}" is not 1-128 characters of a-z, A-Z, 0-9, ':', '_' and '-'`);
  }
  if (options.region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(options.region)) return io.usageError(`--region "${options.region}" is not an AWS region name such as eu-west-1`);
  const values = [
    wholeNumber('--max-denied', options.maxDenied, DEFAULT_THRESHOLDS.maxDeniedPer5Min),
    wholeNumber('--max-audit-backlog', options.maxAuditBacklog, DEFAULT_THRESHOLDS.maxAuditBacklog),
    wholeNumber('--max-audit-space', options.maxAuditSpace, DEFAULT_THRESHOLDS.maxAuditSpacePercent),
  ];
  const unreadable = values.find((v): v is string => typeof v === 'string');
  if (unreadable !== undefined) return io.usageError(unreadable);
  const [maxDeniedPer5Min, maxAuditBacklog, maxAuditSpacePercent] = values as [number, number, number];
  const thresholds: Thresholds = { maxDeniedPer5Min, maxAuditBacklog, maxAuditSpacePercent };
  const thresholdProblem = thresholdProblems(thresholds)[0];
  if (thresholdProblem !== undefined) return io.usageError(thresholdProblem);

  let profileName = options.profile;
  if (profileName === undefined) {
    const found = defaultProfileName(options.cellDirectory);
    if ('problem' in found) {
      io.err(`interlock provision: ${found.problem}`);
      return 1;
    }
    if (!IOT_NAME_PATTERN.test(found.name)) {
      io.err(`interlock provision: the default profile name "${found.name}" is not 1-128 characters of a-z, A-Z, 0-9, ':', '_' and '-'; give --profile NAME`);
      return 1;
    }
    profileName = found.name;
  }

  let sdk: IotSdk;
  try {
    sdk = await (options.loadSdk ?? (() => import('@aws-sdk/client-iot')))();
  } catch (error) {
    if (!isModuleMissing(error)) throw error;
    io.err(`interlock provision: ${SDK_MISSING}`);
    return 1;
  }
  // maxAttempts 1: the retries (throttling, service unavailable) are ours, bounded in iot-call.ts.
  const client = new sdk.IoTClient({ maxAttempts: 1, ...(options.region === undefined ? {} : { region: options.region }) });
  try {
    let region: string;
    try {
      region = await client.config.region();
    } catch {
      io.err('interlock provision: no AWS region: give --region (e.g. eu-west-1) or set AWS_REGION');
      return 1;
    }
    const header: ReportHeader = { region, profileName, thingGroupName: options.thingGroup };
    const desired = desiredState({ profileName, thingGroupName: options.thingGroup, thresholds });
    const dryRun = options.dryRun === true;
    const json = options.json === true;
    const report = await provision({ sdk, client, retry: options.retry ?? DEFAULT_RETRY }, desired, { dryRun });
    if (json) {
      io.out(JSON.stringify(reportJson(report, header)));
      if (report.error !== undefined) io.err(`interlock provision: ${report.error}`);
      for (const problem of report.plan?.problems ?? []) io.err(`interlock provision: ${problem}`);
    } else {
      const { out, err } = reportLines(report, header);
      for (const line of out) io.out(line);
      for (const line of err) io.err(line);
    }
    return report.ok ? 0 : 1;
  } finally {
    client.destroy();
  }
}

