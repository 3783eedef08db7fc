// Reads what the account has and computes the provisioning plan: for each custom metric, the security profile and
// its attachment to the thing group, whether it is to be created, updated (and what differs) or left unchanged.
// Only read calls happen here: a dry run prints this plan and stops. A conflict that cannot be fixed without deleting
// something (a metric of another type) or a missing thing group is a problem, and a plan with problems is never applied.

import type { DescribeCustomMetricCommandOutput, DescribeSecurityProfileCommandOutput, IoTClient, ListTargetsForSecurityProfileCommandOutput } from '@aws-sdk/client-iot';
import type { DefenderMetricType } from '../metric-catalog.js';
import type { DesiredMetric, DesiredState } from './desired.js';
import { callIot, IotCallError, type RetryOptions } from './iot-call.js';
import { compareProfile, newProfileContent, type ProfileContent } from './profile-diff.js';

/** The client module, loaded with a dynamic import (the device artifact does not ship it). */
export type IotSdk = typeof import('@aws-sdk/client-iot');

export interface IotContext {
  readonly sdk: IotSdk;
  readonly client: IoTClient;
  readonly retry: RetryOptions;
}

export type StepAction = 'create' | 'update' | 'unchanged';

export interface MetricStep {
  readonly kind: 'metric';
  readonly name: string;
  readonly action: StepAction;
  readonly metricType: DefenderMetricType;
  readonly displayName: string;
  readonly differences: readonly string[];
}

export interface ProfileStep {
  readonly kind: 'profile';
  readonly name: string;
  readonly action: StepAction;
  readonly content: ProfileContent;
  /** The version read; an update sends it as expectedVersion so a concurrent change is not overwritten. */
  readonly version?: number;
  readonly differences: readonly string[];
}

export interface AttachStep {
  readonly kind: 'attach';
  /** The security profile's name. */
  readonly name: string;
  readonly action: 'create' | 'unchanged';
  readonly thingGroupName: string;
  readonly thingGroupArn: string;
  readonly differences: readonly string[];
}

export type PlanStep = MetricStep | ProfileStep | AttachStep;

export interface Plan {
  /** In the order they are applied: metrics first (the profile's behaviours name them), then the profile, then the attachment. */
  readonly steps: readonly PlanStep[];
  /** Why the plan cannot be applied; empty when it can. */
  readonly problems: readonly string[];
}

/** Reads one thing; undefined when the service says it does not exist. */
async function readOrMissing<T>(run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof IotCallError && error.kind === 'not-found') return undefined;
    throw error;
  }
}

export function readMetric(ctx: IotContext, name: string): Promise<DescribeCustomMetricCommandOutput | undefined> {
  return readOrMissing(() => callIot<DescribeCustomMetricCommandOutput>(ctx.client, 'DescribeCustomMetric', new ctx.sdk.DescribeCustomMetricCommand({ metricName: name }), ctx.retry));
}

export function readProfile(ctx: IotContext, name: string): Promise<DescribeSecurityProfileCommandOutput | undefined> {
  return readOrMissing(() =>
    callIot<DescribeSecurityProfileCommandOutput>(ctx.client, 'DescribeSecurityProfile', new ctx.sdk.DescribeSecurityProfileCommand({ securityProfileName: name }), ctx.retry),
  );
}

export function metricTypeProblem(name: string, actual: string | undefined, wanted: DefenderMetricType): string {
  return (
    `custom metric ${name} exists with type ${actual ?? '(none)'}, but the interlock reports it as ${wanted}: a custom metric's type cannot be ` +
    `changed in place, and provision never deletes one (its data would go with it). If it is not needed, delete it ` +
    `yourself (aws iot delete-custom-metric --metric-name ${name}, after removing it from any security profile) and run provision again`
  );
}

/** The metric step for what the account has (undefined: missing), or a problem when the type differs. */
export function metricStep(wanted: DesiredMetric, existing: DescribeCustomMetricCommandOutput | undefined): MetricStep | string {
  const base = { kind: 'metric' as const, name: wanted.name, metricType: wanted.type, displayName: wanted.displayName };
  if (existing === undefined) return { ...base, action: 'create', differences: [] };
  if (existing.metricType !== wanted.type) return metricTypeProblem(wanted.name, existing.metricType, wanted.type);
  if ((existing.displayName ?? '') !== wanted.displayName) {
    return { ...base, action: 'update', differences: [`displayName ${JSON.stringify(existing.displayName ?? '')} -> ${JSON.stringify(wanted.displayName)}`] };
  }
  return { ...base, action: 'unchanged', differences: [] };
}

/** The profile step for what the account has (undefined: missing). */
export function profileStep(desired: DesiredState, existing: DescribeSecurityProfileCommandOutput | undefined): ProfileStep {
  if (existing === undefined) return { kind: 'profile', name: desired.profileName, action: 'create', content: newProfileContent(desired), differences: [] };
  const { content, differences } = compareProfile(existing, desired);
  return {
    kind: 'profile',
    name: desired.profileName,
    action: differences.length === 0 ? 'unchanged' : 'update',
    content,
    differences,
    ...(existing.version === undefined ? {} : { version: existing.version }),
  };
}

async function isAttached(ctx: IotContext, profileName: string, targetArn: string): Promise<boolean> {
  let nextToken: string | undefined;
  do {
    const page: ListTargetsForSecurityProfileCommandOutput = await callIot(
      ctx.client,
      'ListTargetsForSecurityProfile',
      new ctx.sdk.ListTargetsForSecurityProfileCommand({ securityProfileName: profileName, ...(nextToken === undefined ? {} : { nextToken }) }),
      ctx.retry,
    );
    if ((page.securityProfileTargets ?? []).some((target) => target.arn === targetArn)) return true;
    nextToken = page.nextToken;
  } while (nextToken !== undefined && nextToken !== '');
  return false;
}

/** Reads the account (read calls only) and returns the plan. Call failures throw IotCallError. */
export async function planProvision(ctx: IotContext, desired: DesiredState): Promise<Plan> {
  const steps: PlanStep[] = [];
  const problems: string[] = [];
  for (const wanted of desired.metrics) {
    const step = metricStep(wanted, await readMetric(ctx, wanted.name));
    if (typeof step === 'string') problems.push(step);
    else steps.push(step);
  }
  const existingProfile = await readProfile(ctx, desired.profileName);
  steps.push(profileStep(desired, existingProfile));
  const group = await readOrMissing(() =>
    callIot<{ thingGroupArn?: string }>(ctx.client, 'DescribeThingGroup', new ctx.sdk.DescribeThingGroupCommand({ thingGroupName: desired.thingGroupName }), ctx.retry),
  );
  if (group?.thingGroupArn === undefined) {
    problems.push(
      `thing group ${desired.thingGroupName} does not exist in this account and region: create it (aws iot create-thing-group --thing-group-name ${desired.thingGroupName}) ` +
        `and add the interlock's things to it, or name another with --thing-group`,
    );
  } else {
    const attached = existingProfile !== undefined && (await isAttached(ctx, desired.profileName, group.thingGroupArn));
    steps.push({
      kind: 'attach',
      name: desired.profileName,
      action: attached ? 'unchanged' : 'create',
      thingGroupName: desired.thingGroupName,
      thingGroupArn: group.thingGroupArn,
      differences: [],
    });
  }
  return { steps, problems };
}
