// Simulated people for the demo: the seeded random walkers plus people the demo script places by name, so that a
// step about a person near a machine never depends on where a random walk happens to be. Never moves a walker.

import { SimulatedPeople } from './people.js';

export type PlanarPointM = readonly [number, number];

export class ScriptedPeople extends SimulatedPeople {
  readonly #placed = new Map<string, PlanarPointM>();

  /** Puts `name` at `atM` ([x, y], cell frame, metres) until removed; placing a name again moves that person. */
  place(name: string, atM: PlanarPointM): void {
    // A wiring bug, not input: a person at NaN would be reported as "too close" everywhere.
    if (!atM.every(Number.isFinite)) throw new RangeError(`ScriptedPeople: ${name} must be placed at finite coordinates`);
    this.#placed.set(name, [atM[0], atM[1]]);
  }

  /** Takes `name` out of the reports; removing someone who is not there does nothing. */
  remove(name: string): void {
    this.#placed.delete(name);
  }

  /** The walkers, then the placed people. */
  override positions(): [number, number][] {
    return [...super.positions(), ...[...this.#placed.values()].map(([x, y]): [number, number] => [x, y])];
  }
}
