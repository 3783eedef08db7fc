// What a device kind is to the interlock: the shape of its declaration (JSON Schema + unit conversion), of its
// live state, and of its commands. Pure data and conversion; the checks live in src/bounds/. One module per kind.

import type { ReasonSpec } from '../reasons-spec.js';
import { convertUnit, unitsOf, type Dimension } from '../units.js';
import type { Vec2, Vec3, Zone } from '../zones.js';

/** A limit that may differ by mode. Reduced is never looser than normal (checked at load). */
export interface ModeLimit {
  readonly normal: number;
  readonly reduced: number;
}

export type Mode = 'normal' | 'reduced';

export function limitIn(limit: ModeLimit, mode: Mode): number {
  return mode === 'reduced' ? limit.reduced : limit.normal;
}

/** How a device picks its limit set. Reduced whenever any trigger holds, and for `holdReducedForMs` after. */
export interface ModePolicy {
  /** Cell zone ids: a person reported inside any of them selects the reduced set. */
  readonly reducedWhenPersonInZones: readonly string[];
  /** Agents with this autonomy scope or lower get the reduced set (AWS scoping matrix: 3 = reduced). */
  readonly reducedForScopeAtMost: number;
  /** Hysteresis: the reduced set stays in force this long after the last trigger cleared. */
  readonly holdReducedForMs: number;
}

export interface RateLimit {
  readonly commands: number;
  readonly perMs: number;
}

/** Fields every device declaration has, whatever its kind. */
export interface CommonDeviceDeclaration {
  readonly id: string;
  readonly maxStateAgeMs: number;
  /** Commands per window accepted for this device from all agents together; undefined: no device limit. */
  readonly rateLimit?: RateLimit;
  readonly modes: ModePolicy;
}

/** One problem found while converting a schema-valid declaration (path is a JSON pointer in the device file). */
export interface ConvertIssue {
  readonly path: string;
  readonly message: string;
}

export type ConvertResult<D> = { readonly ok: true; readonly device: D } | { readonly ok: false; readonly issues: readonly ConvertIssue[] };

export type StateResult<S> = { readonly ok: true; readonly state: S } | { readonly ok: false; readonly problem: string };

export interface ActionSpec {
  /** A safe-state action (stop, close to safe position) passes policy and bounds for any authenticated agent. */
  readonly safeState: boolean;
  /** JSON Schema (ajv strict) for the command's `params`. */
  readonly paramsSchema: Readonly<Record<string, unknown>>;
  /** One line for the docs and for COMMAND_UNKNOWN_ACTION messages. */
  readonly summary: string;
}

export interface KindSpec<D extends CommonDeviceDeclaration & { readonly kind: string }, S extends { readonly kind: string }> {
  readonly kind: D['kind'];
  /**
   * True for kinds that can say where they are in the cell (arms, mobile robots). Only they may be listed in a
   * cell's shared zones: a device that cannot place itself would never block anyone there.
   */
  readonly occupiesZones?: true;
  /** JSON Schema properties of the kind-specific part of a device file; merged with the common ones. */
  readonly deviceProperties: Readonly<Record<string, unknown>>;
  readonly deviceRequired: readonly string[];
  /** Converts a schema-valid device file to internal units and checks what a schema cannot (min < max, ...). */
  convert(raw: Readonly<Record<string, unknown>>, common: CommonDeviceDeclaration): ConvertResult<D>;
  /** JSON Schema properties of the kind's state message (additional to the common `people` and `timeMs`). */
  readonly stateProperties: Readonly<Record<string, unknown>>;
  readonly stateRequired: readonly string[];
  /** Builds the typed state from a schema-valid state message; refuses what does not fit this device. */
  toState(device: D, message: Readonly<Record<string, unknown>>): StateResult<S>;
  readonly actions: Readonly<Record<string, ActionSpec>>;
  /** The reason codes this kind's bounds emit (merged into the one catalog). */
  readonly reasons: Readonly<Record<string, ReasonSpec>>;
}

// ---- Schema building blocks shared by the kinds, so every kind declares limits the same way. ----

export const IDENTIFIER_SCHEMA = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;

function unitSchema(dimension: Dimension): Record<string, unknown> {
  return { enum: unitsOf(dimension), description: `A ${dimension} unit: ${unitsOf(dimension).join(', ')}.` };
}

/** `{ value, unit }` */
export function quantitySchema(dimension: Dimension, description: string, valueBounds: Record<string, number> = {}): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    required: ['value', 'unit'],
    properties: { value: { type: 'number', ...valueBounds }, unit: unitSchema(dimension) },
  };
}

/** `{ min, max, unit }`, inclusive. */
export function rangeSchema(dimension: Dimension, description: string): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    required: ['min', 'max', 'unit'],
    properties: { min: { type: 'number' }, max: { type: 'number' }, unit: unitSchema(dimension) },
  };
}

/** A maximum that may depend on the mode: `{ max, unit }` (same in both) or `{ normal, reduced, unit }`. */
export function modeLimitSchema(dimension: Dimension, description: string): Record<string, unknown> {
  return {
    description: `${description} Either { max, unit } or { normal, reduced, unit }; reduced must not exceed normal.`,
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['max', 'unit'],
        properties: { max: { type: 'number', exclusiveMinimum: 0 }, unit: unitSchema(dimension) },
      },
      {
        type: 'object',
        additionalProperties: false,
        required: ['normal', 'reduced', 'unit'],
        properties: {
          normal: { type: 'number', exclusiveMinimum: 0 },
          reduced: { type: 'number', exclusiveMinimum: 0 },
          unit: unitSchema(dimension),
        },
      },
    ],
  };
}

export interface RawQuantity {
  readonly value: number;
  readonly unit: string;
}
export interface RawRange {
  readonly min: number;
  readonly max: number;
  readonly unit: string;
}
export type RawModeLimit = { readonly max: number; readonly unit: string } | { readonly normal: number; readonly reduced: number; readonly unit: string };

export function convertQuantity(dimension: Dimension, raw: RawQuantity): number {
  return convertUnit(dimension, raw.value, raw.unit);
}

/** Converts a range; pushes an issue (and still returns numbers) when min is not below max. */
export function convertRange(dimension: Dimension, raw: RawRange, path: string, issues: ConvertIssue[]): { min: number; max: number } {
  // SAFETY: an empty or inverted range would deny everything or, worse, be read the other way round.
  if (!(raw.min < raw.max)) issues.push({ path, message: `min (${raw.min}) must be less than max (${raw.max})` });
  return { min: convertUnit(dimension, raw.min, raw.unit), max: convertUnit(dimension, raw.max, raw.unit) };
}

/** Converts a mode limit; pushes an issue when reduced is looser than normal. */
export function convertModeLimit(dimension: Dimension, raw: RawModeLimit, path: string, issues: ConvertIssue[]): ModeLimit {
  if ('max' in raw) {
    const max = convertUnit(dimension, raw.max, raw.unit);
    return { normal: max, reduced: max };
  }
  // SAFETY: a reduced set looser than the normal one would make "reduced" mode less safe.
  if (!(raw.reduced <= raw.normal)) issues.push({ path, message: `reduced (${raw.reduced}) must not exceed normal (${raw.normal})` });
  return { normal: convertUnit(dimension, raw.normal, raw.unit), reduced: convertUnit(dimension, raw.reduced, raw.unit) };
}

// ---- Zones: a shape in the cell frame, shared by cell.yaml and kinds that declare keep-in/keep-out regions. ----

const vec3Schema = { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number' } } as const;
const vec2Schema = { type: 'array', minItems: 2, maxItems: 2, items: { type: 'number' } } as const;

/** `{ box: {min, max, unit} }`, `{ sphere: {center, radius, unit} }` or `{ polygon: {points, zMin?, zMax?, unit} }`. */
export function zoneShapeProperties(): Record<string, unknown> {
  const length = unitSchema('length');
  return {
    box: {
      type: 'object',
      description: 'Axis-aligned box in the cell frame.',
      additionalProperties: false,
      required: ['min', 'max', 'unit'],
      properties: { min: vec3Schema, max: vec3Schema, unit: length },
    },
    sphere: {
      type: 'object',
      additionalProperties: false,
      required: ['center', 'radius', 'unit'],
      properties: { center: vec3Schema, radius: { type: 'number', exclusiveMinimum: 0 }, unit: length },
    },
    polygon: {
      type: 'object',
      description: 'A floor polygon (x, y), optionally limited in height; a vertical prism.',
      additionalProperties: false,
      required: ['points', 'unit'],
      properties: {
        points: { type: 'array', minItems: 3, maxItems: 64, items: vec2Schema },
        zMin: { type: 'number' },
        zMax: { type: 'number' },
        unit: length,
      },
    },
  };
}

/** A zone item: an id and exactly one shape. */
export function zoneSchema(description: string): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    required: ['id'],
    properties: { id: IDENTIFIER_SCHEMA, description: { type: 'string' }, ...zoneShapeProperties() },
    // Exactly one shape (each branch names its property so that ajv's strict mode sees it defined).
    oneOf: ['box', 'sphere', 'polygon'].map((shape) => ({ required: [shape], properties: { [shape]: true } })),
  };
}

export interface RawZone {
  readonly id: string;
  readonly box?: { readonly min: number[]; readonly max: number[]; readonly unit: string };
  readonly sphere?: { readonly center: number[]; readonly radius: number; readonly unit: string };
  readonly polygon?: { readonly points: number[][]; readonly zMin?: number; readonly zMax?: number; readonly unit: string };
}

export function convertZone(raw: RawZone, path: string, issues: ConvertIssue[]): Zone {
  const m = (value: number, unit: string): number => convertUnit('length', value, unit);
  if (raw.box) {
    const { min, max, unit } = raw.box;
    const lo = min.map((v) => m(v, unit)) as unknown as Vec3;
    const hi = max.map((v) => m(v, unit)) as unknown as Vec3;
    if (!lo.every((v, i) => v < (hi[i] as number))) issues.push({ path: `${path}/box`, message: 'every min coordinate must be less than the max one' });
    return { id: raw.id, shape: { type: 'box', min: lo, max: hi } };
  }
  if (raw.sphere) {
    const { center, radius, unit } = raw.sphere;
    return { id: raw.id, shape: { type: 'sphere', center: center.map((v) => m(v, unit)) as unknown as Vec3, radiusM: m(radius, unit) } };
  }
  const polygon = raw.polygon as NonNullable<RawZone['polygon']>;
  const zMinM = polygon.zMin === undefined ? -Infinity : m(polygon.zMin, polygon.unit);
  const zMaxM = polygon.zMax === undefined ? Infinity : m(polygon.zMax, polygon.unit);
  if (!(zMinM < zMaxM)) issues.push({ path: `${path}/polygon`, message: 'zMin must be less than zMax' });
  const points = polygon.points.map(([x, y]) => [m(x as number, polygon.unit), m(y as number, polygon.unit)] as const);
  if (Math.abs(polygonArea(points)) < 1e-9) issues.push({ path: `${path}/polygon/points`, message: 'the polygon has no area' });
  return { id: raw.id, shape: { type: 'prism', polygon: points, zMinM, zMaxM } };
}

function polygonArea(points: readonly Vec2[]): number {
  let area = 0;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    area += ((points[j] as Vec2)[0] + (points[i] as Vec2)[0]) * ((points[j] as Vec2)[1] - (points[i] as Vec2)[1]);
  }
  return area / 2;
}
