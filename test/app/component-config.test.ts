// The component configuration: strict validation with a path and reason per problem, defaults that are never looser
// than the declarations, and live updates that are applied whole or refused whole.

import t from 'tap';
import {
  CONFIGURATION_KEYS,
  LIVE_KEYS,
  formatConfigurationProblems,
  parseComponentConfiguration,
  planSettingsChange,
  type ComponentSettings,
} from '../../src/app/component-config.js';

const BASE = { cellDirectory: '/greengrass/v2/packages/artifacts-unarchived/x/1.0.0/interlock/safety-bounds/demo-cell', stateDirectory: '/greengrass/v2/work/x/state' };

function settings(extra: Record<string, unknown> = {}): ComponentSettings {
  const parsed = parseComponentConfiguration({ ...BASE, ...extra });
  if (!parsed.ok) throw new Error(formatConfigurationProblems(parsed.problems));
  return parsed.settings;
}

t.test('a minimal configuration gets the documented defaults', async (t) => {
  t.same(settings(), {
    ...BASE,
    expectedDigest: undefined,
    topicPrefix: '',
    heartbeatPeriodMs: 250,
    verifierThreads: 1,
    logLevel: 'info',
    metrics: { intervalMs: 300_000, defender: true, topic: 'interlock/{thing}/metrics' },
    auditForwarding: { enabled: true, recordsPerSecond: 1_000 },
  });
  t.same(settings({ auditForwarding: { enabled: false } }).auditForwarding, { enabled: false, recordsPerSecond: 1_000 }, 'forwarding off, the rate default kept');
  t.same(settings({ auditForwarding: { recordsPerSecond: 50 } }).auditForwarding, { enabled: true, recordsPerSecond: 50 });
  t.equal(settings({ expectedDigest: '' }).expectedDigest, undefined, 'an empty digest means none');
  t.equal(settings({ expectedDigest: 'a'.repeat(64) }).expectedDigest, 'a'.repeat(64));
  t.ok(settings({ accessControl: { 'aws.greengrass.ipc.pubsub': {} } }), "Greengrass's accessControl is allowed beside ours");
});

t.test("the empty defaults resolve against the places the lifecycle script passes, as the nucleus's default settings need", async (t) => {
  const places = { workPath: '/greengrass/v2/work/com.example.PhysicalAiInterlock', artifactPath: '/greengrass/v2/packages/artifacts-unarchived/com.example.PhysicalAiInterlock/0.2.0/interlock-amd64' };
  const parsed = parseComponentConfiguration({ cellDirectory: '', stateDirectory: '' }, places);
  t.match(parsed, { ok: true, settings: { cellDirectory: `${places.artifactPath}/safety-bounds/demo-cell`, stateDirectory: `${places.workPath}/state` } });
  const given = parseComponentConfiguration(BASE, places);
  t.match(given, { ok: true, settings: BASE }, 'an absolute path given wins over the default');
  const relative = parseComponentConfiguration({ cellDirectory: '', stateDirectory: '' }, { workPath: 'work', artifactPath: places.artifactPath });
  t.equal(relative.ok, false, 'a relative --work-path is refused, not resolved against whatever the working directory is');
});

t.test('every bad value is refused with the key and the reason', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown key (a typo)', { heartbeatPeriod: 100 }, /\/heartbeatPeriod: unknown configuration key/],
    ['a missing cell folder', { cellDirectory: undefined }, /\/cellDirectory: required key/],
    ['a relative path', { cellDirectory: 'safety-bounds/demo-cell' }, /\/cellDirectory: must be an absolute path/],
    ['a recipe variable the nucleus left (interpolation off)', { stateDirectory: '{work:path}/state' }, /\/stateDirectory: contains a recipe variable the nucleus did not replace.*interpolateComponentConfiguration/],
    ["another component's variable", { cellDirectory: '{com.example.Cell:artifacts:decompressedPath}/cell' }, /\/cellDirectory: contains a recipe variable/],
    ['an empty state folder, no work path given', { stateDirectory: '' }, /\/stateDirectory: is empty \(the default\), but the component was not started with an absolute --work-path/],
    ['an empty cell folder, no artifact path given', { cellDirectory: '' }, /\/cellDirectory: is empty \(the default\), but the component was not started with an absolute --artifact-path/],
    ['a digest of the wrong shape', { expectedDigest: 'ABC' }, /\/expectedDigest/],
    ['a numeric-string period', { heartbeatPeriodMs: '250' }, /\/heartbeatPeriodMs/],
    ['a fractional period', { heartbeatPeriodMs: 250.5 }, /\/heartbeatPeriodMs/],
    ['a period too short', { heartbeatPeriodMs: 10 }, /\/heartbeatPeriodMs/],
    ['too many threads', { verifierThreads: 64 }, /\/verifierThreads/],
    ['a silent log', { logLevel: 'silent' }, /\/logLevel/],
    ['a wildcard in the prefix', { topicPrefix: 'site/#/' }, /\/topicPrefix/],
    ['a metrics interval under 300 s (refused, not raised)', { metrics: { intervalSeconds: 299 } }, /\/metrics\/intervalSeconds: must be >= 300/],
    ['a metrics interval as a string', { metrics: { intervalSeconds: '300' } }, /\/metrics\/intervalSeconds: must be integer/],
    ['an unknown metrics field', { metrics: { interval: 300 } }, /\/metrics: must NOT have additional properties|\/metrics\/interval: unknown configuration key/],
    ['a forwarding rate of 0', { auditForwarding: { recordsPerSecond: 0 } }, /\/auditForwarding\/recordsPerSecond: must be >= 1/],
    ['forwarding enabled as a string', { auditForwarding: { enabled: 'yes' } }, /\/auditForwarding\/enabled: must be boolean/],
    ['an unknown forwarding field', { auditForwarding: { rate: 5 } }, /\/auditForwarding/],
    ['a wildcard in the metrics topic', { metrics: { topic: 'interlock/+/metrics' } }, /\/metrics: metrics topic "interlock\/\+\/metrics": wildcards are not allowed/],
  ];
  for (const [what, extra, expected] of cases) {
    const config: Record<string, unknown> = { ...BASE, ...extra };
    for (const key of Object.keys(config)) if (config[key] === undefined) delete config[key];
    const parsed = parseComponentConfiguration(config);
    t.equal(parsed.ok, false, `refused: ${what}`);
    if (!parsed.ok) t.match(formatConfigurationProblems(parsed.problems), expected, what);
  }
  for (const value of [null, [], 'cellDirectory=/x', 42]) t.equal(parseComponentConfiguration(value).ok, false, `refused: ${JSON.stringify(value)}`);
});

t.test('a live update may change the declarations and the log level; anything else needs a restart', async (t) => {
  const current = settings();
  const live = planSettingsChange(current, settings({ cellDirectory: '/opt/cells/v2', expectedDigest: 'b'.repeat(64), logLevel: 'warn' }));
  t.match(live, { ok: true, changedKeys: ['cellDirectory', 'expectedDigest', 'logLevel'] });
  t.match(planSettingsChange(current, settings()), { ok: true, changedKeys: [] }, 'no change is a valid, empty change');
  const restart = planSettingsChange(current, settings({ topicPrefix: 'site-a/', verifierThreads: 0, logLevel: 'warn' }));
  t.equal(restart.ok, false, 'refused whole, the live part too');
  if (!restart.ok) {
    t.same(restart.problems.map((p) => p.path), ['/topicPrefix', '/verifierThreads']);
    t.match(formatConfigurationProblems(restart.problems), /restart the component/);
  }
});

t.test('metrics: Device Defender and the plain topic each on or off; both off is no metrics; a change needs a restart', async (t) => {
  t.same(settings({ metrics: { intervalSeconds: 900, defender: false, topic: 'fleet/{thing}/m' } }).metrics, { intervalMs: 900_000, defender: false, topic: 'fleet/{thing}/m' });
  t.same(settings({ metrics: { topic: '' } }).metrics, { intervalMs: 300_000, defender: true, topic: undefined }, 'an empty topic is none');
  t.equal(settings({ metrics: { defender: false, topic: '' } }).metrics, undefined, 'both off: no metrics');
  const change = planSettingsChange(settings(), settings({ metrics: { intervalSeconds: 600 } }));
  t.match(change, { ok: false, problems: [{ path: '/metrics', message: /restart the component/ }] });
  t.match(planSettingsChange(settings({ metrics: { intervalSeconds: 300 } }), settings()), { ok: true, changedKeys: [] }, 'equal metrics objects are no change');
});

t.test('every key is documented, and the live keys are among them', async (t) => {
  for (const key of LIVE_KEYS) t.ok(key in CONFIGURATION_KEYS, key);
  t.same(Object.keys(settings()).sort(), Object.keys(CONFIGURATION_KEYS).filter((k) => k !== 'accessControl').sort());
});
