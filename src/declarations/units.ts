// Units a declaration may use, per physical dimension, with the factor to the internal unit. An unknown unit,
// or a unit of the wrong dimension (mm where an angle is expected), is a load error, never a guess.

export const UNITS = {
  /** internal: rad */
  angle: { rad: 1, deg: Math.PI / 180 },
  /** internal: rad/s */
  angularVelocity: { 'rad/s': 1, 'deg/s': Math.PI / 180 },
  /** internal: m */
  length: { m: 1, cm: 0.01, mm: 0.001 },
  /** internal: m/s */
  linearVelocity: { 'm/s': 1, 'mm/s': 0.001 },
  /** internal: ms (the clock's unit) */
  duration: { s: 1000, ms: 1 },
  /** internal: bytes */
  size: { B: 1, KiB: 1024 },
} as const;

export type Dimension = keyof typeof UNITS;

export const INTERNAL_UNIT: Record<Dimension, string> = {
  angle: 'rad',
  angularVelocity: 'rad/s',
  length: 'm',
  linearVelocity: 'm/s',
  duration: 'ms',
  size: 'B',
};

export function unitsOf(dimension: Dimension): string[] {
  return Object.keys(UNITS[dimension]);
}

/** Converts a declared value to the internal unit; undefined when the unit does not belong to the dimension. */
export function toInternal(dimension: Dimension, value: number, unit: string): number | undefined {
  const factors: Readonly<Record<string, number>> = UNITS[dimension];
  if (!Object.hasOwn(factors, unit)) return undefined;
  return value * (factors[unit] as number);
}
