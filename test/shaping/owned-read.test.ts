import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { FIRST_READ } from '../../src/shaping/grants.js';
import { ownedRead, type ShapedFlow } from '../../src/shaping/socket-flow.js';
import { cleanup, pattern, rawServer, sha256, waitFor } from '../helpers.js';

const bufferOf = (onread: net.OnReadOpts): Uint8Array => (typeof onread.buffer === 'function' ? onread.buffer() : onread.buffer);

test('light connections share one read buffer, and what each read keeps is its own copy', async (t) => {
  // Eight connections get small messages in turns; every read is held (not yet "sent") while the
  // others read into the same shared buffer. Were a chunk not copied out, later reads would overwrite it.
  const N = 8;
  const MESSAGES = 40;
  const SIZE = 300; // below FIRST_READ: the connections stay light
  const expected = Array.from({ length: N }, (_, i) => pattern(MESSAGES * SIZE, i + 1));
  const accepted: net.Socket[] = [];
  const { port } = await rawServer(t, (s) => accepted.push(s), { allowHalfOpen: false });
  const clients: net.Socket[] = [];
  cleanup(t, () => clients.forEach((s) => s.destroy()));
  const held: Buffer[][] = Array.from({ length: N }, () => []);
  const reads = Array.from({ length: N }, () => ownedRead(16 * 1024));
  for (let i = 0; i < N; i++) {
    const read = reads[i]!;
    const s = net.connect({ port, host: '127.0.0.1', onread: read.onread });
    read.flow = {
      fromOwnedRead(chunk: Buffer): false {
        held[i]!.push(chunk);
        setImmediate(() => s.read(0));
        return false;
      },
    } as unknown as ShapedFlow;
    clients.push(s);
  }
  await waitFor(() => accepted.length === N, 5000, 'all accepted');
  for (let m = 0; m < MESSAGES; m++) {
    for (let i = 0; i < N; i++) accepted[i]!.write(expected[i]!.subarray(m * SIZE, (m + 1) * SIZE));
    await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => held.every((h, i) => h.reduce((n, c) => n + c.length, 0) === expected[i]!.length), 10_000, 'every byte read');
  for (let i = 0; i < N; i++) assert.equal(sha256(Buffer.concat(held[i]!)), sha256(expected[i]!), `connection ${i}`);
  // Still light: all of them read into the same buffer.
  const shared = bufferOf(reads[0]!.onread);
  assert.ok(reads.every((r) => bufferOf(r.onread) === shared));
});

test('a read of FIRST_READ bytes or more gives the connection its own buffer, read into without a copy', async (t) => {
  let peer: net.Socket | undefined;
  const { port } = await rawServer(t, (s) => (peer = s), { allowHalfOpen: false });
  const read = ownedRead(16 * 1024);
  const other = ownedRead(16 * 1024);
  const chunks: Buffer[] = [];
  const s = net.connect({ port, host: '127.0.0.1', onread: read.onread });
  cleanup(t, () => s.destroy());
  read.flow = {
    fromOwnedRead(chunk: Buffer): false {
      chunks.push(Buffer.from(chunk)); // the flow would write it before the next read; the test keeps a copy
      setImmediate(() => s.read(0));
      return false;
    },
  } as unknown as ShapedFlow;
  await waitFor(() => peer !== undefined, 5000, 'accepted');
  assert.equal(bufferOf(read.onread), bufferOf(other.onread), 'starts on the shared buffer');
  const big = pattern(FIRST_READ * 40, 7);
  peer!.write(big);
  await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) === big.length, 5000, 'all read');
  assert.equal(sha256(Buffer.concat(chunks)), sha256(big));
  const own = bufferOf(read.onread);
  assert.notEqual(own, bufferOf(other.onread), 'has its own buffer now');
  assert.equal(own.length, 16 * 1024);
  assert.equal(bufferOf(other.onread), bufferOf(ownedRead(16 * 1024).onread), 'the others still share');
});
