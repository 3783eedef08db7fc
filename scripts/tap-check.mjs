// Reads tap's TAP output (the runner's report) and prints what tap's own summary does not say: how many tests
// (t.test subtests) ran in how many files, and every subtest that finished without a single assertion, which tap
// counts as a pass (an early return that skipped the checks looks exactly like that). Plain JavaScript so the
// runner can use it before anything is compiled.
//
// Output, one per line: "empty <file> > <subtest path>" for each empty subtest, then "tests <n> files <n>".

import { readFileSync } from 'node:fs';

const report = process.argv[2];
if (report === undefined) {
  console.error('tap-check.mjs: name the TAP report to read (scripts/test.sh passes .tap/node<major>.tap)');
  process.exit(2);
}
const lines = readFileSync(report, 'utf8').split('\n');
const stack = []; // names of the open subtests, outermost (the file) first
let tests = 0;
let files = 0;
const empty = [];
let emptyPlanAt = -1; // indentation of a "1..0" plan seen in the open subtest

for (const line of lines) {
  const indent = line.length - line.trimStart().length;
  const text = line.trim();
  const subtest = /^# Subtest: (.*)$/.exec(text);
  if (subtest) {
    const depth = indent / 4;
    stack.length = depth;
    stack.push(subtest[1]);
    if (depth === 0) files += 1;
    else tests += 1;
    continue;
  }
  // A plan of zero without a skip directive: nothing was asserted in the subtest that encloses it.
  if (/^1\.\.0(\s|$)/.test(text) && !/#\s*skip/i.test(text)) {
    emptyPlanAt = indent;
    continue;
  }
  const result = /^(not )?ok \d+ - (.*?)(\s+#\s*(SKIP|TODO)\b.*|\s+# time=.*)?$/.exec(text);
  if (result && emptyPlanAt >= 0 && indent === emptyPlanAt - 4) {
    const directive = result[4];
    if (directive === undefined) empty.push(stack.slice(0, indent / 4 + 1).join(' > '));
    emptyPlanAt = -1;
  } else if (result && indent < emptyPlanAt) {
    emptyPlanAt = -1;
  }
}

for (const name of empty) console.log(`empty ${name}`);
console.log(`tests ${tests} files ${files}`);
