// The conveyor kind: what a belt conveyor's declaration, live state and commands look like, in SI (m/s, m/s^2).
// Pure shapes and unit conversion; the checks are in src/bounds/conveyor-bounds.ts. It never guesses a unit or a permissive.

import type { ReasonSpec } from '../reasons-spec.js';
import {
  convertModeLimit,
  convertQuantity,
  modeLimitSchema,
  quantitySchema,
  type CommonDeviceDeclaration,
  type ConvertIssue,
  type KindSpec,
  type ModeLimit,
  type RawModeLimit,
  type RawQuantity,
} from './kind-spec.js';

/**
 * A permissive's name: it appears in ruleIds and JSON pointers, so no `/` or `~`, and it starts with a letter
 * (which also keeps out `__proto__`-style keys).
 */
export const PERMISSIVE_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_]{0,63}$';

/** Reverse running: forbidden outright, or allowed up to its own (usually lower) speed limit. */
export type ConveyorReverse = { readonly allowed: false } | { readonly allowed: true; readonly maxSpeedMPerS: ModeLimit };

export interface ConveyorDeclaration extends CommonDeviceDeclaration {
  readonly kind: 'conveyor';
  /** Largest forward belt speed per mode (inclusive). */
  readonly maxSpeedMPerS: ModeLimit;
  readonly reverse: ConveyorReverse;
  /** Largest ramp (acceleration and deceleration) per mode (inclusive). */
  readonly maxRampMPerS2: ModeLimit;
  /** Smallest commanded ramp (inclusive): a belt that takes minutes to reach its setpoint is not under control. */
  readonly minRampMPerS2: number;
  /** |measured speed| at or below this counts as stopped (the belt may then change direction). */
  readonly standstillMPerS: number;
  /** Largest change of setpoint in one command, against the measured speed and the last released setpoint. */
  readonly maxStepMPerS: number;
  /** State booleans that must all be true before any set_speed (guard closed, e-stop released, ...). */
  readonly permissives: readonly string[];
}

export interface ConveyorState {
  readonly kind: 'conveyor';
  /** Measured belt speed, signed: negative is reverse. */
  readonly speedMPerS: number;
  /** The declared permissives only, each as reported (toState refuses a state missing one). */
  readonly permissives: Readonly<Record<string, boolean>>;
  /** The drive is enabled with a non-zero setpoint or the belt is still moving. */
  readonly running: boolean;
  readonly safeStopped: boolean;
  readonly lastCommandId: string | null;
}

/** `set_speed` params. rampMPerS2 absent: the driver ramps at the declared *reduced* ramp (safe in either mode). */
export interface ConveyorSetSpeed {
  readonly speedMPerS: number;
  readonly rampMPerS2?: number;
}

export const CONVEYOR_REASONS = {
  BOUNDS_CONVEYOR_SPEED: {
    stage: 'bounds',
    summary: 'The commanded belt speed is above the forward or reverse maximum of the current mode, or is not a finite number.',
  },
  BOUNDS_CONVEYOR_REVERSE_NOT_ALLOWED: {
    stage: 'bounds',
    summary: 'The command runs the belt in reverse (a negative speed) and the conveyor declares reverse running not allowed.',
  },
  BOUNDS_CONVEYOR_RAMP: {
    stage: 'bounds',
    summary: 'The commanded ramp (acceleration) is above the ramp limit of the current mode, below the declared minRamp, or not a finite number.',
  },
  BOUNDS_CONVEYOR_REVERSAL: {
    stage: 'bounds',
    summary: 'The command reverses the belt while it is not at standstill, or while its last released setpoint (any non-zero one, however small) runs the other way.',
  },
  BOUNDS_CONVEYOR_STEP: {
    stage: 'bounds',
    summary: 'The commanded speed differs from the measured speed or from the last released setpoint by more than the declared maximum step.',
  },
  BOUNDS_CONVEYOR_PERMISSIVE: {
    stage: 'bounds',
    summary: 'A declared permissive of the conveyor (guard closed, e-stop released, ...) is false or missing in its state, so it may not run.',
  },
} as const satisfies Record<string, ReasonSpec>;

interface RawReverse {
  readonly allowed: boolean;
  readonly maxSpeed?: RawModeLimit;
}

interface RawConveyor {
  readonly maxSpeed: RawModeLimit;
  readonly reverse: RawReverse;
  readonly maxRamp: RawModeLimit;
  readonly minRamp: RawQuantity;
  readonly standstill: RawQuantity;
  readonly maxStep: RawQuantity;
  readonly permissives: readonly string[];
}

const PERMISSIVE_NAME_SCHEMA = { type: 'string', pattern: PERMISSIVE_NAME_PATTERN } as const;

export const CONVEYOR: KindSpec<ConveyorDeclaration, ConveyorState> = {
  kind: 'conveyor',
  deviceProperties: {
    maxSpeed: modeLimitSchema('linearVelocity', 'Largest forward belt speed (inclusive); a command above it is denied, never slowed.'),
    reverse: {
      type: 'object',
      description: 'Whether the belt may run in reverse (negative speeds): { allowed: false } or { allowed: true, maxSpeed }.',
      additionalProperties: false,
      required: ['allowed'],
      properties: {
        allowed: { type: 'boolean', description: 'false: every negative speed is denied.' },
        // Required exactly when allowed is true; checked in convert, where the message can say so plainly.
        maxSpeed: modeLimitSchema('linearVelocity', 'Largest reverse belt speed, as a magnitude (inclusive); only with allowed: true.'),
      },
    },
    maxRamp: modeLimitSchema('linearAcceleration', 'Largest commanded ramp (acceleration or deceleration, inclusive).'),
    minRamp: quantitySchema('linearAcceleration', 'Smallest commanded ramp (inclusive); a slower one is denied: the belt would take too long to obey.', {
      exclusiveMinimum: 0,
    }),
    standstill: quantitySchema('linearVelocity', 'A |measured speed| at or below this counts as stopped; direction may change only then.', {
      exclusiveMinimum: 0,
    }),
    maxStep: quantitySchema('linearVelocity', 'Largest setpoint change per command, against the measured speed and the last released setpoint.', {
      exclusiveMinimum: 0,
    }),
    permissives: {
      type: 'array',
      maxItems: 32,
      uniqueItems: true,
      items: PERMISSIVE_NAME_SCHEMA,
      description: 'Names of state booleans (state.permissives) that must all be true before any set_speed; [] for none.',
    },
  },
  deviceRequired: ['maxSpeed', 'reverse', 'maxRamp', 'minRamp', 'standstill', 'maxStep', 'permissives'],
  convert(raw, common) {
    const r = raw as unknown as RawConveyor;
    const issues: ConvertIssue[] = [];
    const maxSpeedMPerS = convertModeLimit('linearVelocity', r.maxSpeed, '/maxSpeed', issues);
    let reverse: ConveyorReverse = { allowed: false };
    if (r.reverse.allowed && r.reverse.maxSpeed === undefined) {
      issues.push({ path: '/reverse', message: 'reverse is allowed, so reverse.maxSpeed is required' });
    } else if (r.reverse.allowed && r.reverse.maxSpeed !== undefined) {
      reverse = { allowed: true, maxSpeedMPerS: convertModeLimit('linearVelocity', r.reverse.maxSpeed, '/reverse/maxSpeed', issues) };
    } else if (r.reverse.maxSpeed !== undefined) {
      // SAFETY: a reverse limit next to allowed: false is a contradiction; which one was meant is not guessed.
      issues.push({ path: '/reverse/maxSpeed', message: 'reverse is not allowed, so reverse.maxSpeed must not be given' });
    }
    const maxRampMPerS2 = convertModeLimit('linearAcceleration', r.maxRamp, '/maxRamp', issues);
    const minRampMPerS2 = convertQuantity('linearAcceleration', r.minRamp);
    // A minimum above a mode's maximum would leave no ramp at all in that mode: a declaration error, said plainly.
    if (!(minRampMPerS2 <= maxRampMPerS2.reduced && minRampMPerS2 <= maxRampMPerS2.normal)) {
      issues.push({ path: '/minRamp', message: `minRamp (${minRampMPerS2} m/s^2) must not be above maxRamp (reduced ${maxRampMPerS2.reduced}, normal ${maxRampMPerS2.normal} m/s^2)` });
    }
    const standstillMPerS = convertQuantity('linearVelocity', r.standstill);
    const maxStepMPerS = convertQuantity('linearVelocity', r.maxStep);
    // SAFETY: a standstill threshold at or above a running speed limit would let a belt at full speed count as
    // stopped, and so be reversed at speed.
    if (!(standstillMPerS < maxSpeedMPerS.reduced)) {
      issues.push({ path: '/standstill', message: `standstill (${standstillMPerS} m/s) must be below the reduced maxSpeed (${maxSpeedMPerS.reduced} m/s)` });
    }
    if (reverse.allowed && !(standstillMPerS < reverse.maxSpeedMPerS.reduced)) {
      issues.push({
        path: '/standstill',
        message: `standstill (${standstillMPerS} m/s) must be below the reduced reverse maxSpeed (${reverse.maxSpeedMPerS.reduced} m/s)`,
      });
    }
    if (issues.length > 0) return { ok: false, issues };
    return {
      ok: true,
      device: {
        ...common,
        kind: 'conveyor',
        maxSpeedMPerS,
        reverse,
        maxRampMPerS2,
        minRampMPerS2,
        standstillMPerS,
        maxStepMPerS,
        permissives: [...r.permissives],
      },
    };
  },
  stateProperties: {
    speedMPerS: { type: 'number' },
    permissives: {
      type: 'object',
      maxProperties: 32,
      propertyNames: PERMISSIVE_NAME_SCHEMA,
      additionalProperties: { type: 'boolean' },
    },
    running: { type: 'boolean' },
    safeStopped: { type: 'boolean' },
    lastCommandId: { type: ['string', 'null'], maxLength: 128 },
  },
  stateRequired: ['speedMPerS', 'permissives', 'running', 'safeStopped'],
  toState(device, message) {
    const speedMPerS = message['speedMPerS'] as number;
    // SAFETY: the schema already refuses non-numbers; a non-finite speed would make every comparison fail open
    // somewhere, so it is refused here too.
    if (!Number.isFinite(speedMPerS)) return { ok: false, problem: `state speedMPerS ${String(speedMPerS)} is not a finite number` };
    const reported = message['permissives'] as Readonly<Record<string, boolean>>;
    const missing = device.permissives.filter((name) => !Object.hasOwn(reported, name));
    // SAFETY: a permissive the driver does not report is unknown, and unknown is not "true"; the state is refused
    // so the device has no usable state (and every set_speed is denied) until the driver reports it.
    if (missing.length > 0) return { ok: false, problem: `state lacks declared permissive(s) ${missing.join(', ')}` };
    const permissives = Object.fromEntries(device.permissives.map((name) => [name, reported[name] === true]));
    const lastCommandId = message['lastCommandId'];
    return {
      ok: true,
      state: {
        kind: 'conveyor',
        speedMPerS,
        permissives,
        running: message['running'] as boolean,
        safeStopped: message['safeStopped'] as boolean,
        lastCommandId: typeof lastCommandId === 'string' ? lastCommandId : null,
      },
    };
  },
  actions: {
    set_speed: {
      safeState: false,
      summary:
        'Run the belt at speedMPerS (signed: negative is reverse), ramping at rampMPerS2, or at the declared reduced ramp limit when rampMPerS2 is absent.',
      paramsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['speedMPerS'],
        properties: {
          speedMPerS: { type: 'number' },
          // Any number: one outside [minRamp, maxRamp] is BOUNDS_CONVEYOR_RAMP, which names the declared range.
          rampMPerS2: { type: 'number' },
        },
      },
    },
    stop: {
      safeState: true,
      summary: 'Bring the belt to standstill (the driver\'s stop ramp) and hold it there.',
      paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
    },
  },
  reasons: CONVEYOR_REASONS,
};
