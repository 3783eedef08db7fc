// Polls a condition with a bounded wait, so tests wait for something to happen instead of sleeping a fixed time. The
// default bound is generous: it only matters when the condition never comes, and a loaded 2-core machine is slow.

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000, pollMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
