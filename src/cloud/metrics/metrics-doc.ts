// The metric table of docs/metrics.md, made from the catalog, so the page can be checked against METRICS word for word.

import { METRICS } from '../metric-catalog.js';

export const METRICS_TABLE_HEADER = '| metric | Device Defender type | measure | what |';

/** The markdown table of every metric: name, custom-metric type, counter or gauge, meaning. */
export function metricsTable(): string {
  const rows = Object.entries(METRICS).map(([name, spec]) => `| \`${name}\` | ${spec.type} | ${spec.measure} | ${spec.summary.replaceAll('|', '\\|')} |`);
  return [METRICS_TABLE_HEADER, '|---|---|---|---|', ...rows].join('\n');
}
