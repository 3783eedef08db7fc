// The seam between the bounds stage and one device kind's checks. A kind checks its own limits given fresh state
// and the mode; it also says where the device is and where a command would take it, for shared-zone checks.

import type { Mode, Zone } from '../core/declarations.js';
import type { LastRelease } from '../core/device-state.js';
import type { StageResult } from '../core/verdict.js';
import type { PeopleView } from './people.js';

/** What a kind remembers about one device between commands (latched trips, last setpoints); owned by the kind. */
export type DeviceMemory = Map<string, unknown>;

export interface KindCheckContext<S> {
  /** The device's latest state, already known to be present, fresh and of this kind. */
  readonly state: S;
  readonly mode: Mode;
  readonly nowMs: number;
  /** The last command released to this device, for rate-of-change and step limits. */
  readonly lastRelease: LastRelease | undefined;
  readonly people: PeopleView;
  readonly zones: ReadonlyMap<string, Zone>;
  /** This device's memory; `observe` has already seen the current state. */
  readonly memory: DeviceMemory;
}

/** A command as the kind sees it: params already validated against the action's schema by the envelope. */
export interface KindCommand {
  readonly action: string;
  readonly params: Readonly<Record<string, unknown>>;
}

export interface KindBounds<D, S> {
  /** Every limit of this kind for a non-safe-state command. Returns every violation, not only the first. */
  check(device: D, command: KindCommand, context: KindCheckContext<S>): StageResult;
  /** The cell zones the device occupies now ('unknown' counts as every zone), and whether it is moving. */
  occupancy(device: D, state: S, zones: ReadonlyMap<string, Zone>): { readonly zoneIds: readonly string[] | 'unknown'; readonly moving: boolean };
  /** The cell zones the command would take the device into anywhere along its path ('unknown' fails closed). */
  zonesEntered(device: D, command: KindCommand, state: S, zones: ReadonlyMap<string, Zone>): readonly string[] | 'unknown';
  /** Called on every valid state message of the device, and before every check: latch trips, keep history. */
  observe?(device: D, state: S, memory: DeviceMemory, nowMs: number): void;
  /**
   * Called on every state message of the device the interlock refuses (the device then has no state): what it
   * still shows may latch something, e.g. a trip. `message` is its JSON value (undefined when it was not JSON).
   */
  observeRefused?(device: D, message: unknown, memory: DeviceMemory, nowMs: number): void;
  /** Called once a command to the device has been released (recorded and published): e.g. a trip reset. */
  released?(device: D, command: KindCommand, memory: DeviceMemory, nowMs: number): void;
}
