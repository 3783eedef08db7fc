// The validated, unit-converted declarations of one cell, as the stages see them: plain data, no I/O.
// Limits are stored apart from the code that checks them; every value is in the unit its name says.

import type { KeyObject } from 'node:crypto';

export interface ArmJointLimits {
  readonly name: string;
  readonly positionMinRad: number;
  readonly positionMaxRad: number;
  readonly velocityMaxRadPerS: number;
}

export interface ArmDeclaration {
  readonly id: string;
  readonly kind: 'robot_arm';
  readonly maxStateAgeMs: number;
  readonly joints: readonly ArmJointLimits[];
}

export type DeviceDeclaration = ArmDeclaration;

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
}

export interface Declarations {
  readonly cellId: string;
  /** sha256 over every file of the declaration set (names and contents); recorded with each decision. */
  readonly digest: string;
  readonly commandLimits: CommandLimits;
  readonly devices: ReadonlyMap<string, DeviceDeclaration>;
  readonly agents: ReadonlyMap<string, AgentDeclaration>;
  readonly keys: ReadonlyMap<string, AgentKey>;
}
