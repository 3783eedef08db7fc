// Benchmark section (for scripts/bench.ts, or run alone from dist/): the largest gap between heartbeats a subscriber
// sees while the embedded broker refuses three 100 MB publishes, and the process's memory high-water mark. The
// hostile client runs in a child process (its own event loop and memory) and writes one reused 1 MiB buffer, so
// what is measured is the broker's cost, not the sender's. Talks only to 127.0.0.1.

import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { EmbeddedBroker } from '../src/transport/embedded-broker.js';
import { MqttTransport } from '../src/transport/mqtt-transport.js';
import { commandPayloadProblem, MAX_PACKET_BYTES, MQTT_MAX_PACKET_BYTES } from '../src/transport/payload-limits.js';
import { wideBroker, wideClient, wideLogin } from './wide-broker.js';

export interface OversizeBenchOptions {
  /** Payload of each hostile publish. Default 100 MB (10^8 bytes). */
  readonly payloadBytes?: number;
  /** How many, sent at once over separate connections. Default 3. */
  readonly publishes?: number;
  readonly heartbeatPeriodMs?: number;
  /** The broker's limit; MQTT_MAX_PACKET_BYTES shows the broker without one. Default MAX_PACKET_BYTES. */
  readonly maxPacketBytes?: number;
  /** Quiet time before the attack, for the baseline gap. Default 2000. */
  readonly baselineMs?: number;
}

export interface OversizeBenchResult {
  readonly maxPacketBytes: number;
  readonly payloadBytes: number;
  readonly heartbeatPeriodMs: number;
  /** Largest gap between two heartbeats received before the attack. */
  readonly baselineMaxGapMs: number;
  /** Largest gap between two heartbeats received from just before the attack to 500 ms after it. */
  readonly attackMaxGapMs: number;
  readonly heartbeatsDuringAttack: number;
  readonly publishes: readonly RawPublishResult[];
  /** Hostile payloads that reached an in-process subscriber (and were refused there by size). */
  readonly deliveredToInterlock: number;
  /** process.resourceUsage().maxRSS before and after the attack, MiB (the broker runs in this process). */
  readonly maxRssBeforeMiB: number;
  readonly maxRssAfterMiB: number;
}

const ATTACK_TOPIC = 'interlock/arm-1/command';
const HEARTBEAT_TOPIC = 'interlock/heartbeat';
const SENDER_FLAG = '--oversize-sender';

/** The broker under attack, a heartbeat published in process every period, and a subscriber over TCP. */
export async function benchOversize(options: OversizeBenchOptions = {}): Promise<OversizeBenchResult> {
  const payloadBytes = options.payloadBytes ?? 100_000_000;
  const count = options.publishes ?? 3;
  const periodMs = options.heartbeatPeriodMs ?? 100;
  const maxPacketBytes = options.maxPacketBytes ?? MAX_PACKET_BYTES;
  const broker = wideBroker({ maxPacketBytes, log: () => undefined });
  await broker.start();
  const interlock = broker.transport();
  const driver = wideClient(broker.url, 'driver');
  let timer: NodeJS.Timeout | undefined;
  try {
    await interlock.start();
    await driver.start();
    const arrivals: number[] = [];
    await driver.subscribe(HEARTBEAT_TOPIC, () => arrivals.push(performance.now()));
    let delivered = 0;
    // What the interlock's command handler does first: the size, before any conversion.
    await interlock.subscribe('interlock/+/command', (_topic, payload) => {
      delivered += 1;
      void commandPayloadProblem(payload);
    });
    let seq = 0;
    timer = setInterval(() => void interlock.publish(HEARTBEAT_TOPIC, JSON.stringify({ seq: ++seq }), { qos: 0 }).catch(() => undefined), periodMs);
    await sleep(options.baselineMs ?? 2_000);
    const maxRssBeforeMiB = process.resourceUsage().maxRSS / 1024;
    const baselineMaxGapMs = maxGap(arrivals);
    const attackStart = performance.now();
    const publishes = await sendFromChild(broker.port, count, payloadBytes);
    const attackEnd = performance.now();
    await sleep(500);
    const maxRssAfterMiB = process.resourceUsage().maxRSS / 1024;
    // From the last heartbeat before the attack, so a stall that starts with it is counted whole.
    const before = arrivals.filter((t) => t < attackStart).at(-1) ?? attackStart;
    const window = [before, ...arrivals.filter((t) => t >= attackStart && t <= attackEnd + 500), attackEnd + 500];
    return {
      maxPacketBytes,
      payloadBytes,
      heartbeatPeriodMs: periodMs,
      baselineMaxGapMs,
      attackMaxGapMs: maxGap(window),
      heartbeatsDuringAttack: window.length - 2,
      publishes,
      deliveredToInterlock: delivered,
      maxRssBeforeMiB,
      maxRssAfterMiB,
    };
  } finally {
    clearInterval(timer);
    await driver.stop();
    await interlock.stop();
    await broker.stop();
  }
}

/** Markdown lines in the style of scripts/bench.ts. */
export function printOversize(results: readonly OversizeBenchResult[]): void {
  const first = results[0];
  if (first === undefined) return;
  console.log(`## 8. oversize publishes: ${first.publishes.length} x ${(first.payloadBytes / 1e6).toFixed(0)} MB at once against the embedded broker, heartbeat every ${first.heartbeatPeriodMs} ms`);
  console.log('| broker limit | largest heartbeat gap (before the attack) | connect to close (slowest) | bytes sent before the close (most) | closed by the broker | reached the interlock | max RSS before -> after |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const most = Math.max(...r.publishes.map((p) => p.bytesWritten));
    const slowest = Math.max(...r.publishes.map((p) => p.ms));
    const refused = r.publishes.filter((p) => p.closedByBroker).length;
    console.log(
      `| ${r.maxPacketBytes.toLocaleString('en')} B | ${r.attackMaxGapMs.toFixed(0)} ms (${r.baselineMaxGapMs.toFixed(0)} ms) | ${slowest.toFixed(0)} ms | ${(most / 2 ** 20).toFixed(1)} MiB | ${refused}/${r.publishes.length} | ${r.deliveredToInterlock} | ${r.maxRssBeforeMiB.toFixed(0)} -> ${r.maxRssAfterMiB.toFixed(0)} MiB |`,
    );
  }
}

function maxGap(times: readonly number[]): number {
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i] as number) - (times[i - 1] as number));
  return gap;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the hostile publishes from this file in a child process; resolves with what each one achieved. */
function sendFromChild(port: number, count: number, payloadBytes: number): Promise<RawPublishResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), SENDER_FLAG, String(port), String(count), String(payloadBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => (out += text));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`oversize sender exited with ${code}`));
      try {
        resolve(JSON.parse(out) as RawPublishResult[]);
      } catch {
        reject(new Error(`oversize sender reported ${JSON.stringify(out.slice(0, 200))}`));
      }
    });
  });
}

// ---- A hostile MQTT 3.1.1 client, byte by byte (also used by the tests of the packet limit) ----

export interface RawPublishResult {
  /** Bytes the socket handed to the kernel (header and payload), as Node counts them. */
  readonly bytesWritten: number;
  /** True when the whole packet was written. */
  readonly completed: boolean;
  /** True when the broker closed the connection (before our DISCONNECT). */
  readonly closedByBroker: boolean;
  readonly ms: number;
}

export interface RawPublishOptions {
  readonly clientId: string;
  /** The login CONNECT carries (the embedded broker refuses anonymous clients); none when absent. */
  readonly login?: { readonly username: string; readonly password: string };
  readonly topic: string;
  readonly payloadBytes: number;
  /** Default 1 MiB. */
  readonly chunkBytes?: number;
  /** After the last byte, how long to wait for the broker to close before disconnecting. Default 200. */
  readonly settleMs?: number;
  /** Default 60 000. */
  readonly timeoutMs?: number;
}

/** An MQTT variable byte integer (the remaining length). */
export function variableByteInteger(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

/** CONNECT, MQTT 3.1.1, clean session, keepalive 60 s, no credentials. */
export function connectPacket(clientId: string, login?: { readonly username: string; readonly password: string }): Buffer {
  const field = (text: string): Buffer => {
    const bytes = Buffer.from(text, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
  };
  // Flags: clean session (0x02), plus user name (0x80) and password (0x40) when there is a login.
  const flags = 0x02 | (login === undefined ? 0 : 0xc0);
  const body = Buffer.concat([
    Buffer.from([0, 4]),
    Buffer.from('MQTT'),
    Buffer.from([4, flags, 0, 60]),
    field(clientId),
    ...(login === undefined ? [] : [field(login.username), field(login.password)]),
  ]);
  return Buffer.concat([Buffer.from([0x10]), variableByteInteger(body.length), body]);
}

/** The start of a QoS 0 PUBLISH: fixed header and topic; `payloadBytes` must follow. */
export function publishHeader(topic: string, payloadBytes: number): Buffer {
  const name = Buffer.from(topic, 'utf8');
  return Buffer.concat([Buffer.from([0x30]), variableByteInteger(2 + name.length + payloadBytes), Buffer.from([name.length >> 8, name.length & 0xff]), name]);
}

/** The payload size that makes a QoS 0 PUBLISH to `topic` exactly `packetBytes` long. */
export function payloadBytesForPacket(topic: string, packetBytes: number): number {
  const fixed = 2 + Buffer.byteLength(topic, 'utf8');
  for (let lengthBytes = 1; lengthBytes <= 4; lengthBytes++) {
    const remaining = packetBytes - 1 - lengthBytes;
    if (variableByteInteger(remaining).length === lengthBytes) return remaining - fixed;
  }
  throw new Error(`no QoS 0 publish to ${topic} is exactly ${packetBytes} bytes`);
}

/**
 * Connects on `socket` (net or TLS, already connecting), waits for CONNACK, then streams one QoS 0 publish of
 * `payloadBytes` bytes ('a') with back-pressure, and reports how far it got before the broker closed the connection.
 */
export function rawPublish(socket: Socket, options: RawPublishOptions): Promise<RawPublishResult> {
  const started = performance.now();
  const chunk = Buffer.alloc(options.chunkBytes ?? 2 ** 20, 0x61);
  return new Promise((resolve, reject) => {
    let sent = 0;
    let completed = false;
    let disconnecting = false;
    let answer = Buffer.alloc(0);
    const timeout = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw publish: no outcome within ${options.timeoutMs ?? 60_000} ms`));
    }, options.timeoutMs ?? 60_000);
    const pump = (): void => {
      while (!socket.destroyed && sent < options.payloadBytes) {
        const piece = Math.min(chunk.length, options.payloadBytes - sent);
        sent += piece;
        if (!socket.write(piece === chunk.length ? chunk : chunk.subarray(0, piece))) {
          socket.once('drain', pump);
          return;
        }
      }
      if (socket.destroyed || completed) return;
      completed = true;
      setTimeout(() => {
        disconnecting = true;
        socket.end(Buffer.from([0xe0, 0x00]));
      }, options.settleMs ?? 200);
    };
    const onData = (data: Buffer): void => {
      answer = Buffer.concat([answer, data]);
      if (answer.length < 4) return;
      socket.off('data', onData);
      if (answer[0] !== 0x20 || answer[3] !== 0) {
        socket.destroy();
        reject(new Error(`raw publish: no CONNACK 0 (got ${answer.subarray(0, 4).toString('hex')})`));
        return;
      }
      socket.write(publishHeader(options.topic, options.payloadBytes));
      pump();
    };
    socket.on('data', onData);
    // EPIPE / ECONNRESET are how a refusal shows on the writing side; 'close' follows and reports it.
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timeout);
      resolve({ bytesWritten: socket.bytesWritten, completed, closedByBroker: !disconnecting, ms: performance.now() - started });
    });
    socket.write(connectPacket(options.clientId, options.login));
  });
}

const invokedAs = process.argv[1] === fileURLToPath(import.meta.url);
if (invokedAs && process.argv[2] === SENDER_FLAG) {
  const [port, count, payloadBytes] = process.argv.slice(3).map(Number) as [number, number, number];
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => rawPublish(connect({ host: '127.0.0.1', port }), { clientId: wideLogin(`hostile-${i}`).clientId, login: wideLogin(`hostile-${i}`), topic: ATTACK_TOPIC, payloadBytes })),
  );
  process.stdout.write(JSON.stringify(results));
} else if (invokedAs) {
  console.log(`# node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}`);
  // The limited run goes first, so the memory high-water mark it reports is its own.
  const limited = await benchOversize();
  const unlimited = process.argv.includes('--compare') ? [await benchOversize({ maxPacketBytes: MQTT_MAX_PACKET_BYTES })] : [];
  printOversize([limited, ...unlimited]);
}
