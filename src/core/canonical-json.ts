// Canonical JSON: object keys sorted, no whitespace, so equal values always give equal bytes (for digests and
// the audit hash chain). It refuses what JSON cannot carry faithfully rather than silently changing it.

export function canonicalJson(value: unknown): string {
  return serialize(value, '');
}

function serialize(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // SAFETY: JSON.stringify turns NaN and Infinity into null, which would hide a corrupt value in a digest.
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number at ${path || '/'}`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((item, index) => serialize(item, `${path}/${index}`)).join(',')}]`;
      }
      const entries = Object.keys(value)
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${serialize((value as Record<string, unknown>)[key], `${path}/${key}`)}`);
      return `{${entries.join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialize ${typeof value} at ${path || '/'}`);
  }
}
