// Reads the held commands the interlock publishes (one retained message per pending approval) and renders them
// for an operator. It only reads: it never answers an approval and never trusts a message it could not check.

import type { PendingApprovalView } from '../approvals/approval-book.js';
import type { Reason } from '../core/reasons.js';
import type { TopicSet } from '../transport/topics.js';
import type { Transport } from '../transport/transport.js';

export interface CollectOptions {
  /** Stop once no retained message arrived for this long after subscribing. */
  readonly quietMs: number;
  /** Stop after this long whatever still arrives. */
  readonly maxMs: number;
}

export const DEFAULT_COLLECT: CollectOptions = { quietMs: 300, maxMs: 2000 };

export interface PendingListing {
  /** Oldest hold first, newest last. */
  readonly approvals: readonly PendingApprovalView[];
  /** One line per message that is not a pending approval (topic, field, why); those are left out. */
  readonly problems: readonly string[];
}

/**
 * Collects the retained pending approvals under `topics`: subscribes, waits until the broker has been quiet for
 * `quietMs` (at most `maxMs`), unsubscribes. An empty retained message is a cleared approval and is skipped.
 */
export async function collectPendingApprovals(transport: Transport, topics: TopicSet, options: CollectOptions = DEFAULT_COLLECT): Promise<PendingListing> {
  const payloads = new Map<string, Buffer>();
  let lastArrivalMs = Date.now();
  const subscription = await transport.subscribe(topics.approvalPendingFilter, (topic, payload) => {
    lastArrivalMs = Date.now();
    if (payload.length === 0) payloads.delete(topic);
    else payloads.set(topic, payload);
  });
  const startedMs = Date.now();
  lastArrivalMs = Math.max(lastArrivalMs, startedMs);
  try {
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const nowMs = Date.now();
        if (nowMs - lastArrivalMs >= options.quietMs || nowMs - startedMs >= options.maxMs) resolve();
        else setTimeout(tick, Math.min(options.quietMs - (nowMs - lastArrivalMs), options.maxMs - (nowMs - startedMs)));
      };
      setTimeout(tick, options.quietMs);
    });
  } finally {
    await subscription.unsubscribe();
  }
  const approvals: PendingApprovalView[] = [];
  const problems: string[] = [];
  for (const [topic, payload] of payloads) {
    const parsed = parsePendingApproval(topic, payload, topics);
    if (parsed.ok) approvals.push(parsed.view);
    else problems.push(parsed.problem);
  }
  approvals.sort((a, b) => a.heldAtMs - b.heldAtMs || a.id.localeCompare(b.id));
  return { approvals, problems };
}

export type PendingParseResult = { readonly ok: true; readonly view: PendingApprovalView } | { readonly ok: false; readonly problem: string };

const DIGEST = /^[0-9a-f]{64}$/;

/** Checks one retained message against the PendingApprovalView shape; a problem names the topic, field and why. */
export function parsePendingApproval(topic: string, payload: Buffer, topics: TopicSet): PendingParseResult {
  const fail = (field: string, why: string): PendingParseResult => ({ ok: false, problem: `${topic}: ${field}: ${why}` });
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch (error) {
    return fail('/', `not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isRecord(value)) return fail('/', 'must be a JSON object');
  for (const field of ['id', 'commandDigest', 'commandId', 'agentId', 'deviceId', 'action'] as const) {
    if (typeof value[field] !== 'string' || value[field] === '') return fail(`/${field}`, `must be a non-empty string, got ${show(value[field])}`);
  }
  const id = value['id'] as string;
  if (topics.approvalPending(id) !== topic) return fail('/id', `${show(id)} does not match the topic's approval id`);
  if (!DIGEST.test(value['commandDigest'] as string)) return fail('/commandDigest', 'must be a sha256 hex digest');
  if (!isRecord(value['params'])) return fail('/params', `must be an object, got ${show(value['params'])}`);
  const reasons = value['reasons'];
  if (!Array.isArray(reasons)) return fail('/reasons', `must be an array, got ${show(reasons)}`);
  for (const [index, r] of reasons.entries()) {
    if (!isRecord(r) || typeof r['code'] !== 'string') return fail(`/reasons/${index}/code`, 'must be a string');
    if (r['ruleId'] !== undefined && typeof r['ruleId'] !== 'string') return fail(`/reasons/${index}/ruleId`, 'must be a string when present');
  }
  if (value['snapshot'] !== null && !isRecord(value['snapshot'])) return fail('/snapshot', `must be an object or null, got ${show(value['snapshot'])}`);
  for (const field of ['heldAtMs', 'expiresAtMs'] as const) {
    if (typeof value[field] !== 'number' || !Number.isFinite(value[field])) return fail(`/${field}`, `must be a finite number, got ${show(value[field])}`);
  }
  if (value['auditSeq'] !== null && !Number.isSafeInteger(value['auditSeq'])) return fail('/auditSeq', `must be an integer or null, got ${show(value['auditSeq'])}`);
  return { ok: true, view: value as unknown as PendingApprovalView };
}

/** `set_speed speedMPerS=0.1`: the action and its params, shortened to about `max` characters. */
export function describeAction(view: Pick<PendingApprovalView, 'action' | 'params'>, max = 48): string {
  const params = Object.entries(view.params).map(([key, v]) => `${key}=${JSON.stringify(v) ?? String(v)}`);
  return shorten([view.action, ...params].join(' '), max);
}

/** `POLICY_APPROVAL_REQUIRED (scope-2, conveyor-speed-scope-2-approved)`: each code once, with its rule ids. */
export function describeHoldReasons(reasons: readonly Pick<Reason, 'code' | 'ruleId'>[]): string {
  const rulesByCode = new Map<string, string[]>();
  for (const r of reasons) {
    const rules = rulesByCode.get(r.code) ?? [];
    if (r.ruleId !== undefined && !rules.includes(r.ruleId)) rules.push(r.ruleId);
    rulesByCode.set(r.code, rules);
  }
  if (rulesByCode.size === 0) return '-';
  return [...rulesByCode].map(([code, rules]) => (rules.length === 0 ? code : `${code} (${rules.join(', ')})`)).join('; ');
}

/** 45s, 2m05s, 1h10m. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The readable table `interlock approvals` prints: a header line and one line per approval. */
export function formatPendingTable(approvals: readonly PendingApprovalView[], nowMs: number): string[] {
  const header = ['ID', 'AGENT', 'DEVICE', 'ACTION', 'WHY HELD', 'HELD', 'EXPIRES IN'];
  const rows = approvals.map((a) => [
    a.id,
    a.agentId,
    a.deviceId,
    describeAction(a),
    describeHoldReasons(a.reasons),
    `${formatDuration(nowMs - a.heldAtMs)} ago`,
    a.expiresAtMs > nowMs ? formatDuration(a.expiresAtMs - nowMs) : 'expired',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  return shorten(JSON.stringify(value) ?? String(value), 40);
}
