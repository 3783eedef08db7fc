// The registry of device kinds. Adding a kind: write src/core/kinds/<kind>.ts (a KindSpec), add it to KINDS,
// its declaration/state types to the unions, its reasons to KIND_REASONS, and its checks to src/bounds/bounds.ts.

import type { ActionSpec, KindSpec } from './kind-spec.js';
import { CONVEYOR, CONVEYOR_REASONS, type ConveyorDeclaration, type ConveyorState } from './conveyor.js';
import { MOBILE_ROBOT, MOBILE_ROBOT_REASONS, type MobileRobotDeclaration, type MobileRobotState } from './mobile-robot.js';
import { PROCESS_UNIT, PROCESS_UNIT_REASONS, type ProcessUnitDeclaration, type ProcessUnitState } from './process-unit.js';
import { ROBOT_ARM, ROBOT_ARM_REASONS, type ArmDeclaration, type ArmState } from './robot-arm.js';

export type DeviceDeclaration = ArmDeclaration | MobileRobotDeclaration | ConveyorDeclaration | ProcessUnitDeclaration;
export type DeviceState = ArmState | MobileRobotState | ConveyorState | ProcessUnitState;
export type DeviceKind = DeviceDeclaration['kind'];

/** Each kind's spec, keyed by its `kind` string as written in device files. */
export const KINDS: { readonly [K in DeviceKind]: KindSpec<Extract<DeviceDeclaration, { kind: K }>, Extract<DeviceState, { kind: K }>> } = {
  robot_arm: ROBOT_ARM,
  mobile_robot: MOBILE_ROBOT,
  conveyor: CONVEYOR,
  process_unit: PROCESS_UNIT,
};

export const KIND_REASONS = { ...ROBOT_ARM_REASONS, ...MOBILE_ROBOT_REASONS, ...CONVEYOR_REASONS, ...PROCESS_UNIT_REASONS } as const;

export const DEVICE_KIND_NAMES = Object.keys(KINDS) as DeviceKind[];

/** The spec of a kind, typed loosely for code that handles every kind alike (loader, envelope, state store). */
export function kindSpec(kind: DeviceKind): KindSpec<DeviceDeclaration, DeviceState> {
  return KINDS[kind] as unknown as KindSpec<DeviceDeclaration, DeviceState>;
}

export function actionSpec(kind: DeviceKind, action: string): ActionSpec | undefined {
  const actions = kindSpec(kind).actions;
  return Object.hasOwn(actions, action) ? actions[action] : undefined;
}

export type { ActionSpec, KindSpec } from './kind-spec.js';
