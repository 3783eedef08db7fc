// What `interlock provision` wants to exist in AWS IoT Device Defender: one custom metric per entry of the metric
// catalog and a security profile whose behaviours watch four of them. Pure data, no AWS calls; the plan compares it
// with what the account has. It never names a metric the catalog does not hold.

import type { Behavior } from '@aws-sdk/client-iot';
import { METRICS, type DefenderMetricType } from '../metric-catalog.js';

/** The alarm thresholds, each configurable on the command line. */
export interface Thresholds {
  /** Denied commands in one 5-minute report above this raise an alarm. */
  readonly maxDeniedPer5Min: number;
  /** Audit records not yet acknowledged above this, in two reports in a row, raise an alarm. */
  readonly maxAuditBacklog: number;
  /** Audit space in use above this percentage raises an alarm. */
  readonly maxAuditSpacePercent: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { maxDeniedPer5Min: 20, maxAuditBacklog: 10_000, maxAuditSpacePercent: 80 };

export interface DesiredMetric {
  readonly name: string;
  readonly type: DefenderMetricType;
  readonly displayName: string;
}

export interface DesiredState {
  readonly metrics: readonly DesiredMetric[];
  readonly profileName: string;
  readonly profileDescription: string;
  /** The behaviours this command owns (by name); any other behaviour in the profile is kept as it is. */
  readonly behaviors: readonly Behavior[];
  /** Catalog metrics retained without a behaviour, so every interlock metric can be seen in the console. */
  readonly metricsToRetain: readonly string[];
  readonly thingGroupName: string;
}

/** AWS IoT names: security profiles, thing groups, behaviours and metrics are 1-128 of [a-zA-Z0-9:_-]. */
export const IOT_NAME_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;

/** Display names are at most 128 characters (UpdateCustomMetric). */
const DISPLAY_NAME_MAX = 128;

export const PROFILE_DESCRIPTION = 'Physical-AI command interlock: denials, quarantines and audit health (managed by interlock provision)';

/**
 * The behaviours. Device Defender criteria describe NORMAL behaviour: a device violates a behaviour when its
 * reported value does not meet the criteria. So "more than N denials" is written as "at most N is normal".
 */
export function desiredBehaviors(thresholds: Thresholds): Behavior[] {
  return [
    {
      name: 'interlock-commands-denied',
      metric: 'interlock_commands_denied',
      criteria: {
        comparisonOperator: 'less-than-equals',
        value: { number: thresholds.maxDeniedPer5Min },
        // The reporter counts per 300 s report interval; the duration matches it.
        durationSeconds: 300,
        consecutiveDatapointsToAlarm: 1,
        consecutiveDatapointsToClear: 1,
      },
      suppressAlerts: false,
    },
    {
      name: 'interlock-quarantined-agents',
      metric: 'interlock_quarantined_agents',
      // SAFETY: normal is "every reported id is in the empty set", i.e. no agent in quarantine; any quarantined agent
      // is a violation. (String-list metrics take in-set / not-in-set and no duration.)
      criteria: {
        comparisonOperator: 'in-set',
        value: { strings: [] },
        consecutiveDatapointsToAlarm: 1,
        consecutiveDatapointsToClear: 1,
      },
      suppressAlerts: false,
    },
    {
      name: 'interlock-audit-backlog',
      metric: 'interlock_audit_backlog',
      // Growing: above the threshold in two reports in a row (10 minutes), so one burst does not alarm.
      criteria: {
        comparisonOperator: 'less-than-equals',
        value: { number: thresholds.maxAuditBacklog },
        consecutiveDatapointsToAlarm: 2,
        consecutiveDatapointsToClear: 1,
      },
      suppressAlerts: false,
    },
    {
      name: 'interlock-audit-space',
      metric: 'interlock_audit_space_used_percent',
      criteria: {
        comparisonOperator: 'less-than-equals',
        value: { number: thresholds.maxAuditSpacePercent },
        consecutiveDatapointsToAlarm: 1,
        consecutiveDatapointsToClear: 1,
      },
      suppressAlerts: false,
    },
  ];
}

/** Problems with the thresholds, one line each (empty when they are usable). */
export function thresholdProblems(thresholds: Thresholds): string[] {
  const problems: string[] = [];
  const check = (option: string, value: number, max?: number): void => {
    // SAFETY: NaN or a fraction would make the alarm meaningless; refuse rather than round.
    if (!Number.isSafeInteger(value) || value < 0 || (max !== undefined && value > max)) {
      problems.push(`${option} must be a whole number from 0${max === undefined ? '' : ` to ${max}`}, not ${String(value)}`);
    }
  };
  check('--max-denied', thresholds.maxDeniedPer5Min);
  check('--max-audit-backlog', thresholds.maxAuditBacklog);
  check('--max-audit-space', thresholds.maxAuditSpacePercent, 100);
  return problems;
}

function displayName(name: string, summary: string): string {
  return summary.length <= DISPLAY_NAME_MAX ? summary : name;
}

export function desiredState(options: { profileName: string; thingGroupName: string; thresholds: Thresholds }): DesiredState {
  const behaviors = desiredBehaviors(options.thresholds);
  const watched = new Set(behaviors.map((b) => b.metric));
  const metrics = Object.entries(METRICS).map(([name, spec]) => ({ name, type: spec.type, displayName: displayName(name, spec.summary) }));
  return {
    metrics,
    profileName: options.profileName,
    profileDescription: PROFILE_DESCRIPTION,
    behaviors,
    metricsToRetain: metrics.map((m) => m.name).filter((name) => !watched.has(name)),
    thingGroupName: options.thingGroupName,
  };
}
