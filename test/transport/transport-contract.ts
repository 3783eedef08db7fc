// The one behaviour every Transport must show, run against each implementation (MQTT to mosquitto, MQTT to the embedded broker, the embedded in-process transport, Greengrass IPC to the test nucleus).
// It never sleeps to wait for a message: it waits for events, bounded, and checks absences behind a sentinel.

import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Test } from 'tap';
import type { MessageHandler, Transport } from '../../src/transport/transport.js';
import { required } from '../helpers/required.js';

export interface TransportBus {
  /** The implementation under test, started. */
  readonly a: Transport;
  /** A second participant on the same bus (same or other implementation), started. */
  readonly b: Transport;
  /** Another transport of a's kind on the same bus, not started; `cleanup` stops it too. */
  unstarted(): Transport;
  cleanup(): Promise<void>;
  /**
   * Cuts a's connection from the bus side (a broker or nucleus dropping it) without stopping a. Required unless the
   * contract is told the dropped-connection case does not apply (ContractOptions.notApplicable.droppedConnection).
   */
  dropA?(): Promise<void>;
}

export type TransportBusFactory = () => Promise<TransportBus>;

export interface ContractOptions {
  /**
   * Cases that cannot apply to an implementation, each with the reason. Such a case gets no subtest at all (tap
   * would count a subtest with only a t.pass as a pass); the reason is printed as a comment naming the suite.
   */
  readonly notApplicable?: {
    /** Why a's connection cannot be dropped from the bus side and come back. */
    readonly droppedConnection?: string;
  };
}

export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
}

export interface Inbox {
  readonly handler: MessageHandler;
  readonly messages: readonly Received[];
  payloads(): string[];
  /** Resolves once `predicate` holds; rejects after `timeoutMs` naming `what` and what did arrive. */
  until(predicate: (messages: readonly Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
}

const DEFAULT_WAIT_MS = 5_000;

export function inbox(): Inbox {
  const messages: Received[] = [];
  const waiters = new Set<() => void>();
  const payloads = (): string[] => messages.map((m) => m.payload.toString('utf8'));
  return {
    messages,
    payloads,
    handler: (topic, payload) => {
      messages.push({ topic, payload });
      for (const waiter of [...waiters]) waiter();
    },
    until: (predicate, what, timeoutMs = DEFAULT_WAIT_MS) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(messages)) return resolve();
        const check = (): void => {
          if (!predicate(messages)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const got = messages.map((m) => `${m.topic}=${m.payload.toString('hex')}`).join(', ');
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got [${got}]`));
        }, timeoutMs);
        waiters.add(check);
      }),
  };
}

/** Records connection changes and waits for a given sequence. */
export function connectionLog(transport: Transport): {
  readonly changes: readonly boolean[];
  until(predicate: (changes: readonly boolean[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
} {
  const changes: boolean[] = [];
  const waiters = new Set<() => void>();
  transport.onConnectionChange((connected) => {
    changes.push(connected);
    for (const waiter of [...waiters]) waiter();
  });
  return {
    changes,
    until: (predicate, what, timeoutMs = DEFAULT_WAIT_MS) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(changes)) return resolve();
        const check = (): void => {
          if (!predicate(changes)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; changes [${changes.join(', ')}]`));
        }, timeoutMs);
        waiters.add(check);
      }),
  };
}

/** A topic root no other test shares, so tests on one broker never see each other's messages. */
export function uniqueRoot(label = 'ct'): string {
  return `${label}/${randomBytes(5).toString('hex')}`;
}

// 0x00, a lone continuation byte, an overlong '/', a UTF-16 surrogate encoded in UTF-8: none survives a string.
const HOSTILE = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x00, 0x41]);

export function runTransportContract(t: Test, name: string, factory: TransportBusFactory, options: ContractOptions = {}): void {
  const busTest = (title: string, fn: (t: Test, bus: TransportBus) => Promise<void>): void => {
    t.test(`${name}: ${title}`, { timeout: 20_000 }, async (t) => {
      const bus = await factory();
      t.teardown(() => bus.cleanup());
      await fn(t, bus);
    });
  };
  const directions = (bus: TransportBus): ReadonlyArray<readonly [string, Transport, Transport]> => [
    ['a->b', bus.a, bus.b],
    ['b->a', bus.b, bus.a],
  ];

  busTest('round trip keeps the exact bytes, in order per publisher', async (t, bus) => {
    const root = uniqueRoot();
    const atA = inbox();
    const atB = inbox();
    await bus.a.subscribe(`${root}/+`, atA.handler);
    await bus.b.subscribe(`${root}/+`, atB.handler);
    await bus.a.publish(`${root}/from-a`, HOSTILE);
    await bus.a.publish(`${root}/from-a`, Buffer.alloc(0));
    await bus.b.publish(`${root}/from-b`, HOSTILE);
    await bus.b.publish(`${root}/from-b`, 'héllo ✓');
    for (const [who, box] of [['a', atA], ['b', atB]] as const) {
      await box.until((m) => m.length >= 4, `4 messages at ${who}`);
      const hexOf = (topic: string): string[] =>
        box.messages.filter((m) => m.topic === topic).map((m) => m.payload.toString('hex'));
      t.ok(box.messages.every((m) => Buffer.isBuffer(m.payload)), `${who} gets Buffers`);
      t.same(hexOf(`${root}/from-a`), [HOSTILE.toString('hex'), ''], `${who}: a's binary and empty payloads intact`);
      t.same(hexOf(`${root}/from-b`), [HOSTILE.toString('hex'), Buffer.from('héllo ✓').toString('hex')], `${who}: b's`);
    }
  });

  busTest("'+' matches exactly one level", async (t, bus) => {
    for (const [dir, pub, sub] of directions(bus)) {
      const root = uniqueRoot();
      const box = inbox();
      await sub.subscribe(`${root}/+/state`, box.handler);
      await pub.publish(`${root}/arm-1/x/state`, 'two levels');
      await pub.publish(`${root}/state`, 'no level');
      await pub.publish(`${root}/arm-1/state/x`, 'trailing level');
      await pub.publish(`${root}/arm-1/state`, 'one level');
      // Same publisher, same subscription: anything wrongly matched would have arrived before this one.
      await box.until((m) => m.length >= 1, `${dir}: the one-level message`);
      t.same(box.payloads(), ['one level'], `${dir}: only the one-level topic`);
      t.same(box.messages.map((m) => m.topic), [`${root}/arm-1/state`], `${dir}: with its full topic`);
    }
  });

  busTest("'#' matches the parent and every level below", async (t, bus) => {
    for (const [dir, pub, sub] of directions(bus)) {
      const root = uniqueRoot();
      const box = inbox();
      await sub.subscribe(`${root}/tree/#`, box.handler);
      await pub.publish(`${root}/treehouse`, 'sibling');
      await pub.publish(`${root}/tree`, 'parent');
      await pub.publish(`${root}/tree/a/b/c`, 'deep');
      await pub.publish(`${root}/tree/end`, 'end');
      await box.until((m) => m.some((x) => x.payload.toString() === 'end'), `${dir}: the last message`);
      t.same(box.payloads(), ['parent', 'deep', 'end'], `${dir}: parent and descendants, not the sibling`);
    }
  });

  busTest('no delivery after unsubscribe; other subscriptions to the filter keep receiving', async (t, bus) => {
    for (const [dir, pub, sub] of directions(bus)) {
      const root = uniqueRoot();
      const gone = inbox();
      const kept = inbox();
      const subscription = await sub.subscribe(`${root}/u`, gone.handler);
      await sub.subscribe(`${root}/u`, kept.handler);
      await pub.publish(`${root}/u`, 'before');
      await gone.until((m) => m.length >= 1, `${dir}: 'before' at the first subscription`);
      await subscription.unsubscribe();
      await subscription.unsubscribe(); // twice is harmless
      await pub.publish(`${root}/u`, 'after');
      await kept.until((m) => m.length >= 2, `${dir}: 'after' at the remaining subscription`);
      t.same(gone.payloads(), ['before'], `${dir}: nothing after unsubscribe`);
      t.same(kept.payloads(), ['before', 'after'], `${dir}: the other subscription is unaffected`);

      // The last subscription to a filter going away and a new one arriving must work too.
      const only = await sub.subscribe(`${root}/v`, () => undefined);
      await only.unsubscribe();
      const again = inbox();
      await sub.subscribe(`${root}/v`, again.handler);
      await pub.publish(`${root}/v`, 'resubscribed');
      await again.until((m) => m.length >= 1, `${dir}: delivery after resubscribing`);
      t.same(again.payloads(), ['resubscribed'], `${dir}: resubscribed filter delivers once`);
    }
  });

  busTest('a message is delivered once per matching subscription', async (t, bus) => {
    for (const [dir, pub, sub] of directions(bus)) {
      const root = uniqueRoot();
      const filters = [`${root}/+/c`, `${root}/#`, `${root}/a/c`, `${root}/a/c`, `${root}/a/+`, `${root}/+/+`];
      const boxes = filters.map(() => inbox());
      for (const [i, filter] of filters.entries()) await sub.subscribe(filter, boxes[i]?.handler ?? (() => undefined));
      const miss = inbox();
      await sub.subscribe(`${root}/b/+`, miss.handler);
      await pub.publish(`${root}/a/c`, 'once');
      await pub.publish(`${root}/z`, 'sentinel'); // matches only '#'
      const hash = boxes[1];
      if (hash === undefined) throw new Error('unreachable');
      await hash.until((m) => m.length >= 2, `${dir}: the sentinel at '#'`);
      for (const [i, filter] of filters.entries()) {
        const expected = filter.endsWith('#') ? ['once', 'sentinel'] : ['once'];
        t.same(boxes[i]?.payloads(), expected, `${dir}: ${filter.slice(root.length)} got it exactly once`);
      }
      t.same(miss.payloads(), [], `${dir}: a non-matching subscription gets nothing`);
    }
  });

  busTest('qos 1 (the default) and qos 0 publishes resolve and deliver', async (t, bus) => {
    const root = uniqueRoot();
    const box = inbox();
    await bus.b.subscribe(`${root}/q`, box.handler);
    await t.resolves(bus.a.publish(`${root}/q`, 'default'), 'default qos resolves');
    await t.resolves(bus.a.publish(`${root}/q`, 'one', { qos: 1 }), 'qos 1 resolves');
    await t.resolves(bus.a.publish(`${root}/q`, 'zero', { qos: 0 }), 'qos 0 resolves');
    await box.until((m) => m.length >= 3, 'all three');
    t.same(box.payloads().sort(), ['default', 'one', 'zero']);
  });

  busTest('lifecycle: start, isConnected, onConnectionChange, stop (idempotent)', async (t, bus) => {
    const root = uniqueRoot();
    const x = bus.unstarted();
    t.equal(x.isConnected(), false, 'not connected before start');
    await t.rejects(x.publish(`${root}/l`, 'early'), /not started/, 'publish before start rejects');
    await t.rejects(x.subscribe(`${root}/l`, () => undefined), /not started/, 'subscribe before start rejects');

    const changes: boolean[] = [];
    x.onConnectionChange((c) => changes.push(c));
    const removed: boolean[] = [];
    const off = x.onConnectionChange((c) => removed.push(c));
    off();

    await x.start();
    await x.start(); // a second start is harmless
    t.equal(x.isConnected(), true, 'connected after start');
    t.same(changes, [true], 'onConnectionChange fired once for the connect');

    const box = inbox();
    await x.subscribe(`${root}/l`, box.handler);
    await x.stop();
    t.equal(x.isConnected(), false, 'not connected after stop');
    t.same(changes, [true, false], 'onConnectionChange fired for the stop');
    await Promise.all([x.stop(), x.stop()]);
    t.same(changes, [true, false], 'stopping again changes nothing');
    t.same(removed, [], 'a removed listener hears nothing');

    await t.rejects(x.publish(`${root}/l`, 'late'), /stopped/, 'publish after stop rejects');
    await t.rejects(x.subscribe(`${root}/l`, () => undefined), /stopped/, 'subscribe after stop rejects');
    await t.rejects(x.start(), /stopped/, 'a stopped transport cannot be restarted');

    // A stopped transport's subscriptions deliver nothing: check behind a sentinel at another subscriber.
    const sentinel = inbox();
    await bus.b.subscribe(`${root}/l`, sentinel.handler);
    await bus.a.publish(`${root}/l`, 'after stop');
    await sentinel.until((m) => m.length >= 1, 'the message at the live subscriber');
    t.same(box.payloads(), [], 'the stopped transport delivered nothing');

    const never = bus.unstarted();
    await t.resolves(never.stop(), 'stopping a transport that never started resolves');
    t.equal(never.isConnected(), false);
  });

  busTest('a throwing handler does not stop delivery to the others', async (t, bus) => {
    for (const [dir, pub, sub] of directions(bus)) {
      const root = uniqueRoot();
      const box = inbox();
      await sub.subscribe(`${root}/h`, () => {
        throw new Error('handler bug');
      });
      await sub.subscribe(`${root}/h`, box.handler);
      await pub.publish(`${root}/h`, 'one');
      await pub.publish(`${root}/h`, 'two');
      await box.until((m) => m.length >= 2, `${dir}: both messages`);
      t.same(box.payloads(), ['one', 'two'], `${dir}: delivered despite the throwing handler`);
      t.equal(sub.isConnected(), true, `${dir}: still connected`);
    }
  });

  const droppedNotApplicable = options.notApplicable?.droppedConnection;
  if (droppedNotApplicable !== undefined) t.comment(`${name}: the dropped-connection case does not apply (not run): ${droppedNotApplicable}`);
  else busTest('a dropped connection: reported, publishes refused while down, then reconnected with subscriptions intact', async (t, bus) => {
    const dropA = required(bus.dropA, "a way to drop a's connection (dropA), or the case declared not applicable");
    const root = uniqueRoot();
    const box = inbox();
    await bus.a.subscribe(`${root}/+/state`, box.handler);
    const changes: boolean[] = [];
    const down = new Promise<void>((resolve) => {
      const off = bus.a.onConnectionChange((connected) => {
        changes.push(connected);
        if (!connected) {
          off();
          resolve();
        }
      });
    });
    const up = new Promise<void>((resolve) => {
      const off = bus.a.onConnectionChange((connected) => {
        if (connected) {
          off();
          resolve();
        }
      });
    });
    await dropA();
    await down;
    t.equal(bus.a.isConnected(), false, 'not connected while down');
    // Either refused at once (not connected) or, if the reconnect already happened, delivered: never queued for later.
    const whileDown = await bus.a.publish(`${root}/x/ignored`, 'while down').then(() => 'sent', (e: Error) => e.message);
    if (whileDown !== 'sent') t.match(whileDown, /not connected|closed|disconnect/i, 'a publish while down is refused');
    await up;
    t.equal(bus.a.isConnected(), true, 'reconnected on its own');
    // The resubscription may land just after the connect is reported: publish until one arrives, bounded.
    const deadline = Date.now() + 5_000;
    while (!box.messages.some((m) => m.payload.toString() === 'after')) {
      if (Date.now() > deadline) throw new Error('the subscription did not survive the drop');
      await bus.b.publish(`${root}/arm-1/state`, 'after');
      await box.until((m) => m.some((x) => x.payload.toString() === 'after'), 'a message after the reconnect', 200).catch(() => undefined);
    }
    t.ok(box.messages.every((m) => m.topic === `${root}/arm-1/state` || m.topic === `${root}/x/ignored`), 'only matching topics');
    t.same(changes.slice(0, 1), [false], 'the drop was reported');
  });

  busTest('invalid topics and filters are rejected, not sent', async (t, bus) => {
    await t.rejects(bus.a.publish('', 'x'), 'empty topic');
    await t.rejects(bus.a.publish('a/+/b', 'x'), 'wildcard + in a topic name');
    await t.rejects(bus.a.publish('a/#', 'x'), 'wildcard # in a topic name');
    await t.rejects(bus.a.subscribe('a/#/b', () => undefined), "'#' not last");
    await t.rejects(bus.a.subscribe('a/b+', () => undefined), "'+' inside a level");
    await t.rejects(bus.a.subscribe('', () => undefined), 'empty filter');
    t.equal(bus.a.isConnected(), true, 'still connected');
  });
}

// tap runs every file under test/, this one included: run by itself it checks its own waiting helpers (no
// sockets), rather than showing up as an empty, skipped test file.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { default: tap } = await import('tap');
  tap.test('inbox waits for arrivals and reports what did arrive on timeout', async (t) => {
    const box = inbox();
    const waiting = box.until((m) => m.length >= 2, 'two messages', 1_000);
    box.handler('x/1', Buffer.from([0x00]));
    box.handler('x/2', Buffer.from('b'));
    await t.resolves(waiting, 'resolves once the predicate holds');
    t.same(box.payloads(), ['\u0000', 'b']);
    await t.rejects(box.until((m) => m.length >= 3, 'a third', 20), /waiting for a third; got \[x\/1=00, x\/2=62\]/);
  });
}
