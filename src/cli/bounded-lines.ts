// Splits a byte stream into lines of at most a given length without ever holding a longer one: a line past the
// limit is skipped to its end as it streams by and reported by number and size, and the next line is read as usual.

import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';

export type BoundedLine =
  /** `text`: the line without its line ending (`\n` or `\r\n`), decoded as UTF-8. */
  | { readonly lineNumber: number; readonly ok: true; readonly text: string }
  /** `bytes`: the line's length without its line ending; `digest`: SHA-256 (hex) of those bytes. */
  | { readonly lineNumber: number; readonly ok: false; readonly bytes: number; readonly digest: string };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Reads `input` (Buffer or string chunks) line by line. Memory stays within `maxLineBytes` plus one chunk whatever
 * the input, unlike node:readline, which builds a whole line as one string before handing it over.
 */
export async function* readBoundedLines(input: Readable | AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<BoundedLine> {
  const reader = new LineReader(maxLineBytes);
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (let end = bytes.indexOf(LF, start); end !== -1; end = bytes.indexOf(LF, start)) {
      reader.take(bytes.subarray(start, end));
      yield reader.finish();
      start = end + 1;
    }
    reader.take(bytes.subarray(start));
  }
  if (reader.pending()) yield reader.finish();
}

/** The line being read: its bytes while it fits, or only its hash and length once it does not. */
class LineReader {
  private lineNumber = 0;
  private parts: Buffer[] = [];
  private size = 0;
  private overflow: { readonly hash: Hash; bytes: number } | undefined;
  /** A CR that ended the last piece: the start of a CRLF line ending, or part of the line if more follows. */
  private heldCr = false;

  constructor(private readonly maxLineBytes: number) {}

  pending(): boolean {
    return this.size > 0 || this.overflow !== undefined || this.heldCr;
  }

  take(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.heldCr) {
      this.heldCr = false;
      this.keep(Buffer.from([CR]));
    }
    if (piece[piece.length - 1] === CR) {
      this.heldCr = true;
      this.keep(piece.subarray(0, -1));
    } else {
      this.keep(piece);
    }
  }

  /** Ends the line at a line feed (or the end of the input); a CR right before it belongs to the line ending. */
  finish(): BoundedLine {
    this.lineNumber += 1;
    this.heldCr = false;
    const overflow = this.overflow;
    const parts = this.parts;
    const size = this.size;
    this.overflow = undefined;
    this.parts = [];
    this.size = 0;
    if (overflow !== undefined) return { lineNumber: this.lineNumber, ok: false, bytes: overflow.bytes, digest: overflow.hash.digest('hex') };
    return { lineNumber: this.lineNumber, ok: true, text: Buffer.concat(parts, size).toString('utf8') };
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.overflow !== undefined) {
      this.overflow.hash.update(piece);
      this.overflow.bytes += piece.length;
    } else if (this.size + piece.length <= this.maxLineBytes) {
      // A copy: the source may reuse its buffer, and a slice would keep its whole chunk alive.
      this.parts.push(Buffer.from(piece));
      this.size += piece.length;
    } else {
      // SAFETY: from here on the line is never held: what was kept is hashed and released, the rest streams past.
      const hash = createHash('sha256');
      for (const part of this.parts) hash.update(part);
      hash.update(piece);
      this.overflow = { hash, bytes: this.size + piece.length };
      this.parts = [];
      this.size = 0;
    }
  }
}
