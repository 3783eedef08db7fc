import t from 'tap';
import { decide, denyWith, PASS } from '../../src/core/verdict.js';
import { reason } from '../../src/core/reasons.js';

t.test('most restrictive verdict wins and every reason is kept', async (t) => {
  const hold = { verdict: 'hold' as const, reasons: [reason('POLICY_NO_PERMIT', 'x')] };
  const deny = denyWith(reason('BOUNDS_JOINT_POSITION', 'y'));
  t.equal(decide([PASS, PASS]).verdict, 'allow');
  t.equal(decide([PASS, hold]).verdict, 'hold');
  t.equal(decide([deny, hold, PASS]).verdict, 'deny');
  t.equal(decide([hold, deny]).verdict, 'deny');
  t.same(decide([hold, deny]).reasons.map((r) => r.code), ['POLICY_NO_PERMIT', 'BOUNDS_JOINT_POSITION']);
});
