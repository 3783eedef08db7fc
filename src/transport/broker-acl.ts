// Who may publish and subscribe to what on the cell's broker: one table, enforced by the embedded broker for each
// authenticated client, and the same table as the shipped mosquitto ACL (greengrass/standalone/acl, held equal to this
// file by test/transport/broker-acl.test.ts). Anything not granted is refused.

import { topicFilterProblem, topicMatches, type TopicSet } from './topics.js';

/**
 * interlock: the interlock itself (over the embedded broker it needs no credential: it is the in-process client).
 * driver: one device's driver, named by the device id. agent: an AI agent, by its agent id. operator: a person
 * answering approvals, by operator id. observer: read-only (dashboards, `interlock live` on another host).
 */
export type BrokerRole = 'interlock' | 'driver' | 'agent' | 'operator' | 'observer';

export interface TopicGrant {
  /** Filters this client may subscribe to (a subscription must lie wholly inside one of them). */
  readonly read: readonly string[];
  /** Filters matching every topic this client may publish to. */
  readonly write: readonly string[];
}

/** The name of the read-only identity the embedded broker makes for every cell. */
export const OBSERVER = 'observer';
/** The interlock's own name: never a TCP client of the embedded broker. */
export const INTERLOCK = 'interlock';

/** The grant of `role` for the identity `id` (a device id for a driver, an agent or operator id otherwise). */
export function grantFor(role: BrokerRole, id: string, topics: TopicSet): TopicGrant {
  switch (role) {
    case 'interlock':
      return {
        read: [topics.commandFilter, topics.stateFilter, topics.outcomeFilter, topics.operator],
        write: interlockVoice(topics),
      };
    case 'driver':
      return {
        read: [topics.actuatorCommand(id), topics.heartbeat],
        write: [topics.actuatorState(id), topics.actuatorOutcome(id)],
      };
    case 'agent':
      return {
        read: [topics.decision('+'), topics.agentTrust(id)],
        write: [topics.commandFilter],
      };
    case 'operator':
      return {
        read: [topics.operatorResult, topics.approvalPendingFilter, topics.approvalResolved('+'), topics.agentTrust('+')],
        write: [topics.operator],
      };
    case 'observer':
      return {
        read: [
          topics.commandFilter,
          topics.decision('+'),
          topics.actuatorCommand('+'),
          topics.stateFilter,
          topics.outcomeFilter,
          topics.heartbeat,
          topics.operatorResult,
          topics.approvalPendingFilter,
          topics.approvalResolved('+'),
          topics.agentTrust('+'),
          topics.metrics,
        ],
        write: [],
      };
  }
}

/**
 * Topics only the interlock speaks on: releases, decisions, the heartbeat, approvals, standings, operator answers and
 * metrics. The embedded broker refuses them to every TCP client, whatever its grant says.
 */
export function interlockVoice(topics: TopicSet): string[] {
  return [
    topics.actuatorCommand('+'),
    topics.decision('+'),
    topics.heartbeat,
    topics.approvalPendingFilter,
    topics.approvalResolved('+'),
    topics.operatorResult,
    topics.agentTrust('+'),
    topics.metrics,
  ];
}

/** True when every topic `filter` can match is matched by `grant` (both MQTT filters; a topic name is a filter too). */
export function filterWithin(filter: string, grant: string): boolean {
  if (topicFilterProblem(filter) !== undefined || topicFilterProblem(grant) !== undefined) return false;
  const f = filter.split('/');
  const g = grant.split('/');
  for (let i = 0; i < g.length; i++) {
    const level = g[i];
    if (level === '#') return !(i === 0 && (f[0] ?? '').startsWith('$'));
    const asked = f[i];
    if (asked === undefined || asked === '#') return false;
    if (level === '+') {
      // SAFETY: `$`-topics never match a leading wildcard, so a grant of `+/...` does not cover `$SYS/...`.
      if (i === 0 && asked.startsWith('$')) return false;
      continue;
    }
    if (asked !== level) return false;
  }
  return f.length === g.length;
}

export function mayPublish(grant: TopicGrant, topic: string): boolean {
  return grant.write.some((w) => filterWithin(topic, w));
}

export function maySubscribe(grant: TopicGrant, filter: string): boolean {
  return grant.read.some((r) => filterWithin(filter, r));
}

/**
 * Whether a message on `topic` (a name the broker already accepted) may go to a client with `grant`. On every
 * delivery, so the plain matcher: for a valid topic name it answers as filterWithin does, without re-validating.
 */
export function mayRead(grant: TopicGrant, topic: string): boolean {
  return grant.read.some((r) => topicMatches(r, topic));
}
