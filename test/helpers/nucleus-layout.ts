// A component laid out and started the way the Greengrass nucleus (2.x, Linux, as root) does it, from its source:
// the zip unpacked below {artifacts:decompressedPath}/<archive name without .zip>/ with the zip's own entry paths;
// files 0440 (0550 when the recipe's Permission says Execute: OWNER; the zip's own modes are not kept), folders 0755,
// all owned by the component's user (ggc_user:ggc_group); the work folder <root>/work/<component> 0700, its own;
// the Startup script run as `sudo -n -E -H -u ggc_user -g ggc_group -- sh -c <script>` in the work folder, with the
// nucleus's environment (sudo then replaces PATH with its secure_path and HOME with the user's home).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const COMPONENT_USER = 'ggc_user';
export const COMPONENT_GROUP = 'ggc_group';

export interface ComponentUser {
  readonly user: string;
  readonly group: string;
  readonly uid: number;
  readonly gid: number;
}

/** The nucleus installer's system user and group, made once on this machine (the tests run as root). */
export function ensureComponentUser(): ComponentUser {
  if (process.getuid?.() !== 0) throw new Error('laying a component out as the nucleus does needs root (chown, sudo -u ggc_user); run the tests as root');
  const exists = (kind: 'passwd' | 'group', name: string): boolean => {
    try {
      execFileSync('getent', [kind, name], { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  };
  if (!exists('group', COMPONENT_GROUP)) execFileSync('groupadd', ['--system', COMPONENT_GROUP], { stdio: 'pipe' });
  if (!exists('passwd', COMPONENT_USER)) execFileSync('useradd', ['--system', '--create-home', '--gid', COMPONENT_GROUP, COMPONENT_USER], { stdio: 'pipe' });
  const uid = Number(execFileSync('id', ['-u', COMPONENT_USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('getent', ['group', COMPONENT_GROUP], { encoding: 'utf8' }).split(':')[2]);
  return { user: COMPONENT_USER, group: COMPONENT_GROUP, uid, gid };
}

/** Every folder from / down to `dir` must be enterable by the component's user, as /greengrass/v2 is. */
export function openPathTo(dir: string): void {
  const parts = dir.split('/').filter((p) => p !== '');
  let at = '';
  for (const part of parts) {
    at += `/${part}`;
    const mode = statSync(at).mode & 0o777;
    if ((mode & 0o005) !== 0o005) chmodSync(at, mode | 0o005);
  }
}

function setModes(dir: string, fileMode: number, owner: ComponentUser): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    chownSync(path, owner.uid, owner.gid);
    if (statSync(path).isDirectory()) {
      chmodSync(path, 0o755);
      setModes(path, fileMode, owner);
    } else {
      chmodSync(path, fileMode);
    }
  }
}

export interface NucleusPaths {
  /** The nucleus root (/greengrass/v2). */
  readonly root: string;
  /** {artifacts:decompressedPath} */
  readonly decompressedPath: string;
  /** {work:path} */
  readonly workPath: string;
}

/**
 * Unpacks `zipPath` as the nucleus does for `Unarchive: ZIP` and makes the component's work folder. `execute` is the
 * recipe's Permission.Execute being OWNER (files 0550) rather than the default NONE (0440).
 */
export function layOutComponent(root: string, component: string, version: string, zipPath: string, archiveName: string, execute: boolean, owner: ComponentUser): NucleusPaths {
  const decompressedPath = join(root, 'packages', 'artifacts-unarchived', component, version);
  const target = join(decompressedPath, archiveName);
  mkdirSync(target, { recursive: true });
  execFileSync('unzip', ['-q', zipPath, '-d', target], { stdio: 'pipe' });
  chmodSync(target, 0o755);
  setModes(target, execute ? 0o550 : 0o440, owner);
  const workPath = join(root, 'work', component);
  mkdirSync(workPath, { recursive: true });
  chownSync(workPath, owner.uid, owner.gid);
  chmodSync(workPath, 0o700);
  openPathTo(decompressedPath);
  openPathTo(join(root, 'work'));
  return { root, decompressedPath, workPath };
}

/** Replaces the recipe variables the nucleus interpolates in lifecycle scripts. */
export function interpolateLifecycle(script: string, paths: NucleusPaths, thingName = 'test-thing'): string {
  return script.replaceAll('{artifacts:decompressedPath}', paths.decompressedPath).replaceAll('{work:path}', paths.workPath).replaceAll('{iot:thingName}', thingName);
}

/** Starts a lifecycle script as the nucleus does for a component running as ggc_user. */
export function startLifecycle(script: string, paths: NucleusPaths, owner: ComponentUser, nucleusEnvironment: Record<string, string>): ChildProcess {
  // The nucleus's own environment (a systemd service's) plus what it sets for the component, and nothing else: `env -i`
  // also drops what the test runner adds to every child's environment (tap's NODE_OPTIONS hooks).
  const environment = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', ...nucleusEnvironment };
  const assignments = Object.entries(environment).map(([key, value]) => `${key}=${value}`);
  return spawn('/usr/bin/env', ['-i', ...assignments, 'sudo', '-n', '-E', '-H', '-u', owner.user, '-g', owner.group, '--', 'sh', '-c', script], {
    cwd: paths.workPath,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Every descendant of `pid`, deepest last (from /proc, as the nucleus's `pgrep`-like snapshot). */
function descendants(pid: number): number[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const children = out.split('\n').filter((l) => l !== '').map(Number);
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/**
 * Stops a lifecycle process as the nucleus does (UnixExec.close): SIGTERM to every descendant, then to the top
 * process (sudo). The nucleus sends SIGKILL 5 s later; a test waits for the exit instead and reports how long it took.
 */
export function terminateLikeNucleus(child: ChildProcess): void {
  const top = child.pid;
  if (top === undefined) return;
  for (const pid of descendants(top)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  child.kill('SIGTERM');
}
