// Adversarial unit tests for the Cedar policy stage: the demo permit, default deny, forbid over permit, every
// load-time rejection (missing/duplicate @id, strict-validation errors, syntax, empty set) and, above all, that
// a policy which errors at evaluation time denies even when Cedar's own decision would be allow; and that the V8 flag
// cedar-policy.ts sets against a crash in the Cedar call still exists in the runtime the suite runs on.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { DeclarationProblem } from '../../src/core/problems.js';
import { compilePolicies, type CompiledPolicies, type PolicyContext, type PolicyRequest, type PolicySource } from '../../src/policy/cedar-policy.js';
import { DEMO_CELL, REPO_ROOT } from '../helpers/test-cell.js';

const SCHEMA_FILE = 'policies/schema.cedarschema';
const schemaText = readFileSync(join(DEMO_CELL, 'policies', 'schema.cedarschema'), 'utf8');
const armPolicies = readFileSync(join(DEMO_CELL, 'policies', 'arm.cedar'), 'utf8');
const DEMO_FILE = { file: 'policies/arm.cedar', text: armPolicies };

function source(...extra: { file: string; text: string }[]): PolicySource {
  return { schemaFile: SCHEMA_FILE, schemaText, files: [DEMO_FILE, ...extra] };
}

function compiled(...extra: { file: string; text: string }[]): CompiledPolicies {
  const result = compilePolicies(source(...extra));
  if (!result.ok) throw new Error(`policies do not compile: ${JSON.stringify(result.problems)}`);
  return result.policies;
}

function problemsOf(src: PolicySource): DeclarationProblem[] {
  const result = compilePolicies(src);
  return result.ok ? [] : result.problems;
}

/** The context of a plain request: normal mode, nobody in the cell, no approval, Monday 10:00 UTC. */
const CONTEXT: PolicyContext = { mode: 'normal', peopleKnown: true, peoplePresent: false, approved: false, minuteOfDay: 600, dayOfWeek: 1 };

function request(agentId: string, autonomyScope: number, action = 'move_joints', deviceId = 'arm-1', cellId = 'demo-cell', context: Partial<PolicyContext> = {}): PolicyRequest {
  return {
    principal: { kind: 'agent', id: agentId, autonomyScope, owner: 'cell-automation-team' },
    device: { id: deviceId, kind: 'robot_arm', cellId },
    action,
    context: { ...CONTEXT, ...context },
  };
}

const demo = compiled();

t.test('the demo policies compile with stable ids in file order', async (t) => {
  t.same(demo.policyIds, ['arm-motion-scope-3-plus', 'scope-1-never-actuates']);
  t.equal(demo.fileOf.get('arm-motion-scope-3-plus'), 'policies/arm.cedar');
});

t.test('decisions of the demo policies', async (t) => {
  const cases: { name: string; request: PolicyRequest; verdict: 'allow' | 'deny'; code?: string; ruleId?: string }[] = [
    // permit path: scope 4 in the demo cell.
    { name: 'planner-1 (scope 4) may move', request: request('planner-1', 4), verdict: 'allow' },
    { name: 'a scope 3 agent may move', request: request('agent-3', 3), verdict: 'allow' },
    // default deny: no policy permits scope 2.
    { name: 'trainee-1 (scope 2): no permit', request: request('trainee-1', 2), verdict: 'deny', code: 'POLICY_NO_PERMIT' },
    { name: 'observer-1 (scope 1): forbidden', request: request('observer-1', 1), verdict: 'deny', code: 'POLICY_FORBIDDEN', ruleId: 'scope-1-never-actuates' },
    { name: 'scope 0 is forbidden too', request: request('zero', 0), verdict: 'deny', code: 'POLICY_FORBIDDEN', ruleId: 'scope-1-never-actuates' },
    { name: 'negative scope is forbidden', request: request('neg', -5), verdict: 'deny', code: 'POLICY_FORBIDDEN', ruleId: 'scope-1-never-actuates' },
    // The permit is scoped to the demo cell: the same arm id in another cell is not covered.
    { name: 'device in another cell: no permit', request: request('planner-1', 4, 'move_joints', 'arm-1', 'other-cell'), verdict: 'deny', code: 'POLICY_NO_PERMIT' },
    // stop has no permit in the demo set (the pipeline lets safe-state commands bypass policy, not Cedar).
    { name: 'stop: no permit in Cedar', request: request('planner-1', 4, 'stop'), verdict: 'deny', code: 'POLICY_NO_PERMIT' },
    // An action not in the schema fails request validation: an error, never a pass.
    { name: 'action unknown to the schema', request: request('planner-1', 4, 'dance'), verdict: 'deny', code: 'POLICY_ERROR' },
    // Cedar has no floats: a non-integer scope is refused before Cedar sees it.
    { name: 'autonomyScope 3.5', request: request('planner-1', 3.5), verdict: 'deny', code: 'POLICY_ERROR' },
    { name: 'autonomyScope NaN', request: request('planner-1', NaN), verdict: 'deny', code: 'POLICY_ERROR' },
    { name: 'autonomyScope Infinity', request: request('planner-1', Infinity), verdict: 'deny', code: 'POLICY_ERROR' },
    { name: 'autonomyScope 2^53 (not a safe integer)', request: request('planner-1', 2 ** 53), verdict: 'deny', code: 'POLICY_ERROR' },
  ];
  for (const c of cases) {
    const result = demo.authorize(c.request);
    t.equal(result.verdict, c.verdict, `${c.name}: verdict`);
    if (c.code === undefined) {
      t.same(result.reasons, [], `${c.name}: no reasons`);
      continue;
    }
    t.equal(result.reasons.length, 1, `${c.name}: one reason`);
    t.equal(result.reasons[0]?.code, c.code, `${c.name}: code`);
    t.equal(result.reasons[0]?.stage, 'policy', `${c.name}: stage`);
    if (c.ruleId !== undefined) t.equal(result.reasons[0]?.ruleId, c.ruleId, `${c.name}: ruleId`);
  }
});

t.test('forbid wins over a permit that also matches', async (t) => {
  const policies = compiled({ file: 'policies/open.cedar', text: '@id("everyone-may-move")\npermit (principal, action, resource);\n' });
  t.equal(policies.authorize(request('trainee-1', 2)).verdict, 'allow', 'the extra permit alone lets scope 2 move');
  const observer = policies.authorize(request('observer-1', 1));
  t.equal(observer.verdict, 'deny');
  t.same(observer.reasons.map((r) => [r.code, r.ruleId]), [['POLICY_FORBIDDEN', 'scope-1-never-actuates']]);
  // Also for stop: Cedar's answer is a deny (the pipeline, not Cedar, lets stop through).
  t.same(policies.authorize(request('observer-1', 1, 'stop')).reasons.map((r) => r.code), ['POLICY_FORBIDDEN']);
});

t.test('a policy that errors at evaluation time denies, even when another policy permits', async (t) => {
  // Both expressions pass strict validation (Long + Long, Long * Long) and overflow 64 bits at run time.
  const erroringPermit = { file: 'policies/overflow-permit.cedar', text: '@id("overflowing-permit")\npermit (principal is Interlock::Agent, action, resource)\nwhen { principal.autonomyScope + 9223372036854775807 > 0 };\n' };
  const erroringForbid = { file: 'policies/overflow-forbid.cedar', text: '@id("overflowing-forbid")\nforbid (principal is Interlock::Agent, action, resource)\nwhen { principal.autonomyScope * 9223372036854775807 > 0 };\n' };
  const cases: { name: string; policies: CompiledPolicies; request: PolicyRequest; ruleId: string }[] = [
    // The demo permit allows planner-1; the extra permit errors: indeterminate, so deny.
    { name: 'erroring permit next to a matching permit', policies: compiled(erroringPermit), request: request('planner-1', 4), ruleId: 'overflowing-permit' },
    // The dangerous case: Cedar skips an erroring forbid and would answer allow.
    { name: 'erroring forbid next to a matching permit', policies: compiled(erroringForbid), request: request('planner-1', 4), ruleId: 'overflowing-forbid' },
    { name: 'erroring forbid, scope 3', policies: compiled(erroringForbid), request: request('agent-3', 3), ruleId: 'overflowing-forbid' },
    { name: 'erroring permit for an agent otherwise not permitted', policies: compiled(erroringPermit), request: request('trainee-1', 2), ruleId: 'overflowing-permit' },
  ];
  for (const c of cases) {
    const result = c.policies.authorize(c.request);
    t.equal(result.verdict, 'deny', `${c.name}: verdict`);
    t.same(result.reasons.map((r) => [r.stage, r.code, r.ruleId]), [['policy', 'POLICY_ERROR', c.ruleId]], `${c.name}: reason`);
    t.match(result.reasons[0]?.message ?? '', /overflow/, `${c.name}: message says why`);
  }
});

t.test('load-time rejections name the file and the policy', async (t) => {
  const cases: { name: string; src: PolicySource; expected: { file: string; path: string; message: RegExp }[] }[] = [
    {
      name: 'policy without @id',
      src: source({ file: 'policies/anon.cedar', text: 'permit (principal, action, resource);\n' }),
      expected: [{ file: 'policies/anon.cedar', path: 'policy #1', message: /@id/ }],
    },
    {
      name: 'second policy of a file without @id',
      src: source({ file: 'policies/two.cedar', text: '@id("first-ok")\npermit (principal, action, resource);\n@note("no id")\nforbid (principal, action, resource);\n' }),
      expected: [{ file: 'policies/two.cedar', path: 'policy #2', message: /@id/ }],
    },
    {
      name: '@id with a space (not a stable identifier)',
      src: source({ file: 'policies/space.cedar', text: '@id("my policy")\npermit (principal, action, resource);\n' }),
      expected: [{ file: 'policies/space.cedar', path: 'policy #1', message: /@id/ }],
    },
    {
      name: 'duplicate @id across files',
      src: source({ file: 'policies/dup.cedar', text: '@id("scope-1-never-actuates")\npermit (principal, action, resource);\n' }),
      expected: [{ file: 'policies/dup.cedar', path: 'scope-1-never-actuates', message: /already used in policies\/arm\.cedar/ }],
    },
    {
      name: 'unknown attribute (strict validation)',
      src: source({ file: 'policies/attr.cedar', text: '@id("trust-level")\npermit (principal is Interlock::Agent, action, resource)\nwhen { principal.trustLevel > 2 };\n' }),
      expected: [{ file: 'policies/attr.cedar', path: 'trust-level', message: /trustLevel/ }],
    },
    {
      name: 'attribute on the wrong entity type',
      src: source({ file: 'policies/kind.cedar', text: '@id("agent-kind")\npermit (principal is Interlock::Agent, action, resource)\nwhen { principal.kind == "robot_arm" };\n' }),
      expected: [{ file: 'policies/kind.cedar', path: 'agent-kind', message: /kind/ }],
    },
    {
      name: 'type error (String compared with Long)',
      src: source({ file: 'policies/type.cedar', text: '@id("owner-number")\npermit (principal is Interlock::Agent, action, resource)\nwhen { principal.owner > 2 };\n' }),
      expected: [{ file: 'policies/type.cedar', path: 'owner-number', message: /Cedar strict validation/ }],
    },
    {
      name: 'unknown action',
      src: source({ file: 'policies/dance.cedar', text: '@id("may-dance")\npermit (principal, action == Interlock::Action::"dance", resource);\n' }),
      expected: [{ file: 'policies/dance.cedar', path: 'may-dance', message: /unrecognized action/ }],
    },
    {
      name: 'syntax error',
      src: source({ file: 'policies/broken.cedar', text: '@id("broken")\npermit (principal, action, resource) when { principal.autonomyScope >= };\n' }),
      expected: [{ file: 'policies/broken.cedar', path: '', message: /do not parse/ }],
    },
    {
      name: 'template instead of a static policy',
      src: source({ file: 'policies/template.cedar', text: '@id("tpl")\npermit (principal == ?principal, action, resource);\n' }),
      expected: [{ file: 'policies/template.cedar', path: '', message: /templates are not supported/ }],
    },
    {
      name: 'schema that does not parse',
      src: { schemaFile: SCHEMA_FILE, schemaText: 'namespace Interlock { entity Agent = ; }', files: [DEMO_FILE] },
      expected: [{ file: SCHEMA_FILE, path: '', message: /schema does not parse/ }],
    },
    {
      name: 'empty policy set (no files)',
      src: { schemaFile: SCHEMA_FILE, schemaText, files: [] },
      expected: [{ file: SCHEMA_FILE, path: '', message: /no Cedar policies/ }],
    },
    {
      name: 'empty policy set (only comments)',
      src: { schemaFile: SCHEMA_FILE, schemaText, files: [{ file: 'policies/empty.cedar', text: '// nothing here yet\n' }] },
      expected: [{ file: SCHEMA_FILE, path: '', message: /no Cedar policies/ }],
    },
  ];
  for (const c of cases) {
    const problems = problemsOf(c.src);
    t.ok(problems.length > 0, `${c.name}: rejected`);
    for (const e of c.expected) {
      const match = problems.find((p) => p.file === e.file && p.path === e.path && e.message.test(p.message));
      t.ok(match, `${c.name}: problem in ${e.file} at "${e.path}" matching ${String(e.message)}; got ${JSON.stringify(problems)}`);
    }
  }
});

t.test('every load problem is reported, across files', async (t) => {
  const problems = problemsOf(
    source(
      { file: 'policies/a.cedar', text: 'permit (principal, action, resource);\n' },
      { file: 'policies/b.cedar', text: '@id("b") permit (principal, action, resource) when { ;\n' },
      { file: 'policies/c.cedar', text: '@id("arm-motion-scope-3-plus")\nforbid (principal, action, resource);\n' },
    ),
  );
  t.same(
    problems.map((p) => p.file),
    ['policies/a.cedar', 'policies/b.cedar', 'policies/c.cedar'],
  );
  // Two strict-validation errors in different files are both reported, each naming its own file and id.
  const validation = problemsOf(
    source(
      { file: 'policies/x.cedar', text: '@id("x-bad")\npermit (principal is Interlock::Agent, action, resource) when { principal.x == 1 };\n' },
      { file: 'policies/y.cedar', text: '@id("y-bad")\npermit (principal is Interlock::Agent, action, resource) when { principal.y == 1 };\n' },
    ),
  );
  t.same(validation.map((p) => [p.file, p.path]).sort(), [['policies/x.cedar', 'x-bad'], ['policies/y.cedar', 'y-bad']]);
});

t.test('the V8 flags set for Cedar (no JS-to-Wasm inlining: a crash; Liftoff only: memory) are ones this runtime knows', async (t) => {
  // V8 only prints "unrecognized flag" for a flag it no longer has, and the setting would silently be gone.
  const source = readFileSync(join(REPO_ROOT, 'src', 'policy', 'cedar-policy.ts'), 'utf8');
  const flags = [...source.matchAll(/setFlagsFromString\('([^']+)'\)/g)].map((m) => m[1]);
  t.same(flags, ['--no-turbo-inline-js-wasm-calls', '--liftoff-only'], 'src/policy/cedar-policy.ts sets both flags');
  const listed = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
  for (const flag of flags) {
    const child = spawnSync(process.execPath, ['-e', `require('node:v8').setFlagsFromString(${JSON.stringify(flag)})`], { encoding: 'utf8' });
    t.equal(child.status, 0, `node ${process.version} accepts ${flag}`);
    t.equal(child.stderr, '', `node ${process.version} says nothing about ${flag}`);
    t.match(listed, new RegExp(`^ {2}${(flag ?? '').replace(/^--no-/, '--')} `, 'm'), `node ${process.version} lists ${flag}`);
  }
});
