// `interlock provision` without the command line: plan first (read calls only), then, unless it is a dry run or the
// plan has problems, apply it. Failures of AWS calls and conflicts come back as data (error), never half-reported.

import { applyPlan, ProvisionConflict, type AppliedStep } from './apply.js';
import type { DesiredState } from './desired.js';
import { IotCallError } from './iot-call.js';
import { planProvision, type IotContext, type Plan } from './plan.js';

export interface ProvisionReport {
  readonly ok: boolean;
  readonly dryRun: boolean;
  /** Undefined when reading the account failed. */
  readonly plan?: Plan;
  /** What was written, in order (empty on a dry run or when the plan has problems). */
  readonly applied: readonly AppliedStep[];
  /** The one-line reason a call or a step failed. */
  readonly error?: string;
}

function failure(error: unknown): string {
  if (error instanceof IotCallError || error instanceof ProvisionConflict) return error.message;
  throw error;
}

export async function provision(ctx: IotContext, desired: DesiredState, options: { dryRun: boolean; onStep?: (step: AppliedStep) => void }): Promise<ProvisionReport> {
  let plan: Plan;
  try {
    plan = await planProvision(ctx, desired);
  } catch (error) {
    return { ok: false, dryRun: options.dryRun, applied: [], error: failure(error) };
  }
  // SAFETY: a plan with a problem is never applied in part: nothing is written.
  if (plan.problems.length > 0 || options.dryRun) return { ok: plan.problems.length === 0, dryRun: options.dryRun, plan, applied: [] };
  const applied: AppliedStep[] = [];
  try {
    await applyPlan(ctx, desired, plan, (step) => {
      applied.push(step);
      options.onStep?.(step);
    });
  } catch (error) {
    return { ok: false, dryRun: false, plan, applied, error: failure(error) };
  }
  return { ok: true, dryRun: false, plan, applied };
}
