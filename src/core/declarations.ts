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
  readonly id: string;
  readonly owner: string;
  readonly autonomyScope: number;
}

export interface AgentKey {
  readonly kid: string;
  readonly agentId: string;
  readonly publicKey: KeyObject;
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
  readonly keys: ReadonlyMap<string, AgentKey>;
}
