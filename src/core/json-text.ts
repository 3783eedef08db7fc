// Scans of JSON text for what JSON.parse does not say: how deep it nests, and whether an object repeats a key
// (JSON.parse keeps the last one silently). One pass each, no recursion: time linear in the text, call stack constant.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * A problem if the JSON text opens more than `maxDepth` arrays or objects inside each other, for use before
 * JSON.parse (or any recursive walk) sees it. Brackets inside strings do not count; the text need not be valid JSON.
 */
export function jsonDepthProblem(text: string, maxDepth: number): string | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i += 1;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth += 1;
      // SAFETY: refused at the first bracket past the limit, so nothing deeper is ever looked at.
      if (depth > maxDepth) return `JSON nests deeper than ${maxDepth} levels (at character ${i})`;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth -= 1;
    }
  }
  return undefined;
}

/**
 * A problem naming the first object that has the same key twice (compared after unescaping, so `"a"` and
 * `"\u0061"` are one key). `text` must be valid JSON: call it after JSON.parse accepted the text. Memory grows with
 * the nesting (one entry per open array or object) and the keys of the open objects, never with recursion.
 */
export function jsonDuplicateKeyProblem(text: string): string | undefined {
  // One frame per open container: the keys seen so far for an object, null for an array.
  const frames: (Set<string> | null)[] = [];
  // In the innermost object, whether the next string is a key (after `{` or `,`) rather than a value (after `:`).
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      let escaped = false;
      for (i += 1; i < text.length && text.charCodeAt(i) !== QUOTE; i++) {
        if (text.charCodeAt(i) === BACKSLASH) {
          escaped = true;
          i += 1;
        }
      }
      // SAFETY: text that is not JSON after all is refused, not passed as free of duplicates.
      if (i >= text.length) return `unterminated string at character ${start}: not JSON`;
      const keys = frames.at(-1);
      if (expectKey && keys !== undefined && keys !== null) {
        const raw = text.slice(start, i + 1);
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (keys.has(key)) return `duplicate key ${JSON.stringify(key)} in a JSON object (character ${start})`;
        keys.add(key);
        expectKey = false;
      }
    } else if (c === OPEN_BRACE) {
      frames.push(new Set());
      expectKey = true;
    } else if (c === OPEN_BRACKET) {
      frames.push(null);
      expectKey = false;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      frames.pop();
      expectKey = false;
    } else if (c === COMMA) {
      expectKey = frames.at(-1) instanceof Set;
    }
  }
  return undefined;
}
