// Compares an existing Device Defender security profile with the wanted one and builds what an update sends. Pure.
// It owns only the behaviours it names and the metrics it retains: behaviours, retained metrics and alert targets
// someone else added are kept, never removed silently.

import type { Behavior, DescribeSecurityProfileCommandOutput, MetricToRetain } from '@aws-sdk/client-iot';
import type { DesiredState } from './desired.js';

export interface ProfileContent {
  readonly description: string;
  readonly behaviors: Behavior[];
  readonly metricsToRetain: MetricToRetain[];
}

export interface ProfileComparison {
  /** What the profile should hold afterwards (sent whole on create or update). */
  readonly content: ProfileContent;
  /** Human-readable differences, one per changed field; empty when the profile is as wanted. */
  readonly differences: string[];
}

/** The fields of a behaviour that decide what it alarms on, with the service's defaults filled in. */
function canonical(behavior: Behavior): Record<string, unknown> {
  const c = behavior.criteria ?? {};
  // An empty list counts as absent: the service may leave `strings: []` out of what it returns, and both mean the
  // empty set, so they must not look like drift on every run.
  const value =
    c.value === undefined
      ? undefined
      : Object.fromEntries(
          Object.entries(c.value)
            .filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))
            .sort(([a], [b]) => a.localeCompare(b)),
        );
  return {
    metric: behavior.metric,
    metricDimension: behavior.metricDimension,
    suppressAlerts: behavior.suppressAlerts ?? false,
    'criteria.comparisonOperator': c.comparisonOperator,
    'criteria.value': value,
    'criteria.durationSeconds': c.durationSeconds,
    'criteria.consecutiveDatapointsToAlarm': c.consecutiveDatapointsToAlarm ?? 1,
    'criteria.consecutiveDatapointsToClear': c.consecutiveDatapointsToClear ?? 1,
    'criteria.statisticalThreshold': c.statisticalThreshold,
    'criteria.mlDetectionConfig': c.mlDetectionConfig,
  };
}

function shown(value: unknown): string {
  return value === undefined ? '(none)' : JSON.stringify(value);
}

function behaviorDifferences(existing: Behavior, wanted: Behavior): string[] {
  const a = canonical(existing);
  const b = canonical(wanted);
  const out: string[] = [];
  for (const key of Object.keys(b)) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) out.push(`behaviour ${wanted.name}: ${key} ${shown(a[key])} -> ${shown(b[key])}`);
  }
  return out;
}

function retainKey(m: MetricToRetain): string {
  return `${m.metric ?? ''}|${m.metricDimension?.dimensionName ?? ''}|${m.metricDimension?.operator ?? ''}`;
}

/** The wanted content for a new profile. */
export function newProfileContent(desired: DesiredState): ProfileContent {
  return {
    description: desired.profileDescription,
    behaviors: desired.behaviors.map((b) => ({ ...b })),
    metricsToRetain: desired.metricsToRetain.map((metric) => ({ metric })),
  };
}

/** Merges the wanted behaviours and retained metrics into an existing profile and lists what differs. */
export function compareProfile(existing: DescribeSecurityProfileCommandOutput, desired: DesiredState): ProfileComparison {
  const differences: string[] = [];
  if ((existing.securityProfileDescription ?? '') !== desired.profileDescription) {
    differences.push(`description ${shown(existing.securityProfileDescription)} -> ${shown(desired.profileDescription)}`);
  }
  const wantedByName = new Map(desired.behaviors.map((b) => [b.name, b]));
  const behaviors: Behavior[] = [];
  const present = new Set<string | undefined>();
  for (const current of existing.behaviors ?? []) {
    const wanted = wantedByName.get(current.name);
    if (wanted === undefined) {
      behaviors.push(current); // not ours: kept as it is
      continue;
    }
    present.add(current.name);
    differences.push(...behaviorDifferences(current, wanted));
    // exportMetric is not ours to decide: carry it over.
    behaviors.push(current.exportMetric === undefined ? { ...wanted } : { ...wanted, exportMetric: current.exportMetric });
  }
  for (const wanted of desired.behaviors) {
    if (present.has(wanted.name)) continue;
    differences.push(`behaviour ${wanted.name}: add (${wanted.metric ?? ''} ${wanted.criteria?.comparisonOperator ?? ''} ${shown(wanted.criteria?.value)})`);
    behaviors.push({ ...wanted });
  }
  const metricsToRetain: MetricToRetain[] = [...(existing.additionalMetricsToRetainV2 ?? [])];
  const retained = new Set(metricsToRetain.map(retainKey));
  const missing = desired.metricsToRetain.filter((metric) => !retained.has(retainKey({ metric })));
  if (missing.length > 0) differences.push(`retain ${missing.length} more metric(s): ${missing.join(', ')}`);
  metricsToRetain.push(...missing.map((metric) => ({ metric })));
  return { content: { description: desired.profileDescription, behaviors, metricsToRetain }, differences };
}
