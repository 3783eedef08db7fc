// The ISO/TS 15066 protective separation distance S_p = S_h + S_r + S_s + C + Z_d + Z_r for a robot speed, and the
// robot's stopping distance. Pure arithmetic in SI; a non-finite speed gives NaN, which every check treats as a deny.

import type { SeparationDeclaration, StoppingDeclaration } from '../../core/kinds/mobile-robot.js';

/** Each term of S_p in metres, so a deny can say which part dominates. */
export interface SeparationTerms {
  readonly robotSpeedMPerS: number;
  /** T_s: how long the robot takes to stop from robotSpeedMPerS. */
  readonly stoppingTimeS: number;
  /** S_h = v_h * (T_r + T_s): how far a person walks while the robot reacts and stops. */
  readonly humanM: number;
  /** S_r = v_r * T_r: how far the robot drives before it starts braking. */
  readonly reactionM: number;
  /** S_s: how far the robot travels while braking. */
  readonly stoppingM: number;
  /** C + Z_d + Z_r */
  readonly intrusionM: number;
  readonly sensorM: number;
  readonly robotM: number;
  /** S_p */
  readonly totalM: number;
}

/** T_s in seconds from speed v (m/s): v / a for a declared deceleration, the declared time otherwise. */
export function stoppingTimeS(stopping: StoppingDeclaration, speedMPerS: number): number {
  return stopping.kind === 'deceleration' ? speedMPerS / stopping.decelerationMPerS2 : stopping.stoppingTimeMs / 1000;
}

/**
 * S_s in metres from speed v: v^2 / 2a for a declared deceleration; v * T_s for a declared stopping time (the
 * speed is assumed held until the robot is stopped, since a stopping time alone says nothing about the profile).
 */
export function stoppingDistanceM(stopping: StoppingDeclaration, speedMPerS: number): number {
  return stopping.kind === 'deceleration' ? (speedMPerS * speedMPerS) / (2 * stopping.decelerationMPerS2) : speedMPerS * (stopping.stoppingTimeMs / 1000);
}

/** S_p for a robot moving at `speedMPerS` (its magnitude; the direction does not matter). */
export function protectiveSeparation(separation: SeparationDeclaration, speedMPerS: number): SeparationTerms {
  const v = Math.abs(speedMPerS);
  const reactionS = separation.reactionTimeMs / 1000;
  const stoppingS = stoppingTimeS(separation.stopping, v);
  const humanM = separation.humanSpeedMPerS * (reactionS + stoppingS);
  const reactionM = v * reactionS;
  const stoppingM = stoppingDistanceM(separation.stopping, v);
  // Summed in the standard's order, so that a test computing the same formula gets the same float.
  const totalM = humanM + reactionM + stoppingM + separation.intrusionDistanceM + separation.sensorUncertaintyM + separation.positionUncertaintyM;
  return {
    robotSpeedMPerS: v,
    stoppingTimeS: stoppingS,
    humanM,
    reactionM,
    stoppingM,
    intrusionM: separation.intrusionDistanceM,
    sensorM: separation.sensorUncertaintyM,
    robotM: separation.positionUncertaintyM,
    totalM,
  };
}
