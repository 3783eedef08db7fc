// Early exits that fail: a test that cannot go on because something it needs is missing must fail, never end with
// fewer assertions (tap counts a subtest with none as a pass).

/** The value, or a thrown error naming what was missing (which fails the enclosing test). */
export function required<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}, but there is none`);
  return value;
}
