// Bounds for conveyors: speed (forward/reverse, per mode), ramp, reversal only from standstill, step per command,
// and permissives, against fresh live state. It allows or denies; it never edits a command. NaN fails every check.

import type { LastRelease } from '../core/device-state.js';
import type { ConveyorDeclaration, ConveyorState } from '../core/kinds/conveyor.js';
import { limitIn, type Mode } from '../core/kinds/kind-spec.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { KindBounds, KindCommand } from './kind-bounds.js';

const SPEED_PATH = '/params/speedMPerS';
const RAMP_PATH = '/params/rampMPerS2';

/** What a set_speed check needs beyond the command: the mode, the live state and the last released command. */
export interface ConveyorCheckInput {
  readonly mode: Mode;
  readonly state: ConveyorState;
  readonly lastRelease: LastRelease | undefined;
}

/** A param as a number; anything else (a numeric string, null) becomes NaN so that every check below fails it. */
function numberParam(params: Readonly<Record<string, unknown>>, name: string): number {
  const value = params[name];
  // SAFETY: "0.3" <= 0.5 is true in JavaScript; only a real number may reach a comparison.
  return typeof value === 'number' ? value : NaN;
}

/**
 * The setpoint the belt was last told to run at: 0 after a stop, the speed of a set_speed; NaN when the last
 * release cannot be read (so the checks that use it deny); undefined when nothing was released yet.
 */
export function lastSetpointMPerS(lastRelease: LastRelease | undefined): number | undefined {
  if (lastRelease === undefined) return undefined;
  if (lastRelease.action === 'stop') return 0;
  if (lastRelease.action === 'set_speed') return numberParam(lastRelease.params, 'speedMPerS');
  return NaN;
}

/** Speed against the mode's signed range: [-reverse max (0 when reverse is not allowed), forward max]. */
function speedReasons(device: ConveyorDeclaration, speed: number, mode: Mode): Reason[] {
  const forwardMax = limitIn(device.maxSpeedMPerS, mode);
  // -0 and 0 are standstill, not reverse.
  if (speed >= 0) {
    if (speed <= forwardMax) return [];
    return [
      reason('BOUNDS_CONVEYOR_SPEED', `speed ${speed} m/s is above ${device.id}'s ${mode} maxSpeed ${forwardMax} m/s`, {
        ruleId: `${device.id}/maxSpeed/${mode}`,
        path: SPEED_PATH,
        limit: forwardMax,
        actual: speed,
        unit: 'm/s',
      }),
    ];
  }
  if (speed < 0) {
    if (!device.reverse.allowed) {
      return [
        reason('BOUNDS_CONVEYOR_REVERSE_NOT_ALLOWED', `speed ${speed} m/s runs ${device.id} in reverse, which its declaration does not allow`, {
          ruleId: `${device.id}/reverse/allowed`,
          path: SPEED_PATH,
          limit: 0,
          actual: speed,
          unit: 'm/s',
        }),
      ];
    }
    const reverseMax = limitIn(device.reverse.maxSpeedMPerS, mode);
    if (-speed <= reverseMax) return [];
    return [
      reason('BOUNDS_CONVEYOR_SPEED', `reverse speed ${speed} m/s is beyond ${device.id}'s ${mode} reverse maxSpeed ${reverseMax} m/s`, {
        ruleId: `${device.id}/reverse/maxSpeed/${mode}`,
        path: SPEED_PATH,
        limit: -reverseMax,
        actual: speed,
        unit: 'm/s',
      }),
    ];
  }
  // SAFETY: neither >= 0 nor < 0: NaN (or a non-number param). Not a speed, so not a safe one.
  return [
    reason('BOUNDS_CONVEYOR_SPEED', `speed ${String(speed)} is not a finite number of m/s`, {
      ruleId: `${device.id}/maxSpeed/${mode}`,
      path: SPEED_PATH,
      limit: forwardMax,
      actual: speed,
      unit: 'm/s',
    }),
  ];
}

/** The ramp the belt will use: the commanded one, or the reduced limit the driver uses when none is given. */
function rampReasons(device: ConveyorDeclaration, params: Readonly<Record<string, unknown>>, mode: Mode): Reason[] {
  // Absent: the driver ramps at maxRamp.reduced (its documented default), which no mode's limit is below.
  if (!Object.hasOwn(params, 'rampMPerS2')) return [];
  const ramp = numberParam(params, 'rampMPerS2');
  const limit = limitIn(device.maxRampMPerS2, mode);
  const min = device.minRampMPerS2;
  // SAFETY: written as "not inside [minRamp, limit]" so that NaN, 0, -0, negatives and a crawl are denied, never
  // changed. minRamp > 0 is enforced at load.
  if (ramp >= min && ramp <= limit) return [];
  const tooSlow = ramp < min;
  return [
    reason('BOUNDS_CONVEYOR_RAMP', `ramp ${String(ramp)} m/s^2 is not within [${min}, ${limit}] m/s^2, ${device.id}'s minRamp and ${mode} maxRamp`, {
      ruleId: tooSlow ? `${device.id}/minRamp` : `${device.id}/maxRamp/${mode}`,
      path: RAMP_PATH,
      limit: tooSlow ? min : limit,
      actual: ramp,
      unit: 'm/s^2',
    }),
  ];
}

/**
 * True when running at `speed` does not reverse a belt going at `reference`: same direction, no direction
 * (0 or -0 on either side), or the reference is within `standstill` (0 for a setpoint: exactly 0 only). NaN
 * anywhere gives false.
 */
function keepsDirection(speed: number, reference: number, standstill: number): boolean {
  // SAFETY: signs, not the product: 5e-324 * -0.3 underflows to -0 and would hide a reversal. Both comparisons
  // are false for NaN, so an unknown speed or reference counts as a reversal.
  return Math.sign(speed) * Math.sign(reference) >= 0 || Math.abs(reference) <= standstill;
}

function reversalReasons(device: ConveyorDeclaration, speed: number, measured: number, setpoint: number | undefined): Reason[] {
  const reasons: Reason[] = [];
  // A NaN speed is already denied by the speed check; repeating it here as a "reversal" would only add noise.
  if (Number.isNaN(speed)) return reasons;
  if (!keepsDirection(speed, measured, device.standstillMPerS)) {
    reasons.push(
      reason(
        'BOUNDS_CONVEYOR_REVERSAL',
        `speed ${speed} m/s reverses ${device.id}, which is measured at ${measured} m/s (standstill is |speed| <= ${device.standstillMPerS} m/s): stop first`,
        { ruleId: `${device.id}/reversal/measured`, path: SPEED_PATH, limit: device.standstillMPerS, actual: Math.abs(measured), unit: 'm/s' },
      ),
    );
  }
  // The measured speed may lag a setpoint the belt is still ramping towards: the last released setpoint must
  // not run the other way either, so a reversal needs a stop (or 0) released first.
  // SAFETY: the standstill band is for measurements only. A released setpoint is exact: 0.006 m/s runs forward, and
  // counting it as "stopped" would let the belt be reversed without a stop ever being released.
  if (setpoint !== undefined && !keepsDirection(speed, setpoint, 0)) {
    reasons.push(
      reason(
        'BOUNDS_CONVEYOR_REVERSAL',
        `speed ${speed} m/s reverses ${device.id}, whose last released setpoint is ${setpoint} m/s: release a stop (or 0) and wait for standstill first`,
        { ruleId: `${device.id}/reversal/lastRelease`, path: SPEED_PATH, limit: 0, actual: Math.abs(setpoint), unit: 'm/s' },
      ),
    );
  }
  return reasons;
}

function stepReasons(device: ConveyorDeclaration, speed: number, measured: number, setpoint: number | undefined): Reason[] {
  const reasons: Reason[] = [];
  if (Number.isNaN(speed)) return reasons;
  const limit = device.maxStepMPerS;
  const fromMeasured = Math.abs(speed - measured);
  // SAFETY: `!(step <= limit)` denies a NaN or infinite step.
  if (!(fromMeasured <= limit)) {
    reasons.push(
      reason('BOUNDS_CONVEYOR_STEP', `speed ${speed} m/s is ${fromMeasured} m/s from the measured ${measured} m/s; ${device.id}'s maxStep is ${limit} m/s`, {
        ruleId: `${device.id}/maxStep/measured`,
        path: SPEED_PATH,
        limit,
        actual: fromMeasured,
        unit: 'm/s',
      }),
    );
  }
  // Against the measured speed: many small steps, each small against the one before, released faster than the
  // belt catches up. Against the last released setpoint: a jump from a setpoint the belt has not reached yet
  // (e.g. slowing from 0.5 towards a released 0.3, a command of 0.6 is near the measured speed but not the setpoint).
  if (setpoint !== undefined) {
    const fromSetpoint = Math.abs(speed - setpoint);
    if (!(fromSetpoint <= limit)) {
      reasons.push(
        reason(
          'BOUNDS_CONVEYOR_STEP',
          `speed ${speed} m/s is ${fromSetpoint} m/s from the last released setpoint ${setpoint} m/s; ${device.id}'s maxStep is ${limit} m/s`,
          { ruleId: `${device.id}/maxStep/lastRelease`, path: SPEED_PATH, limit, actual: fromSetpoint, unit: 'm/s' },
        ),
      );
    }
  }
  return reasons;
}

function permissiveReasons(device: ConveyorDeclaration, state: ConveyorState): Reason[] {
  const reasons: Reason[] = [];
  for (const name of device.permissives) {
    const present = Object.hasOwn(state.permissives, name);
    // SAFETY: only a reported `true` permits; false, missing, or any other value denies.
    if (present && state.permissives[name] === true) continue;
    reasons.push(
      reason(
        'BOUNDS_CONVEYOR_PERMISSIVE',
        present ? `permissive ${name} of ${device.id} is false` : `permissive ${name} of ${device.id} is not reported in its state`,
        { ruleId: `${device.id}/permissives/${name}`, path: '/action' },
      ),
    );
  }
  return reasons;
}

/** Every conveyor limit for one set_speed. Returns every violation, not only the first. */
export function checkConveyorSetSpeed(device: ConveyorDeclaration, params: Readonly<Record<string, unknown>>, input: ConveyorCheckInput): StageResult {
  const speed = numberParam(params, 'speedMPerS');
  const measured = input.state.speedMPerS;
  // SAFETY: the state parser refuses these; checked again because every check below compares against it.
  if (typeof measured !== 'number' || !Number.isFinite(measured)) {
    return denyWith(reason('BOUNDS_STATE_INVALID', `state of ${device.id} does not give a finite measured speed`, { ruleId: `${device.id}/state/speedMPerS` }));
  }
  const setpoint = lastSetpointMPerS(input.lastRelease);
  const reasons = [
    ...permissiveReasons(device, input.state),
    ...speedReasons(device, speed, input.mode),
    ...rampReasons(device, params, input.mode),
    ...reversalReasons(device, speed, measured, setpoint),
    ...stepReasons(device, speed, measured, setpoint),
  ];
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}

/** |speed| above standstill, or the drive says it is running. */
export function conveyorMoving(device: ConveyorDeclaration, state: ConveyorState): boolean {
  // SAFETY: a NaN speed counts as moving.
  return state.running || !(Math.abs(state.speedMPerS) <= device.standstillMPerS);
}

export const CONVEYOR_BOUNDS: KindBounds<ConveyorDeclaration, ConveyorState> = {
  check(device, command: KindCommand, context) {
    if (command.action === 'set_speed') {
      return checkConveyorSetSpeed(device, command.params, { mode: context.mode, state: context.state, lastRelease: context.lastRelease });
    }
    return denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on conveyor ${device.id}`, { ruleId: device.id }));
  },
  // A conveyor stays where it is bolted down: it occupies and enters no cell zone. Conveyors are not shared-zone
  // participants; listing one in a cell shared zone is a declaration error for the cell level to report.
  occupancy: (device, state) => ({ zoneIds: [], moving: conveyorMoving(device, state) }),
  zonesEntered: () => [],
};
