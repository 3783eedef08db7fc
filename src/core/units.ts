// Units a declaration may use, per physical dimension, with the factor to the internal (SI, time in ms) unit.
// An unknown unit, or a unit of the wrong dimension (mm where an angle is expected), is a load error, never a guess.

export const UNITS = {
  /** internal: rad */
  angle: { rad: 1, deg: Math.PI / 180 },
  /** internal: rad/s */
  angularVelocity: { 'rad/s': 1, 'deg/s': Math.PI / 180, rpm: (2 * Math.PI) / 60 },
  /** internal: rad/s^2 */
  angularAcceleration: { 'rad/s^2': 1, 'deg/s^2': Math.PI / 180 },
  /** internal: m */
  length: { m: 1, cm: 0.01, mm: 0.001 },
  /** internal: m/s */
  linearVelocity: { 'm/s': 1, 'mm/s': 0.001, 'm/min': 1 / 60 },
  /** internal: m/s^2 */
  linearAcceleration: { 'm/s^2': 1, 'mm/s^2': 0.001 },
  /** internal: N */
  force: { N: 1, kN: 1000 },
  /** internal: N*m */
  torque: { 'N*m': 1 },
  /** internal: kg */
  mass: { kg: 1, g: 0.001 },
  /** internal: Pa */
  pressure: { Pa: 1, kPa: 1000, bar: 100_000, MPa: 1_000_000 },
  /** internal: m^3/s */
  volumeFlow: { 'm^3/s': 1, 'm^3/h': 1 / 3600, 'L/min': 0.001 / 60, 'L/s': 0.001 },
  /** internal: m^3 */
  volume: { 'm^3': 1, L: 0.001 },
  /** internal: fraction 0..1 (valve opening, pump duty) */
  ratio: { fraction: 1, '%': 0.01 },
  /** internal: ms (the clock's unit) */
  duration: { s: 1000, ms: 1, min: 60_000, h: 3_600_000, d: 86_400_000 },
  /** internal: bytes */
  size: { B: 1, KiB: 1024, MiB: 1_048_576, GiB: 1_073_741_824 },
} as const;

export type Dimension = keyof typeof UNITS;

export const DIMENSIONS = Object.keys(UNITS) as Dimension[];

export const INTERNAL_UNIT: Record<Dimension, string> = {
  angle: 'rad',
  angularVelocity: 'rad/s',
  angularAcceleration: 'rad/s^2',
  length: 'm',
  linearVelocity: 'm/s',
  linearAcceleration: 'm/s^2',
  force: 'N',
  torque: 'N*m',
  mass: 'kg',
  pressure: 'Pa',
  volumeFlow: 'm^3/s',
  volume: 'm^3',
  ratio: 'fraction',
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

/** Like toInternal, for values the schema already checked: a failure means schema and unit table disagree (a bug). */
export function convertUnit(dimension: Dimension, value: number, unit: string): number {
  const converted = toInternal(dimension, value, unit);
  if (converted === undefined) throw new Error(`unit ${unit} is not a ${dimension} unit (schema and unit table disagree)`);
  return converted;
}
