// `interlock provision` against an IoT account in memory (aws-sdk-client-mock; no emulator implements Device
// Defender): a fresh account gets every metric, the profile and the attachment, in that order and with the exact
// request fields; a second run writes nothing; drift is updated with expectedVersion and foreign behaviours kept; a
// metric of the wrong type, a missing thing group or a dry run write nothing; races, throttling and access denied
// end as the docs say.

import t, { type Test } from 'tap';
import {
  InvalidRequestException,
  ThrottlingException,
  UnauthorizedException,
  type Behavior,
  type CreateCustomMetricCommandInput,
  type CreateSecurityProfileCommandInput,
  type UpdateSecurityProfileCommandInput,
} from '@aws-sdk/client-iot';
import { runProvisionCommand, type ProvisionCliOptions } from '../../../src/cli/provision.js';
import { METRICS } from '../../../src/cloud/metric-catalog.js';
import { desiredBehaviors, DEFAULT_THRESHOLDS, PROFILE_DESCRIPTION } from '../../../src/cloud/provision/desired.js';
import { WRITE_ACTIONS, type RetryOptions } from '../../../src/cloud/provision/iot-call.js';
import { DEMO_CELL } from '../../helpers/test-cell.js';
import { FakeIotAccount, REGION } from './fake-iot-account.js';

const GROUP = 'cell-7-interlocks';
const PROFILE = 'interlock-demo-cell';
const METRIC_NAMES = Object.keys(METRICS);
const WATCHED = new Set(['interlock_commands_denied', 'interlock_quarantined_agents', 'interlock_audit_backlog', 'interlock_audit_space_used_percent']);

interface Run {
  code: number;
  out: string[];
  err: string[];
  delays: number[];
}

async function run(options: Partial<ProvisionCliOptions> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const delays: number[] = [];
  const retry: RetryOptions = { attempts: 4, baseDelayMs: 100, maxDelayMs: 1_000, sleep: async (ms) => void delays.push(ms) };
  const code = await runProvisionCommand(
    [],
    { cellDirectory: DEMO_CELL, region: REGION, thingGroup: GROUP, retry, ...options },
    { out: (line) => out.push(line), err: (line) => err.push(line), usageError: (message) => (err.push(message), 2) },
  );
  return { code, out, err, delays };
}

function account(t: Test): FakeIotAccount {
  const a = new FakeIotAccount();
  t.teardown(() => a.restore());
  return a;
}

function writes(a: FakeIotAccount): string[] {
  return a.actions().filter((action) => (WRITE_ACTIONS as readonly string[]).includes(action));
}

/** An account as a first run leaves it. */
async function provisioned(t: Test): Promise<{ a: FakeIotAccount; arn: string }> {
  const a = account(t);
  const arn = a.addGroup(GROUP);
  const first = await run();
  t.equal(first.code, 0, `first run: ${first.err.join(' | ')}`);
  a.mock.resetHistory();
  return { a, arn };
}

t.test('a fresh account: every catalog metric, then the profile, then the attachment, with the exact request fields', async (t) => {
  const a = account(t);
  const arn = a.addGroup(GROUP);
  const r = await run();
  t.equal(r.code, 0, r.err.join(' | '));
  t.same(r.err, []);

  const actions = a.actions();
  const firstWrite = actions.findIndex((action) => (WRITE_ACTIONS as readonly string[]).includes(action));
  t.same(actions.slice(0, firstWrite), [...METRIC_NAMES.map(() => 'DescribeCustomMetric'), 'DescribeSecurityProfile', 'DescribeThingGroup'], 'the plan reads everything before the first write');
  t.same(actions.slice(firstWrite), [...METRIC_NAMES.map(() => 'CreateCustomMetric'), 'CreateSecurityProfile', 'AttachSecurityProfile'], 'metrics, then the profile that names them, then the attachment');

  const creates = a.mock.calls().filter((c) => c.args[0].constructor.name === 'CreateCustomMetricCommand').map((c) => c.args[0].input as CreateCustomMetricCommandInput);
  t.same(creates.map((c) => [c.metricName, c.metricType]), METRIC_NAMES.map((name) => [name, METRICS[name]?.type]), 'each metric with its catalog type, in catalog order');
  for (const c of creates) {
    t.match(c.clientRequestToken, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `${c.metricName ?? ''}: a fresh clientRequestToken`);
    t.equal(c.displayName, METRICS[c.metricName ?? '']?.summary, `${c.metricName ?? ''}: the catalog summary as display name`);
  }
  t.equal(new Set(creates.map((c) => c.clientRequestToken)).size, creates.length, 'one token per metric');

  const profile = a.mock.calls().find((c) => c.args[0].constructor.name === 'CreateSecurityProfileCommand')?.args[0].input as CreateSecurityProfileCommandInput;
  t.same(profile, {
    securityProfileName: PROFILE,
    securityProfileDescription: PROFILE_DESCRIPTION,
    behaviors: [
      {
        name: 'interlock-commands-denied',
        metric: 'interlock_commands_denied',
        criteria: { comparisonOperator: 'less-than-equals', value: { number: 20 }, durationSeconds: 300, consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1 },
        suppressAlerts: false,
      },
      {
        name: 'interlock-quarantined-agents',
        metric: 'interlock_quarantined_agents',
        criteria: { comparisonOperator: 'in-set', value: { strings: [] }, consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1 },
        suppressAlerts: false,
      },
      {
        name: 'interlock-audit-backlog',
        metric: 'interlock_audit_backlog',
        criteria: { comparisonOperator: 'less-than-equals', value: { number: 10_000 }, consecutiveDatapointsToAlarm: 2, consecutiveDatapointsToClear: 1 },
        suppressAlerts: false,
      },
      {
        name: 'interlock-audit-space',
        metric: 'interlock_audit_space_used_percent',
        criteria: { comparisonOperator: 'less-than-equals', value: { number: 80 }, consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1 },
        suppressAlerts: false,
      },
    ],
    additionalMetricsToRetainV2: METRIC_NAMES.filter((name) => !WATCHED.has(name)).map((metric) => ({ metric })),
  }, 'the security profile, field by field (default name interlock-<cell id>, default thresholds)');

  const attach = a.mock.calls().find((c) => c.args[0].constructor.name === 'AttachSecurityProfileCommand')?.args[0].input;
  t.same(attach, { securityProfileName: PROFILE, securityProfileTargetArn: arn }, 'attached to the thing group by its ARN');
  t.same(a.metrics.get('interlock_quarantined_agents')?.metricType, 'string-list');
  t.equal(r.out.at(-1), `done: ${METRIC_NAMES.length + 2} created, 0 updated, 0 unchanged`);
  t.match(r.out[0], `region ${REGION}, security profile ${PROFILE}, thing group ${GROUP}`);
});

t.test('a second run reads and writes nothing', async (t) => {
  const { a } = await provisioned(t);
  const r = await run();
  t.equal(r.code, 0, r.err.join(' | '));
  t.same(writes(a), [], 'no write call');
  t.ok(a.actions().includes('ListTargetsForSecurityProfile'), 'the attachment was checked');
  t.equal(r.out.at(-1), `done: 0 created, 0 updated, ${METRIC_NAMES.length + 2} unchanged`);
});

t.test('a drifted profile is updated with expectedVersion; a behaviour someone else added is kept', async (t) => {
  const { a } = await provisioned(t);
  const stored = a.profiles.get(PROFILE);
  if (stored === undefined) return t.fail('the first run created no profile');
  const foreign: Behavior = { name: 'ops-battery', metric: 'batteryPercentage', criteria: { comparisonOperator: 'greater-than', value: { number: 15 } } };
  stored.behaviors = stored.behaviors.map((b) => (b.name === 'interlock-audit-space' ? { ...b, criteria: { ...b.criteria, value: { number: 95 } } } : b));
  stored.behaviors.push(foreign);
  stored.metricsToRetain = stored.metricsToRetain.filter((m) => m.metric !== 'interlock_replay_attempts');
  stored.version = 7;
  const r = await run({ maxDenied: '50' });
  t.equal(r.code, 0, r.err.join(' | '));
  t.same(writes(a), ['UpdateSecurityProfile'], 'only the profile is written');
  const update = a.mock.calls().find((c) => c.args[0].constructor.name === 'UpdateSecurityProfileCommand')?.args[0].input as UpdateSecurityProfileCommandInput;
  t.equal(update.expectedVersion, 7, 'expectedVersion is the version read');
  const wanted = desiredBehaviors({ ...DEFAULT_THRESHOLDS, maxDeniedPer5Min: 50 });
  t.same(update.behaviors, [...wanted, foreign], 'ours as wanted (denied threshold 50, space back to 80), the foreign one untouched');
  t.ok(update.additionalMetricsToRetainV2?.some((m) => m.metric === 'interlock_replay_attempts'), 'the dropped retained metric is back');
  const text = r.out.join('\n');
  t.match(text, 'behaviour interlock-audit-space: criteria.value {"number":95} -> {"number":80}');
  t.match(text, 'behaviour interlock-commands-denied: criteria.value {"number":20} -> {"number":50}');
  t.match(text, 'retain 1 more metric(s): interlock_replay_attempts');
  t.notMatch(text, 'ops-battery', 'the foreign behaviour is no difference');
  t.equal(a.profiles.get(PROFILE)?.version, 8);
});

t.test('a metric of the wrong type fails clearly, and nothing is written or deleted', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  a.metrics.set('interlock_quarantined_agents', { metricType: 'number', displayName: 'someone else' });
  const r = await run();
  t.equal(r.code, 1);
  t.same(writes(a), [], 'no write call at all: not the other metrics either');
  t.ok(a.actions().every((action) => !action.startsWith('Delete')), 'nothing deleted');
  t.equal(a.metrics.get('interlock_quarantined_agents')?.metricType, 'number', 'the metric is still there');
  const err = r.err.join('\n');
  t.match(err, 'custom metric interlock_quarantined_agents exists with type number, but the interlock reports it as string-list');
  t.match(err, 'cannot be changed in place');
  t.match(err, 'nothing written: 1 problem(s)');
});

t.test('already-exists races: a metric and the profile created meanwhile are read again and the run continues', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  // Between the plan's reads and the creates, someone else creates one metric (same type) and the profile (drifted).
  a.failNext('CreateCustomMetric', () => a.metrics.set('interlock_commands_allowed', { metricType: 'number', displayName: 'theirs' }));
  a.failNext('CreateSecurityProfile', () => a.profiles.set(PROFILE, { description: 'theirs', behaviors: [], metricsToRetain: [], version: 3 }));
  const r = await run();
  t.equal(r.code, 0, r.err.join(' | '));
  t.equal(a.metrics.get('interlock_commands_allowed')?.displayName, METRICS.interlock_commands_allowed?.summary, 'its display name updated');
  const update = a.mock.calls().find((c) => c.args[0].constructor.name === 'UpdateSecurityProfileCommand')?.args[0].input as UpdateSecurityProfileCommandInput;
  t.equal(update.expectedVersion, 3, 'the profile found was updated with its version');
  t.same(a.profiles.get(PROFILE)?.behaviors, desiredBehaviors(DEFAULT_THRESHOLDS));
  t.match(r.out.join('\n'), 'custom metric interlock_commands_allowed (created meanwhile by someone else)');
  t.match(r.out.join('\n'), 'security profile interlock-demo-cell (created meanwhile by someone else)');
});

t.test('a race that created a metric of another type stops the run with the same clear message', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  a.failNext('CreateCustomMetric', () => a.metrics.set('interlock_commands_allowed', { metricType: 'number-list' }));
  const r = await run();
  t.equal(r.code, 1);
  t.match(r.err.join('\n'), 'custom metric interlock_commands_allowed exists with type number-list');
  t.notOk(a.actions().includes('CreateSecurityProfile'), 'it stopped there');
});

t.test('a profile changed between read and update (VersionConflict) is read again and merged', async (t) => {
  const { a } = await provisioned(t);
  const stored = a.profiles.get(PROFILE);
  if (stored === undefined) return t.fail('no profile');
  stored.description = 'drifted';
  a.failNext('UpdateSecurityProfile', () => {
    stored.version++;
  });
  const r = await run();
  t.equal(r.code, 0, r.err.join(' | '));
  const updates = a.mock.calls().filter((c) => c.args[0].constructor.name === 'UpdateSecurityProfileCommand').map((c) => (c.args[0].input as UpdateSecurityProfileCommandInput).expectedVersion);
  t.same(updates, [1, 2], 'the second update carries the version read again');
  t.equal(a.profiles.get(PROFILE)?.description, PROFILE_DESCRIPTION);
});

t.test('throttling, then success: retried with growing backoff', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  const throttle = (): never => {
    throw new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
  };
  a.failNext('DescribeThingGroup', throttle, throttle);
  const r = await run();
  t.equal(r.code, 0, r.err.join(' | '));
  t.equal(a.actions().filter((x) => x === 'DescribeThingGroup').length, 3, 'two throttled calls and one that worked');
  t.equal(r.delays.length, 2);
  t.ok(r.delays[0] !== undefined && r.delays[0] >= 50 && r.delays[0] <= 100, `first backoff in [50, 100] ms: ${String(r.delays[0])}`);
  t.ok(r.delays[1] !== undefined && r.delays[1] >= 100 && r.delays[1] <= 200, `second backoff in [100, 200] ms: ${String(r.delays[1])}`);
});

t.test('throttling that does not stop: bounded attempts, then a clear message and exit 1', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  const throttle = (): never => {
    throw new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
  };
  a.failNext('CreateSecurityProfile', throttle, throttle, throttle, throttle, throttle);
  const r = await run();
  t.equal(r.code, 1);
  t.equal(a.actions().filter((x) => x === 'CreateSecurityProfile').length, 4, 'exactly the 4 attempts configured');
  t.match(r.err[0], 'iot:CreateSecurityProfile was still throttled (ThrottlingException) after 4 attempts');
  t.notOk(a.actions().includes('AttachSecurityProfile'), 'nothing after the failed step');
  t.match(r.err.join('\n'), `stopped after ${METRIC_NAMES.length} step(s); running it again continues from there`);
});

t.test('access denied names the IoT action and the IAM permission, in one line', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  a.failNext('AttachSecurityProfile', () => {
    throw new UnauthorizedException({ message: 'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iot:AttachSecurityProfile', $metadata: { httpStatusCode: 401 } });
  });
  const r = await run();
  t.equal(r.code, 1);
  const line = r.err[0] ?? '';
  t.match(line, /^interlock provision: access denied to iot:AttachSecurityProfile \(UnauthorizedException\): the credentials in use need the IAM permission iot:AttachSecurityProfile/);
  t.notMatch(line, '\n');
});

t.test('an access-denied read (an AccessDeniedException from IAM) fails before anything is written', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  a.failNext('DescribeSecurityProfile', () => {
    throw Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } });
  });
  const r = await run();
  t.equal(r.code, 1);
  t.match(r.err[0], 'IAM permission iot:DescribeSecurityProfile');
  t.same(writes(a), []);
});

t.test('an invalid request says which field the service refused', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  a.failNext('CreateSecurityProfile', () => {
    throw new InvalidRequestException({ message: 'behaviors[1].criteria.value.strings: must have at least 1 element', $metadata: { httpStatusCode: 400 } });
  });
  const r = await run();
  t.equal(r.code, 1);
  t.match(r.err[0], 'iot:CreateSecurityProfile refused the request as invalid (InvalidRequestException): behaviors[1].criteria.value.strings: must have at least 1 element');
});

t.test('a missing thing group is a clear error naming it; nothing is written', async (t) => {
  const a = account(t);
  const r = await run({ thingGroup: 'no-such-group' });
  t.equal(r.code, 1);
  t.same(writes(a), []);
  t.match(r.err.join('\n'), 'thing group no-such-group does not exist in this account and region');
});

t.test('--dry-run prints the plan and makes only read calls', async (t) => {
  const a = account(t);
  a.addGroup(GROUP);
  const r = await run({ dryRun: true });
  t.equal(r.code, 0, r.err.join(' | '));
  t.same(writes(a), [], 'no write call');
  t.equal(a.metrics.size, 0);
  t.match(r.out[0], '(dry run: read calls only)');
  t.ok(r.out.includes('create     custom metric interlock_quarantined_agents (string-list)'), r.out.join('\n'));
  t.ok(r.out.includes('create     security profile interlock-demo-cell'));
  t.ok(r.out.includes(`create     attachment of interlock-demo-cell to thing group ${GROUP}`));
  t.equal(r.out.at(-1), `dry run: ${METRIC_NAMES.length + 2} to create, 0 to update, 0 unchanged; nothing written`);

  t.test('on a drifted account it shows what differs, and still writes nothing', async (t) => {
    const { a } = await provisioned(t);
    const metric = a.metrics.get('interlock_audit_backlog');
    if (metric === undefined) return t.fail('no metric');
    metric.displayName = 'old';
    const r = await run({ dryRun: true, maxAuditBacklog: '500', json: true });
    t.equal(r.code, 0, r.err.join(' | '));
    t.same(writes(a), []);
    const report = JSON.parse(r.out[0] ?? '') as { dryRun: boolean; plan: { kind: string; name: string; action: string; differences: string[] }[]; applied: unknown[] };
    t.equal(report.dryRun, true);
    t.same(report.applied, []);
    const changed = report.plan.filter((s) => s.action !== 'unchanged');
    t.same(changed.map((s) => [s.kind, s.name, s.action]), [['metric', 'interlock_audit_backlog', 'update'], ['profile', PROFILE, 'update']]);
    t.match(changed[1]?.differences, ['behaviour interlock-audit-backlog: criteria.value {"number":10000} -> {"number":500}']);
  });
});
