// The Node versions the interlock runs on (22 and newer). It never lets a command start on an older one: there
// better-sqlite3 13 (the audit log, the identity store) kills the process with SIGSEGV the moment it opens a database.

export const MINIMUM_NODE_MAJOR = 22;

/** Why the interlock must not start on Node `version` (process.versions.node, e.g. "20.20.2"), or undefined. */
export function nodeVersionProblem(version: string): string | undefined {
  const match = /^(\d+)\.\d+\.\d+/.exec(version);
  // SAFETY: a version that cannot be read is refused like an old one, never assumed to be new enough.
  if (!match) return `cannot read the Node version "${version}"; the interlock needs Node ${MINIMUM_NODE_MAJOR} or newer`;
  const major = Number(match[1]);
  if (major >= MINIMUM_NODE_MAJOR) return undefined;
  return `needs Node ${MINIMUM_NODE_MAJOR} or newer, this is Node ${version}: better-sqlite3 13 (the audit log and the identity store) crashes the process when it opens a database on Node ${major}`;
}
