// The robot arm kind: what an arm's declaration (limits, DH kinematics, workspace), state and commands look like.
// Pure shapes and unit conversion to SI; the checks are in src/bounds/robot-arm/. It never decides safety.

import type { ReasonSpec } from '../reasons-spec.js';
import { convertUnit, unitsOf, type Dimension } from '../units.js';
import type { Vec3, Zone, ZoneShape } from '../zones.js';
import {
  convertModeLimit,
  convertQuantity,
  convertRange,
  convertZone,
  IDENTIFIER_SCHEMA,
  modeLimitSchema,
  quantitySchema,
  rangeSchema,
  zoneSchema,
  zoneShapeProperties,
  type CommonDeviceDeclaration,
  type ConvertIssue,
  type ConvertResult,
  type KindSpec,
  type ModeLimit,
  type RawModeLimit,
  type RawQuantity,
  type RawRange,
  type RawZone,
} from './kind-spec.js';

export interface ArmJointLimits {
  readonly name: string;
  readonly positionMinRad: number;
  readonly positionMaxRad: number;
  readonly velocityMaxRadPerS: ModeLimit;
  /**
   * From `jointDynamics`; absent: a command that names an acceleration is denied (nothing to check it against), and
   * so is a path check of a moving arm (its stopping distance, the run-out, is unknown). Its smaller value is the
   * deceleration the run-out assumes.
   */
  readonly accelerationMaxRadPerS2?: ModeLimit;
  /** From `jointDynamics`; compared with the efforts the state reports. */
  readonly effortMaxNm?: ModeLimit;
}

/** One row of standard Denavit-Hartenberg parameters: A_i = Rz(theta_i + q_i) Tz(d_i) Tx(a_i) Rx(alpha_i). */
export interface DhRow {
  readonly aM: number;
  readonly dM: number;
  readonly alphaRad: number;
  /** Added to the joint position (zero for UR arms). */
  readonly thetaOffsetRad: number;
}

export interface ArmKinematics {
  /** One row per joint, in joint order. Frame k's origin lies on the axis of joint k (0-based); frame n is the flange. */
  readonly dh: readonly DhRow[];
  /** Where the arm's base frame sits in the cell frame (metres, z up), turned by yaw about the cell's z axis. */
  readonly basePositionM: Vec3;
  readonly baseYawRad: number;
  /** The tool centre point in the flange frame; the tool axis is the flange's z axis. */
  readonly toolOffsetM: Vec3;
}

export interface ArmTcpLimits {
  readonly speedMaxMPerS?: ModeLimit;
  readonly accelerationMaxMPerS2?: ModeLimit;
  /** Compared with the tool force the state reports. */
  readonly forceMaxN?: ModeLimit;
  /** The tool axis must stay within maxAngleRad of `axis` (a unit vector in the cell frame) along the whole path. */
  readonly orientation?: { readonly axis: Vec3; readonly maxAngleRad: number };
  /** Compared with the command's payloadKg and with the payload the state reports. */
  readonly payloadMaxKg?: number;
}

/** A half-space: every point p with (p - point) . normal <= 0 is inside it (normal is a unit vector pointing out of it). */
export interface PlaneShape {
  readonly type: 'plane';
  readonly point: Vec3;
  readonly normal: Vec3;
}

export type ArmZoneShape = ZoneShape | PlaneShape;

export interface ArmZone {
  readonly id: string;
  readonly shape: ArmZoneShape;
}

/** A point of the arm that workspace checks follow: the origin of DH frame `index` (0..n), or the TCP (index n + 1). */
export interface ArmBodyPoint {
  readonly name: string;
  readonly index: number;
}

export interface ArmWorkspace {
  /** The largest distance any checked body point may move between two path samples. */
  readonly resolutionM: number;
  /** Clearance every checked body point keeps from keep-out zones and keep-in boundaries. */
  readonly marginM: number;
  readonly bodyPoints: readonly ArmBodyPoint[];
  /** Each checked body point must be inside at least one of these (empty: no keep-in check). */
  readonly keepIn: readonly Zone[];
  readonly keepOut: readonly ArmZone[];
}

export const ARM_MEASUREMENTS = ['effortsNm', 'toolForceN', 'payloadKg'] as const;
export type ArmMeasurement = (typeof ARM_MEASUREMENTS)[number];

export interface ArmDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'robot_arm';
  readonly joints: readonly ArmJointLimits[];
  /** Absent: only joint-space checks are possible; workspace, TCP speed and move_linear are then denied or unknown. */
  readonly kinematics?: ArmKinematics;
  readonly tcp: ArmTcpLimits;
  readonly workspace?: ArmWorkspace;
  /** The largest displacement of any joint from its state position, anywhere along a commanded path. */
  readonly maxStepRad?: ModeLimit;
  /** State fields that must be present for any motion to be allowed. */
  readonly stateMustReport: readonly ArmMeasurement[];
}

export interface ArmState {
  readonly kind: 'robot_arm';
  readonly positionsRad: readonly number[];
  readonly velocitiesRadPerS?: readonly number[];
  readonly moving?: boolean;
  readonly safeStopped?: boolean;
  readonly lastCommandId?: string | null;
  /** Measured joint torques (signed), one per joint. */
  readonly effortsNm?: readonly number[];
  /** Magnitude of the external force measured at the tool. */
  readonly toolForceN?: number;
  /** The payload the arm currently carries (configured or estimated by its controller). */
  readonly payloadKg?: number;
}

/** move_joints: straight line in joint space from the state position, all joints arriving together. */
export interface ArmMoveJoints {
  readonly positionsRad: readonly number[];
  /** The leading joint's speed (the joint with the largest travel); the others move proportionally slower. */
  readonly velocityRadPerS: number;
  readonly accelerationRadPerS2?: number;
  readonly payloadKg?: number;
}

/** move_linear: the TCP on a straight line from where it is to positionM (cell frame), keeping its orientation. */
export interface ArmMoveLinear {
  readonly positionM: readonly number[];
  readonly speedMPerS: number;
  readonly accelerationMPerS2?: number;
  readonly payloadKg?: number;
}

export const ROBOT_ARM_REASONS = {
  BOUNDS_JOINT_COUNT: {
    stage: 'bounds',
    summary: 'The command gives a different number of joint targets than the arm declares joints.',
  },
  BOUNDS_JOINT_POSITION: {
    stage: 'bounds',
    summary: 'A joint target, or a joint position anywhere along a linear move, lies outside the joint\'s declared position range.',
  },
  BOUNDS_JOINT_VELOCITY: {
    stage: 'bounds',
    summary: 'The commanded joint velocity, or the joint velocity a linear move needs, exceeds a joint\'s velocity limit in the current mode.',
  },
  BOUNDS_JOINT_ACCELERATION: {
    stage: 'bounds',
    summary: 'The commanded joint acceleration, or one a linear move needs, exceeds a joint\'s acceleration limit in the current mode (or none is declared).',
  },
  BOUNDS_JOINT_EFFORT: {
    stage: 'bounds',
    summary: 'A joint torque reported in the arm\'s state exceeds its effort limit, so no new motion is started.',
  },
  BOUNDS_JOINT_STEP: {
    stage: 'bounds',
    summary: 'A joint would move farther from its current state position than the arm\'s maximum step per command.',
  },
  BOUNDS_TCP_SPEED: {
    stage: 'bounds',
    summary: 'The tool (TCP) speed somewhere along the path exceeds the TCP speed limit in the current mode.',
  },
  BOUNDS_TCP_ACCELERATION: {
    stage: 'bounds',
    summary: 'The commanded TCP acceleration of a linear move exceeds the TCP acceleration limit in the current mode (or none is declared).',
  },
  BOUNDS_TCP_FORCE: {
    stage: 'bounds',
    summary: 'The tool force reported in the arm\'s state exceeds the TCP force limit in the current mode, so no new motion is started.',
  },
  BOUNDS_TCP_ORIENTATION: {
    stage: 'bounds',
    summary: 'Somewhere along the path the tool axis leaves the declared orientation cone.',
  },
  BOUNDS_PAYLOAD: {
    stage: 'bounds',
    summary: 'The payload given in the command or reported in the state exceeds the arm\'s payload limit.',
  },
  BOUNDS_KEEP_IN: {
    stage: 'bounds',
    summary: 'Somewhere along the path a checked body point of the arm leaves its keep-in workspace (with the required clearance).',
  },
  BOUNDS_KEEP_OUT: {
    stage: 'bounds',
    summary: 'Somewhere along the path a checked body point of the arm enters a keep-out zone or plane (or comes closer than the required clearance).',
  },
  BOUNDS_IK_UNREACHABLE: {
    stage: 'bounds',
    summary: 'A linear move cannot be followed: inverse kinematics did not converge at some point of the straight line (unreachable or singular).',
  },
  BOUNDS_ARM_PATH_TOO_LONG: {
    stage: 'bounds',
    summary: 'The path needs more samples at the declared resolution than the checker allows; split the move.',
  },
  BOUNDS_ARM_MEASUREMENT_MISSING: {
    stage: 'bounds',
    summary: 'The arm\'s state lacks a measurement (efforts, tool force, payload) that its declaration requires for motion.',
  },
  BOUNDS_ARM_RUN_OUT_UNBOUNDED: {
    stage: 'bounds',
    summary: 'The arm is moving and how far it runs on before the command takes effect cannot be bounded (a moving joint declares no acceleration to brake with), so its path cannot be checked.',
  },
} as const satisfies Record<string, ReasonSpec>;

// ---- schema ----

const vec3Schema = { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number' } } as const;

function unitSchema(dimension: Dimension): Record<string, unknown> {
  return { enum: unitsOf(dimension), description: `A ${dimension} unit: ${unitsOf(dimension).join(', ')}.` };
}

/** `{ max, unit }`: a limit that does not depend on the mode. */
function maxSchema(dimension: Dimension, description: string): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    required: ['max', 'unit'],
    properties: { max: { type: 'number', exclusiveMinimum: 0 }, unit: unitSchema(dimension) },
  };
}

const DH_ROW_SCHEMA = {
  type: 'object',
  description: 'Standard DH row: A = Rz(theta + q) Tz(d) Tx(a) Rx(alpha).',
  additionalProperties: false,
  required: ['joint', 'a', 'd', 'alpha'],
  properties: {
    joint: { ...IDENTIFIER_SCHEMA, description: 'The joint this row belongs to; rows are in joint order.' },
    a: { type: 'number', description: 'Link length (lengthUnit).' },
    d: { type: 'number', description: 'Link offset (lengthUnit).' },
    alpha: { type: 'number', description: 'Link twist (angleUnit).' },
    theta: { type: 'number', description: 'Joint angle offset added to the joint position (angleUnit); default 0.' },
  },
} as const;

const PLANE_SCHEMA = {
  type: 'object',
  description: 'A half-space: the side of the plane through `point` that `normal` points away from is keep-out.',
  additionalProperties: false,
  required: ['point', 'normal', 'unit'],
  properties: {
    point: vec3Schema,
    normal: { ...vec3Schema, description: 'Points out of the keep-out half-space, toward where the arm may be (any length but 0).' },
    unit: unitSchema('length'),
  },
} as const;

const KEEP_OUT_SCHEMA = {
  type: 'object',
  description: 'A region no checked body point may enter: a box, sphere, floor polygon (prism) or plane (half-space).',
  additionalProperties: false,
  required: ['id'],
  properties: { id: IDENTIFIER_SCHEMA, description: { type: 'string' }, ...zoneShapeProperties(), plane: PLANE_SCHEMA },
  oneOf: ['box', 'sphere', 'polygon', 'plane'].map((shape) => ({ required: [shape], properties: { [shape]: true } })),
} as const;

const JOINT_DYNAMICS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['acceleration', 'effort'],
  properties: {
    acceleration: modeLimitSchema('angularAcceleration', 'Largest allowed joint acceleration (inclusive).'),
    effort: modeLimitSchema('torque', 'Largest joint torque the state may report before new motion is refused (inclusive).'),
  },
} as const;

const DEVICE_PROPERTIES = {
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
  jointDynamics: {
    type: 'object',
    description: 'Acceleration and effort limits by joint name; when present, every joint is listed.',
    propertyNames: IDENTIFIER_SCHEMA,
    additionalProperties: JOINT_DYNAMICS_SCHEMA,
  },
  kinematics: {
    type: 'object',
    description: 'The kinematic chain (standard DH), where the base sits in the cell, and the tool centre point.',
    additionalProperties: false,
    required: ['dh', 'base', 'tool'],
    properties: {
      dh: {
        type: 'object',
        additionalProperties: false,
        required: ['lengthUnit', 'angleUnit', 'rows'],
        properties: {
          lengthUnit: unitSchema('length'),
          angleUnit: unitSchema('angle'),
          rows: { type: 'array', minItems: 1, maxItems: 16, items: DH_ROW_SCHEMA },
        },
      },
      base: {
        type: 'object',
        description: 'The base frame in the cell frame: a position and a turn (yaw) about the cell\'s vertical axis.',
        additionalProperties: false,
        required: ['position', 'unit', 'yaw'],
        properties: { position: vec3Schema, unit: unitSchema('length'), yaw: quantitySchema('angle', 'Base rotation about the cell z axis.') },
      },
      tool: {
        type: 'object',
        description: 'The tool centre point in the flange frame; the tool axis is the flange z axis.',
        additionalProperties: false,
        required: ['offset', 'unit'],
        properties: { offset: vec3Schema, unit: unitSchema('length') },
      },
    },
  },
  tcp: {
    type: 'object',
    description: 'Limits on the tool: speed, acceleration, force, orientation cone, payload.',
    additionalProperties: false,
    properties: {
      speed: modeLimitSchema('linearVelocity', 'Largest TCP speed anywhere along a path (inclusive).'),
      acceleration: modeLimitSchema('linearAcceleration', 'Largest TCP acceleration a linear move may ask for (inclusive).'),
      force: modeLimitSchema('force', 'Largest tool force the state may report before new motion is refused (inclusive).'),
      orientation: {
        type: 'object',
        description: 'The tool axis must stay within maxAngle of axis (cell frame) along the whole path.',
        additionalProperties: false,
        required: ['axis', 'maxAngle'],
        properties: { axis: vec3Schema, maxAngle: quantitySchema('angle', 'Half-angle of the cone (inclusive).', { exclusiveMinimum: 0 }) },
      },
      payload: maxSchema('mass', 'Largest payload (inclusive), from the command or the state.'),
    },
  },
  workspace: {
    type: 'object',
    description: 'Where the arm\'s body may be: checked at every sample of the swept path.',
    additionalProperties: false,
    required: ['resolution', 'bodyPoints'],
    properties: {
      resolution: quantitySchema('length', 'Largest distance any checked body point moves between two path samples.', { exclusiveMinimum: 0 }),
      margin: quantitySchema('length', 'Clearance every checked point keeps from keep-out zones and keep-in boundaries; default 0.', { minimum: 0 }),
      bodyPoints: {
        type: 'array',
        minItems: 1,
        maxItems: 18,
        uniqueItems: true,
        description: 'Checked points: a joint name (the point on that joint\'s axis, DH frame origin), "flange" or "tcp" (required).',
        items: IDENTIFIER_SCHEMA,
      },
      keepIn: { type: 'array', maxItems: 64, description: 'Every checked point must be inside at least one of these.', items: zoneSchema('A keep-in region.') },
      keepOut: { type: 'array', maxItems: 64, items: KEEP_OUT_SCHEMA },
    },
  },
  maxStep: modeLimitSchema('angle', 'Largest displacement of any joint from its state position along one command (inclusive).'),
  stateMustReport: {
    type: 'array',
    uniqueItems: true,
    description: 'State fields that must be present for motion. Default: those a declared bound reads (efforts, tool force, payload).',
    items: { enum: [...ARM_MEASUREMENTS] },
  },
} as const;

// ---- conversion ----

interface RawJoint {
  readonly name: string;
  readonly position: RawRange;
  readonly velocity: RawModeLimit;
}

interface RawArm {
  readonly joints: RawJoint[];
  readonly jointDynamics?: Record<string, { acceleration: RawModeLimit; effort: RawModeLimit }>;
  readonly kinematics?: {
    readonly dh: { lengthUnit: string; angleUnit: string; rows: { joint: string; a: number; d: number; alpha: number; theta?: number }[] };
    readonly base: { position: number[]; unit: string; yaw: RawQuantity };
    readonly tool: { offset: number[]; unit: string };
  };
  readonly tcp?: {
    readonly speed?: RawModeLimit;
    readonly acceleration?: RawModeLimit;
    readonly force?: RawModeLimit;
    readonly orientation?: { axis: number[]; maxAngle: RawQuantity };
    readonly payload?: { max: number; unit: string };
  };
  readonly workspace?: {
    readonly resolution: RawQuantity;
    readonly margin?: RawQuantity;
    readonly bodyPoints: string[];
    readonly keepIn?: RawZone[];
    readonly keepOut?: (RawZone & { plane?: { point: number[]; normal: number[]; unit: string } })[];
  };
  readonly maxStep?: RawModeLimit;
  readonly stateMustReport?: ArmMeasurement[];
}

function vec3(values: readonly number[], unit: string): Vec3 {
  return [convertUnit('length', values[0] as number, unit), convertUnit('length', values[1] as number, unit), convertUnit('length', values[2] as number, unit)];
}

/** The unit vector along `v`, or undefined when v has (nearly) no length. */
function unitVector(v: readonly number[]): Vec3 | undefined {
  const [x, y, z] = [v[0] as number, v[1] as number, v[2] as number];
  const length = Math.hypot(x, y, z);
  // SAFETY: a zero or non-finite direction cannot define a plane or a cone; written so NaN is refused too.
  if (!(length > 1e-9 && Number.isFinite(length))) return undefined;
  return [x / length, y / length, z / length];
}

function convertKinematics(raw: NonNullable<RawArm['kinematics']>, joints: readonly RawJoint[], issues: ConvertIssue[]): ArmKinematics {
  const { lengthUnit, angleUnit, rows } = raw.dh;
  if (rows.length !== joints.length) issues.push({ path: '/kinematics/dh/rows', message: `${rows.length} DH rows for ${joints.length} joints` });
  rows.forEach((row, i) => {
    const joint = joints[i];
    if (joint !== undefined && row.joint !== joint.name) {
      issues.push({ path: `/kinematics/dh/rows/${i}/joint`, message: `row ${i} is for "${row.joint}", joint ${i} is "${joint.name}" (rows follow joint order)` });
    }
  });
  const dh = rows.map(
    (row): DhRow => ({
      aM: convertUnit('length', row.a, lengthUnit),
      dM: convertUnit('length', row.d, lengthUnit),
      alphaRad: convertUnit('angle', row.alpha, angleUnit),
      thetaOffsetRad: convertUnit('angle', row.theta ?? 0, angleUnit),
    }),
  );
  return {
    dh,
    basePositionM: vec3(raw.base.position, raw.base.unit),
    baseYawRad: convertQuantity('angle', raw.base.yaw),
    toolOffsetM: vec3(raw.tool.offset, raw.tool.unit),
  };
}

function convertTcp(raw: NonNullable<RawArm['tcp']>, issues: ConvertIssue[]): ArmTcpLimits {
  const tcp: { -readonly [K in keyof ArmTcpLimits]: ArmTcpLimits[K] } = {};
  if (raw.speed !== undefined) tcp.speedMaxMPerS = convertModeLimit('linearVelocity', raw.speed, '/tcp/speed', issues);
  if (raw.acceleration !== undefined) tcp.accelerationMaxMPerS2 = convertModeLimit('linearAcceleration', raw.acceleration, '/tcp/acceleration', issues);
  if (raw.force !== undefined) tcp.forceMaxN = convertModeLimit('force', raw.force, '/tcp/force', issues);
  if (raw.orientation !== undefined) {
    const axis = unitVector(raw.orientation.axis);
    if (axis === undefined) issues.push({ path: '/tcp/orientation/axis', message: 'the axis has no length' });
    const maxAngleRad = convertQuantity('angle', raw.orientation.maxAngle);
    // A cone of pi or more allows every direction: almost certainly degrees written as radians or a typo.
    if (!(maxAngleRad < Math.PI)) issues.push({ path: '/tcp/orientation/maxAngle', message: 'the cone must be narrower than 180 degrees' });
    tcp.orientation = { axis: axis ?? [0, 0, 1], maxAngleRad };
  }
  if (raw.payload !== undefined) tcp.payloadMaxKg = convertUnit('mass', raw.payload.max, raw.payload.unit);
  return tcp;
}

/** Body point names: each joint (the origin of the DH frame on its axis), the flange, the TCP. */
function bodyPointIndex(name: string, joints: readonly RawJoint[]): number | undefined {
  if (name === 'flange') return joints.length;
  if (name === 'tcp') return joints.length + 1;
  const index = joints.findIndex((j) => j.name === name);
  return index < 0 ? undefined : index;
}

function convertWorkspace(raw: NonNullable<RawArm['workspace']>, joints: readonly RawJoint[], issues: ConvertIssue[]): ArmWorkspace {
  const resolutionM = convertQuantity('length', raw.resolution);
  const marginM = raw.margin === undefined ? 0 : convertQuantity('length', raw.margin);
  const bodyPoints: ArmBodyPoint[] = [];
  raw.bodyPoints.forEach((name, i) => {
    const index = bodyPointIndex(name, joints);
    if (index === undefined) issues.push({ path: `/workspace/bodyPoints/${i}`, message: `"${name}" is not a joint name, "flange" or "tcp"` });
    else bodyPoints.push({ name, index });
  });
  if (!raw.bodyPoints.includes('tcp')) issues.push({ path: '/workspace/bodyPoints', message: 'the tcp must be one of the checked body points' });
  const ids = new Set<string>();
  const seen = (id: string, path: string): void => {
    if (ids.has(id)) issues.push({ path, message: `zone id "${id}" is used twice in the workspace` });
    ids.add(id);
  };
  // The clearance the checks apply: margin plus half the resolution (a point between two samples is never farther
  // than that from one of them). A keep-in zone thinner than twice that could never hold the arm.
  const clearanceM = marginM + resolutionM / 2;
  const keepIn = (raw.keepIn ?? []).map((zone, i) => {
    seen(zone.id, `/workspace/keepIn/${i}/id`);
    const converted = convertZone(zone, `/workspace/keepIn/${i}`, issues);
    const shape = converted.shape;
    const tooSmall =
      (shape.type === 'box' && shape.min.some((lo, k) => !((shape.max[k] as number) - lo > 2 * clearanceM))) ||
      (shape.type === 'sphere' && !(shape.radiusM > clearanceM)) ||
      (shape.type === 'prism' && !(shape.zMaxM - shape.zMinM > 2 * clearanceM));
    if (tooSmall) issues.push({ path: `/workspace/keepIn/${i}`, message: `the zone is too small to hold a point with ${clearanceM} m clearance (margin + resolution / 2)` });
    return converted;
  });
  const keepOut = (raw.keepOut ?? []).map((zone, i): ArmZone => {
    seen(zone.id, `/workspace/keepOut/${i}/id`);
    if (zone.plane !== undefined) {
      const normal = unitVector(zone.plane.normal);
      if (normal === undefined) issues.push({ path: `/workspace/keepOut/${i}/plane/normal`, message: 'the normal has no length' });
      return { id: zone.id, shape: { type: 'plane', point: vec3(zone.plane.point, zone.plane.unit), normal: normal ?? [0, 0, 1] } };
    }
    return convertZone(zone, `/workspace/keepOut/${i}`, issues);
  });
  return { resolutionM, marginM, bodyPoints, keepIn, keepOut };
}

function convertArm(rawDevice: Readonly<Record<string, unknown>>, common: CommonDeviceDeclaration): ConvertResult<ArmDeclaration> {
  const raw = rawDevice as unknown as RawArm;
  const issues: ConvertIssue[] = [];
  const names = new Set<string>();
  const dynamics = raw.jointDynamics;
  if (dynamics !== undefined) {
    for (const name of Object.keys(dynamics)) {
      if (!raw.joints.some((j) => j.name === name)) issues.push({ path: `/jointDynamics/${name}`, message: `no joint "${name}" is declared` });
    }
  }
  const joints = raw.joints.map((joint, index): ArmJointLimits => {
    if (names.has(joint.name)) issues.push({ path: `/joints/${index}/name`, message: `joint name "${joint.name}" is used twice` });
    names.add(joint.name);
    const position = convertRange('angle', joint.position, `/joints/${index}/position`, issues);
    const limits: ArmJointLimits = {
      name: joint.name,
      positionMinRad: position.min,
      positionMaxRad: position.max,
      velocityMaxRadPerS: convertModeLimit('angularVelocity', joint.velocity, `/joints/${index}/velocity`, issues),
    };
    if (dynamics === undefined) return limits;
    const own = Object.hasOwn(dynamics, joint.name) ? dynamics[joint.name] : undefined;
    // SAFETY: a joint left out of the table would silently have no acceleration or effort limit.
    if (own === undefined) {
      issues.push({ path: '/jointDynamics', message: `joint "${joint.name}" is not listed (list every joint)` });
      return limits;
    }
    return {
      ...limits,
      accelerationMaxRadPerS2: convertModeLimit('angularAcceleration', own.acceleration, `/jointDynamics/${joint.name}/acceleration`, issues),
      effortMaxNm: convertModeLimit('torque', own.effort, `/jointDynamics/${joint.name}/effort`, issues),
    };
  });
  const kinematics = raw.kinematics === undefined ? undefined : convertKinematics(raw.kinematics, raw.joints, issues);
  const tcp = raw.tcp === undefined ? {} : convertTcp(raw.tcp, issues);
  const workspace = raw.workspace === undefined ? undefined : convertWorkspace(raw.workspace, raw.joints, issues);
  if (kinematics === undefined) {
    // Without a kinematic chain the tool's place is unknown: bounds that need it cannot be checked, so refuse them.
    if (workspace !== undefined) issues.push({ path: '/workspace', message: 'a workspace needs kinematics (the tool position is computed from the DH chain)' });
    if (tcp.speedMaxMPerS !== undefined) issues.push({ path: '/tcp/speed', message: 'a TCP speed limit needs kinematics' });
    if (tcp.orientation !== undefined) issues.push({ path: '/tcp/orientation', message: 'a TCP orientation cone needs kinematics' });
  }
  const maxStepRad = raw.maxStep === undefined ? undefined : convertModeLimit('angle', raw.maxStep, '/maxStep', issues);
  // SAFETY: by default every measurement a declared bound reads must be reported; a declaration may relax this
  // only explicitly (stateMustReport), so that a driver that stops sending efforts cannot silently skip a check.
  const stateMustReport =
    raw.stateMustReport ??
    ARM_MEASUREMENTS.filter(
      (m) =>
        (m === 'effortsNm' && joints.some((j) => j.effortMaxNm !== undefined)) ||
        (m === 'toolForceN' && tcp.forceMaxN !== undefined) ||
        (m === 'payloadKg' && tcp.payloadMaxKg !== undefined),
    );
  const device: ArmDeclaration = {
    ...common,
    kind: 'robot_arm',
    joints,
    tcp,
    stateMustReport,
    ...(kinematics === undefined ? {} : { kinematics }),
    ...(workspace === undefined ? {} : { workspace }),
    ...(maxStepRad === undefined ? {} : { maxStepRad }),
  };
  return issues.length > 0 ? { ok: false, issues } : { ok: true, device };
}

function numbersOfLength(message: Readonly<Record<string, unknown>>, field: string, length: number): string | undefined {
  const values = message[field];
  if (values === undefined) return undefined;
  const list = values as number[];
  return list.length === length ? undefined : `state gives ${list.length} ${field}, the arm has ${length} joints`;
}

const PAYLOAD_SCHEMA = { type: 'number', minimum: 0, description: 'The payload carried during the move (kg); checked against tcp.payload.' } as const;

export const ROBOT_ARM: KindSpec<ArmDeclaration, ArmState> = {
  // An arm with kinematics knows where its body is, so it can take part in shared zones.
  occupiesZones: true,
  kind: 'robot_arm',
  deviceProperties: DEVICE_PROPERTIES,
  deviceRequired: ['joints'],
  convert: convertArm,
  stateProperties: {
    positionsRad: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'number' } },
    velocitiesRadPerS: { type: 'array', maxItems: 16, items: { type: 'number' } },
    moving: { type: 'boolean' },
    safeStopped: { type: 'boolean' },
    lastCommandId: { type: ['string', 'null'], maxLength: 128 },
    effortsNm: { type: 'array', maxItems: 16, items: { type: 'number' } },
    toolForceN: { type: 'number', minimum: 0 },
    payloadKg: { type: 'number', minimum: 0 },
  },
  stateRequired: ['positionsRad'],
  toState(device, message) {
    const positions = message['positionsRad'] as number[];
    const count = device.joints.length;
    if (positions.length !== count) {
      return { ok: false, problem: `state gives ${positions.length} joint positions, ${device.id} has ${count}` };
    }
    for (const field of ['velocitiesRadPerS', 'effortsNm']) {
      const problem = numbersOfLength(message, field, count);
      if (problem !== undefined) return { ok: false, problem };
    }
    const state: { -readonly [K in keyof ArmState]: ArmState[K] } = { kind: 'robot_arm', positionsRad: [...positions] };
    if (message['velocitiesRadPerS'] !== undefined) state.velocitiesRadPerS = [...(message['velocitiesRadPerS'] as number[])];
    if (message['effortsNm'] !== undefined) state.effortsNm = [...(message['effortsNm'] as number[])];
    if (typeof message['moving'] === 'boolean') state.moving = message['moving'];
    if (typeof message['safeStopped'] === 'boolean') state.safeStopped = message['safeStopped'];
    if (message['lastCommandId'] !== undefined) state.lastCommandId = message['lastCommandId'] as string | null;
    if (typeof message['toolForceN'] === 'number') state.toolForceN = message['toolForceN'];
    if (typeof message['payloadKg'] === 'number') state.payloadKg = message['payloadKg'];
    return { ok: true, state };
  },
  actions: {
    move_joints: {
      safeState: false,
      summary: 'Move all joints to target positions on a straight joint-space line, synchronised, the leading joint at velocityRadPerS.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['positionsRad', 'velocityRadPerS'],
        properties: {
          positionsRad: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'number' } },
          velocityRadPerS: { type: 'number', exclusiveMinimum: 0 },
          accelerationRadPerS2: { type: 'number', exclusiveMinimum: 0 },
          payloadKg: PAYLOAD_SCHEMA,
        },
      },
    },
    move_linear: {
      safeState: false,
      summary: 'Move the TCP on a straight line to positionM (cell frame, metres) at speedMPerS, keeping the tool orientation.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['positionM', 'speedMPerS'],
        properties: {
          positionM: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number' } },
          speedMPerS: { type: 'number', exclusiveMinimum: 0 },
          accelerationMPerS2: { type: 'number', exclusiveMinimum: 0 },
          payloadKg: PAYLOAD_SCHEMA,
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
