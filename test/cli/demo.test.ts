// The main job, `npm start`, end to end: the demo runs its whole script with every verdict as expected, nothing
// executed without an allow record, the chain verifies, and a second run in the same state folder works too.

import t from 'tap';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo } from '../../src/cli/demo.js';
import { silentLogger } from '../../src/core/log.js';
import { DEMO_STEPS } from '../../simulator/demo-agent.js';
import { DEMO_CELL } from '../helpers/test-cell.js';

t.test('the demo runs its script twice in one state folder with every verdict as expected', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'interlock-demo-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cellDirectory = join(root, 'demo-cell');
  cpSync(DEMO_CELL, cellDirectory, { recursive: true, filter: (src) => !src.startsWith(join(DEMO_CELL, 'keys')) });
  const stateDirectory = join(root, 'state');
  const lines: string[] = [];
  const run = () =>
    runDemo({
      cellDirectory,
      stateDirectory,
      rounds: 1,
      stepPauseMs: 0,
      colour: false,
      out: (line) => lines.push(line),
      log: silentLogger,
      interrupted: new Promise(() => undefined),
    });

  const first = await run();
  t.equal(first.outcomes.length, DEMO_STEPS.length, 'one full round');
  t.equal(first.surprises, 0, 'every step got the verdict the script expects');
  t.equal(first.unauthorisedExecutions, 0, 'the arm executed nothing without an allow record');
  t.equal(first.chainOk, true);
  t.same(readdirSync(join(cellDirectory, 'keys')).sort(), ['observer-1-k1.pub.pem', 'planner-1-k1.pub.pem', 'trainee-1-k1.pub.pem']);

  const second = await run();
  t.equal(second.surprises, 0, 'a second run reuses the keys and the audit log');
  t.equal(second.chainOk, true);
  const text = lines.join('\n');
  t.match(text, /DENY {3}planner-1 +arm-1 move_joints +elbow 90 meant as degrees, sent as radians\n +x BOUNDS_JOINT_POSITION \[arm-1\/joints\/elbow\/position\]: 90 rad vs limit 2\.793 rad/);
  t.match(text, /refused by the broker ACL, the arm received nothing/);
  t.match(text, /=== Summary ===/);
});
