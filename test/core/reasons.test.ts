// recordableReasons: a reason whose limit or actual is not a finite number is put in words (JSON has no NaN or
// Infinity, and the audit log refuses a record it cannot store exactly); finite reasons are untouched.

import t from 'tap';
import { reason, recordableReasons } from '../../src/core/reasons.js';

t.test('non-finite limits and actuals move into the message; finite ones stay numbers', async (t) => {
  const finite = reason('BOUNDS_CONVEYOR_SPEED', 'too fast', { limit: 0.5, actual: 0.9, unit: 'm/s' });
  const same = [finite];
  t.equal(recordableReasons(same), same, 'nothing to change: the same array');
  const [overflow, nan, both] = recordableReasons([
    reason('BOUNDS_JOINT_ACCELERATION', 'too quick', { ruleId: 'arm-1/j1', limit: 2, actual: Infinity, unit: 'rad/s^2' }),
    reason('BOUNDS_STATE_INVALID', 'broken sensor', { actual: NaN }),
    reason('BOUNDS_ARM_PATH_TOO_LONG', 'far', { limit: -Infinity, actual: Infinity }),
  ]);
  t.same(overflow, { stage: 'bounds', code: 'BOUNDS_JOINT_ACCELERATION', message: 'too quick [limit 2, actual Infinity rad/s^2]', ruleId: 'arm-1/j1', limit: 2, unit: 'rad/s^2' });
  t.same(nan, { stage: 'bounds', code: 'BOUNDS_STATE_INVALID', message: 'broken sensor [actual NaN]' });
  t.same(both, { stage: 'bounds', code: 'BOUNDS_ARM_PATH_TOO_LONG', message: 'far [limit -Infinity, actual Infinity]' });
  t.doesNotThrow(() => JSON.parse(JSON.stringify([overflow, nan, both])));
  t.equal(JSON.stringify([overflow, nan, both]).includes('null'), false, 'no value turned into a silent null');
});
