/**
 * Property tests of the admin API's mutating endpoints against a real proxy's admin server:
 * whatever the body (any JSON value, tier- and customer-shaped objects with wrong types, units,
 * huge or negative numbers, unknown and prototype keys, bytes that are not JSON) and whatever the
 * name in the path, the answer comes in time and is 2xx, or a 4xx whose JSON body has an error
 * message and a code; never a 500. A 4xx changes nothing: GET /tiers, GET /customers and the
 * state file are byte-identical before and after.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { app, backendFor, config, proxyFor, tempDir, tier, type TestProxy } from '../helpers.js';

async function start(t: TestContext): Promise<{ proxy: TestProxy; stateFile: string }> {
  const dir = await tempDir(t, 'shaper-fuzz-admin-');
  const backend = await backendFor(t, 'echo');
  const stateFile = join(dir, 'state.json');
  const proxy = await proxyFor(
    t,
    config([app('web', [backend.address])], {
      admin: { host: '127.0.0.1', port: 0 },
      tiers: { free: tier('free', { connection: { down: 125_000, up: 125_000 } }), gold: tier('gold', { weight: 3 }) },
      customers: [{ id: 'acme', tier: 'gold', match: { sources: ['127.0.0.2/32'] } }],
      defaultTier: 'free',
      stateFile,
    }),
    { backends: [backend] },
  );
  // The proxy saves the state file once at start (the config's tier names); a first snapshot taken
  // while that write is under way saw no file, and the next one the file (a loaded machine did so).
  await proxy.store.flush();
  return { proxy, stateFile };
}

interface Answer {
  status: number;
  text: string;
}

/** One request with a raw body; rejects when no answer comes within `ms` (a hang). */
function request(port: number, method: string, path: string, body?: Buffer, ms = 3000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path}: no answer within ${ms} ms`));
    }, ms);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

async function snapshot(port: number, stateFile: string): Promise<string[]> {
  const tiers = await request(port, 'GET', '/tiers');
  const customers = await request(port, 'GET', '/customers');
  assert.equal(tiers.status, 200, `GET /tiers: ${tiers.text}`);
  assert.equal(customers.status, 200, `GET /customers: ${customers.text}`);
  const file = await readFile(stateFile, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '<none>' : Promise.reject(err)));
  return [tiers.text, customers.text, file];
}

/** Numbers and number-like strings that break naive validation. */
const oddNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, -1, 1e308, -1e308, 2 ** 53 + 1, Number.MIN_VALUE, 0.1),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '-1mbit', '1e400mbit', '9'.repeat(400), '0', '0.0001kbit', '1mbit', '100kb', '10/s', '0/s', '5ms', '-5ms', '1e3', 'unlimited', ''),
);
const unitValue = fc.oneof(oddNumber, fc.string({ maxLength: 10 }), fc.constant(null), fc.boolean(), fc.array(oddNumber, { maxLength: 2 }));
const protoKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf');
const level = fc.dictionary(fc.oneof(fc.constantFrom('down', 'up', 'burst'), protoKey, fc.string({ maxLength: 6 })), fc.oneof(unitValue, fc.record({ down: unitValue, up: unitValue })), { maxKeys: 4 });

/** Objects shaped like a tier in the config, with wrong types, odd units and stray keys. */
const tierish = fc.record(
  {
    rtt: unitValue,
    weight: unitValue,
    connection: fc.oneof(level, unitValue),
    customer: fc.oneof(level, unitValue),
    total: fc.oneof(level, unitValue),
    maxConnections: unitValue,
    connectionRate: unitValue,
    extra: fc.anything({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** Objects shaped like a customer body. */
const customerish = fc.record(
  {
    tier: fc.oneof(fc.constantFrom('gold', 'free', 'nope', '__proto__', 'constructor', ''), unitValue),
    match: fc.oneof(
      fc.record(
        {
          sources: fc.oneof(fc.array(fc.constantFrom('127.0.0.9/32', '10.0.0.0/8', '::1', '300.1.1.1', '1.2.3.4/99', 'x', ''), { maxLength: 3 }), unitValue),
          apps: fc.oneof(fc.array(fc.constantFrom('web', 'nope', ''), { maxLength: 2 }), unitValue),
          ports: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -2, max: 70_000 }), fc.string({ maxLength: 4 })), { maxLength: 2 }), unitValue),
        },
        { requiredKeys: [] },
      ),
      unitValue,
    ),
    id: fc.oneof(fc.constantFrom('acme', 'other'), unitValue),
    extra: fc.anything({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** Valid tier and customer bodies, half the time with one key replaced by an odd value: this reaches the paths that change state. */
const rate = fc.constantFrom('1mbit', '100kbit', '64KB/s', 'unlimited', 125_000, 1);
const validTier = fc.record(
  {
    rtt: fc.constantFrom('20ms', '50ms', '1s', 10),
    weight: fc.integer({ min: 1, max: 5 }),
    connection: fc.record({ down: rate, up: rate }, { requiredKeys: [] }),
    customer: fc.record({ down: rate, up: rate, burst: fc.constantFrom('64KiB', 65536) }, { requiredKeys: [] }),
    total: fc.record({ down: rate }, { requiredKeys: [] }),
    maxConnections: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constant(null)),
    connectionRate: fc.constantFrom('10/s', '5/m', null),
  },
  { requiredKeys: [] },
);
const validCustomer = fc.record({
  tier: fc.constantFrom('gold', 'free'),
  match: fc.constantFrom({}, { sources: ['127.0.0.9/32'] }, { apps: ['web'] }, { sources: ['10.0.0.0/8'], ports: [80] }),
});
const spoiled = <T extends Record<string, unknown>>(arb: fc.Arbitrary<T>, keys: string[]) =>
  fc.tuple(arb, fc.option(fc.tuple(fc.oneof(fc.constantFrom(...keys), protoKey), fc.oneof(unitValue, fc.anything({ maxDepth: 1 }))))).map(([v, spoil]) => {
    if (!spoil) return JSON.stringify(v);
    // Through the text, so "__proto__" becomes an own key as JSON.parse makes it.
    const member = `${JSON.stringify(spoil[0])}: ${JSON.stringify(spoil[1]) ?? 'null'}`;
    const text = JSON.stringify(v);
    return text === '{}' ? `{${member}}` : `{${member}, ${text.slice(1)}`;
  });

/** A JSON text with prototype keys as own keys (JSON.parse makes "__proto__" an own property). */
const protoJson = fc
  .tuple(protoKey, fc.oneof(tierish, customerish, fc.jsonValue({ maxDepth: 2 })), fc.oneof(tierish, customerish))
  .map(([key, inner, outer]) => {
    const text = JSON.stringify(outer);
    const member = `${JSON.stringify(key)}: ${JSON.stringify(inner) ?? 'null'}`;
    return text === '{}' ? `{${member}}` : `{${member}, ${text.slice(1)}`;
  });

const body = fc.oneof(
  { weight: 4, arbitrary: spoiled(validTier, ['rtt', 'weight', 'connection', 'customer', 'total', 'maxConnections', 'connectionRate']).map((t) => Buffer.from(t)) },
  { weight: 4, arbitrary: spoiled(validCustomer, ['tier', 'match', 'id']).map((t) => Buffer.from(t)) },
  { weight: 3, arbitrary: tierish.map((v) => Buffer.from(JSON.stringify(v))) },
  { weight: 3, arbitrary: customerish.map((v) => Buffer.from(JSON.stringify(v))) },
  { weight: 2, arbitrary: protoJson.map((s) => Buffer.from(s)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":', '[1,2', 'null', '"x"', '\u0000', '{"tier":"gold","match":{}}', '\ufeff{}').map((s) => Buffer.from(s)) },
);

/** Names for the path: plain, reserved, odd characters, percent-escapes (some malformed). */
const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('gold', 'free', 'acme', 'silver', 'c1', 'c2') },
  { weight: 1, arbitrary: fc.constantFrom('gold', 'free', 'acme', 'newtier', 'c1', '__proto__', 'constructor', 'prototype', 'toString', 'a%20b', 'x.y', '%E0%A4%A', '%', '%00', '%2F', '..', 'ü') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 8 }).map((s) => encodeURIComponent(s)) },
);

const endpoint = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constant('PUT'), fc.constant('/tiers/'), name) },
  { weight: 3, arbitrary: fc.tuple(fc.constant('PUT'), fc.constant('/customers/'), name) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('DELETE'), fc.constant('/customers/'), name) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('POST', 'PATCH', 'DELETE'), fc.constant('/tiers/'), name) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('POST', 'PATCH', 'PUT'), fc.constantFrom('/tiers', '/customers', '/connections', '/stats', '/'), fc.constant('')) },
);

function checkAnswer(what: string, a: Answer): void {
  assert.notEqual(a.status, 500, `${what}: 500 ${a.text}`);
  assert.ok([200, 201, 204].includes(a.status) || (a.status >= 400 && a.status < 500), `${what}: status ${a.status} ${a.text}`);
  if (a.status >= 400) {
    let doc: unknown;
    assert.doesNotThrow(() => (doc = JSON.parse(a.text)), `${what}: ${a.status} body is not JSON: ${a.text}`);
    const d = doc as { error?: unknown; code?: unknown };
    assert.ok(typeof d.error === 'string' && d.error.length > 0, `${what}: ${a.status} without an error message: ${a.text}`);
    assert.ok(typeof d.code === 'string' && d.code.startsWith('SHAPER_ERR_'), `${what}: ${a.status} without an error code: ${a.text}`);
  }
}

test('admin API: any body on any mutating endpoint gets 2xx or a 4xx with a JSON error, and a 4xx changes nothing', async (t) => {
  const { proxy, stateFile } = await start(t);
  const port = proxy.adminPort!;
  const statuses = new Map<number, number>();
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).join();
  await fc.assert(
    fc.asyncProperty(endpoint, body, async ([method, prefix, n], b) => {
      const path = prefix + n;
      const what = `${method} ${path} ${JSON.stringify(b.toString('utf8').slice(0, 200))}`;
      const before = await snapshot(port, stateFile);
      const a = await request(port, method, path, b);
      checkAnswer(what, a);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      // The state file is written after the change is in force; wait for the write under way.
      await proxy.store.flush();
      const after = await snapshot(port, stateFile);
      if (a.status >= 400) assert.deepEqual(after, before, `${what}: answered ${a.status} but the state changed`);
    }),
    { numRuns: Number(process.env['FUZZ_RUNS'] ?? 250), interruptAfterTimeLimit: Number(process.env['FUZZ_MS'] ?? 8000), includeErrorInReport: true },
  );
  t.diagnostic(`answers by status: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
  const health = await request(port, 'GET', '/health');
  assert.equal(health.status, 200);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), prototypeKeys, 'no key reached Object.prototype');
});
