// Number formatting for arm reason messages. Formatting only: every limit and actual travels as a number too.

/** A fixed number of decimals; NaN and ±Infinity as themselves, so a reason never hides a non-finite value. */
export function fmt(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}
