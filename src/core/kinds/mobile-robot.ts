// The mobile_robot kind (an AMR on the floor, checked as a disc): declaration, state and command shapes, and unit
// conversion to SI. Pure data; it never decides whether a command is safe (src/bounds/mobile-robot-bounds.ts does).

import type { ReasonSpec } from '../reasons-spec.js';
import { convertUnit, unitsOf } from '../units.js';
import type { Vec2 } from '../zones.js';
import {
  convertModeLimit,
  convertQuantity,
  IDENTIFIER_SCHEMA,
  modeLimitSchema,
  quantitySchema,
  type CommonDeviceDeclaration,
  type ConvertIssue,
  type KindSpec,
  type ModeLimit,
  type RawModeLimit,
  type RawQuantity,
} from './kind-spec.js';

/** A floor polygon in the cell frame (metres); the robot's footprint may never touch it. */
export interface KeepOutArea {
  readonly id: string;
  readonly polygon: readonly Vec2[];
}

/** A floor polygon with a speed limit: a robot whose footprint touches it may not be commanded faster. */
export interface SpeedZone {
  readonly id: string;
  readonly polygon: readonly Vec2[];
  readonly maxSpeedMPerS: ModeLimit;
}

/** How the robot comes to a stop: a guaranteed braking deceleration, or a worst-case stopping time. */
export type StoppingDeclaration =
  | { readonly kind: 'deceleration'; readonly decelerationMPerS2: number }
  | { readonly kind: 'time'; readonly stoppingTimeMs: number };

/** ISO/TS 15066 speed-and-separation parameters (S_p = S_h + S_r + S_s + C + Z_d + Z_r). */
export interface SeparationDeclaration {
  /** v_h: how fast a person may approach. */
  readonly humanSpeedMPerS: number;
  /** T_r: from a person being detected to the robot starting to stop. */
  readonly reactionTimeMs: number;
  readonly stopping: StoppingDeclaration;
  /** C: how far a body part may reach into the sensing field before it is detected. */
  readonly intrusionDistanceM: number;
  /** Z_d: uncertainty of the reported person positions. */
  readonly sensorUncertaintyM: number;
  /** Z_r: uncertainty of the robot's own position (localization). */
  readonly positionUncertaintyM: number;
}

export interface MobileRobotLimits {
  readonly linearSpeedMPerS: ModeLimit;
  readonly angularSpeedRadPerS: ModeLimit;
  readonly linearAccelerationMPerS2: ModeLimit;
  readonly angularAccelerationRadPerS2: ModeLimit;
  /** The farthest any go_to target or path waypoint may lie from the pose in the current state. */
  readonly maxGoalDistanceM: number;
  readonly maxWaypoints: number;
  /** The longest durationMs a set_velocity may ask for (a velocity command always ends). */
  readonly maxVelocityDurationMs: number;
}

export interface MobileRobotDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'mobile_robot';
  /** The robot is checked as a disc of this radius around its pose (include a margin for tracking error). */
  readonly footprintRadiusM: number;
  readonly limits: MobileRobotLimits;
  readonly keepOut: readonly KeepOutArea[];
  readonly speedZones: readonly SpeedZone[];
  readonly separation: SeparationDeclaration;
  /** Localization must report ok and an age (time since the last good fix) no greater than this. */
  readonly localization: { readonly maxAgeMs: number };
}

export interface MobileRobotPose {
  readonly xM: number;
  readonly yM: number;
  readonly yawRad: number;
}

export interface MobileRobotState {
  readonly kind: 'mobile_robot';
  readonly pose: MobileRobotPose;
  readonly velocity: { readonly linearMPerS: number; readonly angularRadPerS: number };
  /** Absent when the robot did not report it: then localization is not known to be valid. */
  readonly localization?: { readonly ok: boolean; readonly ageMs?: number };
  readonly moving: boolean;
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
}

/** set_velocity: drive at this twist for durationMs, then stop (ramps no steeper than the accelerations). */
export interface SetVelocityParams {
  readonly linearMPerS: number;
  readonly angularRadPerS: number;
  readonly durationMs: number;
  readonly accelerationMPerS2?: number;
  readonly angularAccelerationRadPerS2?: number;
}

export interface GoToParams {
  readonly xM: number;
  readonly yM: number;
  readonly yawRad?: number;
  readonly speedMPerS: number;
  readonly accelerationMPerS2?: number;
}

export interface FollowPathParams {
  readonly waypoints: readonly (readonly number[])[];
  readonly speedMPerS: number;
  readonly accelerationMPerS2?: number;
}

/** Schema caps; the device's own maxWaypoints is checked by the bounds with a reason. */
export const MAX_PATH_WAYPOINTS = 1000;

export const MOBILE_ROBOT_REASONS = {
  BOUNDS_BASE_SPEED: {
    stage: 'bounds',
    summary: 'The commanded linear speed of the mobile base is not a number in the allowed range or exceeds its limit in the current mode.',
  },
  BOUNDS_BASE_TURN_RATE: {
    stage: 'bounds',
    summary: 'The commanded angular speed of the mobile base exceeds its limit in the current mode (or is not a finite number).',
  },
  BOUNDS_BASE_ACCELERATION: {
    stage: 'bounds',
    summary: 'The commanded linear or angular acceleration of the mobile base is not positive or exceeds its limit in the current mode.',
  },
  BOUNDS_VELOCITY_DURATION: {
    stage: 'bounds',
    summary: 'A set_velocity asks to drive for longer than the declared maxVelocityDuration (or for no positive, finite time).',
  },
  BOUNDS_BASE_TARGET_INVALID: {
    stage: 'bounds',
    summary: 'A go_to target, heading or path waypoint is not a pair of finite numbers, or the path is empty.',
  },
  BOUNDS_GOAL_TOO_FAR: {
    stage: 'bounds',
    summary: 'A go_to target or path waypoint lies farther from the robot\'s current pose than the declared maxGoalDistance.',
  },
  BOUNDS_PATH_TOO_LONG: {
    stage: 'bounds',
    summary: 'A follow_path has more waypoints than the declared maxWaypoints.',
  },
  BOUNDS_KEEP_OUT_AREA: {
    stage: 'bounds',
    summary: 'The robot\'s footprint would touch a declared keep-out floor polygon somewhere along the commanded motion.',
  },
  BOUNDS_SPEED_ZONE: {
    stage: 'bounds',
    summary: 'The commanded speed exceeds the limit of a speed zone that the robot\'s footprint would touch along the motion.',
  },
  BOUNDS_SEPARATION: {
    stage: 'bounds',
    summary: 'A reported person is closer to the robot\'s footprint along the motion than the protective separation distance S_p for its speed.',
  },
  BOUNDS_PEOPLE_UNKNOWN: {
    stage: 'bounds',
    summary: 'The positions of people in the cell are unknown (source missing or stale), so a moving command cannot be proven to keep its separation.',
  },
  BOUNDS_LOCALIZATION: {
    stage: 'bounds',
    summary: 'The robot does not report valid localization (missing, not ok, no age, or older than the declared maximum), so its pose cannot be trusted.',
  },
} as const satisfies Record<string, ReasonSpec>;

// ---- Declaration schema ----

const LENGTH_UNIT = { enum: unitsOf('length'), description: `A length unit: ${unitsOf('length').join(', ')}.` };

function floorPolygonSchema(description: string): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    required: ['points', 'unit'],
    properties: {
      points: { type: 'array', minItems: 3, maxItems: 64, items: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'number' } } },
      unit: LENGTH_UNIT,
    },
  };
}

const SEPARATION_SCHEMA = {
  type: 'object',
  description:
    'Speed and separation monitoring (ISO/TS 15066): every reported person must stay at least S_p = S_h + S_r + S_s + C + Z_d + Z_r from the footprint along the motion. Give exactly one of brakingDeceleration and stoppingTime.',
  additionalProperties: false,
  required: ['humanSpeed', 'reactionTime', 'intrusionDistance', 'sensorUncertainty', 'positionUncertainty'],
  properties: {
    humanSpeed: quantitySchema('linearVelocity', 'v_h: approach speed of a person; at least 1.6 m/s (ISO/TS 15066, ISO 13855).', { exclusiveMinimum: 0 }),
    reactionTime: quantitySchema('duration', 'T_r: from detection to the start of braking.', { minimum: 0 }),
    brakingDeceleration: quantitySchema('linearAcceleration', 'Guaranteed braking deceleration: S_s = v^2 / 2a, T_s = v / a.', { exclusiveMinimum: 0 }),
    stoppingTime: quantitySchema('duration', 'Worst-case stopping time T_s: S_s = v * T_s (no credit for braking).', { exclusiveMinimum: 0 }),
    intrusionDistance: quantitySchema('length', 'C: intrusion distance before detection.', { minimum: 0 }),
    sensorUncertainty: quantitySchema('length', 'Z_d: uncertainty of the reported person positions.', { minimum: 0 }),
    positionUncertainty: quantitySchema('length', 'Z_r: uncertainty of the robot position.', { minimum: 0 }),
  },
  oneOf: ['brakingDeceleration', 'stoppingTime'].map((field) => ({ required: [field], properties: { [field]: true } })),
} as const;

const DEVICE_PROPERTIES = {
  footprint: {
    type: 'object',
    description: 'The robot is checked as a disc of this radius around its pose; include a margin for path-tracking error.',
    additionalProperties: false,
    required: ['radius', 'unit'],
    properties: { radius: { type: 'number', exclusiveMinimum: 0 }, unit: LENGTH_UNIT },
  },
  limits: {
    type: 'object',
    description: 'Base motion limits. A command exactly at a limit is allowed; anything beyond it is denied, never clamped.',
    additionalProperties: false,
    required: ['linearSpeed', 'angularSpeed', 'linearAcceleration', 'angularAcceleration', 'maxGoalDistance', 'maxWaypoints', 'maxVelocityDuration'],
    properties: {
      linearSpeed: modeLimitSchema('linearVelocity', 'Largest commanded linear speed (either direction).'),
      angularSpeed: modeLimitSchema('angularVelocity', 'Largest commanded turn rate (either direction).'),
      linearAcceleration: modeLimitSchema('linearAcceleration', 'Largest commanded linear acceleration.'),
      angularAcceleration: modeLimitSchema('angularAcceleration', 'Largest commanded angular acceleration.'),
      maxGoalDistance: quantitySchema('length', 'Max step per command: the farthest a go_to target or path waypoint may lie from the current pose.', {
        exclusiveMinimum: 0,
      }),
      maxWaypoints: { type: 'integer', minimum: 1, maximum: MAX_PATH_WAYPOINTS, description: 'Most waypoints a follow_path may carry.' },
      maxVelocityDuration: quantitySchema('duration', 'Longest durationMs a set_velocity may ask for.', { exclusiveMinimum: 0 }),
    },
  },
  keepOut: {
    type: 'array',
    maxItems: 64,
    description: 'Floor polygons the footprint may never touch, checked along every segment of the motion.',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'polygon'],
      properties: { id: IDENTIFIER_SCHEMA, description: { type: 'string' }, polygon: floorPolygonSchema('The keep-out area (x, y) in the cell frame.') },
    },
  },
  speedZones: {
    type: 'array',
    maxItems: 64,
    description: 'Floor polygons with a speed limit that applies whenever the footprint touches them.',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'polygon', 'maxSpeed'],
      properties: {
        id: IDENTIFIER_SCHEMA,
        description: { type: 'string' },
        polygon: floorPolygonSchema('The zone (x, y) in the cell frame.'),
        maxSpeed: modeLimitSchema('linearVelocity', 'Largest commanded speed while the footprint touches the zone.'),
      },
    },
  },
  separation: SEPARATION_SCHEMA,
  localization: {
    type: 'object',
    description: 'The state must report localization.ok = true and localization.ageMs no greater than maxAge; otherwise every motion is denied.',
    additionalProperties: false,
    required: ['maxAge'],
    properties: { maxAge: quantitySchema('duration', 'Oldest acceptable localization fix.', { exclusiveMinimum: 0 }) },
  },
} as const;

interface RawPolygon {
  readonly points: number[][];
  readonly unit: string;
}
interface RawArea {
  readonly id: string;
  readonly polygon: RawPolygon;
}
interface RawSpeedZone extends RawArea {
  readonly maxSpeed: RawModeLimit;
}
interface RawMobileRobot {
  readonly footprint: { readonly radius: number; readonly unit: string };
  readonly limits: {
    readonly linearSpeed: RawModeLimit;
    readonly angularSpeed: RawModeLimit;
    readonly linearAcceleration: RawModeLimit;
    readonly angularAcceleration: RawModeLimit;
    readonly maxGoalDistance: RawQuantity;
    readonly maxWaypoints: number;
    readonly maxVelocityDuration: RawQuantity;
  };
  readonly keepOut?: RawArea[];
  readonly speedZones?: RawSpeedZone[];
  readonly separation: {
    readonly humanSpeed: RawQuantity;
    readonly reactionTime: RawQuantity;
    readonly brakingDeceleration?: RawQuantity;
    readonly stoppingTime?: RawQuantity;
    readonly intrusionDistance: RawQuantity;
    readonly sensorUncertainty: RawQuantity;
    readonly positionUncertainty: RawQuantity;
  };
  readonly localization: { readonly maxAge: RawQuantity };
}

/** The lowest human approach speed ISO/TS 15066 (via ISO 13855) allows for separation distances. */
export const MIN_HUMAN_SPEED_M_PER_S = 1.6;

function crossProduct(o: Vec2, a: Vec2, b: Vec2): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

function properlyCross(a: Vec2, b: Vec2, c: Vec2, d: Vec2): boolean {
  const d1 = crossProduct(c, d, a);
  const d2 = crossProduct(c, d, b);
  const d3 = crossProduct(a, b, c);
  const d4 = crossProduct(a, b, d);
  return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0));
}

/** Converts a floor polygon; refuses shapes an operator cannot have meant (no area, repeated points, self-crossing). */
function convertPolygon(raw: RawPolygon, path: string, issues: ConvertIssue[]): Vec2[] {
  const points = raw.points.map(([x, y]) => [convertUnit('length', x as number, raw.unit), convertUnit('length', y as number, raw.unit)] as const);
  let area2 = 0;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const p = points[i] as Vec2;
    const q = points[j] as Vec2;
    area2 += (q[0] + p[0]) * (q[1] - p[1]);
    if (p[0] === q[0] && p[1] === q[1]) issues.push({ path: `${path}/points/${i}`, message: 'the same point is given twice in a row' });
  }
  if (!(Math.abs(area2) > 1e-12)) issues.push({ path: `${path}/points`, message: 'the polygon has no area' });
  // SAFETY: a self-crossing outline has no single inside; an operator drawing a bow-tie meant something else.
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let k = i + 2; k < n; k++) {
      if (i === 0 && k === n - 1) continue; // adjacent through the closing edge
      if (properlyCross(points[i] as Vec2, points[(i + 1) % n] as Vec2, points[k] as Vec2, points[(k + 1) % n] as Vec2)) {
        issues.push({ path: `${path}/points`, message: `edges ${i} and ${k} cross: the polygon must not intersect itself` });
      }
    }
  }
  return points;
}

function uniqueIds(items: readonly { id: string }[], section: string, issues: ConvertIssue[]): void {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (seen.has(item.id)) issues.push({ path: `/${section}/${index}/id`, message: `${section} id "${item.id}" is used twice` });
    seen.add(item.id);
  });
}

function convertMobileRobot(rawAny: Readonly<Record<string, unknown>>, common: CommonDeviceDeclaration): { ok: true; device: MobileRobotDeclaration } | { ok: false; issues: ConvertIssue[] } {
  const raw = rawAny as unknown as RawMobileRobot;
  const issues: ConvertIssue[] = [];
  const l = raw.limits;
  const limits: MobileRobotLimits = {
    linearSpeedMPerS: convertModeLimit('linearVelocity', l.linearSpeed, '/limits/linearSpeed', issues),
    angularSpeedRadPerS: convertModeLimit('angularVelocity', l.angularSpeed, '/limits/angularSpeed', issues),
    linearAccelerationMPerS2: convertModeLimit('linearAcceleration', l.linearAcceleration, '/limits/linearAcceleration', issues),
    angularAccelerationRadPerS2: convertModeLimit('angularAcceleration', l.angularAcceleration, '/limits/angularAcceleration', issues),
    maxGoalDistanceM: convertQuantity('length', l.maxGoalDistance),
    maxWaypoints: l.maxWaypoints,
    maxVelocityDurationMs: convertQuantity('duration', l.maxVelocityDuration),
  };
  const keepOutRaw = raw.keepOut ?? [];
  const speedZonesRaw = raw.speedZones ?? [];
  uniqueIds(keepOutRaw, 'keepOut', issues);
  uniqueIds(speedZonesRaw, 'speedZones', issues);
  const keepOut = keepOutRaw.map((area, i): KeepOutArea => ({ id: area.id, polygon: convertPolygon(area.polygon, `/keepOut/${i}/polygon`, issues) }));
  const speedZones = speedZonesRaw.map(
    (zone, i): SpeedZone => ({
      id: zone.id,
      polygon: convertPolygon(zone.polygon, `/speedZones/${i}/polygon`, issues),
      maxSpeedMPerS: convertModeLimit('linearVelocity', zone.maxSpeed, `/speedZones/${i}/maxSpeed`, issues),
    }),
  );
  const s = raw.separation;
  const humanSpeedMPerS = convertQuantity('linearVelocity', s.humanSpeed);
  // SAFETY: a slower assumed walker shrinks every separation distance; the standard's floor is 1.6 m/s.
  if (!(humanSpeedMPerS >= MIN_HUMAN_SPEED_M_PER_S)) {
    issues.push({ path: '/separation/humanSpeed', message: `must be at least ${MIN_HUMAN_SPEED_M_PER_S} m/s (ISO/TS 15066 human approach speed), got ${humanSpeedMPerS} m/s` });
  }
  const stopping: StoppingDeclaration =
    s.brakingDeceleration !== undefined
      ? { kind: 'deceleration', decelerationMPerS2: convertQuantity('linearAcceleration', s.brakingDeceleration) }
      : { kind: 'time', stoppingTimeMs: convertQuantity('duration', s.stoppingTime as RawQuantity) };
  const separation: SeparationDeclaration = {
    humanSpeedMPerS,
    reactionTimeMs: convertQuantity('duration', s.reactionTime),
    stopping,
    intrusionDistanceM: convertQuantity('length', s.intrusionDistance),
    sensorUncertaintyM: convertQuantity('length', s.sensorUncertainty),
    positionUncertaintyM: convertQuantity('length', s.positionUncertainty),
  };
  const device: MobileRobotDeclaration = {
    ...common,
    kind: 'mobile_robot',
    footprintRadiusM: convertUnit('length', raw.footprint.radius, raw.footprint.unit),
    limits,
    keepOut,
    speedZones,
    separation,
    localization: { maxAgeMs: convertQuantity('duration', raw.localization.maxAge) },
  };
  return issues.length > 0 ? { ok: false, issues } : { ok: true, device };
}

// ---- State and commands ----

const NUMBER = { type: 'number' } as const;

function toMobileRobotState(message: Readonly<Record<string, unknown>>): MobileRobotState {
  const pose = message['pose'] as MobileRobotPose;
  const velocity = message['velocity'] as { linearMPerS: number; angularRadPerS: number };
  const localization = message['localization'] as { ok: boolean; ageMs?: number } | undefined;
  const lastCommandId = message['lastCommandId'];
  return {
    kind: 'mobile_robot',
    pose: { xM: pose.xM, yM: pose.yM, yawRad: pose.yawRad },
    velocity: { linearMPerS: velocity.linearMPerS, angularRadPerS: velocity.angularRadPerS },
    ...(localization === undefined
      ? {}
      : { localization: localization.ageMs === undefined ? { ok: localization.ok } : { ok: localization.ok, ageMs: localization.ageMs } }),
    moving: message['moving'] === true,
    safeStopped: message['safeStopped'] === true,
    lastCommandId: typeof lastCommandId === 'string' ? lastCommandId : null,
  };
}

const ACCELERATION_PARAM = { type: 'number', exclusiveMinimum: 0 } as const;

export const MOBILE_ROBOT: KindSpec<MobileRobotDeclaration, MobileRobotState> = {
  kind: 'mobile_robot',
  // Its footprint disc at a localized pose says which cell zones it is in (unknown without localization).
  occupiesZones: true,
  deviceProperties: DEVICE_PROPERTIES,
  deviceRequired: ['footprint', 'limits', 'separation', 'localization'],
  convert: convertMobileRobot,
  stateProperties: {
    pose: {
      type: 'object',
      additionalProperties: false,
      required: ['xM', 'yM', 'yawRad'],
      properties: { xM: NUMBER, yM: NUMBER, yawRad: NUMBER },
    },
    velocity: {
      type: 'object',
      additionalProperties: false,
      required: ['linearMPerS', 'angularRadPerS'],
      properties: { linearMPerS: NUMBER, angularRadPerS: NUMBER },
    },
    // Optional in the message so that a robot that lost it gets BOUNDS_LOCALIZATION, not "no state".
    localization: {
      type: 'object',
      additionalProperties: false,
      required: ['ok'],
      properties: { ok: { type: 'boolean' }, ageMs: { type: 'number', minimum: 0 } },
    },
    moving: { type: 'boolean' },
    safeStopped: { type: 'boolean' },
    lastCommandId: { type: ['string', 'null'], maxLength: 128 },
  },
  stateRequired: ['pose', 'velocity'],
  toState: (_device, message) => ({ ok: true, state: toMobileRobotState(message) }),
  actions: {
    set_velocity: {
      safeState: false,
      summary: 'Drive at a twist (linearMPerS, angularRadPerS) for durationMs, then stop; ramps at the given or the robot\'s default acceleration.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['linearMPerS', 'angularRadPerS', 'durationMs'],
        properties: {
          linearMPerS: NUMBER,
          angularRadPerS: NUMBER,
          durationMs: { type: 'number', exclusiveMinimum: 0 },
          accelerationMPerS2: ACCELERATION_PARAM,
          angularAccelerationRadPerS2: ACCELERATION_PARAM,
        },
      },
    },
    go_to: {
      safeState: false,
      summary: 'Drive in a straight line from the current pose to (xM, yM) at speedMPerS, then turn to yawRad if given.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['xM', 'yM', 'speedMPerS'],
        properties: { xM: NUMBER, yM: NUMBER, yawRad: NUMBER, speedMPerS: { type: 'number', exclusiveMinimum: 0 }, accelerationMPerS2: ACCELERATION_PARAM },
      },
    },
    follow_path: {
      safeState: false,
      summary: 'Drive straight segments from the current pose through each waypoint [x, y] (metres) at speedMPerS.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['waypoints', 'speedMPerS'],
        properties: {
          waypoints: { type: 'array', minItems: 1, maxItems: MAX_PATH_WAYPOINTS, items: { type: 'array', minItems: 2, maxItems: 2, items: NUMBER } },
          speedMPerS: { type: 'number', exclusiveMinimum: 0 },
          accelerationMPerS2: ACCELERATION_PARAM,
        },
      },
    },
    stop: { safeState: true, summary: 'Brake to a standstill where the robot is (the safe state).', paramsSchema: { type: 'object', additionalProperties: false, properties: {} } },
  },
  reasons: MOBILE_ROBOT_REASONS,
};
