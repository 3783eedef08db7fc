// What the metrics reporter reads from the running interlock at report time (pending approvals, quarantined agents,
// the device kinds in force) and the live decision feed it counts audit failures from. Read-only.

import type { Interlock } from '../../interlock/interlock.js';
import type { ReporterGauges } from './metrics-reporter.js';

export function interlockGauges(interlock: Interlock): ReporterGauges {
  return {
    pendingApprovals: () => interlock.metrics().pendingApprovals,
    quarantinedAgents: () => interlock.metrics().demotedAgents.filter((d) => d.demotedTo === 'quarantine').map((d) => d.agentId),
    kindOf: (deviceId) => interlock.declarations.declarations.devices.get(deviceId)?.kind,
    onDecision: (listener) => interlock.onDecision((event) => listener(event.report.reasons)),
  };
}
