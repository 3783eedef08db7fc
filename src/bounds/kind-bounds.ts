// The seam between the bounds stage and one device kind's checks. A kind checks its own limits given fresh state
// and the mode; it also says where the device is and where a command would take it, for shared-zone checks.

import type { Mode, Zone } from '../core/declarations.js';
import type { LastRelease } from '../core/device-state.js';
import type { StageResult } from '../core/verdict.js';
import type { PeopleView } from './people.js';

/**
 * The device's last release is not yet reported finished by the device itself (its state does not name it): the
 * driver may not have received it yet, so the device may be moving on it, or on one before it, from where its state
 * says it was. A kind then bounds where the device may be as if it were moving at its declared maximum speed.
 */
export interface ReleaseUnderWay {
  readonly commandId: string;
  /** For reason messages: "command c-7 not yet reported finished (its latest state names command c-6)". */
  readonly why: string;
}

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
  /**
   * Set while the last release is not yet reported finished: a kind that moves in space checks the command as if the
   * device were moving at its declared maximum speed (its run-out). Kinds that occupy no zone ignore it: their
   * checks already compare with `lastRelease` (the setpoint the device is heading to).
   */
  readonly underWay?: ReleaseUnderWay;
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
  /**
   * The cell zones the command would take the device into anywhere along its path ('unknown' fails closed), from
   * wherever it may be when the command takes effect; with `underWay`, as if it were moving at its declared maximum.
   */
  zonesEntered(device: D, command: KindCommand, state: S, zones: ReadonlyMap<string, Zone>, underWay?: ReleaseUnderWay): readonly string[] | 'unknown';
  /** Called on every valid state message of the device, and before every check: latch trips, keep history. */
  observe?(device: D, state: S, memory: DeviceMemory, nowMs: number): void;
  /**
   * Called on every state message of the device the interlock refuses (the device then has no state): what it
   * still shows may latch something, e.g. a trip. `message` is its JSON value (undefined when it was not JSON).
   */
  observeRefused?(device: D, message: unknown, memory: DeviceMemory, nowMs: number): void;
  /** Called once a command to the device has been released (recorded and published): e.g. a trip reset. */
  released?(device: D, command: KindCommand, memory: DeviceMemory, nowMs: number): void;
  /** What of the device's memory survives a restart; absent when the kind remembers nothing that matters then. */
  readonly persistence?: KindMemoryPersistence<D>;
}

/** How a kind's device memory is written to the safety memory store (as JSON) and read back at start. */
export interface KindMemoryPersistence<D> {
  /** Changes whenever what `save` returns changes; compared after every observation, so it must be cheap. */
  revision(memory: DeviceMemory): number;
  save(memory: DeviceMemory): unknown;
  /**
   * What `save` will return once `command` is released, when the release adds something to remember (a setpoint);
   * undefined otherwise. Written before the release is published, so a crash after it cannot lose it.
   */
  savedAfterRelease?(device: D, command: KindCommand, memory: DeviceMemory, nowMs: number): unknown;
  /** Reads `saved` into `memory`, dropping what `device` no longer declares (one note each). Throws when unreadable. */
  restore(device: D, saved: unknown, memory: DeviceMemory): string[];
  /** The memory from before the start is unknown: make it as strict as it can be (every declared trip latched). */
  failClosed(device: D, memory: DeviceMemory, nowMs: number): void;
}
