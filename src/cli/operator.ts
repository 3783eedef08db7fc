// The operator's side of the CLI: list held commands, and approve, reject, restore, quarantine or switch modes with
// a message signed by the operator's own key. Everything it can check locally (role, key, ids) is checked before
// anything is sent. It never prints key material. Exit 0 only when the interlock accepted the message (and, for an
// approval, released the command).

import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PendingApprovalView } from '../approvals/approval-book.js';
import type { AgentKey, Declarations, OperatorDeclaration } from '../core/declarations.js';
import { formatProblem } from '../core/problems.js';
import { loadCell } from '../declarations/load.js';
import { privateKeyPathFor } from '../keys/key-files.js';
import { ROLE_FOR, signOperatorMessage, type OperatorAction, type OperatorParams } from '../operator/operator-message.js';
import { OBSERVER } from '../transport/broker-acl.js';
import { BROKER_CLIENTS_FILE, brokerLogin } from '../transport/broker-clients.js';
import { MqttTransport } from '../transport/mqtt-transport.js';
import type { TlsMaterial } from '../transport/tls-files.js';
import { DEVICE_ID_PATTERN, topicSet, type TopicSet } from '../transport/topics.js';
import type { Transport } from '../transport/transport.js';
import type { CliIo } from './cli-io.js';
import { collectPendingApprovals, describeAction, DEFAULT_COLLECT, formatPendingTable, type CollectOptions } from './pending-approvals.js';

export const OPERATOR_COMMANDS = ['approvals', 'approve', 'reject', 'restore', 'quarantine', 'mode'] as const;
export type OperatorCommand = (typeof OPERATOR_COMMANDS)[number];

export const DEFAULT_OPERATOR_BROKER = 'mqtt://127.0.0.1:1883';
/** Operator answers are valid this long at most (less when the cell's approvals.maxAnswerTtl is shorter). */
export const OPERATOR_MESSAGE_TTL_MS = 30_000;

export function isOperatorCommand(command: string | undefined): command is OperatorCommand {
  return (OPERATOR_COMMANDS as readonly (string | undefined)[]).includes(command);
}

export interface OperatorCliOptions {
  readonly cellDirectory: string;
  readonly stateDirectory: string;
  readonly brokerUrl: string;
  /** CA bundle, client certificate and key for an mqtts:// broker (checked by loadTlsFiles before this runs). */
  readonly tls?: TlsMaterial;
  readonly prefix: string;
  readonly json: boolean;
  readonly operatorId?: string;
  readonly keyFile?: string;
  readonly note?: string;
  readonly reason?: string;
  /** Bounds the broker connection (TCP and CONNACK). Default 3000. */
  readonly connectTimeoutMs?: number;
  /** How long to wait for the interlock's answer. Default 5000. */
  readonly answerTimeoutMs?: number;
  readonly collect?: CollectOptions;
}

/** The interlock's answer on `interlock/operator/result`, as far as the CLI relies on it. */
export interface OperatorResult {
  readonly ok: boolean;
  readonly problem?: string;
  readonly jti?: string;
  readonly verdict?: string;
  readonly released?: boolean;
  readonly [key: string]: unknown;
}

const ID_RULE = 'ids are 1-64 of A-Z a-z 0-9 _ . - and start with a letter or digit';
const MAX_TEXT = 500;
// seq must grow per operator: the time in ms, bumped when two messages are signed within one millisecond.
let lastSeq = 0;

/** Runs one operator command; returns the exit code (0 ok, 1 refused or failed, 2 usage). */
export async function runOperatorCommand(command: OperatorCommand, positionals: readonly string[], options: OperatorCliOptions, io: CliIo): Promise<number> {
  const brokerProblem = brokerUrlProblem(options.brokerUrl);
  if (brokerProblem !== undefined) return io.usageError(`--broker: ${brokerProblem}`);
  if (command === 'approvals') {
    if (positionals.length > 0) return io.usageError(`approvals takes no arguments, got ${positionals.join(' ')}`);
    return listApprovals(options, io);
  }
  const request = requestFor(command, positionals, options);
  if (!request.ok) return io.usageError(request.problem);
  return sendOperatorMessage(request.draft, options, io);
}

// ---------------------------------------------------------------------------------------------------------------
// interlock approvals

async function listApprovals(options: OperatorCliOptions, io: CliIo): Promise<number> {
  const topics = topicSet(options.prefix);
  const connected = await connect(options, options.operatorId ?? OBSERVER);
  if (!connected.ok) {
    io.err(`interlock: ${connected.problem}`);
    return 1;
  }
  try {
    const listing = await collectPendingApprovals(connected.transport, topics, options.collect ?? DEFAULT_COLLECT);
    for (const problem of listing.problems) io.err(`interlock: ignored a malformed pending approval: ${problem}`);
    if (options.json) {
      for (const approval of listing.approvals) io.out(JSON.stringify(approval));
    } else if (listing.approvals.length === 0) {
      io.out(`no pending approvals on ${options.brokerUrl}${options.prefix === '' ? '' : ` (prefix ${options.prefix})`}`);
    } else {
      for (const line of formatPendingTable(listing.approvals, Date.now())) io.out(line);
      const count = listing.approvals.length;
      io.out(`${count} pending approval${count === 1 ? '' : 's'}; answer with: interlock approve <id> [--note text] | interlock reject <id> [--note text]`);
    }
    return 0;
  } finally {
    await connected.transport.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// interlock approve | reject | restore | quarantine | mode

/** What the operator asked for, before the approval (for approve/reject) has been looked up. */
type Draft =
  | { readonly action: 'approve' | 'reject'; readonly approvalId: string; readonly note?: string }
  | { readonly action: 'restore_agent'; readonly agent: string; readonly note?: string }
  | { readonly action: 'quarantine_agent'; readonly agent: string; readonly reason: string }
  | { readonly action: 'set_mode'; readonly device: string; readonly mode: 'reduced' | 'auto' };

type DraftResult = { readonly ok: true; readonly draft: Draft } | { readonly ok: false; readonly problem: string };

function requestFor(command: Exclude<OperatorCommand, 'approvals'>, positionals: readonly string[], options: OperatorCliOptions): DraftResult {
  const fail = (problem: string): DraftResult => ({ ok: false, problem });
  const arity = command === 'mode' ? 2 : 1;
  const shape = { approve: '<approval-id>', reject: '<approval-id>', restore: '<agent>', quarantine: '<agent>', mode: '<device> reduced|auto' }[command];
  if (positionals.length !== arity) return fail(`${command} takes ${shape}, got ${positionals.length === 0 ? 'nothing' : positionals.join(' ')}`);
  const subject = positionals[0] ?? '';
  if (!DEVICE_ID_PATTERN.test(subject)) return fail(`${command}: ${JSON.stringify(subject)} is not a valid id (${ID_RULE})`);
  const takesNote = command === 'approve' || command === 'reject' || command === 'restore';
  if (options.note !== undefined && !takesNote) return fail(`${command} takes no --note${command === 'quarantine' ? ' (give the reason with --reason)' : ''}`);
  if (options.note !== undefined && options.note.length > MAX_TEXT) return fail(`--note is ${options.note.length} characters, at most ${MAX_TEXT}`);
  if (options.reason !== undefined && command !== 'quarantine') return fail(`${command} takes no --reason`);
  const note = options.note === undefined ? {} : { note: options.note };
  switch (command) {
    case 'approve':
    case 'reject':
      return { ok: true, draft: { action: command, approvalId: subject, ...note } };
    case 'restore':
      return { ok: true, draft: { action: 'restore_agent', agent: subject, ...note } };
    case 'quarantine': {
      const reason = options.reason?.trim() ?? '';
      if (reason === '') return fail('quarantine needs --reason <text>: why the agent is quarantined (recorded in the audit log)');
      if (reason.length > MAX_TEXT) return fail(`--reason is ${reason.length} characters, at most ${MAX_TEXT}`);
      return { ok: true, draft: { action: 'quarantine_agent', agent: subject, reason } };
    }
    case 'mode': {
      const mode = positionals[1];
      if (mode !== 'reduced' && mode !== 'auto') return fail(`mode: the mode must be reduced or auto, not ${JSON.stringify(mode ?? '')}`);
      return { ok: true, draft: { action: 'set_mode', device: subject, mode } };
    }
  }
}

async function sendOperatorMessage(draft: Draft, options: OperatorCliOptions, io: CliIo): Promise<number> {
  const fail = (problem: string): number => {
    io.err(`interlock: ${problem}`);
    return 1;
  };
  const loaded = loadCell(options.cellDirectory);
  if (!loaded.ok) {
    for (const problem of loaded.problems) io.err(`interlock: ${options.cellDirectory}: ${formatProblem(problem)}`);
    return fail(`cannot sign as an operator: the cell ${options.cellDirectory} does not load (${loaded.problems.length} problem(s) above)`);
  }
  const declarations = loaded.cell.declarations;
  const agentsFile = join(options.cellDirectory, 'agents.yaml');
  const chosen = chooseOperator(declarations, draft.action, options.operatorId, agentsFile);
  if (!chosen.ok) return chosen.usage ? io.usageError(chosen.problem) : fail(chosen.problem);
  const operator = chosen.operator;
  const subjectProblem = checkSubject(draft, declarations, options.cellDirectory);
  if (subjectProblem !== undefined) return fail(subjectProblem);
  const key = loadOperatorKey(declarations, operator, options, agentsFile, Date.now());
  if (!key.ok) return fail(key.problem);

  const topics = topicSet(options.prefix);
  const connected = await connect(options, operator.id);
  if (!connected.ok) return fail(connected.problem);
  const { transport } = connected;
  try {
    let request: OperatorParams;
    let pending: PendingApprovalView | undefined;
    if ('approvalId' in draft) {
      const listing = await collectPendingApprovals(transport, topics, options.collect ?? DEFAULT_COLLECT);
      pending = listing.approvals.find((a) => a.id === draft.approvalId);
      if (pending === undefined) {
        const others = listing.approvals.map((a) => a.id);
        const now = others.length === 0 ? 'nothing is pending' : `pending now: ${others.join(', ')}`;
        return fail(`no pending approval ${draft.approvalId} on ${options.brokerUrl} (answered, expired, or never held; ${now})`);
      }
      request = { ...draft, commandDigest: pending.commandDigest };
    } else {
      request = draft;
    }

    const nowMs = Date.now();
    lastSeq = Math.max(lastSeq + 1, Math.floor(nowMs));
    const jti = `cli-${operator.id}-${nowMs.toString(36)}-${randomBytes(6).toString('hex')}`;
    const ttlMs = Math.min(OPERATOR_MESSAGE_TTL_MS, declarations.approvals.maxAnswerTtlMs);
    const token = signOperatorMessage({ operatorId: operator.id, kid: key.kid, privateKey: key.privateKey, cellId: declarations.cellId, request, nowMs, ttlMs, seq: lastSeq, jti });
    const answer = await awaitAnswer(transport, topics, { jti, messageDigest: createHash('sha256').update(token, 'utf8').digest('hex'), approvalId: pending?.id }, options.answerTimeoutMs ?? 5000);
    try {
      await transport.publish(topics.operator, token, { qos: 1 });
    } catch (error) {
      await answer.cancel();
      return fail(`could not publish the ${request.action} to ${topics.operator}: ${messageOf(error)}`);
    }
    const outcome = await answer.result;
    if (outcome.kind === 'timeout') {
      return fail(
        `no answer from the interlock on ${topics.operatorResult} within ${(options.answerTimeoutMs ?? 5000) / 1000} s; the message stays valid for ${ttlMs / 1000} s and may still be acted on (is the interlock running${options.prefix === '' ? '' : ` with --prefix ${options.prefix}`}?)`,
      );
    }
    if (options.json) io.out(JSON.stringify(outcome.result));
    return report(request, operator, pending, outcome, options.json ? () => undefined : io.out, fail);
  } finally {
    await transport.stop();
  }
}

/** Prints what the interlock did with the message; returns the exit code. */
function report(request: OperatorParams, operator: OperatorDeclaration, pending: PendingApprovalView | undefined, outcome: AnswerOutcome, out: (line: string) => void, fail: (problem: string) => number): number {
  const { result } = outcome;
  if (!result.ok) {
    const unsure = outcome.kind === 'unattributed' ? ' (the refusal carried no message id; it was the only answer that arrived)' : '';
    return fail(`the interlock refused the ${request.action} from ${operator.id}: ${result.problem ?? 'no reason given'}${unsure}`);
  }
  const by = `operator ${operator.id}`;
  switch (request.action) {
    case 'approve': {
      const what = pending === undefined ? request.approvalId : `${pending.agentId} -> ${pending.deviceId} ${describeAction(pending, 80)}`;
      if (result.verdict === 'allow' && result.released === true) {
        out(`approved ${request.approvalId} (${by}): ${what} released to the actuator`);
        return 0;
      }
      // The answer was taken, but the command did not move: the state drifted, it no longer passes, or the release failed.
      out(`approval of ${request.approvalId} accepted (${by}), but NOTHING was released: ${result.problem ?? (result.verdict === 'allow' ? 'the release to the actuator failed' : 'the command was denied')}`);
      for (const line of reasonLines(outcome.resolved)) out(line);
      return 1;
    }
    case 'reject':
      out(`rejected ${request.approvalId} (${by}): ${pending === undefined ? 'the command' : `${pending.agentId} -> ${pending.deviceId} ${describeAction(pending, 80)}`} is denied and will not run`);
      return 0;
    case 'restore_agent':
      out(`restored agent ${request.agent} (${by}): its commands are judged normally again`);
      return 0;
    case 'quarantine_agent':
      out(`quarantined agent ${request.agent} (${by}): every actuation it sends is denied until an operator restores it; stops still pass`);
      return 0;
    case 'set_mode':
      out(
        request.mode === 'reduced'
          ? `${request.device}: reduced limits forced (${by}) until 'interlock mode ${request.device} auto'`
          : `${request.device}: operator override cleared (${by}); the mode is selected automatically again`,
      );
      return 0;
  }
}

function reasonLines(resolved: Record<string, unknown> | undefined): string[] {
  const reasons = resolved?.['reasons'];
  if (!Array.isArray(reasons)) return [];
  return reasons.flatMap((r: unknown) => {
    if (typeof r !== 'object' || r === null) return [];
    const { code, ruleId, message } = r as Record<string, unknown>;
    if (typeof code !== 'string' || code === 'APPROVAL_GRANTED') return [];
    return [`  x ${code}${typeof ruleId === 'string' ? ` [${ruleId}]` : ''}${typeof message === 'string' ? `: ${message}` : ''}`];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Operator and key

type OperatorChoice = { readonly ok: true; readonly operator: OperatorDeclaration } | { readonly ok: false; readonly problem: string; readonly usage: boolean };

function chooseOperator(declarations: Declarations, action: OperatorAction, wanted: string | undefined, agentsFile: string): OperatorChoice {
  const role = ROLE_FOR[action];
  const operators = [...declarations.operators.values()];
  if (wanted !== undefined) {
    const operator = declarations.operators.get(wanted);
    if (operator === undefined) {
      const known = operators.map((o) => o.id).join(', ') || 'none';
      return { ok: false, usage: false, problem: `--operator: no operator ${JSON.stringify(wanted)} in ${agentsFile} (operators: ${known})` };
    }
    // SAFETY: said before anything is signed or sent; the interlock checks the role again in any case.
    if (!operator.roles.includes(role)) {
      return { ok: false, usage: false, problem: `operator ${operator.id} lacks the ${role} role needed to ${action} (roles in ${agentsFile}: ${operator.roles.join(', ') || 'none'})` };
    }
    return { ok: true, operator };
  }
  const able = operators.filter((o) => o.roles.includes(role));
  const [only] = able;
  if (only === undefined) return { ok: false, usage: false, problem: `no operator in ${agentsFile} has the ${role} role needed to ${action}` };
  if (able.length > 1) return { ok: false, usage: true, problem: `several operators have the ${role} role (${able.map((o) => o.id).join(', ')}): choose one with --operator <id>` };
  return { ok: true, operator: only };
}

/** The agent or device the message names must be declared in the cell the operator signs for. */
function checkSubject(draft: Draft, declarations: Declarations, cellDirectory: string): string | undefined {
  if ((draft.action === 'restore_agent' || draft.action === 'quarantine_agent') && !declarations.agents.has(draft.agent)) {
    return `no agent ${draft.agent} in ${join(cellDirectory, 'agents.yaml')} (agents: ${[...declarations.agents.keys()].join(', ') || 'none'})`;
  }
  if (draft.action === 'set_mode' && !declarations.devices.has(draft.device)) {
    return `no device ${draft.device} in ${join(cellDirectory, 'devices')} (devices: ${[...declarations.devices.keys()].join(', ') || 'none'})`;
  }
  return undefined;
}

type KeyChoice = { readonly ok: true; readonly kid: string; readonly privateKey: KeyObject } | { readonly ok: false; readonly problem: string };

/**
 * The operator's private key: `--key`, or `<state-dir>/agent-keys/<kid>.key.pem` for the operator's first usable
 * key. It must be an Ed25519 private key whose public half is one of the operator's keys in agents.yaml.
 */
function loadOperatorKey(declarations: Declarations, operator: OperatorDeclaration, options: OperatorCliOptions, agentsFile: string, nowMs: number): KeyChoice {
  const fail = (problem: string): KeyChoice => ({ ok: false, problem });
  const registered = [...declarations.keys.values()].filter((k) => k.owner === 'operator' && k.agentId === operator.id);
  const usable = (k: AgentKey): boolean => k.revoked === undefined && nowMs >= k.notBeforeMs && nowMs < k.notAfterMs;
  let expected: AgentKey | undefined;
  let path = options.keyFile;
  if (path === undefined) {
    expected = registered.find(usable);
    if (expected === undefined) return fail(`operator ${operator.id} has no usable key in ${agentsFile} (${registered.length === 0 ? 'none declared' : 'every key is revoked or outside its validity window'})`);
    path = privateKeyPathFor(join(options.stateDirectory, 'agent-keys'), expected.kid);
  }
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return fail(`key file ${path} not found${expected === undefined ? '' : ` (the private key of ${expected.kid}; give another with --key <file>)`}`);
    }
    return fail(`key file ${path} cannot be read (${code ?? messageOf(error)})`);
  }
  if (!pem.includes('PRIVATE KEY')) {
    return fail(pem.includes('PUBLIC KEY') ? `key file ${path} holds a public key; signing needs the operator's private key (PKCS#8 PEM)` : `key file ${path} is not a PEM private key`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    // The parser's message is not repeated: nothing from inside a key file is ever printed.
    return fail(`key file ${path} is not a readable PEM private key (encrypted keys are not supported)`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') return fail(`key file ${path} holds a key of type ${privateKey.asymmetricKeyType ?? 'unknown'}; operator keys are Ed25519`);
  const publicDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const match = registered.find((k) => k.publicKey.export({ format: 'der', type: 'spki' }).equals(publicDer));
  if (match === undefined) {
    return fail(
      expected === undefined
        ? `key file ${path} is not a key of operator ${operator.id} (its keys in ${agentsFile}: ${registered.map((k) => k.kid).join(', ') || 'none'})`
        : `key file ${path} is not the private half of ${expected.kid} as registered in ${agentsFile}`,
    );
  }
  if (match.revoked !== undefined) return fail(`key ${match.kid} (${path}) is revoked in ${agentsFile}: ${match.revoked}`);
  if (!usable(match)) return fail(`key ${match.kid} (${path}) is outside its validity window in ${agentsFile}`);
  return { ok: true, kid: match.kid, privateKey };
}

// ---------------------------------------------------------------------------------------------------------------
// Broker

type Connection = { readonly ok: true; readonly transport: Transport } | { readonly ok: false; readonly problem: string };

async function connect(options: OperatorCliOptions, identity: string): Promise<Connection> {
  // The embedded broker's password for `identity`, when the state folder has one (a plain mqtt:// url on this host);
  // with a client certificate, the certificate is the identity.
  const clientsPath = join(options.stateDirectory, BROKER_CLIENTS_FILE);
  let login: { username?: string; password?: string; clientId: string } = { clientId: `interlock-cli-${identity}-${randomBytes(4).toString('hex')}`.slice(0, 64) };
  if (options.tls?.cert === undefined && existsSync(clientsPath)) {
    try {
      login = brokerLogin(clientsPath, identity, `cli-${randomBytes(4).toString('hex')}`);
    } catch (error) {
      return { ok: false, problem: `cannot log in to the broker as ${identity}: ${messageOf(error)}` };
    }
  }
  const transport = new MqttTransport({
    url: options.brokerUrl,
    ...options.tls,
    ...login,
    connectTimeoutMs: options.connectTimeoutMs ?? 3000,
    // The failure reaches the operator once, as the one-line error below; reconnect chatter would repeat it.
    log: () => undefined,
  });
  try {
    await transport.start();
    return { ok: true, transport };
  } catch (error) {
    await transport.stop();
    return { ok: false, problem: `cannot reach the broker: ${messageOf(error)} (is the interlock running? --broker sets the url)` };
  }
}

function brokerUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not a URL (expected mqtt://host:port)`;
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(parsed.protocol)) return `${parsed.protocol} is not an MQTT scheme (expected mqtt://host:port or mqtts://host:port)`;
  return undefined;
}

type AnswerOutcome =
  | { readonly kind: 'answer' | 'unattributed'; readonly result: OperatorResult; readonly resolved?: Record<string, unknown> };

interface PendingAnswer {
  readonly result: Promise<AnswerOutcome | { readonly kind: 'timeout' }>;
  cancel(): Promise<void>;
}

/**
 * Subscribes for the interlock's answer to one message (before it is sent). The answer is matched by jti (or the
 * message digest). A refusal before verification carries no jti: it is taken as ours only if nothing with our jti
 * follows within half a second. For an approval, the resolved outcome (with the final reasons) is kept too.
 */
async function awaitAnswer(
  transport: Transport,
  topics: TopicSet,
  match: { readonly jti: string; readonly messageDigest: string; readonly approvalId: string | undefined },
  timeoutMs: number,
): Promise<PendingAnswer> {
  let settle: (outcome: AnswerOutcome | { kind: 'timeout' }) => void = () => undefined;
  const result = new Promise<AnswerOutcome | { kind: 'timeout' }>((resolve) => {
    settle = resolve;
  });
  let resolved: Record<string, unknown> | undefined;
  let unattributed: OperatorResult | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  let done = false;
  const finish = (outcome: AnswerOutcome | { kind: 'timeout' }): void => {
    if (done) return;
    done = true;
    clearTimeout(timeout);
    clearTimeout(graceTimer);
    settle(outcome);
  };
  const timeout = setTimeout(() => finish(unattributed === undefined ? { kind: 'timeout' } : { kind: 'unattributed', result: unattributed }), timeoutMs);
  const subscriptions = [
    await transport.subscribe(topics.operatorResult, (_topic, payload) => {
      const answer = parseJsonObject(payload);
      if (answer === undefined || typeof answer['ok'] !== 'boolean') return;
      const result = answer as OperatorResult;
      if (result.jti === match.jti || result['messageDigest'] === match.messageDigest) {
        // An approval's outcome is published just before the answer; give it a moment if it is not here yet.
        if (match.approvalId === undefined || resolved !== undefined || result.verdict === undefined) finish({ kind: 'answer', result, ...(resolved === undefined ? {} : { resolved }) });
        else setTimeout(() => finish({ kind: 'answer', result, ...(resolved === undefined ? {} : { resolved }) }), 300);
      } else if (result.jti === undefined && !result.ok && unattributed === undefined) {
        unattributed = result;
        graceTimer = setTimeout(() => finish({ kind: 'unattributed', result }), 500);
      }
    }),
  ];
  if (match.approvalId !== undefined) {
    subscriptions.push(
      await transport.subscribe(topics.approvalResolved(match.approvalId), (_topic, payload) => {
        resolved = parseJsonObject(payload) ?? resolved;
      }),
    );
  }
  const cancel = async (): Promise<void> => {
    finish({ kind: 'timeout' });
    for (const s of subscriptions) await s.unsubscribe();
  };
  return {
    result: result.then(async (outcome) => {
      for (const s of subscriptions) await s.unsubscribe();
      return outcome.kind === 'answer' && resolved !== undefined ? { ...outcome, resolved } : outcome;
    }),
    cancel,
  };
}

function parseJsonObject(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
