// A small stand-in for AWS IoT Device Defender's report endpoint, for tests: it takes a report published on
// $aws/things/{thing}/defender/metrics/json, checks it as the service does (JSON, header.report_id a positive integer
// above the thing's last one, version "1.0", every custom metric an array of exactly one value object), and answers
// on .../accepted or .../rejected with the service's reply shape. It is written without the interlock's own schema.
// Not a test file.

import type { Transport } from '../../src/transport/transport.js';

export interface ReceivedReport {
  readonly thingName: string;
  readonly report: { header: { report_id: number; version: string }; custom_metrics: Record<string, unknown[]> };
  readonly status: 'ACCEPTED' | 'REJECTED';
  readonly errorCode?: string;
}

export interface FakeDeviceDefender {
  readonly reports: ReceivedReport[];
  /** Rejects every report from now on with this error code (as for a throttled or otherwise refused report). */
  rejectWith: string | undefined;
  /** The reply to a report: its topic and payload. */
  answer(topic: string, payload: Buffer): { readonly topic: string; readonly payload: string } | undefined;
}

const REPORT_TOPIC = /^\$aws\/things\/([^/]+)\/defender\/metrics\/json$/;
const VALUE_KEYS = ['number', 'number_list', 'string_list', 'ip_list'];

function problemOf(report: unknown, last: number | undefined): string | undefined {
  if (typeof report !== 'object' || report === null) return 'the report is not an object';
  const { header, custom_metrics: custom } = report as { header?: { report_id?: unknown; version?: unknown }; custom_metrics?: unknown };
  if (header === undefined) return 'missing header';
  if (!Number.isSafeInteger(header.report_id) || (header.report_id as number) < 1) return 'header.report_id is not a positive integer';
  if (header.version !== '1.0') return 'header.version is not 1.0';
  if (last !== undefined && (header.report_id as number) <= last) return `report_id ${String(header.report_id)} is not above ${last}`;
  if (typeof custom !== 'object' || custom === null) return 'no custom_metrics';
  for (const [name, value] of Object.entries(custom)) {
    if (!Array.isArray(value) || value.length !== 1) return `custom metric ${name} is not wrapped in an array of one`;
    const keys = Object.keys(value[0] as object);
    if (keys.length !== 1 || !VALUE_KEYS.includes(keys[0] ?? '')) return `custom metric ${name} has no single value key`;
  }
  return undefined;
}

export function fakeDeviceDefender(): FakeDeviceDefender {
  const lastIds = new Map<string, number>();
  const fake: FakeDeviceDefender = {
    reports: [],
    rejectWith: undefined,
    answer(topic, payload) {
      const match = REPORT_TOPIC.exec(topic);
      if (match === null) return undefined;
      const thingName = match[1] ?? '';
      let report: unknown;
      let problem: string | undefined;
      try {
        report = JSON.parse(payload.toString('utf8'));
        problem = problemOf(report, lastIds.get(thingName));
      } catch {
        problem = 'not JSON';
      }
      const reportId = (report as { header?: { report_id?: number } } | undefined)?.header?.report_id;
      const errorCode = problem !== undefined ? 'InvalidPayload' : fake.rejectWith;
      const status = errorCode === undefined ? 'ACCEPTED' : 'REJECTED';
      if (status === 'ACCEPTED' && reportId !== undefined) lastIds.set(thingName, reportId);
      fake.reports.push({ thingName, report: report as ReceivedReport['report'], status, ...(errorCode === undefined ? {} : { errorCode }) });
      const reply = {
        thingName,
        reportId,
        status,
        timestamp: Date.now(),
        ...(errorCode === undefined ? {} : { statusDetails: { ErrorCode: errorCode, ErrorMessage: problem ?? `refused: ${errorCode}` } }),
      };
      return { topic: `${topic}/${status === 'ACCEPTED' ? 'accepted' : 'rejected'}`, payload: JSON.stringify(reply) };
    },
  };
  return fake;
}

/** Serves the fake on an MQTT bus (the cloud side of a broker): answers every report published there. */
export async function serveFakeDeviceDefender(cloud: Transport, fake: FakeDeviceDefender = fakeDeviceDefender()): Promise<FakeDeviceDefender> {
  await cloud.subscribe('$aws/things/+/defender/metrics/json', (topic, payload) => {
    const reply = fake.answer(topic, payload);
    if (reply !== undefined) void cloud.publish(reply.topic, reply.payload, { qos: 1 }).catch(() => undefined);
  });
  return fake;
}
