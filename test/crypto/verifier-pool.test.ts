// The worker-thread signature checker: its answers are right, bound to the exact token and kid, and a pool that
// is closed gives no answer (so the envelope verifies itself) rather than a wrong one. Also proves the envelope
// uses the hint: a hint that says "bad" denies an otherwise valid command, and a hint for another token is ignored.

import t from 'tap';
import { generateEd25519KeyPair, signCompactJws } from '../../src/crypto/jws.js';
import { hintedVerifier, VerifierPool } from '../../src/crypto/verifier-pool.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { BoundsMemory, evaluateCommand, NO_RELEASES } from '../../src/pipeline/pipeline.js';
import { makeTestCell } from '../helpers/test-cell.js';

const alice = generateEd25519KeyPair();
const mallory = generateEd25519KeyPair();
const keys = new Map([['alice-k1', { publicKey: alice.publicKey }]]);

t.test('answers per token: valid, tampered, unknown kid, garbage', async (t) => {
  const pool = new VerifierPool(keys, 2);
  t.teardown(() => pool.close());
  const good = signCompactJws({ hello: 1 }, 'alice-k1', alice.privateKey);
  const [head, body] = good.split('.');
  const forged = signCompactJws({ hello: 1 }, 'alice-k1', mallory.privateKey);
  const swappedPayload = `${head}.${Buffer.from('{"hello":2}').toString('base64url')}.${good.split('.')[2]}`;
  const unknownKid = signCompactJws({ hello: 1 }, 'bob-k1', alice.privateKey);
  const cases: { name: string; token: string; kid: string; ok: boolean }[] = [
    { name: 'signed by the registered key', token: good, kid: 'alice-k1', ok: true },
    { name: 'signed by another key under the same kid', token: forged, kid: 'alice-k1', ok: false },
    { name: 'payload swapped after signing', token: swappedPayload, kid: 'alice-k1', ok: false },
    { name: 'kid not registered', token: unknownKid, kid: 'bob-k1', ok: false },
    { name: 'not a JWS at all', token: 'garbage', kid: '', ok: false },
    { name: 'signature cut short', token: `${head}.${body}.AAAA`, kid: 'alice-k1', ok: false },
  ];
  // All in flight at once, over two workers: each answer must come back to its own token.
  const answers = await Promise.all(cases.map((c) => pool.verify(c.token)));
  cases.forEach((c, i) => {
    t.same(answers[i], { token: c.token, kid: c.kid, ok: c.ok }, c.name);
  });
});

t.test('a closed pool answers nothing; bad construction is refused', async (t) => {
  const pool = new VerifierPool(keys, 1);
  await pool.close();
  t.equal(await pool.verify(signCompactJws({}, 'alice-k1', alice.privateKey)), undefined);
  t.throws(() => new VerifierPool(keys, 0), /positive integer/);
  t.throws(() => new VerifierPool(keys, 1.5), /positive integer/);
});

t.test('the hint is bound to the exact token and kid', async (t) => {
  const token = signCompactJws({ a: 1 }, 'alice-k1', alice.privateKey);
  const hint = { token, kid: 'alice-k1', ok: true };
  t.equal(hintedVerifier(hint, `${token}x`), undefined, 'another token: no hint');
  t.equal(hintedVerifier(undefined, token), undefined);
  const verifier = hintedVerifier(hint, token);
  t.equal(verifier?.('alice-k1'), true);
  t.equal(verifier?.('alice-k2'), undefined, 'another kid: no answer, the envelope verifies itself');
});

t.test('the envelope follows the hint for its token, and verifies itself without one', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const loaded = cell.load();
  const nowMs = Date.now();
  const context = (): Parameters<typeof evaluateCommand>[1] => ({
    cell: loaded,
    replay: new MemoryReplayGuard(() => nowMs),
    states: { latest: () => undefined },
    releases: NO_RELEASES,
    bounds: new BoundsMemory(),
  });
  const token = cell.signer('observer-1', () => nowMs).sign('arm-1', 'stop', {});
  // A valid stop passes without a hint and with a true one; a hint saying the signature is bad denies it.
  t.equal(evaluateCommand({ token }, context(), nowMs).verdict, 'allow');
  t.equal(evaluateCommand({ token, signatureHint: () => true }, context(), nowMs).verdict, 'allow');
  const denied = evaluateCommand({ token, signatureHint: () => false }, context(), nowMs);
  t.same(denied.reasons.map((r) => r.code), ['ENVELOPE_BAD_SIGNATURE']);
  // Through a real pool: the same answers as the main thread.
  const pool = new VerifierPool(loaded.declarations.keys, 1);
  t.teardown(() => pool.close());
  const hint = hintedVerifier(await pool.verify(token), token);
  t.ok(hint, 'the pool answered');
  t.equal(evaluateCommand({ token, ...(hint === undefined ? {} : { signatureHint: hint }) }, context(), nowMs).verdict, 'allow');
  const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BA' : 'AA'}`;
  const badHint = hintedVerifier(await pool.verify(tampered), tampered);
  t.equal(badHint?.(loaded.declarations.keys.get('observer-1-k1')?.kid ?? ''), false, 'the pool finds the tampered signature bad');
});
