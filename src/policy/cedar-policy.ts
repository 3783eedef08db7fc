// Agent permissions with Cedar: compile (parse, strict validation against the schema, preparse) at load time;
// authorize at request time. Any Cedar failure, diagnostic error or exception is a deny, never a pass.

import { createRequire } from 'node:module';
import type * as CedarApi from '@cedar-policy/cedar-wasm/nodejs';
import type { DeclarationProblem } from '../core/problems.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';

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
  readonly agent: { readonly id: string; readonly autonomyScope: number; readonly owner: string };
  readonly device: { readonly id: string; readonly kind: string; readonly cellId: string };
  readonly action: string;
}

export interface CompiledPolicies {
  /** Stable policy ids (from each policy's @id annotation), in file order. */
  readonly policyIds: readonly string[];
  /** Which file each policy came from. */
  readonly fileOf: ReadonlyMap<string, string>;
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
  return {
    ok: true,
    policies: { policyIds, fileOf, authorize: (request) => authorize(setId, schemaName, request) },
  };
}

function entityUid(type: string, id: string): { type: string; id: string } {
  return { type: `${CEDAR_NAMESPACE}::${type}`, id };
}

function authorize(setId: string, schemaName: string, request: PolicyRequest): StageResult {
  const fail = (message: string, ruleId?: string): StageResult =>
    denyWith(reason('POLICY_ERROR', message, ruleId === undefined ? {} : { ruleId }));
  // SAFETY: Cedar Longs are integers; a float in an attribute is a Cedar failure, caught here first for a clear reason.
  if (!Number.isSafeInteger(request.agent.autonomyScope)) return fail('autonomyScope is not an integer');
  let answer: CedarApi.AuthorizationAnswer;
  try {
    answer = cedar.statefulIsAuthorized({
      principal: entityUid('Agent', request.agent.id),
      action: entityUid('Action', request.action),
      resource: entityUid('Device', request.device.id),
      context: {},
      preparsedPolicySetId: setId,
      preparsedSchemaName: schemaName,
      validateRequest: true,
      entities: [
        {
          uid: entityUid('Agent', request.agent.id),
          attrs: { autonomyScope: request.agent.autonomyScope, owner: request.agent.owner },
          parents: [],
        },
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
  if (decision === 'allow') return PASS;
  if (diagnostics.reason.length > 0) {
    const ids = diagnostics.reason.join(',');
    return denyWith(reason('POLICY_FORBIDDEN', `forbidden by policy ${ids}`, { ruleId: ids }));
  }
  return denyWith(reason('POLICY_NO_PERMIT', `no policy permits ${request.agent.id} to ${request.action} on ${request.device.id}`));
}
