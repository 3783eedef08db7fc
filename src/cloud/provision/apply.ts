// Carries out a provisioning plan, step by step in its order, with the write calls. Races are expected: something
// created meanwhile (ResourceAlreadyExistsException) is read again and compared; a profile changed meanwhile
// (VersionConflictException) is read again and merged. It never deletes anything.

import { randomUUID } from 'node:crypto';
import type { DesiredState } from './desired.js';
import { callIot, IotCallError } from './iot-call.js';
import { metricStep, profileStep, readMetric, readProfile, type AttachStep, type IotContext, type MetricStep, type Plan, type PlanStep, type ProfileStep } from './plan.js';

export type Outcome = 'created' | 'updated' | 'unchanged';

export interface AppliedStep {
  readonly kind: PlanStep['kind'];
  readonly name: string;
  readonly outcome: Outcome;
  readonly differences: readonly string[];
  /** e.g. "created meanwhile by someone else" */
  readonly note?: string;
}

/** A conflict found while applying (the plan had none): provisioning stops there. */
export class ProvisionConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProvisionConflict';
  }
}

/** Profile updates tried again after a version conflict, at most. */
const PROFILE_UPDATE_TRIES = 3;

function isKind(error: unknown, kind: IotCallError['kind']): boolean {
  return error instanceof IotCallError && error.kind === kind;
}

async function updateMetric(ctx: IotContext, step: MetricStep): Promise<void> {
  await callIot(ctx.client, 'UpdateCustomMetric', new ctx.sdk.UpdateCustomMetricCommand({ metricName: step.name, displayName: step.displayName }), ctx.retry);
}

async function applyMetric(ctx: IotContext, desired: DesiredState, step: MetricStep): Promise<AppliedStep> {
  if (step.action === 'unchanged') return { kind: 'metric', name: step.name, outcome: 'unchanged', differences: [] };
  if (step.action === 'update') {
    await updateMetric(ctx, step);
    return { kind: 'metric', name: step.name, outcome: 'updated', differences: step.differences };
  }
  try {
    // One token per create, reused by the retries of that create, so a retried request cannot create twice.
    await callIot(
      ctx.client,
      'CreateCustomMetric',
      new ctx.sdk.CreateCustomMetricCommand({ metricName: step.name, metricType: step.metricType, displayName: step.displayName, clientRequestToken: randomUUID() }),
      ctx.retry,
    );
    return { kind: 'metric', name: step.name, outcome: 'created', differences: [] };
  } catch (error) {
    if (!isKind(error, 'already-exists')) throw error;
  }
  const wanted = desired.metrics.find((m) => m.name === step.name);
  if (wanted === undefined) throw new Error(`bug: plan step for ${step.name} has no desired metric`);
  const again = metricStep(wanted, await readMetric(ctx, step.name));
  if (typeof again === 'string') throw new ProvisionConflict(again);
  if (again.action === 'create') throw new ProvisionConflict(`custom metric ${step.name}: CreateCustomMetric said it exists, DescribeCustomMetric says it does not; run provision again`);
  if (again.action === 'update') await updateMetric(ctx, again);
  return { kind: 'metric', name: step.name, outcome: again.action === 'update' ? 'updated' : 'unchanged', differences: again.differences, note: 'created meanwhile by someone else' };
}

/** What a create and an update of the profile both send: its name and the wanted content. */
function profileFields(step: ProfileStep) {
  return {
    securityProfileName: step.name,
    securityProfileDescription: step.content.description,
    behaviors: step.content.behaviors,
    additionalMetricsToRetainV2: step.content.metricsToRetain,
  };
}

async function updateProfile(ctx: IotContext, desired: DesiredState, first: ProfileStep, note?: string): Promise<AppliedStep> {
  let step = first;
  for (let attempt = 1; ; attempt++) {
    if (step.action === 'unchanged') return { kind: 'profile', name: step.name, outcome: 'unchanged', differences: [], ...(note === undefined ? {} : { note }) };
    if (step.action === 'create') throw new ProvisionConflict(`security profile ${step.name} disappeared while it was being updated; run provision again`);
    try {
      await callIot(
        ctx.client,
        'UpdateSecurityProfile',
        new ctx.sdk.UpdateSecurityProfileCommand({
          ...profileFields(step),
          // SAFETY: never overwrite a change someone made since it was read.
          ...(step.version === undefined ? {} : { expectedVersion: step.version }),
        }),
        ctx.retry,
      );
      return { kind: 'profile', name: step.name, outcome: 'updated', differences: step.differences, ...(note === undefined ? {} : { note }) };
    } catch (error) {
      if (!isKind(error, 'version-conflict') || attempt >= PROFILE_UPDATE_TRIES) throw error;
    }
    step = profileStep(desired, await readProfile(ctx, step.name));
    note = 'changed meanwhile by someone else; merged again';
  }
}

async function applyProfile(ctx: IotContext, desired: DesiredState, step: ProfileStep): Promise<AppliedStep> {
  if (step.action !== 'create') return updateProfile(ctx, desired, step);
  try {
    await callIot(
      ctx.client,
      'CreateSecurityProfile',
      new ctx.sdk.CreateSecurityProfileCommand(profileFields(step)),
      ctx.retry,
    );
    return { kind: 'profile', name: step.name, outcome: 'created', differences: [] };
  } catch (error) {
    if (!isKind(error, 'already-exists')) throw error;
  }
  return updateProfile(ctx, desired, profileStep(desired, await readProfile(ctx, step.name)), 'created meanwhile by someone else');
}

async function applyAttach(ctx: IotContext, step: AttachStep): Promise<AppliedStep> {
  const base = { kind: 'attach' as const, name: step.name, differences: [] };
  if (step.action === 'unchanged') return { ...base, outcome: 'unchanged' };
  try {
    await callIot(ctx.client, 'AttachSecurityProfile', new ctx.sdk.AttachSecurityProfileCommand({ securityProfileName: step.name, securityProfileTargetArn: step.thingGroupArn }), ctx.retry);
    return { ...base, outcome: 'created' };
  } catch (error) {
    if (!isKind(error, 'already-exists')) throw error;
    return { ...base, outcome: 'unchanged', note: 'attached meanwhile by someone else' };
  }
}

/**
 * Applies a plan that has no problems. Returns what was done, step by step; throws IotCallError or
 * ProvisionConflict at the first step that fails (the steps before it stay done; a second run continues).
 */
export async function applyPlan(ctx: IotContext, desired: DesiredState, plan: Plan, onStep: (step: AppliedStep) => void = () => undefined): Promise<AppliedStep[]> {
  if (plan.problems.length > 0) throw new Error('bug: applyPlan called with a plan that has problems');
  const done: AppliedStep[] = [];
  for (const step of plan.steps) {
    const applied = step.kind === 'metric' ? await applyMetric(ctx, desired, step) : step.kind === 'profile' ? await applyProfile(ctx, desired, step) : await applyAttach(ctx, step);
    done.push(applied);
    onStep(applied);
  }
  return done;
}
