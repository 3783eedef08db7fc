// docs/metrics.md against the metric catalog: the page holds the table made from METRICS, row for row, so every
// metric is documented with its Device Defender type, counter or gauge, and meaning, and no other metric is.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { METRICS } from '../../src/cloud/metric-catalog.js';
import { metricsTable, METRICS_TABLE_HEADER } from '../../src/cloud/metrics/metrics-doc.js';
import { REPO_ROOT } from '../helpers/test-cell.js';

const page = readFileSync(join(REPO_ROOT, 'docs', 'metrics.md'), 'utf8');

t.test('docs/metrics.md holds the table made from the catalog', async (t) => {
  const lines = page.split('\n');
  const start = lines.indexOf(METRICS_TABLE_HEADER);
  t.ok(start >= 0, 'the page has the metric table');
  const rows = lines.slice(start);
  const table = rows.slice(0, rows.findIndex((line) => !line.startsWith('|'))).join('\n');
  t.equal(table, metricsTable(), 'the table equals the one made from METRICS (regenerate it with metricsTable())');
  const documented = [...page.matchAll(/^\| `(interlock_[a-z0-9_]+)` \| ([a-z-]+) \| (counter|gauge) \|/gm)];
  t.same(documented.map((m) => m[1]).sort(), Object.keys(METRICS).sort(), 'exactly the catalog metrics');
  for (const [, name, type, measure] of documented) t.match(METRICS[name ?? ''], { type, measure }, `${name ?? ''}: type and measure as in the catalog`);
});
