// What a driver runs on every message of its actuator topic before acting: the interlock's signature, device,
// expiry, audit-seq order, the driver run it was made for, and the safe-state exemption. It never lets a message
// through that the interlock did not release for this device and this run, and a consumed release can never be
// accepted again, not even after the driver restarts (a new run refuses every release made for an older one).

import type { KeyObject } from 'node:crypto';
import { verifyReleasedCommand, type ReleasedCommand } from '../dispatch/released-command.js';

export type GateResult =
  | { readonly ok: true; readonly command: ReleasedCommand }
  /** `command` is set when the interlock's signature checked out but the release is still refused. */
  | { readonly ok: false; readonly problem: string; readonly command?: ReleasedCommand };

export class ReleaseGate {
  #lastAuditSeq = 0;

  /**
   * `safeStateActions`: the driver's actions that may use the safe-state exemption from seq order. `session`: this
   * run of the driver (DeviceReporter.session), which its signed state announces and non-safe releases must name.
   */
  constructor(
    private readonly deviceId: string,
    private readonly interlockPublicKey: KeyObject,
    private readonly safeStateActions: readonly string[],
    private readonly session: string,
  ) {}

  admit(token: string, nowMs: number): GateResult {
    // SAFETY: nothing below runs unless the interlock's signature, device, expiry and seq all check out.
    const check = verifyReleasedCommand(token, this.interlockPublicKey, { deviceId: this.deviceId, nowMs, lastAuditSeq: this.#lastAuditSeq });
    if (!check.ok) return { ok: false, problem: check.problem };
    const command = check.command;
    if (typeof command.commandId !== 'string') return { ok: false, problem: 'commandId is not a string', command };
    // SAFETY: a seq of Infinity or 1.5 would let one release lock out, or reorder, all later ones.
    if (!Number.isSafeInteger(command.auditSeq)) return { ok: false, problem: `audit seq ${command.auditSeq} is not an integer`, command };
    // SAFETY: only the driver's safe-state actions may use the safe-state exemption from seq ordering.
    if (command.safeState && !this.safeStateActions.includes(command.action)) {
      const allowed = this.safeStateActions.length === 1 ? `${this.safeStateActions[0] ?? ''} is a safe state` : `${this.safeStateActions.join(' and ')} are safe states`;
      return { ok: false, problem: `safe-state release of ${command.action}: only ${allowed}`, command };
    }
    // SAFETY: a release made from another run's state (before this driver restarted) is a replay here; only a stop
    // or other safe-state release, which can only make the device safe, is taken whatever run it names.
    if (!command.safeState && command.session !== this.session) {
      return { ok: false, problem: `release was made for driver run ${String(command.session)}, this run is ${this.session} (replayed across a restart?)`, command };
    }
    // SAFETY: an authentic release is consumed even if the driver refuses it afterwards, so it cannot be replayed
    // into acceptance later (e.g. once the watchdog clears) and no older release can follow it. A safe-state
    // release may carry seq 0 (no audit record), so the watermark only ever rises.
    this.#lastAuditSeq = Math.max(this.#lastAuditSeq, command.auditSeq);
    return { ok: true, command };
  }
}
