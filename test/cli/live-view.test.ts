// The demo's live view: one line per decision with the limit set the bounds were checked in, so a command checked in
// the reduced limits (a person near the machine) can be told apart from the same command in normal.

import t from 'tap';
import { formatDecision } from '../../src/cli/live-view.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import type { DecisionReport } from '../../src/pipeline/decision-report.js';

const AT_MS = Date.UTC(2026, 10, 22, 4, 2, 4, 278);

function event(overrides: Partial<DecisionReport>, released = false): DecisionEvent {
  const report: DecisionReport = {
    verdict: 'deny',
    reasons: [],
    commandId: 'c-1',
    agentId: 'planner-1',
    deviceId: 'arm-1',
    action: 'move_joints',
    seq: 1,
    mode: null,
    modeBecause: [],
    commandDigest: 'd'.repeat(64),
    declarationsDigest: 'e'.repeat(64),
    decidedAtMs: AT_MS,
    ...overrides,
  };
  return { report, auditSeq: released ? 7 : 8, released, topicDeviceId: 'arm-1' };
}

t.test('the mode column: normal, reduced, or blank when the bounds were not checked', async (t) => {
  const labelOf = () => 'pick';
  const reduced = formatDecision(
    event({ mode: 'reduced', reasons: [{ stage: 'bounds', code: 'BOUNDS_TCP_SPEED', message: 'too fast', ruleId: 'arm-1/tcp/speed/reduced', limit: 0.25, actual: 0.703, unit: 'm/s' }] }),
    { colour: false, labelOf },
  );
  t.equal(reduced, '04:02:04.278  DENY   planner-1         arm-1 move_joints    reduced pick\n              x BOUNDS_TCP_SPEED [arm-1/tcp/speed/reduced]: 0.703 m/s vs limit 0.250 m/s');
  const normal = formatDecision(event({ verdict: 'allow', mode: 'normal' }, true), { colour: false, labelOf });
  t.equal(normal, '04:02:04.278  ALLOW  planner-1         arm-1 move_joints    normal  pick\n              -> released to the actuator, audit #7');
  const unchecked = formatDecision(event({ mode: null, agentId: null, action: null, reasons: [{ stage: 'envelope', code: 'ENVELOPE_UNKNOWN_KEY', message: 'kid "x" is not registered' }] }), { colour: false, labelOf });
  t.match(unchecked, /^04:02:04\.278 {2}DENY {3}\(unauthenticated\) arm-1 \? {22}pick\n/, 'no mode when the bounds stage was not reached');
  t.equal(formatDecision(event({ mode: 'normal' }), { colour: false }).split('\n')[0], '04:02:04.278  DENY   planner-1         arm-1 move_joints    normal', 'no trailing blanks without a label');
  t.match(formatDecision(event({ mode: 'reduced' }), { colour: true }), /\u001b\[33mreduced\u001b\[0m/, 'reduced stands out in colour');
});
