// The command the interlock releases to a device driver on actuator/{device}/command, signed with the
// interlock's own Ed25519 key. Drivers verify it before moving: an unsigned or expired release never moves.

import type { KeyObject } from 'node:crypto';
import { parseCompactJws, signCompactJws, verifyJws } from '../crypto/jws.js';

export const RELEASED_COMMAND_TYPE = 'interlock-release+jws';
export const INTERLOCK_KID = 'interlock';

export interface ReleasedCommand {
  readonly commandId: string;
  readonly agentId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly params: Readonly<Record<string, unknown>>;
  /**
   * A safe-state command (stop). It may arrive without an audit record (the log could not be written, and
   * stopping is always safe), so its auditSeq can be 0 and is exempt from the ordering check.
   */
  readonly safeState: boolean;
  /** The audit record that allowed it (seq and hash), so the device's outcome can be linked back. */
  readonly auditSeq: number;
  readonly auditHash: string;
  readonly releasedAtMs: number;
  /** The agent command's expiry; a driver must not start a command received after it. */
  readonly expiresAtMs: number;
  /**
   * The driver run (sid of its signed state) the command was checked against; null when the device had none. A
   * driver acts on a non-safe-state release only if it names the driver's current run, so a captured release
   * cannot be replayed into a driver that restarted (and forgot its last audit seq).
   */
  readonly session: string | null;
}

export function signReleasedCommand(command: ReleasedCommand, privateKey: KeyObject): string {
  return signCompactJws(command, INTERLOCK_KID, privateKey, RELEASED_COMMAND_TYPE);
}

export type ReleaseCheck = { readonly ok: true; readonly command: ReleasedCommand } | { readonly ok: false; readonly problem: string };

/**
 * What a device driver runs on every message of its actuator topic: signature by the interlock, addressed to
 * this device, not expired, and newer than the last one it executed (audit seq increases; safe-state releases
 * are exempt). A driver must also refuse a safe-state release whose action is not one of its safe actions.
 */
export function verifyReleasedCommand(
  token: string,
  interlockPublicKey: KeyObject,
  expect: { readonly deviceId: string; readonly nowMs: number; readonly lastAuditSeq: number },
): ReleaseCheck {
  const parsed = parseCompactJws(token);
  if (!parsed.ok) return { ok: false, problem: parsed.problem.message };
  if (parsed.jws.header.typ !== RELEASED_COMMAND_TYPE) return { ok: false, problem: `typ is not ${RELEASED_COMMAND_TYPE}` };
  if (parsed.jws.header.kid !== INTERLOCK_KID) return { ok: false, problem: `kid ${parsed.jws.header.kid} is not the interlock's` };
  if (!verifyJws(parsed.jws, interlockPublicKey)) return { ok: false, problem: 'signature is not the interlock\'s' };
  const command = parsed.jws.payload as Partial<ReleasedCommand>;
  if (typeof command !== 'object' || command === null) return { ok: false, problem: 'payload is not an object' };
  if (command.deviceId !== expect.deviceId) return { ok: false, problem: `addressed to ${String(command.deviceId)}, not ${expect.deviceId}` };
  if (typeof command.expiresAtMs !== 'number' || !(expect.nowMs < command.expiresAtMs)) return { ok: false, problem: 'expired' };
  if (typeof command.safeState !== 'boolean') return { ok: false, problem: 'safeState flag missing' };
  // SAFETY: only a safe-state release skips the ordering check; replaying a stop can only stop the machine.
  if (typeof command.auditSeq !== 'number' || (!command.safeState && !(command.auditSeq > expect.lastAuditSeq))) {
    return { ok: false, problem: `audit seq ${String(command.auditSeq)} is not after ${expect.lastAuditSeq} (replayed?)` };
  }
  if (typeof command.action !== 'string' || typeof command.params !== 'object' || command.params === null) {
    return { ok: false, problem: 'action or params missing' };
  }
  if (command.session !== null && typeof command.session !== 'string') return { ok: false, problem: 'session must be a string or null' };
  return { ok: true, command: command as ReleasedCommand };
}
