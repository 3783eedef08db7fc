// Room for the audit log: the ballast file kept beside the database so that a full disk still leaves room for
// safe-state records, retention and checkpointing, and the free-space check that says when room has returned.
// It never deletes anything but its own ballast file.

import { closeSync, existsSync, fsyncSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_BALLAST_BYTES = 4 * 1024 * 1024;

/** The ballast file that belongs to the database at `dbPath`. */
export function ballastPathOf(dbPath: string): string {
  return `${dbPath}.ballast`;
}

/** Whether the ballast file is there at its full size. */
export function ballastPresent(dbPath: string, bytes: number): boolean {
  try {
    return statSync(ballastPathOf(dbPath)).size >= bytes;
  } catch {
    return false;
  }
}

/**
 * Writes the ballast file (zeros, fsync'd: a sparse or unflushed file would reserve nothing). Returns the problem if
 * there is no room for it; a partly written file is removed so it never looks like a ballast.
 */
export function createBallast(dbPath: string, bytes: number): string | undefined {
  if (bytes <= 0 || ballastPresent(dbPath, bytes)) return undefined;
  const path = ballastPathOf(dbPath);
  const chunk = Buffer.alloc(Math.min(bytes, 1024 * 1024));
  let fd: number | undefined;
  try {
    fd = openSync(path, 'w', 0o600);
    for (let written = 0; written < bytes; ) {
      const n = writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written));
      written += n;
    }
    fsyncSync(fd);
    return undefined;
  } catch (error) {
    if (fd !== undefined) closeQuietly(fd);
    fd = undefined;
    rmSync(path, { force: true });
    return error instanceof Error ? error.message : String(error);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing more can be done with a descriptor that does not close.
  }
}

/** Deletes the ballast file to give its room to the log; says whether there was one. */
export function releaseBallast(dbPath: string): boolean {
  const path = ballastPathOf(dbPath);
  if (!existsSync(path)) return false;
  rmSync(path, { force: true });
  return true;
}

/** Bytes an unprivileged writer may still use on the file system holding `dbPath`, or undefined if unknown. */
export function freeBytes(dbPath: string): number | undefined {
  try {
    const stats = statfsSync(dirname(dbPath));
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}
