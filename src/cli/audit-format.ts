// How `interlock audit` prints what agents wrote: the one-line timeline of a record, and any agent-given text made
// visible (never a terminal control sequence). Used by trace, tail and the command stories.

/** One record as a timeline line: time, #seq, kind, verdict, agent -> device, action or event, then its links. */
export function formatRecordLine(record: Readonly<Record<string, unknown>>): string {
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? printable(value) : undefined);
  const timeMs = record['timeMs'];
  const time = typeof timeMs === 'number' && Number.isFinite(timeMs) ? new Date(timeMs).toISOString() : '?';
  const detail = isObject(record['detail']) ? record['detail'] : {};
  const kind = text(record['kind']) ?? '?';
  const parts = [
    time,
    `#${String(record['seq'])}`,
    kind.padEnd(8),
    (text(record['verdict']) ?? '-').padEnd(5),
    `${text(record['agentId']) ?? '-'} -> ${text(record['deviceId']) ?? '-'}`,
    text(record['action']) ?? text(detail['event']) ?? '-',
  ];
  const reasons = Array.isArray(record['reasons']) ? record['reasons'].map((r: unknown) => (isObject(r) ? text(r['code']) : undefined) ?? '?') : [];
  if (reasons.length > 0) parts.push(`reasons=${reasons.join(',')}`);
  const approvalId = text(detail['approvalId']);
  if (approvalId !== undefined) parts.push(`approval=${approvalId}`);
  const operatorId = text(detail['operatorId']);
  // On a decision that answers a hold, the operator is the one who approved or rejected it.
  if (operatorId !== undefined) parts.push(`${kind === 'decision' && approvalId !== undefined ? 'approver' : 'operator'}=${operatorId}`);
  if (typeof record['parentSeq'] === 'number') parts.push(`parent=#${record['parentSeq']}`);
  const commandId = text(record['commandId']);
  if (commandId !== undefined) parts.push(`command=${commandId}`);
  return parts.join('  ').trimEnd();
}

// SAFETY: ids, actions and detail come from agents; a control character or escape sequence in them must not
// reach the operator's terminal as anything but visible text.
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
