// The event-stream RPC wire format the Greengrass IPC client speaks (big-endian frames with CRCs and typed
// headers), for the test nucleus: encode a frame, split a byte stream into checked frames.

import { crc32 } from 'node:zlib';

// [u32 total][u32 headers][u32 prelude crc][headers][payload][u32 message crc], big-endian ----

export type HeaderValue = boolean | number | string | Buffer;

export interface Frame {
  readonly headers: Map<string, HeaderValue>;
  readonly payload: Buffer;
}

export const MESSAGE_TYPE = { application: 0, error: 1, connect: 4, connectAck: 5 } as const;
export const FLAG_CONNECTION_ACCEPTED = 1;
export const FLAG_TERMINATE_STREAM = 2;

function encodeHeader(name: string, value: HeaderValue, int32Names: ReadonlySet<string>): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const head = Buffer.concat([Buffer.from([nameBytes.length]), nameBytes]);
  if (typeof value === 'boolean') return Buffer.concat([head, Buffer.from([value ? 0 : 1])]);
  if (typeof value === 'number') {
    if (!int32Names.has(name)) throw new Error(`header ${name}: numbers are sent as int32 only`);
    const body = Buffer.alloc(5);
    body.writeUInt8(4, 0);
    body.writeInt32BE(value, 1);
    return Buffer.concat([head, body]);
  }
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const type = Buffer.alloc(3);
  type.writeUInt8(typeof value === 'string' ? 7 : 6, 0);
  type.writeUInt16BE(bytes.length, 1);
  return Buffer.concat([head, type, bytes]);
}

export function encodeFrame(headers: Record<string, HeaderValue>, payload: Buffer): Buffer {
  const ints = new Set([':message-type', ':message-flags', ':stream-id']);
  const headerBytes = Buffer.concat(Object.entries(headers).map(([name, value]) => encodeHeader(name, value, ints)));
  const total = 12 + headerBytes.length + payload.length + 4;
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(total, 0);
  prelude.writeUInt32BE(headerBytes.length, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  const body = Buffer.concat([prelude, headerBytes, payload]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([body, trailer]);
}

function decodeHeaders(bytes: Buffer): Map<string, HeaderValue> {
  const headers = new Map<string, HeaderValue>();
  let at = 0;
  while (at < bytes.length) {
    const nameLength = bytes.readUInt8(at);
    const name = bytes.subarray(at + 1, at + 1 + nameLength).toString('utf8');
    at += 1 + nameLength;
    const type = bytes.readUInt8(at);
    at += 1;
    switch (type) {
      case 0:
      case 1:
        headers.set(name, type === 0);
        break;
      case 2:
        headers.set(name, bytes.readInt8(at));
        at += 1;
        break;
      case 3:
        headers.set(name, bytes.readInt16BE(at));
        at += 2;
        break;
      case 4:
        headers.set(name, bytes.readInt32BE(at));
        at += 4;
        break;
      case 5:
      case 8:
        headers.set(name, Number(bytes.readBigInt64BE(at)));
        at += 8;
        break;
      case 6:
      case 7: {
        const length = bytes.readUInt16BE(at);
        const value = bytes.subarray(at + 2, at + 2 + length);
        headers.set(name, type === 7 ? value.toString('utf8') : Buffer.from(value));
        at += 2 + length;
        break;
      }
      case 9:
        headers.set(name, Buffer.from(bytes.subarray(at, at + 16)));
        at += 16;
        break;
      default:
        throw new Error(`unknown header type ${type} for ${name}`);
    }
  }
  return headers;
}

/** Splits a byte stream into frames, checking both CRCs; a bad frame throws (the connection is then dropped). */
export class FrameReader {
  #buffer = Buffer.alloc(0);
  push(chunk: Buffer): Frame[] {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const frames: Frame[] = [];
    while (this.#buffer.length >= 12) {
      const total = this.#buffer.readUInt32BE(0);
      if (this.#buffer.length < total) break;
      const frame = this.#buffer.subarray(0, total);
      this.#buffer = this.#buffer.subarray(total);
      if (crc32(frame.subarray(0, 8)) !== frame.readUInt32BE(8)) throw new Error('prelude crc mismatch');
      if (crc32(frame.subarray(0, total - 4)) !== frame.readUInt32BE(total - 4)) throw new Error('message crc mismatch');
      const headersLength = frame.readUInt32BE(4);
      frames.push({ headers: decodeHeaders(frame.subarray(12, 12 + headersLength)), payload: Buffer.from(frame.subarray(12 + headersLength, total - 4)) });
    }
    return frames;
  }
}
