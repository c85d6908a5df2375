/**
 * Property tests of the Foo analyser: any bytes, split anywhere, never make it throw, are never
 * modified, and the counters do not depend on how the stream was split into chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { FooAnalyzer, FooCounters, MAX_LINE } from '../../src/observe/foo.js';

/** Bytes that look like Foo often enough to reach every branch: tokens, digits, CR/LF, junk, long runs. */
const fooish = fc
  .array(
    fc.oneof(
      fc.constantFrom('REQ ', 'ACK ', 'NAK ', 'req ', 'REQ', 'ACK  ', '\n', '\r\n', '\r', ' ', 'x', '\u00e9'),
      fc.stringMatching(/^[0-9]{1,20}$/),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.integer({ min: MAX_LINE - 8, max: MAX_LINE + 8 }).map((n) => 'A'.repeat(n)),
    ),
    { maxLength: 60 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

const bytes = fc.oneof(fooish, fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)));

/** Cut points into `buf` (sorted, deduplicated) -> chunks. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    chunks.push(buf.subarray(prev, c));
    prev = c;
  }
  return chunks;
}

function counts(c: FooCounters) {
  return { total: c.msg_total, req: c.msg_req, ack: c.msg_ack, nak: c.msg_nak, invalid: c.msg_invalid };
}

test('Foo analyser: arbitrary bytes split arbitrarily never throw, are never modified, and count the same however split', () => {
  fc.assert(
    fc.property(bytes, bytes, fc.array(fc.nat(), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 20 }), (up, down, cutsUp, cutsDown) => {
      const clock = new ManualClock(0);
      // Whole: each direction in one chunk.
      const whole = new FooCounters(clock);
      const a = new FooAnalyzer(whole, clock, () => {});
      a.client(up);
      a.server(down);
      // Split: the chunks of both directions interleaved; each chunk compared with its copy afterwards.
      const splitCounters = new FooCounters(clock);
      const latencies: number[] = [];
      const b = new FooAnalyzer(splitCounters, clock, (ms) => latencies.push(ms));
      const ups = split(up, cutsUp);
      const downs = split(down, cutsDown);
      const copies = new Map<Buffer, Buffer>();
      for (let i = 0; i < Math.max(ups.length, downs.length); i++) {
        for (const [chunk, side] of [[ups[i], 'client'], [downs[i], 'server']] as const) {
          if (!chunk) continue;
          copies.set(chunk, Buffer.from(chunk));
          clock.advance(1);
          b[side](chunk);
        }
      }
      for (const [chunk, copy] of copies) assert.ok(chunk.equals(copy), 'a chunk was modified');
      // The interleaving changes which REQs are outstanding when an ACK comes, not what is counted.
      const w = counts(whole);
      assert.deepEqual(counts(splitCounters), w);
      assert.equal(w.total, w.req + w.ack + w.nak);
      assert.ok(latencies.every((ms) => Number.isFinite(ms) && ms >= 0));
      assert.ok(b.outstanding >= 0 && b.outstanding <= 1024);
    }),
    { numRuns: 200 },
  );
});
