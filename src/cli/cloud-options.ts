// The `interlock run` options of the cloud link (AWS IoT Core over mqtts with the thing's certificate) and of the
// cloud metrics and audit forwarding, read and checked before anything starts: every bad combination is one line saying what to change.

import { thingNameProblem, type CloudLink } from '../cloud/cloud-link.js';
import { forwardingSettings, type AuditForwardingOptions } from '../cloud/audit-forwarder.js';
import { DEFAULT_METRICS_INTERVAL_MS, metricsSettingsProblem, type MetricsSettings } from '../cloud/metrics/metrics-settings.js';
import type { Logger } from '../core/log.js';
import { MqttTransport, redactUrl } from '../transport/mqtt-transport.js';
import { loadTlsFiles, TlsConfigError } from '../transport/tls-files.js';

export interface CloudOptionValues {
  readonly 'cloud-url'?: string | undefined;
  readonly 'cloud-ca'?: string | undefined;
  readonly 'cloud-cert'?: string | undefined;
  readonly 'cloud-key'?: string | undefined;
  readonly 'thing-name'?: string | undefined;
  readonly 'metrics-interval'?: string | undefined;
  readonly 'metrics-topic'?: string | undefined;
  readonly 'no-defender'?: boolean | undefined;
  readonly 'no-audit-forwarding'?: boolean | undefined;
  readonly 'audit-forward-rate'?: string | undefined;
}

export const CLOUD_FLAGS = ['cloud-url', 'cloud-ca', 'cloud-cert', 'cloud-key', 'thing-name', 'metrics-interval', 'metrics-topic', 'no-defender', 'no-audit-forwarding', 'audit-forward-rate'] as const;

export type CloudOptions = { readonly ok: true; readonly cloud?: CloudLink; readonly metrics?: MetricsSettings; readonly auditForwarding?: AuditForwardingOptions } | { readonly ok: false; readonly problem: string };

/** True when any cloud or metrics option was given. */
export function hasCloudOptions(values: CloudOptionValues): boolean {
  return CLOUD_FLAGS.some((flag) => values[flag] !== undefined);
}

/**
 * Reads the cloud options of `run`. Without --cloud-url (and none of the others) nothing leaves the device. With it,
 * metrics go to Device Defender (unless --no-defender) and to --metrics-topic when given.
 */
export function readCloudOptions(values: CloudOptionValues, parseDuration: (text: string) => number | undefined, log: Logger): CloudOptions {
  if (!hasCloudOptions(values)) return { ok: true };
  const url = values['cloud-url'];
  if (url === undefined) {
    const given = CLOUD_FLAGS.filter((flag) => values[flag] !== undefined).map((flag) => `--${flag}`);
    return { ok: false, problem: `${given.join(', ')} need a cloud link: give --cloud-url mqtts://ENDPOINT:8883 and --thing-name NAME` };
  }
  if (!url.startsWith('mqtts://')) return { ok: false, problem: `--cloud-url must be mqtts://ENDPOINT:8883 (AWS IoT Core takes TLS only), not ${redactUrl(url)}` };
  const thingName = values['thing-name'];
  if (thingName === undefined) return { ok: false, problem: '--cloud-url needs --thing-name NAME (the AWS IoT thing this interlock reports as)' };
  const thingProblem = thingNameProblem(thingName);
  if (thingProblem !== undefined) return { ok: false, problem: `--thing-name: ${thingProblem}` };
  if (values['cloud-cert'] === undefined || values['cloud-key'] === undefined) {
    return { ok: false, problem: '--cloud-url needs --cloud-cert FILE and --cloud-key FILE (the thing\'s certificate and key: AWS IoT Core authenticates devices by certificate)' };
  }
  let tls;
  try {
    tls = loadTlsFiles(url, {
      certFile: values['cloud-cert'],
      keyFile: values['cloud-key'],
      ...(values['cloud-ca'] === undefined ? {} : { caFile: values['cloud-ca'] }),
    });
  } catch (error) {
    if (error instanceof TlsConfigError) return { ok: false, problem: `cloud link: ${error.message}` };
    throw error;
  }
  let intervalMs = DEFAULT_METRICS_INTERVAL_MS;
  const interval = values['metrics-interval'];
  if (interval !== undefined) {
    const parsed = parseDuration(interval);
    if (parsed === undefined) return { ok: false, problem: `--metrics-interval: cannot read "${interval}" (e.g. 300s, 15m)` };
    intervalMs = parsed;
  }
  const metrics: MetricsSettings = { intervalMs, defender: values['no-defender'] !== true, topic: values['metrics-topic'] };
  const metricsProblem = metricsSettingsProblem(metrics);
  if (metricsProblem !== undefined) {
    const hint = metrics.defender || metrics.topic !== undefined ? '' : ' (--no-defender needs --metrics-topic TOPIC)';
    return { ok: false, problem: `${metricsProblem}${hint}` };
  }
  // Audit forwarding is on with a cloud link: it is what lets retention delete (docs/audit-forwarding.md).
  const rate = values['audit-forward-rate'];
  const recordsPerSecond = rate === undefined ? undefined : Number(rate);
  if (rate !== undefined && (!Number.isSafeInteger(recordsPerSecond) || (recordsPerSecond ?? 0) < 1)) {
    return { ok: false, problem: `--audit-forward-rate must be a whole number of records per second >= 1, not "${rate}"` };
  }
  if (rate !== undefined && values['no-audit-forwarding'] === true) return { ok: false, problem: '--audit-forward-rate and --no-audit-forwarding contradict each other: give one' };
  const auditForwarding: AuditForwardingOptions = { enabled: values['no-audit-forwarding'] !== true, ...(recordsPerSecond === undefined ? {} : { recordsPerSecond }) };
  try {
    forwardingSettings(auditForwarding);
  } catch (error) {
    return { ok: false, problem: error instanceof Error ? error.message : String(error) };
  }
  const transport = new MqttTransport({ url, clientId: thingName, ...tls, log: (message) => log.child('cloud-mqtt').info(message) });
  return { ok: true, cloud: { transport, thingName }, metrics, auditForwarding };
}
