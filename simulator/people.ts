// Simulated people walking between random points of a room, for the mobile robot's people reports. Seeded and
// deterministic for a given sequence of times; a person never walks faster than the declared maximum (1.6 m/s).

/** A seeded 32-bit PRNG (mulberry32): the same seed gives the same walk on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Room {
  readonly minXM: number;
  readonly maxXM: number;
  readonly minYM: number;
  readonly maxYM: number;
}

export interface SimulatedPeopleOptions {
  readonly room: Room;
  readonly count: number;
  readonly seed: number;
  /** Fastest walking speed; each person walks at a random speed between half this and this. Default 1.6 m/s. */
  readonly maxSpeedMPerS?: number;
  /** Longest pause at a goal before walking on; default 2000 ms. */
  readonly maxPauseMs?: number;
  /** The time the walk starts at (epoch ms). */
  readonly startMs: number;
}

interface Walker {
  xM: number;
  yM: number;
  goalXM: number;
  goalYM: number;
  speedMPerS: number;
  /** Standing still until this time. */
  pausedUntilMs: number;
}

/** The ISO/TS 15066 walking approach speed: simulated people never exceed it unless told to. */
export const DEFAULT_MAX_WALKING_SPEED_M_PER_S = 1.6;

export class SimulatedPeople {
  readonly #room: Room;
  readonly #random: () => number;
  readonly #maxSpeedMPerS: number;
  readonly #maxPauseMs: number;
  readonly #walkers: Walker[] = [];
  #timeMs: number;

  /** Throws on a room or count that cannot describe a walk; these are wiring bugs. */
  constructor(options: SimulatedPeopleOptions) {
    const { room } = options;
    if (![room.minXM, room.maxXM, room.minYM, room.maxYM].every(Number.isFinite) || !(room.minXM < room.maxXM && room.minYM < room.maxYM)) {
      throw new RangeError('SimulatedPeople: room must have finite bounds with min < max');
    }
    if (!Number.isSafeInteger(options.count) || options.count < 0 || options.count > 64) throw new RangeError(`SimulatedPeople: count must be 0..64, got ${options.count}`);
    const maxSpeed = options.maxSpeedMPerS ?? DEFAULT_MAX_WALKING_SPEED_M_PER_S;
    if (!(maxSpeed > 0 && Number.isFinite(maxSpeed))) throw new RangeError(`SimulatedPeople: maxSpeedMPerS must be a finite number > 0, got ${maxSpeed}`);
    if (!Number.isFinite(options.startMs)) throw new RangeError('SimulatedPeople: startMs must be finite');
    this.#room = room;
    this.#random = seededRandom(options.seed);
    this.#maxSpeedMPerS = maxSpeed;
    this.#maxPauseMs = options.maxPauseMs ?? 2000;
    this.#timeMs = options.startMs;
    for (let i = 0; i < options.count; i++) {
      const [xM, yM] = this.#randomPoint();
      const walker: Walker = { xM, yM, goalXM: xM, goalYM: yM, speedMPerS: 0, pausedUntilMs: this.#timeMs };
      this.#newGoal(walker);
      this.#walkers.push(walker);
    }
  }

  get maxSpeedMPerS(): number {
    return this.#maxSpeedMPerS;
  }

  /** Where everyone is now, [x, y] in metres. */
  positions(): [number, number][] {
    return this.#walkers.map((w) => [w.xM, w.yM]);
  }

  /** Walks everyone up to `nowMs`; a clock that stands still or goes back moves nobody. */
  advanceTo(nowMs: number): void {
    const dtMs = nowMs - this.#timeMs;
    if (!Number.isFinite(dtMs) || dtMs <= 0) return;
    for (const walker of this.#walkers) this.#walk(walker, this.#timeMs, nowMs);
    this.#timeMs = nowMs;
  }

  #walk(walker: Walker, fromMs: number, toMs: number): void {
    let t = Math.max(fromMs, Math.min(walker.pausedUntilMs, toMs));
    while (t < toMs) {
      const dx = walker.goalXM - walker.xM;
      const dy = walker.goalYM - walker.yM;
      const remainingM = Math.hypot(dx, dy);
      const reachMs = (remainingM / walker.speedMPerS) * 1000;
      if (t + reachMs <= toMs) {
        // Arrives within this step: stand at the goal, pause, then pick the next one.
        walker.xM = walker.goalXM;
        walker.yM = walker.goalYM;
        t += reachMs;
        walker.pausedUntilMs = t + this.#random() * this.#maxPauseMs;
        this.#newGoal(walker);
        t = Math.min(Math.max(t, walker.pausedUntilMs), toMs);
      } else {
        const stepM = (walker.speedMPerS * (toMs - t)) / 1000;
        walker.xM += (dx / remainingM) * stepM;
        walker.yM += (dy / remainingM) * stepM;
        t = toMs;
      }
    }
  }

  #newGoal(walker: Walker): void {
    const [x, y] = this.#randomPoint();
    walker.goalXM = x;
    walker.goalYM = y;
    walker.speedMPerS = this.#maxSpeedMPerS * (0.5 + 0.5 * this.#random());
  }

  #randomPoint(): [number, number] {
    const { minXM, maxXM, minYM, maxYM } = this.#room;
    return [minXM + this.#random() * (maxXM - minXM), minYM + this.#random() * (maxYM - minYM)];
  }
}
