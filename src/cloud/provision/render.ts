// Text and JSON for `interlock provision`: the plan (the dry run prints exactly this), what was done, and a summary.
// Only names, types and differences are printed; nothing from the credentials.

import type { AppliedStep } from './apply.js';
import type { PlanStep } from './plan.js';
import type { ProvisionReport } from './provision.js';

export interface ReportHeader {
  readonly region: string;
  readonly profileName: string;
  readonly thingGroupName: string;
}

function what(step: { kind: PlanStep['kind']; name: string }, thingGroupName: string, metricType?: string): string {
  switch (step.kind) {
    case 'metric':
      return `custom metric ${step.name}${metricType === undefined ? '' : ` (${metricType})`}`;
    case 'profile':
      return `security profile ${step.name}`;
    case 'attach':
      return `attachment of ${step.name} to thing group ${thingGroupName}`;
  }
}

function column(word: string): string {
  return word.padEnd(10);
}

/** One line per step to create or update (with its differences indented below), unchanged metrics counted on one line. */
export function planLines(steps: readonly PlanStep[], thingGroupName: string): string[] {
  const lines: string[] = [];
  const unchangedMetrics = steps.filter((s) => s.kind === 'metric' && s.action === 'unchanged').length;
  for (const step of steps) {
    if (step.kind === 'metric' && step.action === 'unchanged') continue;
    lines.push(`${column(step.action)} ${what(step, thingGroupName, step.kind === 'metric' ? step.metricType : undefined)}`);
    for (const difference of step.differences) lines.push(`             ${difference}`);
  }
  if (unchangedMetrics > 0) lines.unshift(`${column('unchanged')} ${unchangedMetrics} custom metric(s) as wanted`);
  return lines;
}

export function appliedLines(applied: readonly AppliedStep[], thingGroupName: string): string[] {
  const lines: string[] = [];
  for (const step of applied) {
    if (step.kind === 'metric' && step.outcome === 'unchanged' && step.note === undefined) continue;
    lines.push(`${column(step.outcome)} ${what(step, thingGroupName)}${step.note === undefined ? '' : ` (${step.note})`}`);
    for (const difference of step.differences) lines.push(`             ${difference}`);
  }
  const unchangedMetrics = applied.filter((s) => s.kind === 'metric' && s.outcome === 'unchanged' && s.note === undefined).length;
  if (unchangedMetrics > 0) lines.unshift(`${column('unchanged')} ${unchangedMetrics} custom metric(s) as wanted`);
  return lines;
}

function counts(actions: readonly string[], words: Record<string, string>): string {
  return Object.entries(words)
    .map(([action, word]) => `${actions.filter((a) => a === action).length} ${word}`)
    .join(', ');
}

/** The text report: header, the plan or what was done, problems or the error, and a closing summary line. */
export function reportLines(report: ProvisionReport, header: ReportHeader): { out: string[]; err: string[] } {
  const out = [`provision: region ${header.region}, security profile ${header.profileName}, thing group ${header.thingGroupName}${report.dryRun ? ' (dry run: read calls only)' : ''}`];
  const err: string[] = [];
  const plan = report.plan;
  if (plan !== undefined && (report.dryRun || plan.problems.length > 0)) {
    out.push(...planLines(plan.steps, header.thingGroupName));
  } else {
    out.push(...appliedLines(report.applied, header.thingGroupName));
  }
  if (plan !== undefined && plan.problems.length > 0) {
    for (const problem of plan.problems) err.push(`interlock provision: ${problem}`);
    err.push(`interlock provision: nothing written: ${plan.problems.length} problem(s)`);
    return { out, err };
  }
  if (report.error !== undefined) {
    err.push(`interlock provision: ${report.error}`);
    if (report.applied.length > 0) err.push(`interlock provision: stopped after ${report.applied.length} step(s); running it again continues from there`);
    return { out, err };
  }
  if (report.dryRun && plan !== undefined) {
    out.push(`dry run: ${counts(plan.steps.map((s) => s.action), { create: 'to create', update: 'to update', unchanged: 'unchanged' })}; nothing written`);
  } else {
    out.push(`done: ${counts(report.applied.map((s) => s.outcome), { created: 'created', updated: 'updated', unchanged: 'unchanged' })}`);
  }
  return { out, err };
}

/** The JSON report: one object. */
export function reportJson(report: ProvisionReport, header: ReportHeader): Record<string, unknown> {
  return {
    ok: report.ok,
    dryRun: report.dryRun,
    region: header.region,
    securityProfile: header.profileName,
    thingGroup: header.thingGroupName,
    plan: (report.plan?.steps ?? []).map((s) => ({ kind: s.kind, name: s.name, action: s.action, differences: s.differences })),
    applied: report.applied.map((s) => ({ kind: s.kind, name: s.name, outcome: s.outcome, differences: s.differences, ...(s.note === undefined ? {} : { note: s.note }) })),
    problems: report.plan?.problems ?? [],
    ...(report.error === undefined ? {} : { error: report.error }),
  };
}
