// The largest message each topic kind may carry, and the MQTT packet ceiling the brokers enforce: one set of limits,
// checked on the byte length alone. Nothing here converts, decodes or parses a payload; it runs before anything does.

/**
 * Largest payload per topic kind, in bytes. Each is several times what a valid message can need, and far below
 * what stalls the event loop (copying, decoding and parsing cost time in proportion to the bytes).
 */
export const PAYLOAD_LIMITS = {
  /**
   * A signed command (compact JWS). A 100-waypoint follow_path is about 6 KB; the largest params any kind accepts
   * (1000 waypoints at full double precision) about 55 KB. A cell's declared maxTokenSize is checked after this and
   * can only be stricter: above 64 KiB it has no effect.
   */
  commandBytes: 64 * 1024,
  /**
   * A device state report. An AMR seeing 64 people is about 4 KB of JSON; the largest body a schema admits (a process
   * unit with 64 measurements, 32 setpoints and 32 trips, every name 64 characters, and 64 people) about 15 KB, or
   * 21 KB once signed by its driver (base64url in a JWS).
   */
  stateBytes: 64 * 1024,
  /** A driver's outcome report: a body of at most 4096 bytes (parseDeviceOutcome), about 6 KB once signed. */
  outcomeBytes: 16 * 1024,
  /** An operator message (compact JWS): an approval answer with a 500-character note is under 5 KB. */
  operatorMessageBytes: 16 * 1024,
} as const;

/**
 * Largest MQTT packet (fixed header, topic, properties and payload) a broker accepts from a client; a client that
 * sends more is disconnected as soon as the packet's fixed header announces it, before its body is read. Above
 * every payload limit with room for what the interlock publishes itself (a decision report quoting a rejected
 * field name, a release re-encoding a 64 KiB command), and about 380 times below a 100 MB publish.
 * The same number is `max_packet_size` in greengrass/standalone/mosquitto.conf (a test keeps them equal).
 */
export const MAX_PACKET_BYTES = 256 * 1024;

/**
 * Largest packet an MQTT 5 client of ours accepts (told to the broker in CONNECT). A little above MAX_PACKET_BYTES:
 * a broker forwarding a packet it accepted may add a packet identifier and properties (a subscription identifier),
 * and mosquitto silently drops, for that client, a message that no longer fits.
 */
export const CLIENT_MAX_PACKET_BYTES = MAX_PACKET_BYTES + 1024;

/** The MQTT maximum: a remaining length of 268 435 455 bytes, one header byte and four length bytes. */
export const MQTT_MAX_PACKET_BYTES = 268_435_455 + 5;

/** The payload's size in bytes without copying or decoding it (a string is measured as its UTF-8 encoding). */
function sizeOf(payload: Buffer | string): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
}

function problemOf(kind: string, limitBytes: number, payload: Buffer | string): string | undefined {
  const bytes = sizeOf(payload);
  // SAFETY: written so that only a size proven within the limit passes.
  if (bytes <= limitBytes) return undefined;
  return `${kind} of ${bytes} bytes exceeds the limit of ${limitBytes} bytes: refused before it is read`;
}

/** First thing in the command handler: a problem for a command payload too large to be converted or verified. */
export function commandPayloadProblem(payload: Buffer | string): string | undefined {
  return problemOf('command', PAYLOAD_LIMITS.commandBytes, payload);
}

/** First thing in the state handler: a problem for a state message too large to be parsed. */
export function statePayloadProblem(payload: Buffer | string): string | undefined {
  return problemOf('state message', PAYLOAD_LIMITS.stateBytes, payload);
}

/** First thing in the outcome handler: a problem for an outcome report too large to be parsed. */
export function outcomePayloadProblem(payload: Buffer | string): string | undefined {
  return problemOf('outcome report', PAYLOAD_LIMITS.outcomeBytes, payload);
}

/** First thing in the operator handler: a problem for an operator message too large to be converted or verified. */
export function operatorMessagePayloadProblem(payload: Buffer | string): string | undefined {
  return problemOf('operator message', PAYLOAD_LIMITS.operatorMessageBytes, payload);
}

