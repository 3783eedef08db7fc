// The validated, unit-converted declarations of one cell, as the stages see them: plain data, no I/O.
// Limits are stored apart from the code that checks them; every value is in the unit its name says.

import type { KeyObject } from 'node:crypto';
import type { DeviceDeclaration } from './kinds/index.js';
import type { RateLimit } from './kinds/kind-spec.js';
import type { Zone } from './zones.js';

export type { DeviceDeclaration, DeviceKind, DeviceState } from './kinds/index.js';
export type { Mode, ModeLimit, ModePolicy, RateLimit } from './kinds/kind-spec.js';
export type { Vec2, Vec3, Zone, ZoneShape } from './zones.js';

export interface AgentDeclaration {
  readonly kind: 'agent';
  readonly id: string;
  readonly owner: string;
  /** AWS Agentic AI Security Scoping Matrix scope 1-4. */
  readonly autonomyScope: number;
}

/** What an operator may do. Each role is checked where it is used; Cedar sees them as principal.roles. */
export type OperatorRole = 'approve' | 'reset' | 'restore' | 'mode';

export const OPERATOR_ROLES: readonly OperatorRole[] = ['approve', 'reset', 'restore', 'mode'];

/** A human who approves held commands, resets trips, restores demoted agents or switches modes. */
export interface OperatorDeclaration {
  readonly kind: 'operator';
  readonly id: string;
  /** The person's name, for audit records and the CLI. */
  readonly owner: string;
  readonly roles: readonly OperatorRole[];
}

/** Whoever signed a command or an operator message. */
export type Principal = AgentDeclaration | OperatorDeclaration;

export interface AgentKey {
  readonly kid: string;
  /** The agent or operator id that owns the key. */
  readonly agentId: string;
  readonly owner: 'agent' | 'operator';
  readonly publicKey: KeyObject;
  /** The key is valid from this time on (ms since the epoch); -Infinity when not declared. */
  readonly notBeforeMs: number;
  /** The key is valid before this time (ms since the epoch); +Infinity when not declared. */
  readonly notAfterMs: number;
  /** Set when the key is on the revocation list: why, as declared. */
  readonly revoked?: string;
}

/** A key a device's driver signs its state and outcomes with, declared under `drivers` in agents.yaml. */
export interface DriverKey {
  readonly kid: string;
  /** The device whose reports it signs; it speaks for no other. */
  readonly deviceId: string;
  readonly publicKey: KeyObject;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** Set when the key is on the revocation list: why, as declared. */
  readonly revoked?: string;
}

/** What happens to an agent that keeps being denied. */
export interface TrustPolicy {
  /** This many denials (of non-safe-state commands) within `windowMs` demote the agent. */
  readonly denials: number;
  readonly windowMs: number;
  /** reduced: the reduced limit set on every device; quarantine: every actuation is denied. */
  readonly demoteTo: 'reduced' | 'quarantine';
}

/** One declared tolerance on a state field, in the field's internal unit. */
export interface DriftTolerance {
  /** A state field path: "positionsRad", "pose.xM", "measurements.discharge_pressure". Arrays: every element. */
  readonly field: string;
  readonly within: number;
}

export interface ApprovalSettings {
  /** A held command waits at most this long for an operator's answer; then it is void. */
  readonly pendingTtlMs: number;
  /** An operator's signed answer may be valid for at most this long (exp - iat). */
  readonly maxAnswerTtlMs: number;
  /** More pending approvals than this for one agent and device are refused (flood limit). */
  readonly maxPendingPerAgentDevice: number;
  /** Per device id: how far the state may drift from the snapshot taken at hold before an approval is void. */
  readonly drift: ReadonlyMap<string, readonly DriftTolerance[]>;
}

export interface CommandLimits {
  readonly maxTtlMs: number;
  readonly clockSkewMs: number;
  readonly maxTokenBytes: number;
  /** Commands per window from one agent, across devices; undefined: no per-agent limit. */
  readonly ratePerAgent?: RateLimit;
}

/** At most one of `devices` may be inside `zone` at a time (decided from live state and released commands). */
export interface SharedZone {
  readonly zoneId: string;
  readonly devices: readonly string[];
}

/** Where people positions come from: the `people` field of these devices' state messages. */
export interface PeopleSources {
  readonly devices: readonly string[];
  /** People reports older than this do not count: the cell's people are then unknown (and that is unsafe). */
  readonly maxAgeMs: number;
}

export interface Declarations {
  readonly cellId: string;
  /** sha256 over every file of the declaration set (names and contents); recorded with each decision. */
  readonly digest: string;
  readonly commandLimits: CommandLimits;
  readonly zones: ReadonlyMap<string, Zone>;
  readonly sharedZones: readonly SharedZone[];
  readonly people: PeopleSources;
  readonly devices: ReadonlyMap<string, DeviceDeclaration>;
  readonly agents: ReadonlyMap<string, AgentDeclaration>;
  readonly operators: ReadonlyMap<string, OperatorDeclaration>;
  /** Every agent and operator key by kid, revoked ones included (so a revoked kid is named as revoked). */
  readonly keys: ReadonlyMap<string, AgentKey>;
  /** Every device driver key by kid, revoked ones included. A device with none never has trusted state. */
  readonly driverKeys: ReadonlyMap<string, DriverKey>;
  readonly trust: TrustPolicy;
  readonly approvals: ApprovalSettings;
  readonly audit: AuditSettings;
}

/** cell.yaml's audit section, in internal units; a missing value means no retention (keep all) and no cap. */
export interface AuditSettings {
  readonly retentionMs?: number;
  readonly maxBytes?: number;
}
