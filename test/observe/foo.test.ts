import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { FooAnalyzer, FooCounters, MAX_LINE, MAX_OUTSTANDING } from '../../src/observe/foo.js';
import { ROOT } from '../helpers.js';

const fixtureText = readFileSync(join(ROOT, 'test', 'fixtures', 'foo-session.txt'), 'utf8');

interface Msg {
  fromClient: boolean;
  bytes: Buffer;
}

/** "C> " lines go client -> server, "S> " server -> client; '#' lines are comments. */
function parseFixture(text: string): { messages: Msg[]; expected: Record<string, number> } {
  const messages: Msg[] = [];
  let lastComment = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) lastComment = line;
    else if (line.startsWith('C> ')) messages.push({ fromClient: true, bytes: Buffer.from(`${line.slice(3)}\n`) });
    else if (line.startsWith('S> ')) messages.push({ fromClient: false, bytes: Buffer.from(`${line.slice(3)}\n`) });
    else assert.equal(line.trim(), '', `unexpected fixture line ${JSON.stringify(line)}`);
  }
  const expected: Record<string, number> = {};
  for (const m of lastComment.matchAll(/\b(msg_[a-z_]+)\s+(\d+)/g)) expected[m[1]!] = Number(m[2]);
  // The fixture is all valid messages; it names msg_invalid only if it expects some.
  expected.msg_invalid ??= 0;
  return { messages, expected };
}

const fixture = parseFixture(fixtureText);

function setup(start = 0) {
  const clock = new ManualClock(start);
  const counters = new FooCounters(clock);
  const latencies: number[] = [];
  const analyzer = new FooAnalyzer(counters, clock, (ms) => latencies.push(ms));
  return { clock, counters, latencies, analyzer };
}

function feed(analyzer: FooAnalyzer, fromClient: boolean, chunk: Buffer): void {
  if (fromClient) analyzer.client(chunk);
  else analyzer.server(chunk);
}

function counts(counters: FooCounters) {
  const { msg_total, msg_req, msg_ack, msg_nak, msg_invalid } = counters;
  return { msg_total, msg_req, msg_ack, msg_nak, msg_invalid };
}

test('fixture: the expected counters come from its last comment line', () => {
  assert.equal(fixture.messages.length, 12);
  assert.deepEqual(fixture.expected, { msg_total: 12, msg_req: 6, msg_ack: 4, msg_nak: 2, msg_invalid: 0 });
});

test('fixture (a): each message its own chunk, 10 ms apart', () => {
  const { clock, counters, latencies, analyzer } = setup(1_000);
  for (const m of fixture.messages) {
    feed(analyzer, m.fromClient, m.bytes);
    clock.advance(10);
  }
  assert.deepEqual(counts(counters), fixture.expected);
  // REQ 1 @0 ACK 1 @10 | REQ 2 @20 ACK 2 @30 | REQ 3,4,5 @40,50,60 ACK 3,4 @70,80 | REQ 6 @90 NAK 5,6 @100,110
  assert.deepEqual(latencies, [10, 10, 30, 30, 40, 20]);
  assert.equal(analyzer.outstanding, 0);
});

test('fixture (b): every byte its own chunk', () => {
  const { clock, counters, latencies, analyzer } = setup();
  for (const m of fixture.messages) {
    for (let i = 0; i < m.bytes.length; i++) feed(analyzer, m.fromClient, m.bytes.subarray(i, i + 1));
    clock.advance(10);
  }
  assert.deepEqual(counts(counters), fixture.expected);
  assert.deepEqual(latencies, [10, 10, 30, 30, 40, 20]);
});

test('fixture (c): each direction in one chunk, client first', () => {
  const { clock, counters, latencies, analyzer } = setup();
  const side = (fromClient: boolean) =>
    Buffer.concat(fixture.messages.filter((m) => m.fromClient === fromClient).map((m) => m.bytes));
  analyzer.client(side(true));
  clock.advance(100);
  analyzer.server(side(false));
  assert.deepEqual(counts(counters), fixture.expected);
  assert.deepEqual(latencies, [100, 100, 100, 100, 100, 100]);
});

test('toJSON has the stats names, rates rounded; the fixture counts once per message', () => {
  const { clock, counters, analyzer } = setup();
  for (const m of fixture.messages) feed(analyzer, m.fromClient, m.bytes);
  assert.deepEqual(counters.toJSON(), {
    ...fixture.expected,
    request_rate_1s: 6,
    request_rate_10s: 6,
    response_rate_1s: 6,
    response_rate_10s: 6,
  });
  clock.advance(3_000);
  assert.deepEqual(counters.toJSON(), {
    ...fixture.expected,
    request_rate_1s: 0,
    request_rate_10s: 2,
    response_rate_1s: 0,
    response_rate_10s: 2,
  });
  assert.deepEqual(JSON.parse(JSON.stringify(counters)), counters.toJSON());
});

test('rates: 20 REQs in 1 s read as 20/s, then 0 after 2 s of quiet', () => {
  const { clock, counters, analyzer } = setup(42);
  for (let seq = 0; seq < 20; seq++) {
    analyzer.client(Buffer.from(`REQ ${seq} hi\n`));
    if (seq < 19) clock.advance(50);
  }
  let stats = counters.toJSON();
  assert.equal(stats.request_rate_1s, 20);
  assert.equal(stats.request_rate_10s, 20, 'under 1 s elapsed: divided by 1 s');
  assert.equal(stats.response_rate_1s, 0);
  analyzer.server(Buffer.from('ACK 0\nACK 1\nNAK 2\n'));
  assert.equal(counters.toJSON().response_rate_1s, 3);
  clock.advance(2_000);
  stats = counters.toJSON();
  assert.equal(stats.request_rate_1s, 0);
  assert.equal(stats.response_rate_1s, 0);
  // 20 REQs over the 2.95 s since the counters were created.
  assert.equal(stats.request_rate_10s, 6.78);
  clock.advance(10_000);
  assert.equal(counters.toJSON().request_rate_10s, 0);
  assert.equal(counters.msg_req, 20);
});

test('latency: pipelined REQs, unknown seqs, CRLF, duplicate seq', () => {
  const { clock, counters, latencies, analyzer } = setup();
  analyzer.client(Buffer.from('REQ 1\r\nREQ 2 a\r\nREQ 3\n'));
  clock.advance(5);
  analyzer.client(Buffer.from('REQ 3 again\n')); // still outstanding: keeps the first time
  clock.advance(5);
  analyzer.server(Buffer.from('ACK 3 x\r\nNAK 99 who\nACK 98\r\nACK 1\n'));
  clock.advance(10);
  analyzer.server(Buffer.from('NAK 2\r\nACK 3\n')); // ACK 3 again: no longer outstanding
  assert.deepEqual(latencies, [10, 10, 20]);
  assert.deepEqual(counts(counters), { msg_total: 10, msg_req: 4, msg_ack: 4, msg_nak: 2, msg_invalid: 0 });
  assert.equal(analyzer.outstanding, 0);
});

test('seqs are per connection: two analysers share counters, not seqs', () => {
  const clock = new ManualClock();
  const counters = new FooCounters(clock);
  const a: number[] = [];
  const b: number[] = [];
  const one = new FooAnalyzer(counters, clock, (ms) => a.push(ms));
  const two = new FooAnalyzer(counters, clock, (ms) => b.push(ms));
  one.client(Buffer.from('REQ 1\n'));
  clock.advance(7);
  two.client(Buffer.from('REQ 1\n'));
  clock.advance(3);
  two.server(Buffer.from('ACK 1\n'));
  one.server(Buffer.from('ACK 1\n'));
  assert.deepEqual(a, [10]);
  assert.deepEqual(b, [3]);
  assert.equal(counters.msg_total, 4);
});

test('outstanding REQs are bounded: beyond the cap the oldest is forgotten', () => {
  const { counters, latencies, analyzer } = setup();
  const extra = 10;
  const lines: string[] = [];
  for (let seq = 0; seq < MAX_OUTSTANDING + extra; seq++) lines.push(`REQ ${seq}\n`);
  analyzer.client(Buffer.from(lines.join('')));
  assert.equal(analyzer.outstanding, MAX_OUTSTANDING);
  analyzer.server(Buffer.from(`ACK 0\nNAK ${extra - 1}\nACK ${extra}\n`));
  assert.equal(latencies.length, 1, 'only the seq still remembered gives a latency');
  assert.equal(counters.msg_req, MAX_OUTSTANDING + extra);
  assert.equal(counters.msg_ack + counters.msg_nak, 3);
});

test('malformed lines and wrong-direction messages count as invalid', () => {
  const { counters, latencies, analyzer } = setup();
  const badFromClient = [
    '',
    '\r',
    'REQ',
    'REQ ',
    'REQ1',
    'REQ  1',
    'REQ\t1',
    'req 1',
    'REQ -1',
    'REQ 1x',
    'REQ x1',
    'REQ 1.5',
    'REQ 1\r\r',
    'FOO 1',
    'ACK 1', // a response from the client
    'NAK 1',
    'GET / HTTP/1.1\r',
  ];
  analyzer.client(Buffer.from(badFromClient.map((l) => `${l}\n`).join('')));
  analyzer.client(Buffer.from('REQ 7\n'));
  analyzer.server(Buffer.from('REQ 7\nACQ 7\nNAK\nACK 7 ok\n')); // REQ from the server is invalid
  assert.deepEqual(counts(counters), {
    msg_total: 2,
    msg_req: 1,
    msg_ack: 1,
    msg_nak: 0,
    msg_invalid: badFromClient.length + 3,
  });
  assert.equal(latencies.length, 1);
});

test('a 1024-byte line is parsed; a longer one is invalid once and the next line still counts', () => {
  const exact = Buffer.from(`REQ 1 ${'x'.repeat(MAX_LINE - 6)}\n`);
  assert.equal(exact.length, MAX_LINE + 1);
  const long = Buffer.from(`REQ 2 ${'y'.repeat(5_000)}\n`);
  const after = Buffer.from('REQ 3 ok\n');
  const all = Buffer.concat([exact, long, after]);

  for (const chunkSize of [all.length, 1, 7, 100, 1_000, MAX_LINE, MAX_LINE + 1, 4_096]) {
    const { counters, analyzer } = setup();
    for (let i = 0; i < all.length; i += chunkSize) analyzer.client(all.subarray(i, i + chunkSize));
    assert.deepEqual(
      counts(counters),
      { msg_total: 2, msg_req: 2, msg_ack: 0, msg_nak: 0, msg_invalid: 1 },
      `chunk size ${chunkSize}`,
    );
  }
  // Over the limit by one byte, with the '\n' arriving in a later chunk.
  const { counters, analyzer } = setup();
  analyzer.client(Buffer.from(`REQ 4 ${'z'.repeat(600)}`));
  analyzer.client(Buffer.from(`${'z'.repeat(MAX_LINE - 606 + 1)}\nREQ 5\n`));
  assert.equal(counters.msg_invalid, 1);
  assert.equal(counters.msg_req, 1);
});

test('chunks are neither changed nor kept: a partial line is copied', () => {
  const { counters, analyzer } = setup();
  const first = Buffer.from('REQ 12');
  const copy = Buffer.from(first);
  analyzer.client(first);
  assert.deepEqual(first, copy);
  first.fill(0x21); // the caller reuses its buffer
  analyzer.client(Buffer.from('3 data\n'));
  const last = Buffer.from('ACK 123\n');
  analyzer.server(last);
  assert.deepEqual(last, Buffer.from('ACK 123\n'));
  assert.deepEqual(counts(counters), { msg_total: 2, msg_req: 1, msg_ack: 1, msg_nak: 0, msg_invalid: 0 });
});

test('a very long seq is a valid message without latency tracking', () => {
  const { counters, latencies, analyzer } = setup();
  const seq = '1'.repeat(40);
  analyzer.client(Buffer.from(`REQ ${seq}\n`));
  analyzer.server(Buffer.from(`ACK ${seq}\n`));
  assert.equal(counters.msg_total, 2);
  assert.equal(latencies.length, 0);
  assert.equal(analyzer.outstanding, 0);
});

test('garbage binary data never throws and only counts invalid lines', () => {
  const { counters, analyzer } = setup();
  // Deterministic pseudo-random bytes (xorshift), a few MB in odd-sized chunks.
  let x = 0x2545f491;
  const buf = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  for (let i = 0, size = 1; i < buf.length; i += size, size = (size * 7 + 3) % 9_000) {
    analyzer.client(buf.subarray(i, i + size));
    analyzer.server(buf.subarray(i, i + size));
  }
  assert.equal(counters.msg_total, 0);
  assert.ok(counters.msg_invalid > 0);
  assert.ok(Number.isSafeInteger(counters.msg_invalid));
});

test('restore takes non-negative integer counters and ignores anything else', () => {
  const counters = new FooCounters(new ManualClock());
  assert.equal(counters.restore(null), 0);
  assert.equal(counters.restore('msg_total'), 0);
  assert.equal(
    counters.restore({
      msg_total: 12,
      msg_req: 6,
      msg_ack: -1,
      msg_nak: '2',
      msg_invalid: 1.5,
      request_rate_1s: 99,
      other: 3,
    }),
    2,
  );
  assert.deepEqual(counts(counters), { msg_total: 12, msg_req: 6, msg_ack: 0, msg_nak: 0, msg_invalid: 0 });
  assert.equal(counters.restore({ msg_ack: 4, msg_nak: 2, msg_invalid: 3, msg_total: Infinity }), 3);
  assert.deepEqual(counts(counters), { msg_total: 12, msg_req: 6, msg_ack: 4, msg_nak: 2, msg_invalid: 3 });
  assert.equal(counters.toJSON().request_rate_1s, 0);
});

// ---- properties ----

const dataArb = fc.string({ maxLength: 60, unit: 'binary' }).map((s) => s.replace(/[\r\n]/g, ''));
const msgArb = fc.record({
  type: fc.constantFrom('REQ', 'ACK', 'NAK'),
  seq: fc.nat({ max: 1_000_000 }),
  data: fc.option(dataArb, { nil: undefined }),
  crlf: fc.boolean(),
});

/** Cut `buf` at the given fractions of its length. */
function cut(buf: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => Math.floor(p * buf.length)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const i of at) {
    parts.push(buf.subarray(from, i));
    from = i;
  }
  parts.push(buf.subarray(from));
  return parts;
}

const pointsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

test('property: valid messages split anywhere give the counts of the unsplit stream', () => {
  fc.assert(
    fc.property(fc.array(msgArb, { maxLength: 60 }), pointsArb, pointsArb, (msgs, clientCuts, serverCuts) => {
      const line = (m: (typeof msgs)[number]) =>
        `${m.type} ${m.seq}${m.data === undefined ? '' : ` ${m.data}`}${m.crlf ? '\r' : ''}\n`;
      const client = Buffer.from(msgs.filter((m) => m.type === 'REQ').map(line).join(''));
      const server = Buffer.from(msgs.filter((m) => m.type !== 'REQ').map(line).join(''));

      const whole = setup();
      whole.analyzer.client(client);
      whole.analyzer.server(server);
      const split = setup();
      const c = cut(client, clientCuts);
      const s = cut(server, serverCuts);
      // Interleave the two directions' pieces.
      for (let i = 0; i < Math.max(c.length, s.length); i++) {
        if (i < c.length) split.analyzer.client(c[i]!);
        if (i < s.length) split.analyzer.server(s[i]!);
      }
      const expected = {
        msg_total: msgs.length,
        msg_req: msgs.filter((m) => m.type === 'REQ').length,
        msg_ack: msgs.filter((m) => m.type === 'ACK').length,
        msg_nak: msgs.filter((m) => m.type === 'NAK').length,
        msg_invalid: 0,
      };
      assert.deepEqual(counts(whole.counters), expected);
      assert.deepEqual(counts(split.counters), expected);
    }),
    { numRuns: 200 },
  );
});

// Bytes biased towards Foo-looking text and newlines, sometimes long enough to overflow a line.
const byteArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 1, arbitrary: fc.constant(0x0a) },
  { weight: 3, arbitrary: fc.constantFrom(...Buffer.from('REQACKN 0123456789\r\n')) },
);
const bytesArb = fc.oneof(
  fc.array(byteArb, { maxLength: 300 }),
  fc.array(byteArb, { minLength: 1_000, maxLength: 3_000 }),
  fc.array(fc.integer({ min: 0x20, max: 0x7e }), { minLength: 1_000, maxLength: 3_000 }),
);

test('property: arbitrary bytes never throw, counts are non-negative integers, split-invariant', () => {
  fc.assert(
    fc.property(bytesArb, pointsArb, fc.boolean(), (bytes, points, fromClient) => {
      const buf = Buffer.from(bytes);
      const whole = setup();
      feed(whole.analyzer, fromClient, buf);
      const split = setup();
      for (const part of cut(buf, points)) feed(split.analyzer, fromClient, part);
      const result = counts(whole.counters);
      for (const value of Object.values(result)) assert.ok(Number.isSafeInteger(value) && value >= 0);
      assert.equal(result.msg_total, result.msg_req + result.msg_ack + result.msg_nak);
      assert.deepEqual(counts(split.counters), result);
    }),
    { numRuns: 200 },
  );
});
