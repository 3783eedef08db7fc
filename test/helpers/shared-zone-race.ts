// The shared-zone race of issue 12 (item 5), played on the live rig: arm-1 swings through the transfer station while
// amr-1 asks to dock there, and a state the arm sent before its driver had the swing arrives after the release. Both
// devices are played here (their drivers' state messages, on the rig's manual clock, with the declared state ages).
// Used by test/interlock/shared-zone-race.test.ts and the soak (test/soak/). Not a test file.

import type { CommandSigner } from '../../src/agent-sdk/command-signer.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import type { ManualClock } from './clocks.js';
import { AMR_AISLE_POSE, AMR_DOCK_POSE } from './demo-people.js';
import { topics, type LiveInterlock } from './live-interlock.js';
import { amrStateMessage, armStateMessage } from './state-messages.js';
import { waitFor } from './wait-for.js';

/** The arm reaching out over the table, its base turned +0.6 rad: outside the station (its run-out included). */
export const ARM_NORTH = [0.6, -0.8, 0.9, -1.671, -1.571, 0] as const;
/** The same, base turned -0.6 rad. A base swing from one to the other passes over the tote in the station. */
export const ARM_SOUTH = [-0.6, -0.8, 0.9, -1.671, -1.571, 0] as const;
const SWING_RAD_PER_S = 0.5;
const AMR_SPEED_M_PER_S = 0.3;

/** What a played state says about the last command: its id, null, or (omitted) a driver that does not report it. */
export type Names = string | null | 'omitted';

type Pose = { readonly xM: number; readonly yM: number; readonly yawRad: number };

/**
 * Publishes `message` on the device's state topic as its driver would: through the rig's signed reports when the rig
 * has them (drivers sign their state), else as the plain JSON message.
 */
async function publishState(rig: LiveInterlock, deviceId: string, message: Record<string, unknown>): Promise<void> {
  const signed = (rig as { report?: (deviceId: string, message: Record<string, unknown>) => Promise<void> }).report;
  if (signed !== undefined) return signed.call(rig, deviceId, message);
  await rig.client.publish(topics.actuatorState(deviceId), JSON.stringify(message), { qos: 1 });
}

/** The two played devices and what each reports now; every report goes out at a new instant of the manual clock. */
export class SharedZoneRace {
  arm: { positionsRad: readonly number[]; names: Names } = { positionsRad: ARM_NORTH, names: null };
  amr: { pose: Pose; names: Names } = { pose: AMR_AISLE_POSE, names: null };
  private readonly planner: CommandSigner;

  constructor(
    readonly rig: LiveInterlock,
    readonly clock: ManualClock,
  ) {
    this.planner = rig.cell.signer('planner-1', () => clock.nowMs());
  }

  /** Lets `ms` (>= 1) pass, then both devices report what they say now; resolves once the interlock holds both reports. */
  async report(ms = 10): Promise<void> {
    this.clock.advance(ms);
    const at = this.clock.nowMs();
    const arm = { ...armStateMessage({ positionsRad: this.arm.positionsRad }), lastCommandId: this.arm.names };
    if (this.arm.names === 'omitted') delete (arm as Record<string, unknown>)['lastCommandId'];
    const amr: Record<string, unknown> = { ...amrStateMessage({ pose: this.amr.pose }) };
    if (this.amr.names !== 'omitted') amr['lastCommandId'] = this.amr.names;
    await Promise.all([publishState(this.rig, 'arm-1', arm), publishState(this.rig, 'amr-1', amr)]);
    const states = this.rig.interlock.states;
    await waitFor(() => states.latest('arm-1')?.receivedAtMs === at && states.latest('amr-1')?.receivedAtMs === at, 'both played states to reach the interlock');
  }

  /**
   * Reports every 100 ms until the start-up reduced hold (holdReduced after the people source's first report) has run
   * out, so the arm checks in its normal limits (its reduced max step is shorter than the swing).
   */
  async settleModes(): Promise<void> {
    const holdMs = Math.max(...[...this.rig.interlock.declarations.declarations.devices.values()].map((d) => d.modes.holdReducedForMs));
    for (let passedMs = 0; passedMs <= holdMs + 100; passedMs += 100) await this.report(100);
  }

  /** The arm's swing to the other side (through the station); resolves with the decision and, when allowed, its release. */
  async swing(): Promise<DecisionEvent> {
    const to = this.arm.positionsRad === ARM_NORTH ? ARM_SOUTH : ARM_NORTH;
    return this.released(await this.rig.send('arm-1', this.planner.sign('arm-1', 'move_joints', { positionsRad: [...to], velocityRadPerS: SWING_RAD_PER_S })));
  }

  /** amr-1 asks to dock in the station. */
  async dock(): Promise<DecisionEvent> {
    return this.released(await this.rig.send('amr-1', this.planner.sign('amr-1', 'go_to', { ...AMR_DOCK_POSE, speedMPerS: AMR_SPEED_M_PER_S })));
  }

  /** amr-1 asks to go back to the aisle. */
  async toAisle(): Promise<DecisionEvent> {
    return this.released(await this.rig.send('amr-1', this.planner.sign('amr-1', 'go_to', { ...AMR_AISLE_POSE, speedMPerS: AMR_SPEED_M_PER_S })));
  }

  /** Whether a release of `commandId` went out on the actuator topic. */
  wasReleased(commandId: string | null): boolean {
    return this.rig.releases.some((r) => r.command.commandId === commandId);
  }

  /** When the release of `commandId` went out (the interlock's clock). */
  releasedAtMs(commandId: string | null): number {
    return this.rig.releases.find((r) => r.command.commandId === commandId)?.command.releasedAtMs ?? NaN;
  }

  /** An allowed decision resolves once its release is on the actuator topic, so what follows comes after it. */
  private async released(decision: DecisionEvent): Promise<DecisionEvent> {
    if (decision.report.verdict === 'allow') await waitFor(() => this.wasReleased(decision.report.commandId), `the release of ${decision.report.commandId}`);
    return decision;
  }
}

/** What one race trial saw: the AMR's docking request while the swing was unreported, and once it was reported. */
export interface RaceTrial {
  readonly swing: DecisionEvent;
  /** When the stale state (sent before the driver had the swing) reached the interlock, and when the swing went out. */
  readonly staleReceivedAtMs: number;
  readonly swingReleasedAtMs: number;
  /** Docking asked for after the stale state arrived: must be denied (the arm may be in the station). */
  readonly whileUnreported: DecisionEvent;
  /** Docking asked for once the arm's state names the swing, at rest outside the station: allowed. */
  readonly afterReported: DecisionEvent;
}

/**
 * One trial, from both devices at rest outside the station, their last commands reported: the arm swings through
 * the station; `stale` states at rest where it was, naming `staleNames` (default: the command before the swing), arrive
 * after the release; the AMR asks to dock; the arm reports the swing done at the other side; the AMR asks again,
 * and when allowed "docks" and goes back to the aisle (played), ready for the next trial.
 */
export async function raceTrial(race: SharedZoneRace, options: { stale?: number; staleNames?: Names; gapMs?: number } = {}): Promise<RaceTrial> {
  const gapMs = options.gapMs ?? 10;
  const swing = await race.swing();
  const swingId = swing.report.commandId;
  if (swing.report.verdict !== 'allow' || swingId === null) throw new Error(`the swing was not allowed (${swing.report.mode}: ${swing.report.modeBecause.join(', ')}): ${swing.report.reasons.map((r) => r.message).join(' | ')}`);
  const swingReleasedAtMs = race.releasedAtMs(swingId);
  // The driver has not got the swing yet: its states still show the arm at rest where it was.
  if (options.staleNames !== undefined) race.arm.names = options.staleNames;
  for (let i = 0; i < (options.stale ?? 1); i++) await race.report(gapMs);
  const staleReceivedAtMs = race.rig.interlock.states.latest('arm-1')?.receivedAtMs ?? NaN;
  const whileUnreported = await race.dock();
  if (whileUnreported.report.verdict === 'allow') await settleDock(race, whileUnreported);
  // The swing done: at rest on the other side, naming it.
  race.arm = { positionsRad: race.arm.positionsRad === ARM_NORTH ? ARM_SOUTH : ARM_NORTH, names: swingId };
  await race.report(gapMs);
  const afterReported = whileUnreported.report.verdict === 'allow' ? whileUnreported : await race.dock();
  if (afterReported !== whileUnreported && afterReported.report.verdict === 'allow') await settleDock(race, afterReported);
  return { swing, staleReceivedAtMs, swingReleasedAtMs, whileUnreported, afterReported };
}

/** The AMR docks (played: it reports the dock done) and goes back to the aisle, reporting that done too. */
async function settleDock(race: SharedZoneRace, dock: DecisionEvent): Promise<void> {
  race.amr = { pose: AMR_DOCK_POSE, names: dock.report.commandId };
  await race.report();
  const back = await race.toAisle();
  if (back.report.verdict !== 'allow') throw new Error(`amr-1 may not leave the station: ${back.report.reasons.map((r) => r.message).join(' | ')}`);
  race.amr = { pose: AMR_AISLE_POSE, names: back.report.commandId };
  await race.report();
}
