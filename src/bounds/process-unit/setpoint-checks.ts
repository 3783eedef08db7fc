// Checks one set_setpoint command: known setpoint, the right unit, range, mode maximum, step against every
// reference (last release, reported setpoint, measurement) and rate since the last release. Never edits a value.

import { limitIn, type Mode } from '../../core/kinds/kind-spec.js';
import type { ProcessSetpoint, ProcessUnitDeclaration, ProcessUnitState, SetSetpointParams } from '../../core/kinds/process-unit.js';
import type { LastRelease } from '../../core/device-state.js';
import { reason, type Reason } from '../../core/reasons.js';
import { measurementOf } from './conditions.js';
import type { ReleasedSetpoint } from './process-memory.js';

export interface SetpointContext {
  readonly state: ProcessUnitState;
  readonly mode: Mode;
  readonly nowMs: number;
  /** From the kind's memory: the last value of this setpoint released to the device. */
  readonly released: ReleasedSetpoint | undefined;
  /** The last command released to the device (any action), from the interlock's release log. */
  readonly lastRelease: LastRelease | undefined;
}

/** Where the setpoint is now, by each source that knows; a step is measured from every one of them. */
interface Reference {
  readonly what: string;
  readonly value: number;
}

function releasesOf(name: string, context: SetpointContext): ReleasedSetpoint[] {
  const references: ReleasedSetpoint[] = context.released === undefined ? [] : [context.released];
  const last = context.lastRelease;
  // The interlock's release log is a second witness of the last release (the memory could be younger than it).
  if (last !== undefined && last.action === 'set_setpoint' && last.params['name'] === name && typeof last.params['value'] === 'number') {
    const fromLog = { value: last.params['value'], releasedAtMs: last.releasedAtMs };
    if (!references.some((r) => r.value === fromLog.value && r.releasedAtMs === fromLog.releasedAtMs)) references.push(fromLog);
  }
  return references;
}

export function checkSetpoint(device: ProcessUnitDeclaration, params: SetSetpointParams, context: SetpointContext): Reason[] {
  const setpoint = device.setpoints.find((s) => s.name === params.name);
  if (setpoint === undefined) {
    return [
      reason('BOUNDS_SETPOINT_UNKNOWN', `${device.id} has no setpoint ${JSON.stringify(params.name)} (it has ${device.setpoints.map((s) => s.name).join(', ')})`, {
        ruleId: `${device.id}/setpoints`,
        path: '/params/name',
      }),
    ];
  }
  const rule = `${device.id}/setpoints/${setpoint.name}`;
  // SAFETY: the value is only meaningful in the unit the limits are in; a value in another unit (bar for a Pa
  // setpoint) is not converted (the interlock never edits a command) and its numbers are not judged.
  if (params.unit !== setpoint.unit) {
    return [
      reason('BOUNDS_SETPOINT_UNIT', `setpoint ${setpoint.name} takes values in ${setpoint.unit}, the command says ${JSON.stringify(params.unit)}`, {
        ruleId: `${rule}/unit`,
        path: '/params/unit',
      }),
    ];
  }
  const value = params.value;
  const reasons: Reason[] = [];
  const unit = setpoint.unit;
  // SAFETY: written as "not inside" so NaN is outside.
  if (!(value >= setpoint.min && value <= setpoint.max)) {
    const below = value < setpoint.min;
    const limit = below ? setpoint.min : setpoint.max;
    reasons.push(
      reason('BOUNDS_SETPOINT_RANGE', `setpoint ${setpoint.name} ${value} ${unit} is ${below ? 'below its min' : 'above its max (or not a number)'} ${limit} ${unit}`, {
        ruleId: `${rule}/range`,
        path: '/params/value',
        limit,
        actual: value,
        unit,
      }),
    );
  }
  if (setpoint.modeMax !== undefined) {
    const limit = limitIn(setpoint.modeMax, context.mode);
    if (!(value <= limit)) {
      reasons.push(
        reason('BOUNDS_SETPOINT_MODE_MAX', `setpoint ${setpoint.name} ${value} ${unit} exceeds its ${context.mode} maximum ${limit} ${unit}`, {
          ruleId: `${rule}/max/${context.mode}`,
          path: '/params/value',
          limit,
          actual: value,
          unit,
        }),
      );
    }
  }
  reasons.push(...stepAndRate(device, setpoint, value, context));
  return reasons;
}

function stepAndRate(device: ProcessUnitDeclaration, setpoint: ProcessSetpoint, value: number, context: SetpointContext): Reason[] {
  const rule = `${device.id}/setpoints/${setpoint.name}`;
  const unit = setpoint.unit;
  const reasons: Reason[] = [];
  const references: Reference[] = [];
  const releases = releasesOf(setpoint.name, context);
  for (const release of releases) {
    references.push({ what: `the value last released (${release.value} ${unit})`, value: release.value });
    // Rate: the change since the last release must fit in maxRate for the time since then. Many small steps in
    // quick succession each get only their share, so together they cannot exceed the rate.
    const elapsedMs = context.nowMs - release.releasedAtMs;
    const allowed = (setpoint.maxRate.amount * elapsedMs) / setpoint.maxRate.perMs;
    const change = Math.abs(value - release.value);
    // SAFETY: a negative or NaN elapsed time (clock went back) allows no change at all; NaN change fails too.
    if (!(elapsedMs >= 0 && change <= allowed)) {
      reasons.push(
        reason(
          'BOUNDS_SETPOINT_RATE',
          `setpoint ${setpoint.name} would change by ${change} ${unit} ${elapsedMs} ms after the last release; maxRate ${setpoint.maxRate.amount} ${unit} per ${setpoint.maxRate.perMs} ms allows ${Math.max(0, allowed)} ${unit}`,
          { ruleId: `${rule}/maxRate`, path: '/params/value', limit: Math.max(0, allowed), actual: change, unit },
        ),
      );
    }
  }
  const reported = Object.hasOwn(context.state.setpoints, setpoint.name) ? context.state.setpoints[setpoint.name] : undefined;
  if (typeof reported === 'number' && Number.isFinite(reported)) references.push({ what: `the setpoint the device reports (${reported} ${unit})`, value: reported });
  else {
    reasons.push(
      reason('BOUNDS_MEASUREMENT_MISSING', `the state gives no finite current setpoint ${setpoint.name}, so the step cannot be checked`, {
        ruleId: `${rule}/maxStep`,
        path: '/params/value',
      }),
    );
  }
  const measured = measurementOf(context.state, setpoint.measurement);
  // A setpoint far from where the process is acts at once: its distance from the measured value is a step.
  if (typeof measured === 'number' && Number.isFinite(measured)) references.push({ what: `the measured ${setpoint.measurement} (${measured} ${unit})`, value: measured });
  else {
    reasons.push(
      reason('BOUNDS_MEASUREMENT_MISSING', `the state gives no finite measurement ${setpoint.measurement}, so the step from the process value cannot be checked`, {
        ruleId: `${rule}/maxStep`,
        path: '/params/value',
      }),
    );
  }
  const judged: number[] = [];
  for (const reference of references) {
    // The same reference value gives the same answer; one reason is enough.
    if (judged.includes(reference.value)) continue;
    judged.push(reference.value);
    const step = Math.abs(value - reference.value);
    // SAFETY: `!(step <= max)` also denies a NaN step.
    if (!(step <= setpoint.maxStep)) {
      reasons.push(
        reason('BOUNDS_SETPOINT_STEP', `setpoint ${setpoint.name} ${value} ${unit} is ${step} ${unit} from ${reference.what}; maxStep is ${setpoint.maxStep} ${unit}`, {
          ruleId: `${rule}/maxStep`,
          path: '/params/value',
          limit: setpoint.maxStep,
          actual: step,
          unit,
        }),
      );
    }
  }
  return reasons;
}
