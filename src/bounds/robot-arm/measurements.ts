// What an arm's state must report before it may move, and the effort, tool force and payload limits checked against
// what it reports (and the payload a command names). Appends reasons; never decides on its own.

import type { ArmDeclaration, ArmState } from '../../core/kinds/robot-arm.js';
import { limitIn, type Mode } from '../../core/kinds/kind-spec.js';
import { reason, type Reason } from '../../core/reasons.js';
import { fmt } from './format.js';

/** Measurements the state must carry, and the effort / force / payload they report; appended to `reasons`. */
export function measurementReasons(device: ArmDeclaration, state: ArmState, mode: Mode, commandPayloadKg: number | undefined, reasons: Reason[]): void {
  for (const measurement of device.stateMustReport) {
    if (state[measurement] === undefined) {
      reasons.push(
        reason('BOUNDS_ARM_MEASUREMENT_MISSING', `the state of ${device.id} does not report ${measurement}, which its declaration requires for motion`, {
          ruleId: `${device.id}/stateMustReport/${measurement}`,
        }),
      );
    }
  }
  const efforts = state.effortsNm;
  if (efforts !== undefined) {
    for (let index = 0; index < device.joints.length; index++) {
      const joint = device.joints[index] as ArmDeclaration['joints'][number];
      if (joint.effortMaxNm === undefined) continue;
      const limit = limitIn(joint.effortMaxNm, mode);
      const actual = Math.abs(efforts[index] as number);
      // SAFETY: an arm already pushing harder than its limit (in contact, overloaded) gets no new motion.
      if (!(actual <= limit)) {
        reasons.push(
          reason('BOUNDS_JOINT_EFFORT', `joint ${joint.name} reports ${fmt(actual, 2)} N*m, over its ${mode} effort limit ${fmt(limit, 2)} N*m`, {
            ruleId: `${device.id}/jointDynamics/${joint.name}/effort/${mode}`,
            limit,
            actual,
            unit: 'N*m',
          }),
        );
      }
    }
  }
  const forceLimit = device.tcp.forceMaxN;
  if (forceLimit !== undefined && state.toolForceN !== undefined) {
    const limit = limitIn(forceLimit, mode);
    if (!(state.toolForceN <= limit)) {
      reasons.push(
        reason('BOUNDS_TCP_FORCE', `the tool reports ${fmt(state.toolForceN, 2)} N, over the ${mode} TCP force limit ${fmt(limit, 2)} N`, {
          ruleId: `${device.id}/tcp/force/${mode}`,
          limit,
          actual: state.toolForceN,
          unit: 'N',
        }),
      );
    }
  }
  const payloadLimit = device.tcp.payloadMaxKg;
  if (payloadLimit !== undefined) {
    // SAFETY: a negative or NaN payload is not a payload; both fail the range test.
    if (commandPayloadKg !== undefined && !(commandPayloadKg >= 0 && commandPayloadKg <= payloadLimit)) {
      reasons.push(
        reason('BOUNDS_PAYLOAD', `the command's payload ${fmt(commandPayloadKg)} kg exceeds the payload limit ${fmt(payloadLimit)} kg`, {
          ruleId: `${device.id}/tcp/payload`,
          path: '/params/payloadKg',
          limit: payloadLimit,
          actual: commandPayloadKg,
          unit: 'kg',
        }),
      );
    }
    if (state.payloadKg !== undefined && !(state.payloadKg <= payloadLimit)) {
      reasons.push(
        reason('BOUNDS_PAYLOAD', `the state reports a payload of ${fmt(state.payloadKg)} kg, over the payload limit ${fmt(payloadLimit)} kg`, {
          ruleId: `${device.id}/tcp/payload`,
          limit: payloadLimit,
          actual: state.payloadKg,
          unit: 'kg',
        }),
      );
    }
  } else if (commandPayloadKg !== undefined) {
    reasons.push(reason('BOUNDS_PAYLOAD', `the command gives a payload but ${device.id} declares no payload limit to check it against`, { ruleId: `${device.id}/tcp/payload`, path: '/params/payloadKg' }));
  }
}
