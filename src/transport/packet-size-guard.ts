// Refuses an MQTT packet larger than a limit as soon as its fixed header announces the length, before its body is
// read: a stream between a client's socket and the embedded broker's parser. It never changes or reorders bytes.

import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * Follows the packet boundaries of an MQTT byte stream from the fixed headers alone (one type byte, a remaining
 * length of one to four bytes, then that many bytes of body), in time linear in the number of packets, not bytes.
 */
export class PacketLengthMeter {
  private state: 'type' | 'length' | 'body' = 'type';
  private remainingLength = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;
  private problem: string | undefined;

  constructor(readonly maxPacketBytes: number) {}

  /** Takes the next bytes of the stream; returns a problem once a packet is announced too large (and from then on). */
  feed(chunk: Uint8Array): string | undefined {
    let i = 0;
    while (this.problem === undefined && i < chunk.length) {
      if (this.state === 'body') {
        const skipped = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= skipped;
        i += skipped;
        if (this.bodyLeft === 0) this.state = 'type';
        continue;
      }
      const byte = chunk[i] as number;
      i += 1;
      if (this.state === 'type') {
        this.state = 'length';
        this.remainingLength = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      this.remainingLength += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes += 1;
      if ((byte & 0x80) !== 0) {
        // The MQTT variable byte integer has at most four bytes; mqtt-packet refuses a fifth too.
        if (this.lengthBytes === 4) this.problem = 'malformed packet: remaining length longer than 4 bytes';
        continue;
      }
      const packetBytes = 1 + this.lengthBytes + this.remainingLength;
      // SAFETY: decided on the announced length, so an oversize body is never buffered, copied or parsed.
      if (!(packetBytes <= this.maxPacketBytes)) {
        this.problem = `packet of ${packetBytes} bytes exceeds the broker's maximum of ${this.maxPacketBytes} bytes`;
        continue;
      }
      this.bodyLeft = this.remainingLength;
      this.state = this.bodyLeft === 0 ? 'type' : 'body';
    }
    return this.problem;
  }
}

/**
 * The socket as a stream for aedes, with the packet size limit in its reading side: a connection whose client
 * announces a packet over `maxPacketBytes` is destroyed with that problem as its error (aedes reports it as a
 * client or connection error and drops the client). Bytes before the offending header in the same read are dropped
 * with it; nothing of an unacknowledged packet was promised to anyone.
 */
export function limitPacketSize(socket: Socket, maxPacketBytes: number): Duplex {
  return new SizeLimitedConnection(socket, new PacketLengthMeter(maxPacketBytes));
}

class SizeLimitedConnection extends Duplex {
  /** True while the consumer (aedes) has asked for more than it got. */
  private wanted = false;

  constructor(
    private readonly socket: Socket,
    private readonly meter: PacketLengthMeter,
  ) {
    // Not half-open: a client that ends its side is gone, as aedes treats a plain socket.
    super({ allowHalfOpen: false });
    socket.on('readable', () => this.pump());
    socket.on('end', () => this.push(null));
    socket.on('error', (error: Error) => this.destroy(error));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  /** Moves what the socket has to the consumer while it wants more; the socket keeps its own back-pressure. */
  private pump(): void {
    while (this.wanted && !this.destroyed) {
      const chunk = this.socket.read() as Buffer | null;
      if (chunk === null) return;
      const problem = this.meter.feed(chunk);
      if (problem !== undefined) {
        this.destroy(new Error(problem));
        return;
      }
      this.wanted = this.push(chunk);
    }
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.afterWrite(this.socket.write(chunk, encoding), callback);
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: (error?: Error | null) => void): void {
    // mqtt-packet writes a packet in several pieces while corked: they go out together.
    this.socket.cork();
    let flushed = true;
    for (const { chunk, encoding } of chunks) flushed = this.socket.write(chunk, encoding);
    this.socket.uncork();
    this.afterWrite(flushed, callback);
  }

  private afterWrite(flushed: boolean, callback: (error?: Error | null) => void): void {
    if (flushed) callback();
    // A socket that closes instead destroys this stream, which fails the pending write.
    else this.socket.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Without the error: the socket would emit it back to this stream, which already carries it.
    this.socket.destroy();
    callback(error);
  }
}
