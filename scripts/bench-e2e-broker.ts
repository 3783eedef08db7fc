// The embedded broker (the interlock's own EmbeddedBroker, aedes) alone in a process of its own, for the end-to-end
// bench's direct path: inside `interlock run` its ACL lets no agent publish to a driver, which is the point of it.
// Prints `listening <url>` once it accepts connections; stops on SIGTERM. Loopback only.

import { wideBroker } from './wide-broker.js';

const broker = wideBroker({ host: '127.0.0.1', port: 0, log: () => undefined });
await broker.start();
process.stdout.write(`listening ${broker.url}\n`);
process.once('SIGTERM', () => {
  void broker.stop().then(() => process.exit(0));
});
