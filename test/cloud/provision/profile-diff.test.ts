// The profile comparison alone: what the service returns (defaults left out, empty lists dropped) is not drift;
// a behaviour or retained metric someone else added is kept; exportMetric is carried over; thresholds are checked.

import t from 'tap';
import type { Behavior, DescribeSecurityProfileCommandOutput } from '@aws-sdk/client-iot';
import { METRICS } from '../../../src/cloud/metric-catalog.js';
import { DEFAULT_THRESHOLDS, desiredBehaviors, desiredState, PROFILE_DESCRIPTION, thresholdProblems } from '../../../src/cloud/provision/desired.js';
import { compareProfile } from '../../../src/cloud/provision/profile-diff.js';

const desired = desiredState({ profileName: 'p', thingGroupName: 'g', thresholds: DEFAULT_THRESHOLDS });

/** A behaviour as the service may return it: defaults (1 datapoint, no suppression) and empty lists left out. */
function asReturned(b: Behavior): Behavior {
  const criteria = { ...b.criteria };
  if (criteria.consecutiveDatapointsToAlarm === 1) delete criteria.consecutiveDatapointsToAlarm;
  if (criteria.consecutiveDatapointsToClear === 1) delete criteria.consecutiveDatapointsToClear;
  if (criteria.value?.strings?.length === 0) criteria.value = {};
  return { name: b.name, metric: b.metric, criteria };
}

function existing(behaviors: Behavior[], extra: Partial<DescribeSecurityProfileCommandOutput> = {}): DescribeSecurityProfileCommandOutput {
  return {
    $metadata: {},
    securityProfileName: 'p',
    securityProfileDescription: PROFILE_DESCRIPTION,
    behaviors,
    additionalMetricsToRetainV2: desired.metricsToRetain.map((metric) => ({ metric })),
    version: 4,
    ...extra,
  };
}

t.test('the profile as the service returns it, defaults and empty lists left out, is not drift', async (t) => {
  const { differences } = compareProfile(existing(desiredBehaviors(DEFAULT_THRESHOLDS).map(asReturned)), desired);
  t.same(differences, []);
});

t.test('another operator, another datapoint count or a statistical threshold is drift, named by field', async (t) => {
  const mine = desiredBehaviors(DEFAULT_THRESHOLDS);
  const changed = mine.map((b) =>
    b.name === 'interlock-audit-backlog'
      ? { ...b, criteria: { ...b.criteria, comparisonOperator: 'greater-than' as const, consecutiveDatapointsToAlarm: 5 } }
      : b.name === 'interlock-audit-space'
        ? { ...b, criteria: { ...b.criteria, statisticalThreshold: { statistic: 'p90' } } }
        : b,
  );
  const { differences } = compareProfile(existing(changed), desired);
  t.same(differences, [
    'behaviour interlock-audit-backlog: criteria.comparisonOperator "greater-than" -> "less-than-equals"',
    'behaviour interlock-audit-backlog: criteria.consecutiveDatapointsToAlarm 5 -> 2',
    'behaviour interlock-audit-space: criteria.statisticalThreshold {"statistic":"p90"} -> (none)',
  ]);
});

t.test('foreign behaviours and retained metrics are kept; exportMetric is carried over; a missing behaviour is added', async (t) => {
  const [denied, , backlog, space] = desiredBehaviors(DEFAULT_THRESHOLDS) as [Behavior, Behavior, Behavior, Behavior];
  const foreign: Behavior = { name: 'ops-msgs', metric: 'aws:num-messages-sent', criteria: { comparisonOperator: 'less-than', value: { count: 100 }, durationSeconds: 300 } };
  const retained = { metric: 'aws:num-messages-received' };
  const result = compareProfile(
    existing([foreign, { ...denied, exportMetric: true }, backlog, space], { additionalMetricsToRetainV2: [retained, ...desired.metricsToRetain.map((metric) => ({ metric }))] }),
    desired,
  );
  t.same(result.differences, ['behaviour interlock-quarantined-agents: add (interlock_quarantined_agents in-set {"strings":[]})']);
  t.same(result.content.behaviors.map((b) => b.name), ['ops-msgs', 'interlock-commands-denied', 'interlock-audit-backlog', 'interlock-audit-space', 'interlock-quarantined-agents']);
  t.same(result.content.behaviors[0], foreign, 'the foreign behaviour is sent back unchanged');
  t.equal(result.content.behaviors[1]?.exportMetric, true, 'exportMetric kept');
  t.same(result.content.metricsToRetain[0], retained);
});

t.test('every catalog summary fits a display name, and thresholds refuse what they cannot mean', async (t) => {
  for (const metric of desired.metrics) t.equal(metric.displayName, METRICS[metric.name]?.summary, `${metric.name}: summary is the display name`);
  t.same(thresholdProblems(DEFAULT_THRESHOLDS), []);
  t.same(thresholdProblems({ maxDeniedPer5Min: Number.NaN, maxAuditBacklog: 1.5, maxAuditSpacePercent: 101 }), [
    '--max-denied must be a whole number from 0, not NaN',
    '--max-audit-backlog must be a whole number from 0, not 1.5',
    '--max-audit-space must be a whole number from 0 to 100, not 101',
  ]);
});
