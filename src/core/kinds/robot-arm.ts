// The robot arm kind: what an arm's declaration, state and commands look like. Pure shapes and unit conversion;
// the checks are in src/bounds/robot-arm/. Command fields carry their unit in their name (positionsRad).

import type { ReasonSpec } from '../reasons-spec.js';
import {
  convertModeLimit,
  convertRange,
  IDENTIFIER_SCHEMA,
  modeLimitSchema,
  rangeSchema,
  type CommonDeviceDeclaration,
  type ConvertIssue,
  type KindSpec,
  type ModeLimit,
  type RawModeLimit,
  type RawRange,
} from './kind-spec.js';

export interface ArmJointLimits {
  readonly name: string;
  readonly positionMinRad: number;
  readonly positionMaxRad: number;
  readonly velocityMaxRadPerS: ModeLimit;
}

export interface ArmDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'robot_arm';
  readonly joints: readonly ArmJointLimits[];
}

export interface ArmState {
  readonly kind: 'robot_arm';
  readonly positionsRad: readonly number[];
}

export interface ArmMoveJoints {
  readonly positionsRad: readonly number[];
  readonly velocityRadPerS: number;
}

export const ROBOT_ARM_REASONS = {
  BOUNDS_JOINT_COUNT: {
    stage: 'bounds',
    summary: 'The command gives a different number of joint targets than the arm declares joints.',
  },
  BOUNDS_JOINT_POSITION: {
    stage: 'bounds',
    summary: 'A joint target lies outside the joint\'s declared position range.',
  },
  BOUNDS_JOINT_VELOCITY: {
    stage: 'bounds',
    summary: 'The commanded joint velocity exceeds a joint\'s velocity limit in the current mode.',
  },
} as const satisfies Record<string, ReasonSpec>;

interface RawJoint {
  readonly name: string;
  readonly position: RawRange;
  readonly velocity: RawModeLimit;
}

export const ROBOT_ARM: KindSpec<ArmDeclaration, ArmState> = {
  kind: 'robot_arm',
  deviceProperties: {
    joints: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      description: 'The arm\'s joints, base first; command targets are given in this order.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'position', 'velocity'],
        properties: {
          name: IDENTIFIER_SCHEMA,
          position: rangeSchema('angle', 'Allowed joint position range (inclusive).'),
          velocity: modeLimitSchema('angularVelocity', 'Largest allowed joint speed (inclusive).'),
        },
      },
    },
  },
  deviceRequired: ['joints'],
  convert(raw, common) {
    const issues: ConvertIssue[] = [];
    const names = new Set<string>();
    const joints = (raw['joints'] as RawJoint[]).map((joint, index): ArmJointLimits => {
      if (names.has(joint.name)) issues.push({ path: `/joints/${index}/name`, message: `joint name "${joint.name}" is used twice` });
      names.add(joint.name);
      const position = convertRange('angle', joint.position, `/joints/${index}/position`, issues);
      return {
        name: joint.name,
        positionMinRad: position.min,
        positionMaxRad: position.max,
        velocityMaxRadPerS: convertModeLimit('angularVelocity', joint.velocity, `/joints/${index}/velocity`, issues),
      };
    });
    return issues.length > 0 ? { ok: false, issues } : { ok: true, device: { ...common, kind: 'robot_arm', joints } };
  },
  stateProperties: {
    positionsRad: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'number' } },
    velocitiesRadPerS: { type: 'array', maxItems: 16, items: { type: 'number' } },
    moving: { type: 'boolean' },
    safeStopped: { type: 'boolean' },
    lastCommandId: { type: ['string', 'null'], maxLength: 128 },
  },
  stateRequired: ['positionsRad'],
  toState(device, message) {
    const positions = message['positionsRad'] as number[];
    if (positions.length !== device.joints.length) {
      return { ok: false, problem: `state gives ${positions.length} joint positions, ${device.id} has ${device.joints.length}` };
    }
    return { ok: true, state: { kind: 'robot_arm', positionsRad: [...positions] } };
  },
  actions: {
    move_joints: {
      safeState: false,
      summary: 'Move all joints to target positions, synchronised, the leading joint at velocityRadPerS.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['positionsRad', 'velocityRadPerS'],
        properties: {
          positionsRad: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'number' } },
          velocityRadPerS: { type: 'number', exclusiveMinimum: 0 },
        },
      },
    },
    stop: {
      safeState: true,
      summary: 'Halt where the arm is.',
      paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
    },
  },
  reasons: ROBOT_ARM_REASONS,
};
