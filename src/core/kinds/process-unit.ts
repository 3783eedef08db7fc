// The process_unit kind (a pump with valves and a tank): declaration, state and commands, in internal SI units.
// Pure shapes and unit conversion; the checks live in src/bounds/process-unit-bounds.ts. It never guesses a unit.

import type { ReasonSpec } from '../reasons-spec.js';
import { INTERNAL_UNIT, unitsOf, type Dimension } from '../units.js';
import {
  convertModeLimit,
  convertQuantity,
  convertRange,
  IDENTIFIER_SCHEMA,
  modeLimitSchema,
  quantitySchema,
  rangeSchema,
  type CommonDeviceDeclaration,
  type ConvertIssue,
  type KindSpec,
  type ModeLimit,
  type RawModeLimit,
  type RawQuantity,
  type RawRange,
} from './kind-spec.js';

/** The dimensions a process quantity may have. Temperature is absent on purpose: degC is affine, not a factor. */
export const PROCESS_DIMENSIONS = ['pressure', 'volumeFlow', 'volume', 'length', 'ratio', 'angularVelocity'] as const satisfies readonly Dimension[];
export type ProcessDimension = (typeof PROCESS_DIMENSIONS)[number];

/** A measured value the device reports. Quantities arrive in the internal SI unit of their dimension. */
export type ProcessMeasurement =
  | { readonly name: string; readonly type: 'quantity'; readonly dimension: ProcessDimension; readonly unit: string }
  | { readonly name: string; readonly type: 'boolean' };

/** A variable an agent may set. Every number is in `unit`, the internal SI unit of the dimension. */
export interface ProcessSetpoint {
  readonly name: string;
  readonly dimension: ProcessDimension;
  /** The unit a set_setpoint command must name, and the unit of every number below. */
  readonly unit: string;
  /** The measurement that shows where the process is for this setpoint (same dimension). */
  readonly measurement: string;
  readonly min: number;
  readonly max: number;
  /** A further maximum per mode; undefined when the declaration has none. */
  readonly modeMax?: ModeLimit;
  /** At most `amount` (in `unit`) of change per `perMs` milliseconds since the last release of this setpoint. */
  readonly maxRate: { readonly amount: number; readonly perMs: number };
  /** Largest change per command, against every reference (last release, reported setpoint, measurement). */
  readonly maxStep: number;
}

/** A condition on one measurement; inclusive (`atLeast` 2 holds at exactly 2). */
export type ProcessCondition =
  | { readonly id: string; readonly measurement: string; readonly test: 'atLeast' | 'atMost'; readonly limit: number; readonly unit: string }
  | { readonly id: string; readonly measurement: string; readonly test: 'equals'; readonly expected: boolean };

/** What `go_safe` asks the driver to reach. Every setpoint is named; values are in each setpoint's unit. */
export interface ProcessSafeState {
  readonly running: boolean;
  readonly setpoints: Readonly<Record<string, number>>;
}

export interface ProcessUnitDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'process_unit';
  readonly measurements: readonly ProcessMeasurement[];
  readonly setpoints: readonly ProcessSetpoint[];
  /** All must hold for `start`. */
  readonly permissives: readonly ProcessCondition[];
  /** When one holds, it latches and denies every non-safe command until an authorised reset is released. */
  readonly trips: readonly ProcessCondition[];
  readonly safeState: ProcessSafeState;
}

/** A state message, typed. Records are own-property only: look names up with `Object.hasOwn`. */
export interface ProcessUnitState {
  readonly kind: 'process_unit';
  /** Every declared measurement, quantities in the internal SI unit of their dimension. */
  readonly measurements: Readonly<Record<string, number | boolean>>;
  /** The setpoint the device is working to now, per declared setpoint, in the setpoint's unit. */
  readonly setpoints: Readonly<Record<string, number>>;
  readonly running: boolean;
  /** Trips the device itself reports as latched (its own protection); honoured like the interlock's own. */
  readonly trips: readonly string[];
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
}

/** params of set_setpoint. `value` is in `unit`, which must be the setpoint's internal SI unit. */
export interface SetSetpointParams {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

export interface ResetTripParams {
  readonly trip: string;
}

export const PROCESS_UNIT_REASONS = {
  BOUNDS_SETPOINT_UNKNOWN: {
    stage: 'bounds',
    summary: 'The command names a setpoint the process unit does not declare.',
  },
  BOUNDS_SETPOINT_UNIT: {
    stage: 'bounds',
    summary: 'The setpoint value is given in a unit other than the setpoint\'s internal SI unit, so its meaning is not checked.',
  },
  BOUNDS_SETPOINT_RANGE: {
    stage: 'bounds',
    summary: 'The setpoint value lies outside the setpoint\'s declared range.',
  },
  BOUNDS_SETPOINT_MODE_MAX: {
    stage: 'bounds',
    summary: 'The setpoint value exceeds the setpoint\'s maximum in the current mode (normal or reduced).',
  },
  BOUNDS_SETPOINT_STEP: {
    stage: 'bounds',
    summary: 'The setpoint changes by more than maxStep from the last released value, the setpoint the device reports, or the measured value.',
  },
  BOUNDS_SETPOINT_RATE: {
    stage: 'bounds',
    summary: 'The setpoint changes faster than maxRate allows for the time since this setpoint was last released.',
  },
  BOUNDS_MEASUREMENT_MISSING: {
    stage: 'bounds',
    summary: 'A measurement or reported setpoint that the check needs is missing from the state or not a finite number.',
  },
  BOUNDS_PROCESS_PERMISSIVE: {
    stage: 'bounds',
    summary: 'A permissive that gates start does not hold (or its measurement is missing), so the unit may not start.',
  },
  BOUNDS_TRIP_LATCHED: {
    stage: 'bounds',
    summary: 'A trip is latched or reported by the device; only safe-state commands and an authorised reset_trip pass until it is reset.',
  },
  BOUNDS_TRIP_ACTIVE: {
    stage: 'bounds',
    summary: 'A reset_trip was refused because the trip\'s condition still holds (or cannot be evaluated), or the device still reports the trip.',
  },
  BOUNDS_TRIP_NOT_LATCHED: {
    stage: 'bounds',
    summary: 'A reset_trip names a trip that is neither latched nor reported by the device.',
  },
} as const satisfies Record<string, ReasonSpec>;

// ---- Schema ----

function unitEnum(dimension: Dimension): Record<string, unknown> {
  return { enum: unitsOf(dimension), description: `A ${dimension} unit: ${unitsOf(dimension).join(', ')}.` };
}

const ALL_PROCESS_UNITS = [...new Set(PROCESS_DIMENSIONS.flatMap((d) => unitsOf(d)))];

const MEASUREMENT_SCHEMA = {
  type: 'object',
  description: 'A measured value the device reports in its state, by name. Quantities arrive in stateUnit (the internal SI unit).',
  required: ['dimension'],
  properties: { dimension: { enum: [...PROCESS_DIMENSIONS, 'boolean'] } },
  discriminator: { propertyName: 'dimension' },
  oneOf: [
    ...PROCESS_DIMENSIONS.map((dimension) => ({
      type: 'object',
      additionalProperties: false,
      required: ['name', 'dimension', 'stateUnit'],
      properties: {
        name: IDENTIFIER_SCHEMA,
        description: { type: 'string' },
        dimension: { const: dimension },
        stateUnit: {
          // An enum of one rather than a const, so a wrong unit's error names the one that is allowed.
          enum: [INTERNAL_UNIT[dimension]],
          description: `State messages carry a ${dimension} measurement in ${INTERNAL_UNIT[dimension]} (the internal SI unit); written here so the file says so.`,
        },
      },
    })),
    {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'dimension'],
      properties: {
        name: IDENTIFIER_SCHEMA,
        description: { type: 'string' },
        dimension: { const: 'boolean', description: 'A two-state signal (limit switch, contact): true or false in the state.' },
      },
    },
  ],
};

const SETPOINT_SCHEMA = {
  type: 'object',
  description: 'A variable an agent may set with set_setpoint. Commands give its value in the internal SI unit of its dimension.',
  required: ['dimension'],
  properties: { dimension: { enum: [...PROCESS_DIMENSIONS] } },
  discriminator: { propertyName: 'dimension' },
  oneOf: PROCESS_DIMENSIONS.map((dimension) => ({
    type: 'object',
    additionalProperties: false,
    required: ['name', 'dimension', 'measurement', 'range', 'maxRate', 'maxStep'],
    properties: {
      name: IDENTIFIER_SCHEMA,
      description: { type: 'string' },
      dimension: { const: dimension },
      measurement: { ...IDENTIFIER_SCHEMA, description: 'The measurement (same dimension) that shows where the process is; a setpoint far from it is a step.' },
      range: rangeSchema(dimension, 'Allowed setpoint values (inclusive).'),
      max: modeLimitSchema(dimension, 'A further maximum that may be lower in reduced mode (inclusive).'),
      maxRate: {
        type: 'object',
        description: 'Largest change per unit time, measured from the last released value of this setpoint.',
        additionalProperties: false,
        required: ['value', 'unit', 'per'],
        properties: {
          value: { type: 'number', exclusiveMinimum: 0 },
          unit: unitEnum(dimension),
          per: quantitySchema('duration', 'The time the change is allowed in.', { exclusiveMinimum: 0 }),
        },
      },
      maxStep: quantitySchema(dimension, 'Largest change in one command, from every reference (inclusive).', { exclusiveMinimum: 0 }),
    },
  })),
};

const CONDITION_VALUE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['value', 'unit'],
  properties: { value: { type: 'number' }, unit: { enum: ALL_PROCESS_UNITS, description: 'A unit of the measurement\'s dimension.' } },
};

function conditionSchema(description: string): Record<string, unknown> {
  return {
    type: 'object',
    description: `${description} Exactly one of atLeast { value, unit }, atMost { value, unit } (quantities, inclusive) or equals (booleans).`,
    additionalProperties: false,
    required: ['id', 'measurement'],
    properties: {
      id: IDENTIFIER_SCHEMA,
      description: { type: 'string' },
      measurement: IDENTIFIER_SCHEMA,
      atLeast: CONDITION_VALUE_SCHEMA,
      atMost: CONDITION_VALUE_SCHEMA,
      equals: { type: 'boolean' },
    },
    oneOf: ['atLeast', 'atMost', 'equals'].map((test) => ({ required: [test], properties: { [test]: true } })),
  };
}

const SAFE_STATE_SCHEMA = {
  type: 'object',
  description: 'What go_safe drives the unit to: pump running or not, and a value for every setpoint.',
  additionalProperties: false,
  required: ['running', 'setpoints'],
  properties: {
    description: { type: 'string' },
    running: { type: 'boolean' },
    setpoints: {
      type: 'object',
      description: 'Setpoint name -> { value, unit } for every declared setpoint; each must lie in its range.',
      propertyNames: IDENTIFIER_SCHEMA,
      additionalProperties: CONDITION_VALUE_SCHEMA,
    },
  },
};

// ---- Conversion ----

type RawMeasurement = { readonly name: string; readonly dimension: ProcessDimension | 'boolean' };

interface RawSetpoint {
  readonly name: string;
  readonly dimension: ProcessDimension;
  readonly measurement: string;
  readonly range: RawRange;
  readonly max?: RawModeLimit;
  readonly maxRate: RawQuantity & { readonly per: RawQuantity };
  readonly maxStep: RawQuantity;
}

interface RawCondition {
  readonly id: string;
  readonly measurement: string;
  readonly atLeast?: RawQuantity;
  readonly atMost?: RawQuantity;
  readonly equals?: boolean;
}

interface RawSafeState {
  readonly running: boolean;
  readonly setpoints: Readonly<Record<string, RawQuantity>>;
}

function isUnitOf(dimension: ProcessDimension, unit: string): boolean {
  return unitsOf(dimension).includes(unit);
}

function convertCondition(raw: RawCondition, path: string, measurements: readonly ProcessMeasurement[], issues: ConvertIssue[]): ProcessCondition | undefined {
  const measurement = measurements.find((m) => m.name === raw.measurement);
  if (measurement === undefined) {
    issues.push({ path: `${path}/measurement`, message: `no measurement "${raw.measurement}" is declared` });
    return undefined;
  }
  if (raw.equals !== undefined) {
    if (measurement.type !== 'boolean') {
      issues.push({ path: `${path}/equals`, message: `equals applies to boolean measurements; "${raw.measurement}" is a ${measurement.dimension}: use atLeast or atMost` });
      return undefined;
    }
    return { id: raw.id, measurement: raw.measurement, test: 'equals', expected: raw.equals };
  }
  const test = raw.atLeast !== undefined ? 'atLeast' : 'atMost';
  const quantity = (raw.atLeast ?? raw.atMost) as RawQuantity;
  if (measurement.type !== 'quantity') {
    issues.push({ path: `${path}/${test}`, message: `"${raw.measurement}" is a boolean measurement: use equals` });
    return undefined;
  }
  if (!isUnitOf(measurement.dimension, quantity.unit)) {
    issues.push({
      path: `${path}/${test}/unit`,
      message: `unit ${quantity.unit} is not a ${measurement.dimension} unit (${unitsOf(measurement.dimension).join(', ')})`,
    });
    return undefined;
  }
  return { id: raw.id, measurement: raw.measurement, test, limit: convertQuantity(measurement.dimension, quantity), unit: measurement.unit };
}

function convertSetpoint(raw: RawSetpoint, path: string, measurements: readonly ProcessMeasurement[], issues: ConvertIssue[]): ProcessSetpoint {
  const { dimension } = raw;
  const measured = measurements.find((m) => m.name === raw.measurement);
  if (measured === undefined) issues.push({ path: `${path}/measurement`, message: `no measurement "${raw.measurement}" is declared` });
  else if (measured.type !== 'quantity' || measured.dimension !== dimension) {
    issues.push({ path: `${path}/measurement`, message: `measurement "${raw.measurement}" is not a ${dimension} (a setpoint is compared with the value it controls)` });
  }
  const range = convertRange(dimension, raw.range, `${path}/range`, issues);
  const modeMax = raw.max === undefined ? undefined : convertModeLimit(dimension, raw.max, `${path}/max`, issues);
  // SAFETY: a "normal" maximum above the range would read as a permission the range then silently takes back.
  if (modeMax !== undefined && !(modeMax.normal <= range.max)) issues.push({ path: `${path}/max`, message: 'the mode maximum must not exceed range.max' });
  const perMs = convertQuantity('duration', raw.maxRate.per);
  return {
    name: raw.name,
    dimension,
    unit: INTERNAL_UNIT[dimension],
    measurement: raw.measurement,
    min: range.min,
    max: range.max,
    ...(modeMax === undefined ? {} : { modeMax }),
    maxRate: { amount: convertQuantity(dimension, { value: raw.maxRate.value, unit: raw.maxRate.unit }), perMs },
    maxStep: convertQuantity(dimension, raw.maxStep),
  };
}

function convertSafeState(raw: RawSafeState, setpoints: readonly ProcessSetpoint[], issues: ConvertIssue[]): ProcessSafeState {
  const values: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [name, quantity] of Object.entries(raw.setpoints)) {
    const path = `/safeState/setpoints/${name}`;
    const setpoint = setpoints.find((s) => s.name === name);
    if (setpoint === undefined) {
      issues.push({ path, message: `no setpoint "${name}" is declared` });
      continue;
    }
    if (!isUnitOf(setpoint.dimension, quantity.unit)) {
      issues.push({ path: `${path}/unit`, message: `unit ${quantity.unit} is not a ${setpoint.dimension} unit (${unitsOf(setpoint.dimension).join(', ')})` });
      continue;
    }
    const value = convertQuantity(setpoint.dimension, quantity);
    // SAFETY: a safe state the bounds would refuse as a setpoint is not a state the unit is designed to hold.
    if (!(value >= setpoint.min && value <= setpoint.max)) issues.push({ path: `${path}/value`, message: `the safe value lies outside the setpoint's range` });
    values[name] = value;
  }
  for (const setpoint of setpoints) {
    // SAFETY: "leave it as it is" is not a safe state; the driver must know every value to drive to.
    if (!Object.hasOwn(raw.setpoints, setpoint.name)) issues.push({ path: '/safeState/setpoints', message: `no safe value for setpoint "${setpoint.name}"` });
  }
  return { running: raw.running, setpoints: Object.freeze(values) };
}

function duplicates<T>(items: readonly T[], key: (item: T) => string, path: (index: number) => string, what: string, issues: ConvertIssue[]): void {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const k = key(item);
    if (seen.has(k)) issues.push({ path: path(index), message: `${what} "${k}" is used twice` });
    seen.add(k);
  });
}

function convertProcessUnit(raw: Readonly<Record<string, unknown>>, common: CommonDeviceDeclaration): ReturnType<KindSpec<ProcessUnitDeclaration, ProcessUnitState>['convert']> {
  const issues: ConvertIssue[] = [];
  const rawMeasurements = raw['measurements'] as RawMeasurement[];
  const rawSetpoints = raw['setpoints'] as RawSetpoint[];
  const rawPermissives = (raw['permissives'] ?? []) as RawCondition[];
  const rawTrips = (raw['trips'] ?? []) as RawCondition[];
  duplicates(rawMeasurements, (m) => m.name, (i) => `/measurements/${i}/name`, 'measurement name', issues);
  duplicates(rawSetpoints, (s) => s.name, (i) => `/setpoints/${i}/name`, 'setpoint name', issues);
  duplicates(rawPermissives, (p) => p.id, (i) => `/permissives/${i}/id`, 'permissive id', issues);
  duplicates(rawTrips, (p) => p.id, (i) => `/trips/${i}/id`, 'trip id', issues);

  const measurements = rawMeasurements.map(
    (m): ProcessMeasurement => (m.dimension === 'boolean' ? { name: m.name, type: 'boolean' } : { name: m.name, type: 'quantity', dimension: m.dimension, unit: INTERNAL_UNIT[m.dimension] }),
  );
  const setpoints = rawSetpoints.map((s, i) => convertSetpoint(s, `/setpoints/${i}`, measurements, issues));
  const conditions = (list: readonly RawCondition[], section: string): ProcessCondition[] =>
    list.flatMap((c, i) => {
      const converted = convertCondition(c, `/${section}/${i}`, measurements, issues);
      return converted === undefined ? [] : [converted];
    });
  const permissives = conditions(rawPermissives, 'permissives');
  const trips = conditions(rawTrips, 'trips');
  const safeState = convertSafeState(raw['safeState'] as RawSafeState, setpoints, issues);
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, device: { ...common, kind: 'process_unit', measurements, setpoints, permissives, trips, safeState } };
}

// ---- State ----

function toProcessState(device: ProcessUnitDeclaration, message: Readonly<Record<string, unknown>>): ReturnType<KindSpec<ProcessUnitDeclaration, ProcessUnitState>['toState']> {
  const rawMeasurements = message['measurements'] as Record<string, unknown>;
  const rawSetpoints = message['setpoints'] as Record<string, unknown>;
  const measurements: Record<string, number | boolean> = Object.create(null) as Record<string, number | boolean>;
  for (const name of Object.keys(rawMeasurements)) {
    // SAFETY: an unknown name is a driver/declaration mismatch; guessing which value is which is not an option.
    if (!device.measurements.some((m) => m.name === name)) return { ok: false, problem: `state reports measurement "${name}", which ${device.id} does not declare` };
  }
  for (const declared of device.measurements) {
    const value = Object.hasOwn(rawMeasurements, declared.name) ? rawMeasurements[declared.name] : undefined;
    if (value === undefined) return { ok: false, problem: `state lacks measurement "${declared.name}"` };
    if (declared.type === 'boolean' ? typeof value !== 'boolean' : !(typeof value === 'number' && Number.isFinite(value))) {
      return { ok: false, problem: `measurement "${declared.name}" must be ${declared.type === 'boolean' ? 'true or false' : `a finite number in ${declared.unit}`}` };
    }
    measurements[declared.name] = value as number | boolean;
  }
  const setpoints: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const name of Object.keys(rawSetpoints)) {
    if (!device.setpoints.some((s) => s.name === name)) return { ok: false, problem: `state reports setpoint "${name}", which ${device.id} does not declare` };
  }
  for (const declared of device.setpoints) {
    const value = Object.hasOwn(rawSetpoints, declared.name) ? rawSetpoints[declared.name] : undefined;
    if (!(typeof value === 'number' && Number.isFinite(value))) return { ok: false, problem: `state lacks a finite setpoint "${declared.name}" in ${declared.unit}` };
    setpoints[declared.name] = value;
  }
  const lastCommandId = message['lastCommandId'];
  return {
    ok: true,
    state: {
      kind: 'process_unit',
      measurements: Object.freeze(measurements),
      setpoints: Object.freeze(setpoints),
      running: message['running'] as boolean,
      trips: Object.freeze([...new Set(message['trips'] as string[])]),
      safeStopped: message['safeStopped'] === true,
      lastCommandId: typeof lastCommandId === 'string' ? lastCommandId : null,
    },
  };
}

/**
 * What a refused state message still shows about trips, read leniently: its measurements as sent (unchecked; a
 * condition finds a wrong type or a missing name unknown) and the trip ids it reports. Never a state: nothing but
 * trip latching may use it.
 */
export interface RefusedProcessState {
  readonly measurements: Readonly<Record<string, unknown>>;
  readonly trips: readonly string[];
}

const TRIP_ID = new RegExp(IDENTIFIER_SCHEMA.pattern);
/** The most trip ids one state message may report. */
const MAX_REPORTED_TRIPS = 32;

function isPlainRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a refused state message (the JSON value, or undefined when the bytes were not JSON) for its trips only.
 * What cannot be read is left out, so a trip whose measurement is not there reads as unknown (and latches).
 */
export function readRefusedProcessState(message: unknown): RefusedProcessState {
  const measurements = isPlainRecord(message) && isPlainRecord(message['measurements']) ? message['measurements'] : {};
  const rawTrips = isPlainRecord(message) && Array.isArray(message['trips']) ? (message['trips'] as unknown[]) : [];
  // As many ids as a valid message may carry: a garbled message cannot grow the latch table more than a valid one.
  const trips = [...new Set(rawTrips.filter((id): id is string => typeof id === 'string' && TRIP_ID.test(id)))].slice(0, MAX_REPORTED_TRIPS);
  return { measurements, trips };
}

const NO_PARAMS = { type: 'object', additionalProperties: false, properties: {} } as const;

export const PROCESS_UNIT: KindSpec<ProcessUnitDeclaration, ProcessUnitState> = {
  kind: 'process_unit',
  deviceProperties: {
    measurements: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      description: 'Values the device reports in its state (measurements: { name: value }); every one must be present in every state message.',
      items: MEASUREMENT_SCHEMA,
    },
    setpoints: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      description: 'Variables an agent may set with set_setpoint, each with range, optional mode maximum, maxRate and maxStep.',
      items: SETPOINT_SCHEMA,
    },
    permissives: {
      type: 'array',
      maxItems: 32,
      description: 'Conditions that must all hold for start. A missing measurement does not hold.',
      items: conditionSchema('A condition that must hold for start.'),
    },
    trips: {
      type: 'array',
      maxItems: 32,
      description: 'Conditions that, once seen in a state message, latch and deny everything but the safe state until an authorised reset_trip is released.',
      items: conditionSchema('A trip: when the condition holds, the trip latches.'),
    },
    safeState: SAFE_STATE_SCHEMA,
  },
  deviceRequired: ['measurements', 'setpoints', 'safeState'],
  convert: convertProcessUnit,
  stateProperties: {
    measurements: {
      type: 'object',
      description: 'Every declared measurement by name: quantities in the internal SI unit of their dimension, booleans as true/false.',
      maxProperties: 64,
      propertyNames: IDENTIFIER_SCHEMA,
      additionalProperties: { type: ['number', 'boolean'] },
    },
    setpoints: {
      type: 'object',
      description: 'The setpoint the device works to now, for every declared setpoint, in its internal SI unit.',
      maxProperties: 32,
      propertyNames: IDENTIFIER_SCHEMA,
      additionalProperties: { type: 'number' },
    },
    running: { type: 'boolean' },
    trips: { type: 'array', maxItems: MAX_REPORTED_TRIPS, items: IDENTIFIER_SCHEMA },
    safeStopped: { type: 'boolean' },
    lastCommandId: { type: ['string', 'null'], maxLength: 128 },
  },
  stateRequired: ['measurements', 'setpoints', 'running', 'trips'],
  toState: toProcessState,
  actions: {
    set_setpoint: {
      safeState: false,
      summary: 'Set one setpoint: value in the setpoint\'s internal SI unit, which the command names in unit (e.g. Pa, rad/s, fraction).',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'value', 'unit'],
        properties: { name: IDENTIFIER_SCHEMA, value: { type: 'number' }, unit: { type: 'string', minLength: 1, maxLength: 16 } },
      },
    },
    start: { safeState: false, summary: 'Start the pump at its current setpoints; every permissive must hold.', paramsSchema: NO_PARAMS },
    reset_trip: {
      safeState: false,
      summary: 'Reset one latched trip once its condition has cleared.',
      paramsSchema: { type: 'object', additionalProperties: false, required: ['trip'], properties: { trip: IDENTIFIER_SCHEMA } },
    },
    go_safe: { safeState: true, summary: 'Drive to the declared safe state (safeState: pump and every setpoint).', paramsSchema: NO_PARAMS },
    stop: { safeState: true, summary: 'Stop the pump; setpoints are left as they are.', paramsSchema: NO_PARAMS },
  },
  reasons: PROCESS_UNIT_REASONS,
};
