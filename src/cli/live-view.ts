// Renders decisions as one readable terminal line each: time, verdict, agent, device, action, the limit set the bounds
// were checked in, what the command tried, and why it was blocked. Colours only on a TTY. Pure formatting: it never
// decides anything.

import type { Reason } from '../core/reasons.js';
import type { DecisionEvent } from '../interlock/interlock.js';

const COLOURS = { allow: '\u001b[32m', hold: '\u001b[33m', deny: '\u001b[31m', reduced: '\u001b[33m', dim: '\u001b[2m', reset: '\u001b[0m' } as const;

function fixed(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

/** One reason in a line: code, rule, and the numbers when it is a limit. */
export function describeReason(r: Reason): string {
  const rule = r.ruleId === undefined ? '' : ` [${r.ruleId}]`;
  if (r.limit !== undefined && r.actual !== undefined && r.stage === 'bounds') {
    const unit = r.unit === undefined ? '' : ` ${r.unit}`;
    return `${r.code}${rule}: ${fixed(r.actual)}${unit} vs limit ${fixed(r.limit)}${unit}`;
  }
  return `${r.code}${rule}: ${r.message}`;
}

export interface LiveViewOptions {
  readonly colour: boolean;
  /** A label per command digest: what the demo agent meant to do. */
  readonly labelOf?: (commandDigest: string) => string | undefined;
}

export function formatDecision(event: DecisionEvent, options: LiveViewOptions): string {
  const { report } = event;
  const time = new Date(report.decidedAtMs).toISOString().slice(11, 23);
  const paint = (text: string, colour: keyof typeof COLOURS): string => (options.colour ? `${COLOURS[colour]}${text}${COLOURS.reset}` : text);
  const verdict = paint(report.verdict.toUpperCase().padEnd(5), report.verdict);
  const who = (report.agentId ?? '(unauthenticated)').padEnd(17);
  const what = `${report.deviceId ?? event.topicDeviceId} ${report.action ?? '?'}`.padEnd(20);
  // The limit set the bounds were checked in; blank when they were not (stopped before them, or a safe-state command).
  const mode = report.mode === null ? ' '.repeat(7) : paint(report.mode.padEnd(7), report.mode === 'reduced' ? 'reduced' : 'dim');
  const label = options.labelOf?.(report.commandDigest);
  const head = `${paint(time, 'dim')}  ${verdict}  ${who} ${what} ${mode}${label === undefined ? '' : ` ${label}`}`.trimEnd();
  const blocking = report.reasons.filter((r) => r.code !== 'SAFE_STATE_COMMAND');
  if (report.verdict === 'allow') {
    const note = report.reasons.some((r) => r.code === 'SAFE_STATE_COMMAND') ? ' (safe-state command)' : '';
    const audit = event.auditSeq === null ? 'NOT recorded' : `audit #${event.auditSeq}`;
    return `${head}\n${' '.repeat(14)}${paint(`-> ${event.released ? 'released to the actuator' : 'NOT released'}${note}, ${audit}`, 'dim')}`;
  }
  const lines = blocking.map((r) => `${' '.repeat(14)}${paint('x', report.verdict)} ${describeReason(r)}`);
  return [head, ...lines].join('\n');
}
