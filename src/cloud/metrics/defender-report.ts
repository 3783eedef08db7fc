// The AWS IoT Device Defender report: built from the metric values and validated with ajv against the report format
// (header with a positive integer report_id and version "1.0"; each custom metric wrapped in an array of exactly one
// value object whose key matches the metric's catalog type). A report that does not validate is never published.

import type { ErrorObject } from 'ajv';
import { lazyValidator } from '../../core/lazy-validator.js';
import { METRICS, type DefenderMetricType } from '../metric-catalog.js';

/** One custom metric's value as the report carries it. */
export type DefenderValue = { readonly number: number } | { readonly number_list: readonly number[] } | { readonly string_list: readonly string[] } | { readonly ip_list: readonly string[] };

export interface DefenderReport {
  readonly header: { readonly report_id: number; readonly version: '1.0' };
  readonly custom_metrics: Readonly<Record<string, readonly [DefenderValue]>>;
}

/** The value key of each custom-metric type in a report. */
export const VALUE_KEY: Readonly<Record<DefenderMetricType, string>> = {
  number: 'number',
  'number-list': 'number_list',
  'string-list': 'string_list',
  'ip-address-list': 'ip_list',
};

/** A metric value before it is wrapped: a number, or a list for the list types. */
export type MetricValue = number | readonly number[] | readonly string[];

const VALUE_SCHEMA: Readonly<Record<DefenderMetricType, object>> = {
  number: { type: 'number' },
  'number-list': { type: 'array', items: { type: 'number' } },
  'string-list': { type: 'array', items: { type: 'string' } },
  'ip-address-list': { type: 'array', items: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] } },
};

/** The report format, with every metric of the catalog and its type; nothing else is allowed. */
export const DEFENDER_REPORT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['header', 'custom_metrics'],
  properties: {
    header: {
      type: 'object',
      additionalProperties: false,
      required: ['report_id', 'version'],
      properties: { report_id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER }, version: { const: '1.0' } },
    },
    custom_metrics: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: Object.fromEntries(
        Object.entries(METRICS).map(([name, spec]) => {
          const key = VALUE_KEY[spec.type];
          return [
            name,
            {
              type: 'array',
              minItems: 1,
              maxItems: 1,
              items: { type: 'object', additionalProperties: false, required: [key], properties: { [key]: VALUE_SCHEMA[spec.type] } },
            },
          ];
        }),
      ),
    },
  },
} as const;

// Compiled at the first report, not at start (a run without a cloud link never needs it).
const reportValidator = lazyValidator(DEFENDER_REPORT_SCHEMA, { strict: true, allErrors: true }, (ajv) => {
  // ipv4/ipv6 without ajv-formats: the two patterns a report's ip_list may hold.
  ajv.addFormat('ipv4', /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/);
  ajv.addFormat('ipv6', { validate: (text: string) => /^[0-9a-fA-F:.]+$/.test(text) && text.includes(':') });
});

/** Wraps each value as the report format wants it; names outside the catalog are left out for validation to catch. */
export function defenderReport(reportId: number, values: Readonly<Record<string, MetricValue>>): DefenderReport {
  const custom: Record<string, readonly [DefenderValue]> = {};
  for (const [name, value] of Object.entries(values)) {
    const spec = METRICS[name];
    const key = spec === undefined ? (typeof value === 'number' ? 'number' : 'number_list') : VALUE_KEY[spec.type];
    custom[name] = [{ [key]: value } as unknown as DefenderValue];
  }
  return { header: { report_id: reportId, version: '1.0' }, custom_metrics: custom };
}

function describe(error: ErrorObject): string {
  const where = error.instancePath === '' ? 'the report' : error.instancePath;
  if (error.keyword === 'additionalProperties') return `${where}: ${String((error.params as { additionalProperty?: unknown }).additionalProperty)} is not allowed (not in the metric catalog or the format)`;
  return `${where}: ${error.message ?? error.keyword}`;
}

/**
 * The problems of a report, or none: the format (ajv), and a report_id above the last one published (Device Defender
 * drops a report whose id does not increase).
 */
export function defenderReportProblems(report: unknown, lastReportId: number | undefined): readonly string[] {
  const validateSchema = reportValidator();
  if (!validateSchema(report)) return (validateSchema.errors ?? []).map(describe);
  const id = (report as DefenderReport).header.report_id;
  if (lastReportId !== undefined && !(id > lastReportId)) return [`/header/report_id: ${id} is not above the last report's ${lastReportId}`];
  return [];
}
