// Polls a condition with a bounded wait, so tests wait for something to happen instead of sleeping a fixed time.

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000, pollMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
