// throttledWarn: what a client can repeat at will (refused connections, publishes) costs one log line per window.

import t from 'tap';
import { createLogger, throttledWarn } from '../../src/core/log.js';

t.test('one line per window, whatever the text; the held count goes out with the next line', async (t) => {
  const lines: string[] = [];
  let now = 1_000;
  const warn = throttledWarn(createLogger('broker', 'info', (line) => lines.push(line)), 10_000, () => now);
  warn('refused a publish from a');
  for (let i = 0; i < 500; i++) warn(`refused a publish from client-${i}`);
  t.equal(lines.length, 1, 'a flood inside the window writes nothing more');
  t.match(lines[0], /WARN .*\[broker\] refused a publish from a$/);
  now += 9_999;
  warn('still inside');
  t.equal(lines.length, 1);
  now += 1;
  warn('refused the connection of b');
  t.equal(lines.length, 2, 'the next window writes again');
  t.match(lines[1], /refused the connection of b \(and 501 more like it since the last line\)$/);
  now += 10_000;
  warn('quiet since');
  t.match(lines[2], /quiet since$/, 'no count when nothing was held');
});
