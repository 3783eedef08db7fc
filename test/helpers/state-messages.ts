// Device state as drivers put it on the wire (`actuator/{device}/state`), for tests that play a driver, and a feed
// that publishes it at driver rate through a real transport. The demo cell's AMR is its people source, so most rigs
// feed it too: without a people report the arm and the conveyor check in their reduced limits.

import type { Transport } from '../../src/transport/transport.js';
import { topicSet } from '../../src/transport/topics.js';

const topics = topicSet();

export interface ConveyorStateOptions {
  readonly speedMPerS?: number;
  readonly permissives?: Partial<{ guardClosed: boolean; estopReleased: boolean; downstreamReady: boolean }>;
  readonly running?: boolean;
  readonly safeStopped?: boolean;
}

/** conveyor-1 running at `speedMPerS` (0 by default) with every permissive true unless overridden. */
export function conveyorStateMessage(options: ConveyorStateOptions = {}): Record<string, unknown> {
  return {
    speedMPerS: options.speedMPerS ?? 0,
    permissives: { guardClosed: true, estopReleased: true, downstreamReady: true, ...options.permissives },
    running: options.running ?? true,
    safeStopped: options.safeStopped ?? false,
  };
}

export interface AmrStateOptions {
  readonly pose?: { readonly xM: number; readonly yM: number; readonly yawRad: number };
  readonly linearMPerS?: number;
  /** People the scanners see, [x, y] in the cell frame (m). */
  readonly people?: readonly (readonly [number, number])[];
  readonly localized?: boolean;
}

/** amr-1 at rest in the aisle (outside every watched zone), seeing nobody unless told otherwise. */
export function amrStateMessage(options: AmrStateOptions = {}): Record<string, unknown> {
  const speed = options.linearMPerS ?? 0;
  return {
    pose: options.pose ?? { xM: 4, yM: -0.5, yawRad: 0 },
    velocity: { linearMPerS: speed, angularRadPerS: 0 },
    localization: { ok: options.localized ?? true, ageMs: 20 },
    moving: speed !== 0,
    safeStopped: false,
    people: (options.people ?? []).map(([xM, yM]) => [xM, yM]),
  };
}

export interface StateFeed {
  /** Publishes every source once now and resolves when the broker has accepted them. */
  publishNow(): Promise<void>;
  stop(): void;
}

/**
 * Publishes `sources` (device id → the message to send now) every `periodMs` through `transport`, as drivers do.
 * `transport` may be a function returning the transport to use now. A source is read at every tick, so a test changes what the device reports by changing what its function returns.
 * `sign` makes the wire message, as the device's driver signs it (TestCell.reporter).
 */
export function stateFeed(
  transport: Transport | (() => Transport),
  sources: Record<string, () => Record<string, unknown>>,
  sign: (deviceId: string, message: Record<string, unknown>) => string,
  periodMs = 20,
): StateFeed {
  const current = typeof transport === 'function' ? transport : () => transport;
  const publishAll = (qos: 0 | 1): Promise<void> =>
    Promise.all(Object.entries(sources).map(([deviceId, message]) => current().publish(topics.actuatorState(deviceId), sign(deviceId, message()), { qos }))).then(() => undefined);
  const timer = setInterval(() => void publishAll(0).catch(() => undefined), periodMs);
  return {
    publishNow: () => publishAll(1),
    stop: () => clearInterval(timer),
  };
}

/** The demo arm's home pose (rad), where the simulated arm starts. */
export const ARM_HOME_RAD = [0, -1.571, 1.571, -1.571, -1.571, 0] as const;

export interface ArmStateOptions {
  readonly positionsRad?: readonly number[];
  readonly moving?: boolean;
}

/** arm-1 at rest at `positionsRad` (home by default), no payload, no tool force. */
export function armStateMessage(options: ArmStateOptions = {}): Record<string, unknown> {
  const positionsRad = [...(options.positionsRad ?? ARM_HOME_RAD)];
  return {
    positionsRad,
    velocitiesRadPerS: positionsRad.map(() => 0),
    moving: options.moving ?? false,
    safeStopped: false,
    lastCommandId: null,
    toolForceN: 0,
    payloadKg: 0,
  };
}
