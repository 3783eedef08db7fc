// The Device Defender report format as ajv checks it before anything is published: a well-formed report of every
// catalog metric passes; a bare value, a wrong value type, a missing or wrong header, a name outside the catalog and
// a report_id that does not increase are each refused with the reason.

import t from 'tap';
import { defenderReport, defenderReportProblems, VALUE_KEY } from '../../../src/cloud/metrics/defender-report.js';
import { METRICS } from '../../../src/cloud/metric-catalog.js';

function everyMetric(): Record<string, number | string[]> {
  return Object.fromEntries(Object.entries(METRICS).map(([name, spec]) => [name, spec.type === 'string-list' ? ['agent-1'] : 3]));
}

t.test('a report of every catalog metric, each wrapped in an array of one typed value, passes', async (t) => {
  const report = defenderReport(1_700_000_000, everyMetric());
  t.same(defenderReportProblems(report, undefined), []);
  t.same(defenderReportProblems(report, 1_699_999_999), [], 'above the last report_id');
  t.same(report.custom_metrics['interlock_commands_allowed'], [{ number: 3 }]);
  t.same(report.custom_metrics['interlock_quarantined_agents'], [{ string_list: ['agent-1'] }]);
  t.same(defenderReportProblems(defenderReport(5, { interlock_quarantined_agents: [] }), 4), [], 'an empty string list is a value');
  for (const spec of Object.values(METRICS)) t.ok(VALUE_KEY[spec.type], `the catalog type ${spec.type} has a report key`);
});

t.test('malformed reports are refused, each with its reason', async (t) => {
  const good = defenderReport(100, everyMetric()) as unknown as { header: Record<string, unknown>; custom_metrics: Record<string, unknown> };
  const mutate = (change: (r: typeof good) => void): unknown => {
    const copy = structuredClone(good);
    change(copy);
    return copy;
  };
  const cases: [string, unknown, RegExp][] = [
    ['a bare value, not in an array', mutate((r) => (r.custom_metrics['interlock_commands_allowed'] = { number: 3 })), /interlock_commands_allowed: must be array/],
    ['a bare number', mutate((r) => (r.custom_metrics['interlock_commands_allowed'] = 3)), /interlock_commands_allowed: must be array/],
    ['two values in the array', mutate((r) => (r.custom_metrics['interlock_commands_allowed'] = [{ number: 1 }, { number: 2 }])), /must NOT have more than 1 items/],
    ['an empty array', mutate((r) => (r.custom_metrics['interlock_commands_allowed'] = [])), /must NOT have fewer than 1 items/],
    ['the wrong type for the catalog (string_list for a number)', mutate((r) => (r.custom_metrics['interlock_commands_allowed'] = [{ string_list: ['x'] }])), /interlock_commands_allowed\/0: must have required property 'number'/],
    ['a number for a string-list metric', mutate((r) => (r.custom_metrics['interlock_quarantined_agents'] = [{ number: 1 }])), /interlock_quarantined_agents\/0: must have required property 'string_list'/],
    ['a string where a number goes', mutate((r) => (r.custom_metrics['interlock_commands_allowed'] = [{ number: '3' }])), /interlock_commands_allowed\/0\/number: must be number/],
    ['a name outside the catalog', mutate((r) => (r.custom_metrics['interlock_made_up'] = [{ number: 1 }])), /interlock_made_up is not allowed/],
    ['no header', mutate((r) => delete (r as { header?: unknown }).header), /must have required property 'header'/],
    ['a report_id of 0', mutate((r) => (r.header['report_id'] = 0)), /report_id: must be >= 1/],
    ['a fractional report_id', mutate((r) => (r.header['report_id'] = 1.5)), /report_id: must be integer/],
    ['a version other than 1.0', mutate((r) => (r.header['version'] = '2.0')), /version: must be equal to constant/],
    ['no custom metrics', mutate((r) => (r.custom_metrics = {})), /custom_metrics: must NOT have fewer than 1 properties/],
  ];
  for (const [what, report, expected] of cases) {
    const problems = defenderReportProblems(report, undefined);
    t.match(problems.join('; '), expected, what);
  }
  t.match(defenderReportProblems(good, 100), ['/header/report_id: 100 is not above the last report\'s 100'], 'a report_id equal to the last one');
  t.match(defenderReportProblems(good, 250), ['/header/report_id: 100 is not above the last report\'s 250'], 'a report_id below the last one');
});
