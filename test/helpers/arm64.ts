// How a test runs an arm64 Node on this x86-64 machine: qemu-user through a `node` wrapper that goes first on PATH,
// so a lifecycle script's `exec node ...` (run by `sh -c`) starts the arm64 runtime. It never relies on binfmt_misc:
// that is not mounted on a fresh machine, and registering it would change the whole machine.

import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const QEMU_AARCH64 = 'qemu-aarch64-static';
/** Debian's aarch64 glibc (libc6-arm64-cross, which g++-aarch64-linux-gnu pulls in): qemu's -L for dynamic binaries. */
export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

export interface Arm64Node {
  /** The folder holding the `node` wrapper: put it first on PATH. */
  readonly binDir: string;
  /** The wrapper itself. */
  readonly node: string;
  /** `base` (default: this process's environment) with binDir first on PATH. */
  env(base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
}

export interface Arm64NodeOptions {
  /** An arm64 Node runtime's folder (bin/node): scripts/node-runtime.sh arm64 <22|24> prints it. */
  readonly runtimeDir: string;
  /** Where the wrapper is written (created if needed). */
  readonly binDir: string;
  /** Where qemu is looked up; this process's PATH unless given. */
  readonly searchPath?: string;
  readonly sysroot?: string;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export function findQemuAarch64(searchPath = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, QEMU_AARCH64), constants.X_OK);
      return join(dir, QEMU_AARCH64);
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Writes `<binDir>/node`, a shell script that execs the arm64 runtime under qemu-user with Debian's aarch64 sysroot.
 * Throws, naming the Debian package, when qemu or the sysroot is missing.
 */
export function writeArm64NodeWrapper(options: Arm64NodeOptions): Arm64Node {
  const qemu = findQemuAarch64(options.searchPath);
  if (qemu === undefined) throw new Error(`${QEMU_AARCH64} not found on PATH: apt-get install qemu-user-static`);
  const sysroot = options.sysroot ?? AARCH64_SYSROOT;
  if (!existsSync(join(sysroot, 'lib', 'ld-linux-aarch64.so.1'))) {
    throw new Error(`no aarch64 glibc in ${sysroot} (lib/ld-linux-aarch64.so.1): apt-get install libc6-arm64-cross (g++-aarch64-linux-gnu brings it)`);
  }
  const runtimeNode = join(options.runtimeDir, 'bin', 'node');
  if (!existsSync(runtimeNode)) throw new Error(`${runtimeNode} does not exist: get the runtime with scripts/node-runtime.sh arm64 <22|24>`);
  mkdirSync(options.binDir, { recursive: true });
  const node = join(options.binDir, 'node');
  // QEMU_LD_PREFIX as well as -L: a child that reaches qemu through binfmt_misc (where registered) finds the same libc.
  writeFileSync(
    node,
    `#!/bin/sh\n# arm64 Node under qemu-user (written by test/helpers/arm64.ts)\nQEMU_LD_PREFIX=${shellQuote(sysroot)}\nexport QEMU_LD_PREFIX\nexec ${shellQuote(qemu)} -L ${shellQuote(sysroot)} ${shellQuote(runtimeNode)} "$@"\n`,
    { mode: 0o755 },
  );
  return {
    binDir: options.binDir,
    node,
    env: (base = process.env) => ({ ...base, PATH: [options.binDir, base['PATH'] ?? ''].join(delimiter) }),
  };
}

/**
 * Whether the kernel would run an aarch64 ELF directly: 'registered' (a binfmt_misc entry for it is enabled),
 * 'not-registered' (binfmt_misc is mounted, no entry), or 'not-mounted'.
 */
export function binfmtAarch64(root = '/proc/sys/fs/binfmt_misc'): 'registered' | 'not-registered' | 'not-mounted' {
  if (!existsSync(join(root, 'status'))) return 'not-mounted';
  for (const name of readdirSync(root)) {
    if (name === 'status' || name === 'register') continue;
    const entry = readFileSync(join(root, name), 'utf8');
    if (entry.startsWith('enabled') && /^magic 7f454c460201010000000000000000000200b700$/m.test(entry)) return 'registered';
  }
  return 'not-registered';
}
