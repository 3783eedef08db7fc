// Agent permissions with Cedar: compile (parse, strict validation against the schema, preparse) at load time;
// authorize at request time. Any Cedar failure, diagnostic error or exception is a deny, never a pass.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import type * as CedarApi from '@cedar-policy/cedar-wasm/nodejs';
import { canonicalJson } from '../core/canonical-json.js';
import type { Principal } from '../core/declarations.js';
import type { DeclarationProblem } from '../core/problems.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';

// SAFETY: on Node 20.20.2, V8 aborted the whole process ("Fatal error ... unreachable code") in a lazy deopt of
// authorize() whose optimised code had inlined the JS-to-Wasm call into cedar-wasm (reproduced 3/3 in the bench;
// the flag below avoided it every time). A crashed interlock fails safe (drivers stop on the heartbeat), but it
// must not crash: turn that inlining off before the Wasm module is loaded. It costs nothing measurable here. V8 only
// prints "unrecognized flag" for a flag it no longer has and carries on: the policy test checks this runtime has it.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
// Memory and start-up: V8 otherwise compiles Cedar's 4.3 MB of Wasm a second time with TurboFan, which took about
// 30 MiB of resident memory and 0.4 s of start-up; Liftoff (V8's baseline Wasm compiler) alone evaluated a fresh
// Cedar request about as fast (section 4a of the bench: within 1.15x at p50, better at p99), and most requests are
// answered from the memo anyway. Only Cedar runs Wasm in this process.
setFlagsFromString('--liftoff-only');

// The nodejs build is CommonJS with a synchronous wasm instantiation; load it once.
const cedar = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as typeof CedarApi;

export const CEDAR_NAMESPACE = 'Interlock';

export interface PolicySource {
  readonly schemaFile: string;
  readonly schemaText: string;
  readonly files: readonly { readonly file: string; readonly text: string }[];
}

/** The facts Cedar sees for one request. Numbers are integers in engineering units (Cedar has no floats). */
export interface PolicyRequest {
  readonly principal: Principal;
  readonly device: { readonly id: string; readonly kind: string; readonly cellId: string };
  readonly action: string;
  readonly context: PolicyContext;
}

/**
 * Cedar's `context` for every request. Only discrete facts, so that answers can be memoised: the physics is
 * checked in the bounds stage. Times are UTC.
 */
export interface PolicyContext {
  /** The limit set the bounds stage will check in: "normal" or "reduced". */
  readonly mode: string;
  /** People positions are known (a fresh report from every people source). */
  readonly peopleKnown: boolean;
  /** At least one person is reported in the cell (true when people are unknown: not knowing is not "nobody"). */
  readonly peoplePresent: boolean;
  /** An operator approved exactly this command (only ever true on the re-check after an approval). */
  readonly approved: boolean;
  /** Minutes since midnight UTC, 0-1439. */
  readonly minuteOfDay: number;
  /** 0 = Sunday .. 6 = Saturday, UTC. */
  readonly dayOfWeek: number;
}

export interface CompiledPolicies {
  /** Stable policy ids (from each policy's @id annotation), in file order. */
  readonly policyIds: readonly string[];
  /** Which file each policy came from. */
  readonly fileOf: ReadonlyMap<string, string>;
  /** Permits annotated @approval("why"): policy id -> why. A command they decide is held for a human. */
  readonly approvalPolicies: ReadonlyMap<string, string>;
  /** sha256 of the policy texts and schema: answers are memoised per version. */
  readonly version: string;
  authorize(request: PolicyRequest): StageResult;
}

function cedarMessages(errors: readonly { message: string; help?: string | null }[]): string {
  return errors.map((e) => (e.help ? `${e.message} (${e.help})` : e.message)).join('; ');
}

let compileCounter = 0;

/**
 * Parses every policy file, requires a unique @id on each policy, validates them strictly against the schema
 * and preparses them. Returns every problem found, each naming the file and the policy id.
 */
export function compilePolicies(source: PolicySource): { ok: true; policies: CompiledPolicies } | { ok: false; problems: DeclarationProblem[] } {
  const problems: DeclarationProblem[] = [];
  const schemaCheck = cedar.checkParseSchema(source.schemaText);
  if (schemaCheck.type === 'failure') {
    problems.push({ file: source.schemaFile, path: '', message: `Cedar schema does not parse: ${cedarMessages(schemaCheck.errors)}` });
  }
  const staticPolicies: Record<string, string> = {};
  const fileOf = new Map<string, string>();
  const approvalPolicies = new Map<string, string>();
  for (const { file, text } of source.files) {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') {
      problems.push({ file, path: '', message: `Cedar policies do not parse: ${cedarMessages(parts.errors)}` });
      continue;
    }
    if (parts.policy_templates.length > 0) {
      problems.push({ file, path: '', message: 'policy templates are not supported; write static policies' });
    }
    parts.policies.forEach((policyText, index) => {
      const json = cedar.policyToJson(policyText);
      const id = json.type === 'success' ? json.json.annotations?.['id'] : undefined;
      if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) {
        problems.push({ file, path: `policy #${index + 1}`, message: 'every policy needs a stable @id("...") annotation (letters, digits, _ . -)' });
        return;
      }
      if (fileOf.has(id)) {
        problems.push({ file, path: id, message: `policy id "${id}" is already used in ${fileOf.get(id) ?? '?'}` });
        return;
      }
      fileOf.set(id, file);
      staticPolicies[id] = policyText;
      const approval = json.type === 'success' ? json.json.annotations?.['approval'] : undefined;
      if (approval !== undefined) {
        if (json.type === 'success' && json.json.effect !== 'permit') {
          problems.push({ file, path: id, message: '@approval marks a permit that needs a human; on a forbid it means nothing' });
        } else if (typeof approval !== 'string' || approval.trim() === '') {
          problems.push({ file, path: id, message: '@approval needs a reason a human can read: @approval("why a person must confirm this")' });
        } else approvalPolicies.set(id, approval);
      }
    });
  }
  if (problems.length > 0) return { ok: false, problems };
  if (fileOf.size === 0) {
    return { ok: false, problems: [{ file: source.schemaFile, path: '', message: 'no Cedar policies found: with none, every command would be denied' }] };
  }

  const validation = cedar.validate({ schema: source.schemaText, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
  if (validation.type === 'failure') {
    return { ok: false, problems: [{ file: source.schemaFile, path: '', message: `Cedar validation failed: ${cedarMessages(validation.errors)}` }] };
  }
  for (const { policyId, error } of validation.validationErrors) {
    problems.push({ file: fileOf.get(policyId) ?? source.schemaFile, path: policyId, message: `Cedar strict validation: ${cedarMessages([error])}` });
  }
  // Warnings (e.g. a policy that can never apply) are problems too: an operator who wrote it meant something.
  for (const { policyId, error } of validation.validationWarnings) {
    problems.push({ file: fileOf.get(policyId) ?? source.schemaFile, path: policyId, message: `Cedar validation warning: ${cedarMessages([error])}` });
  }
  if (problems.length > 0) return { ok: false, problems };

  compileCounter += 1;
  const setId = `policies-${compileCounter}`;
  const schemaName = `schema-${compileCounter}`;
  const preparsed = cedar.preparsePolicySet(setId, { staticPolicies });
  const preparsedSchema = cedar.preparseSchema(schemaName, source.schemaText);
  if (preparsed.type === 'failure' || preparsedSchema.type === 'failure') {
    const errors = [...(preparsed.type === 'failure' ? preparsed.errors : []), ...(preparsedSchema.type === 'failure' ? preparsedSchema.errors : [])];
    return { ok: false, problems: [{ file: source.schemaFile, path: '', message: `Cedar preparse failed: ${cedarMessages(errors)}` }] };
  }
  const policyIds = [...fileOf.keys()];
  const version = createHash('sha256').update(canonicalJson({ schema: source.schemaText, staticPolicies })).digest('hex');
  const memo = new Map<string, StageResult>();
  const authorizeMemoised = (request: PolicyRequest): StageResult => {
    // The answer depends only on the request and the policy set, so equal requests share one evaluation.
    let key: string;
    try {
      key = canonicalJson(request);
    } catch {
      // Not canonical (NaN, Infinity): not memoised; authorize refuses it with a clear reason.
      return authorize(setId, schemaName, approvalPolicies, request);
    }
    const known = memo.get(key);
    if (known !== undefined) return known;
    const result = authorize(setId, schemaName, approvalPolicies, request);
    // Bounded: a stream of distinct requests (minute of day, many devices) must not grow memory without end.
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(key, result);
    return result;
  };
  const probe = probeRequests(source, authorizeMemoised);
  if (probe.length > 0) return { ok: false, problems: probe };
  return { ok: true, policies: { policyIds, fileOf, approvalPolicies, version, authorize: authorizeMemoised } };
}

function entityUid(type: string, id: string): { type: string; id: string } {
  return { type: `${CEDAR_NAMESPACE}::${type}`, id };
}

/** Memoised answers kept at most; cleared when full (the working set is small: agents x devices x actions x modes). */
const MEMO_LIMIT = 10_000;

/**
 * After compiling, one request per action the schema applies to Agent: if Cedar cannot even evaluate it (the
 * schema's context or entity attributes are not what the interlock sends), every command would be denied at
 * run time, so it is a load problem now.
 */
function probeRequests(source: PolicySource, authorizeFn: (request: PolicyRequest) => StageResult): DeclarationProblem[] {
  const request: PolicyRequest = {
    principal: { kind: 'agent', id: 'load-probe', owner: 'load-probe', autonomyScope: 4 },
    device: { id: 'load-probe', kind: 'robot_arm', cellId: 'load-probe' },
    action: 'stop',
    context: { mode: 'normal', peopleKnown: true, peoplePresent: false, approved: false, minuteOfDay: 0, dayOfWeek: 0 },
  };
  const operator: PolicyRequest = { ...request, principal: { kind: 'operator', id: 'load-probe', owner: 'load-probe', roles: ['approve'] } };
  const problems: DeclarationProblem[] = [];
  for (const [who, probe] of [['an agent', request], ['an operator', operator]] as const) {
    const failure = authorizeFn(probe).reasons.find((r) => r.code === 'POLICY_ERROR' && r.ruleId === undefined);
    if (failure === undefined) continue;
    problems.push({
      file: source.schemaFile,
      path: '',
      message: `a request from ${who} as the interlock sends it does not fit this schema (${failure.message}); see docs/declarations.md for the entities and context every action must declare`,
    });
  }
  return problems;
}

function principalEntity(principal: Principal): CedarApi.EntityJson {
  return principal.kind === 'agent'
    ? { uid: entityUid('Agent', principal.id), attrs: { autonomyScope: principal.autonomyScope, owner: principal.owner }, parents: [] }
    : { uid: entityUid('Operator', principal.id), attrs: { name: principal.owner, roles: [...principal.roles] }, parents: [] };
}

function authorize(setId: string, schemaName: string, approvalPolicies: ReadonlyMap<string, string>, request: PolicyRequest): StageResult {
  const fail = (message: string, ruleId?: string): StageResult =>
    denyWith(reason('POLICY_ERROR', message, ruleId === undefined ? {} : { ruleId }));
  const { principal, context } = request;
  // SAFETY: Cedar Longs are integers; a float in an attribute is a Cedar failure, caught here first for a clear reason.
  if (principal.kind === 'agent' && !Number.isSafeInteger(principal.autonomyScope)) return fail('autonomyScope is not an integer');
  if (!Number.isSafeInteger(context.minuteOfDay) || !Number.isSafeInteger(context.dayOfWeek)) return fail('the time context is not an integer');
  const principalEntityJson = principalEntity(principal);
  let answer: CedarApi.AuthorizationAnswer;
  try {
    answer = cedar.statefulIsAuthorized({
      principal: principalEntityJson.uid,
      action: entityUid('Action', request.action),
      resource: entityUid('Device', request.device.id),
      context: { ...context },
      preparsedPolicySetId: setId,
      preparsedSchemaName: schemaName,
      validateRequest: true,
      entities: [
        principalEntityJson,
        { uid: entityUid('Device', request.device.id), attrs: { kind: request.device.kind }, parents: [entityUid('Cell', request.device.cellId)] },
        { uid: entityUid('Cell', request.device.cellId), attrs: {}, parents: [] },
      ],
    });
  } catch (error) {
    return fail(`Cedar threw: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (answer.type === 'failure') return fail(`Cedar could not evaluate the request: ${cedarMessages(answer.errors)}`);
  const { decision, diagnostics } = answer.response;
  // SAFETY: an erroring forbid is skipped by Cedar and can turn into allow; any error at all is a deny.
  if (diagnostics.errors.length > 0) {
    const reasons: Reason[] = diagnostics.errors.map((e) =>
      reason('POLICY_ERROR', `policy ${e.policyId} errored: ${cedarMessages([e.error])}`, { ruleId: e.policyId }),
    );
    return denyWith(...reasons);
  }
  if (decision === 'allow') {
    // A permit marked @approval decides this command: a human must confirm it first (unless one already has).
    const needing = diagnostics.reason.filter((id) => approvalPolicies.has(id));
    if (needing.length === 0 || context.approved) return PASS;
    return {
      verdict: 'hold',
      reasons: needing.map((id) => reason('POLICY_APPROVAL_REQUIRED', `policy ${id} requires a human approval: ${approvalPolicies.get(id) ?? ''}`, { ruleId: id })),
    };
  }
  if (diagnostics.reason.length > 0) {
    const ids = diagnostics.reason.join(',');
    return denyWith(reason('POLICY_FORBIDDEN', `forbidden by policy ${ids}`, { ruleId: ids }));
  }
  return denyWith(reason('POLICY_NO_PERMIT', `no policy permits ${principal.kind} ${principal.id} to ${request.action} on ${request.device.id}`));
}
