// How the interlock reports its cloud metrics: the interval (never under Device Defender's 300 s), whether Device
// Defender gets them, and the plain topic that carries the same numbers (for accounts without Device Defender Detect,
// routed into CloudWatch by an IoT rule). A setting out of range is refused with the reason, never clamped.

import { topicNameProblem } from '../../transport/topics.js';

/** Device Defender accepts one report per thing per 300 s; the interval is never shorter. */
export const MIN_METRICS_INTERVAL_MS = 300_000;
export const MAX_METRICS_INTERVAL_MS = 86_400_000;
export const DEFAULT_METRICS_INTERVAL_MS = 300_000;
/** `{thing}` in the plain topic stands for the thing name. */
export const THING_PLACEHOLDER = '{thing}';

export interface MetricsSettings {
  readonly intervalMs: number;
  /** Publish Device Defender reports on $aws/things/{thing}/defender/metrics/json. */
  readonly defender: boolean;
  /** A plain topic for the same numbers (may hold `{thing}`); undefined for none. */
  readonly topic: string | undefined;
}

/** What is wrong with the settings, or undefined. */
export function metricsSettingsProblem(settings: MetricsSettings): string | undefined {
  const { intervalMs, defender, topic } = settings;
  if (!Number.isFinite(intervalMs) || intervalMs < MIN_METRICS_INTERVAL_MS) {
    return `metrics interval ${Number.isFinite(intervalMs) ? `${intervalMs / 1000} s` : String(intervalMs)} is under the minimum of ${MIN_METRICS_INTERVAL_MS / 1000} s (Device Defender accepts one report per thing per 300 s)`;
  }
  if (intervalMs > MAX_METRICS_INTERVAL_MS) return `metrics interval ${intervalMs / 1000} s is over the maximum of ${MAX_METRICS_INTERVAL_MS / 1000} s`;
  if (!defender && topic === undefined) return 'metrics go nowhere: Device Defender is off and no plain topic is given (give a topic, or leave Device Defender on)';
  if (topic !== undefined) {
    const problem = topicNameProblem(topic.replaceAll(THING_PLACEHOLDER, 'thing'));
    if (problem !== undefined) return `metrics topic ${JSON.stringify(topic)}: ${problem}`;
    if (topic.startsWith('$')) return `metrics topic ${JSON.stringify(topic)}: a plain topic cannot be a reserved ($...) topic`;
  }
  return undefined;
}

/** The plain topic for a thing. */
export function plainMetricsTopic(topic: string, thingName: string): string {
  return topic.replaceAll(THING_PLACEHOLDER, thingName);
}

/** Device Defender's report topic for a thing, and its reply topics. */
export function defenderTopics(thingName: string): { readonly report: string; readonly accepted: string; readonly rejected: string } {
  const report = `$aws/things/${thingName}/defender/metrics/json`;
  return { report, accepted: `${report}/accepted`, rejected: `${report}/rejected` };
}
