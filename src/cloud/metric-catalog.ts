// The one catalog of the interlock's cloud metrics: their names, their AWS IoT Device Defender custom-metric types
// and what each counts. The reporter sends exactly these, `interlock provision` creates exactly these, and
// docs/metrics.md lists them (a test holds the three together). Names are part of the public contract (alarms and
// IoT rules are written against them), so they are never renamed or reused.

import type { Stage } from '../core/reasons-spec.js';
import { KINDS, type DeviceKind } from '../core/kinds/index.js';

/** Device Defender custom metric types (CreateCustomMetric `metricType`), and the report's value key for each. */
export type DefenderMetricType = 'number' | 'number-list' | 'string-list' | 'ip-address-list';

export interface MetricSpec {
  readonly type: DefenderMetricType;
  /** counter: counted over the report's interval from the audit log; gauge: the value at report time. */
  readonly measure: 'counter' | 'gauge';
  readonly summary: string;
}

/** The stages a denial is counted under: the stage of its first reason code. */
export const DENIAL_STAGES: readonly Stage[] = ['input', 'envelope', 'policy', 'trust', 'approval', 'bounds', 'decide', 'audit', 'internal'];

/** A metric name segment for a device kind (robot-arm → robot_arm). */
export function kindSegment(kind: DeviceKind): string {
  return kind.replaceAll('-', '_');
}

function catalog(): Readonly<Record<string, MetricSpec>> {
  const out: Record<string, MetricSpec> = {
    interlock_commands_allowed: { type: 'number', measure: 'counter', summary: 'Commands released to a device (allow decisions) in the interval.' },
    interlock_commands_denied: { type: 'number', measure: 'counter', summary: 'Commands denied in the interval, unauthenticated ones (counted in aggregate records) included.' },
    interlock_commands_held: { type: 'number', measure: 'counter', summary: 'Commands held for human approval in the interval.' },
  };
  for (const stage of DENIAL_STAGES) {
    out[`interlock_denied_${stage}`] = { type: 'number', measure: 'counter', summary: `Denials in the interval whose first reason is of the ${stage} stage.` };
  }
  for (const kind of Object.keys(KINDS) as DeviceKind[]) {
    out[`interlock_bounds_violations_${kindSegment(kind)}`] = { type: 'number', measure: 'counter', summary: `Bounds reasons (stage bounds) on ${kind} devices in the interval; one denial may carry several.` };
  }
  Object.assign(out, {
    interlock_auth_failures: { type: 'number', measure: 'counter', summary: 'Commands and operator messages whose signature, key or claims did not authenticate, in the interval.' },
    interlock_replay_attempts: { type: 'number', measure: 'counter', summary: 'Commands refused as replays (jti seen, seq not above the last) in the interval.' },
    interlock_quarantined_agents: { type: 'string-list', measure: 'gauge', summary: 'Ids of the agents in quarantine at report time (empty list when none).' },
    interlock_pending_approvals: { type: 'number', measure: 'gauge', summary: 'Held commands waiting for an operator at report time.' },
    interlock_approval_requests: { type: 'number', measure: 'counter', summary: 'Approval requests raised (holds) in the interval, including ones refused for a full queue.' },
    interlock_audit_backlog: { type: 'number', measure: 'gauge', summary: 'Audit records not yet acknowledged by the cloud receiver or an archive at report time.' },
    interlock_audit_errors: { type: 'number', measure: 'counter', summary: 'Decisions with an audit failure reason (AUDIT_*) in the interval; counted live, as their records are not in the log.' },
    interlock_audit_space_used_percent: { type: 'number', measure: 'gauge', summary: 'Audit database pages in use as a percentage of its size cap (0 when no cap is declared).' },
    interlock_decision_latency_p99_us: { type: 'number', measure: 'counter', summary: '99th percentile of command arrival to verdict, in microseconds, over the interval (0 with no decisions).' },
    interlock_declaration_digest_changes: { type: 'number', measure: 'counter', summary: 'Declaration sets put in force (a new digest) in the interval.' },
  });
  return out;
}

/** Every metric, by name. */
export const METRICS: Readonly<Record<string, MetricSpec>> = catalog();
