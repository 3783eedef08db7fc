// Topic names and MQTT filter matching. The prefix is configurable; device ids are restricted so that a device
// id can never smuggle a wildcard or a level separator into a topic.

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface TopicSet {
  readonly commandFilter: string;
  readonly stateFilter: string;
  /** Every device's outcome topic: drivers report what they did with each release. */
  readonly outcomeFilter: string;
  readonly heartbeat: string;
  command(deviceId: string): string;
  decision(deviceId: string): string;
  actuatorCommand(deviceId: string): string;
  actuatorState(deviceId: string): string;
  /** Driver → interlock: what the device did with a release (executed or refused), recorded as a linked outcome. */
  actuatorOutcome(deviceId: string): string;
  /** The device id in a topic matching `{prefix}interlock/{device}/command`, or undefined. */
  deviceOfCommandTopic(topic: string): string | undefined;
  deviceOfStateTopic(topic: string): string | undefined;
  deviceOfOutcomeTopic(topic: string): string | undefined;
  /** Signed operator messages in (approve, reject, restore, quarantine, set_mode). */
  readonly operator: string;
  /** The interlock's answer to each operator message. */
  readonly operatorResult: string;
  /** One retained message per pending approval; emptied when it is answered or expires. */
  approvalPending(approvalId: string): string;
  readonly approvalPendingFilter: string;
  /** The outcome of a pending approval (approved and released, rejected, expired, void). */
  approvalResolved(approvalId: string): string;
  /** Retained: an agent's standing (demoted or restored). */
  agentTrust(agentId: string): string;
  /** The interlock's counters (decisions, pending approvals, approval requests per operator, demotions). */
  readonly metrics: string;
}

/** `prefix` is prepended verbatim to every topic (e.g. `site-a/`); empty by default. */
export function topicSet(prefix = ''): TopicSet {
  const deviceAt = (topic: string, head: string, tail: string): string | undefined => {
    if (!topic.startsWith(head) || !topic.endsWith(tail)) return undefined;
    const device = topic.slice(head.length, topic.length - tail.length);
    return DEVICE_ID_PATTERN.test(device) ? device : undefined;
  };
  return {
    commandFilter: `${prefix}interlock/+/command`,
    stateFilter: `${prefix}actuator/+/state`,
    outcomeFilter: `${prefix}actuator/+/outcome`,
    heartbeat: `${prefix}interlock/heartbeat`,
    command: (device) => `${prefix}interlock/${device}/command`,
    decision: (device) => `${prefix}interlock/${device}/decision`,
    actuatorCommand: (device) => `${prefix}actuator/${device}/command`,
    actuatorState: (device) => `${prefix}actuator/${device}/state`,
    actuatorOutcome: (device) => `${prefix}actuator/${device}/outcome`,
    deviceOfCommandTopic: (topic) => deviceAt(topic, `${prefix}interlock/`, '/command'),
    deviceOfStateTopic: (topic) => deviceAt(topic, `${prefix}actuator/`, '/state'),
    deviceOfOutcomeTopic: (topic) => deviceAt(topic, `${prefix}actuator/`, '/outcome'),
    operator: `${prefix}interlock/operator`,
    operatorResult: `${prefix}interlock/operator/result`,
    approvalPending: (id) => `${prefix}interlock/approvals/pending/${id}`,
    approvalPendingFilter: `${prefix}interlock/approvals/pending/+`,
    approvalResolved: (id) => `${prefix}interlock/approvals/resolved/${id}`,
    agentTrust: (agentId) => `${prefix}interlock/agents/${agentId}/trust`,
    metrics: `${prefix}interlock/metrics`,
  };
}

/** MQTT topic filter matching (`+` one level, `#` the rest); `$`-topics never match a leading wildcard. */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Why `topic` cannot be published to (MQTT topic name rules), or undefined. */
export function topicNameProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'empty topic';
  if (topic.includes('+') || topic.includes('#')) return `wildcards are not allowed in a topic name: ${topic}`;
  if (topic.includes('\u0000')) return 'NUL in topic';
  return undefined;
}

/** Why `filter` is not a valid MQTT topic filter, or undefined. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'empty topic filter';
  if (filter.includes('\u0000')) return 'NUL in topic filter';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] ?? '';
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `'#' must be the last level: ${filter}`;
    if (level.includes('+') && level !== '+') return `'+' must be a whole level: ${filter}`;
  }
  return undefined;
}
