import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { withTempDir } from '../helpers.js';

const noEnv = {};

const apps = [
  { name: 'web', ports: [5001], targets: ['127.0.0.1:9001'] },
  { name: 'api', ports: [5002], targets: ['127.0.0.1:9002'] },
];

const shaping = {
  tiers: {
    free: {
      rtt: '50ms',
      connection: { down: '1mbit', up: '512kbit' },
      customer: { down: '2mbit', up: '1mbit' },
      maxConnections: 20,
      connectionRate: '10/s',
    },
    gold: {
      rtt: '20ms',
      weight: 3,
      connection: { down: '100mbit', burst: '256KiB' },
      customer: { down: '1gbit' },
      total: { down: '5gbit', up: 'unlimited' },
    },
  },
  global: { down: '10gbit', up: '10gbit' },
  customers: [
    { id: 'acme', tier: 'gold', match: { sources: ['10.1.0.0/16', '127.0.0.2/32'], apps: ['web'], ports: [5001] } },
  ],
  defaultTier: 'free',
  stateFile: '/var/lib/shaper-proxy/state.json',
};

const example = { apps, ...shaping };

const exampleYaml = `
apps:
  - { name: web, ports: [5001], targets: ["127.0.0.1:9001"] }
  - { name: api, ports: [5002], targets: ["127.0.0.1:9002"] }
tiers:
  free:
    rtt: 50ms
    connection: { down: 1mbit, up: 512kbit }
    customer: { down: 2mbit, up: 1mbit }
    maxConnections: 20
    connectionRate: 10/s
  gold:
    rtt: 20ms
    weight: 3
    connection: { down: 100mbit, burst: 256KiB }
    customer: { down: 1gbit }
    total: { down: 5gbit, up: unlimited }
global: { down: 10gbit, up: 10gbit }
customers:
  - id: acme
    tier: gold
    match:
      sources: [10.1.0.0/16, 127.0.0.2/32]
      apps: [web]
      ports: [5001]
defaultTier: free
stateFile: /var/lib/shaper-proxy/state.json
`;

/** The problem lines of the ConfigError `raw` raises. */
function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw, noEnv);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail('expected the config to be rejected');
}

/** The example with `patch` applied to a copy of its shaping part. */
function withShaping(patch: (s: Record<string, any>) => void): Record<string, unknown> {
  const copy = structuredClone(shaping) as Record<string, any>;
  patch(copy);
  return { apps, ...copy };
}

function assertExample(config: ProxyConfig): void {
  const { free, gold } = config.tiers;
  assert.deepEqual(Object.keys(config.tiers), ['free', 'gold']);
  assert.deepEqual(free, {
    name: 'free',
    rtt: 50,
    weight: 1,
    connection: { down: 125_000, up: 64_000 },
    customer: { down: 250_000, up: 125_000 },
    total: { down: Infinity, up: Infinity },
    maxConnections: 20,
    connectionRate: { count: 10, per: 1000 },
  });
  assert.deepEqual(gold, {
    name: 'gold',
    rtt: 20,
    weight: 3,
    connection: { down: 12_500_000, up: Infinity, burstDown: 262_144, burstUp: 262_144 },
    customer: { down: 125_000_000, up: Infinity },
    total: { down: 625_000_000, up: Infinity },
  });
  assert.deepEqual(config.global, { down: 1_250_000_000, up: 1_250_000_000 });
  assert.deepEqual(config.customers, [
    { id: 'acme', tier: 'gold', match: { sources: ['10.1.0.0/16', '127.0.0.2/32'], apps: ['web'], ports: [5001] } },
  ]);
  assert.equal(config.defaultTier, 'free');
  assert.equal(config.stateFile, '/var/lib/shaper-proxy/state.json');
}

test('the full shaping example loads with the expected numbers', () => {
  const config = parseConfig(example, noEnv);
  assertExample(config);
  assert.deepEqual(config.apps.map((a) => a.name), ['web', 'api']);
});

test('the YAML form of the example gives the same config as the JSON form', async () => {
  await withTempDir(async (dir) => {
    const json = join(dir, 'c.json');
    const yaml = join(dir, 'c.yaml');
    await writeFile(json, JSON.stringify(example, null, 2));
    await writeFile(yaml, exampleYaml);
    const { source: s1, ...fromJson } = await loadConfigFile(json, noEnv);
    const { source: s2, ...fromYaml } = await loadConfigFile(yaml, noEnv);
    assert.equal(s1, json);
    assert.equal(s2, yaml);
    assertExample(fromYaml);
    assert.deepEqual(fromYaml, fromJson);
  });
});

test('without shaping keys: no tiers, no customers, unlimited global, unshaped default', () => {
  const config = parseConfig({ apps }, noEnv);
  assert.deepEqual(config.tiers, {});
  assert.deepEqual(config.customers, []);
  assert.deepEqual(config.global, { down: Infinity, up: Infinity });
  assert.equal(config.defaultTier, null);
  assert.equal(config.stateFile, null);
  const nulls = parseConfig({ apps, tiers: null, customers: null, defaultTier: null, stateFile: null }, noEnv);
  assert.deepEqual([nulls.tiers, nulls.customers, nulls.defaultTier, nulls.stateFile], [{}, [], null, null]);
});

test('tier defaults: rtt 50ms, weight 1, every level unlimited', () => {
  const config = parseConfig({ apps, tiers: { basic: {} } }, noEnv);
  assert.deepEqual(config.tiers['basic'], {
    name: 'basic',
    rtt: 50,
    weight: 1,
    connection: { down: Infinity, up: Infinity },
    customer: { down: Infinity, up: Infinity },
    total: { down: Infinity, up: Infinity },
  });
});

test('rates: numbers are bytes/s; the units of parseRate', () => {
  const config = parseConfig(
    {
      apps,
      tiers: {
        t: {
          weight: 0.5,
          connection: { down: 1000, up: '64KB/s' },
          customer: { down: '10MiB/s', up: 'unlimited' },
          total: { down: '1gbit', up: 2.5 },
        },
      },
      global: { down: 'unlimited' },
    },
    noEnv,
  );
  const t = config.tiers['t']!;
  assert.equal(t.weight, 0.5);
  assert.deepEqual(t.connection, { down: 1000, up: 64_000 });
  assert.deepEqual(t.customer, { down: 10 * 1024 * 1024, up: Infinity });
  assert.deepEqual(t.total, { down: 125_000_000, up: 2.5 });
  assert.deepEqual(config.global, { down: Infinity, up: Infinity });
});

test('bursts: one size for both directions, or per direction', () => {
  const config = parseConfig(
    {
      apps,
      tiers: {
        t: {
          connection: { burst: 4096 },
          customer: { down: '1mbit', burst: { down: '1MiB', up: '64KB' } },
          total: { burst: { up: '2KiB' } },
        },
      },
      global: { burst: { down: 100 } },
    },
    noEnv,
  );
  const t = config.tiers['t']!;
  assert.deepEqual(t.connection, { down: Infinity, up: Infinity, burstDown: 4096, burstUp: 4096 });
  assert.deepEqual(t.customer, { down: 125_000, up: Infinity, burstDown: 1024 * 1024, burstUp: 64_000 });
  assert.deepEqual(t.total, { down: Infinity, up: Infinity, burstUp: 2048 });
  assert.deepEqual(config.global, { down: Infinity, up: Infinity, burstDown: 100 });
});

test('connectionRate per minute, and the customer match forms', () => {
  const config = parseConfig(
    {
      apps,
      tiers: { t: { connectionRate: '600/m' } },
      customers: [
        { id: 'everyone@example.com', tier: 't' },
        { id: 'b:1', tier: 't', match: {} },
        { id: 'c', tier: 't', match: null },
        { id: 'd', tier: 't', match: { sources: ['::1', '2001:db8::/32'] } },
      ],
    },
    noEnv,
  );
  assert.deepEqual(config.tiers['t']!.connectionRate, { count: 600, per: 60_000 });
  assert.deepEqual(
    config.customers.map((c) => c.match),
    [{}, {}, {}, { sources: ['::1', '2001:db8::/32'] }],
  );
});

test('a relative stateFile is resolved against the config file directory', async () => {
  assert.equal(parseConfig({ apps, stateFile: 'state/s.json' }, noEnv).stateFile, 'state/s.json');
  await withTempDir(async (dir) => {
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ apps, stateFile: 'state/s.json' }));
    assert.equal((await loadConfigFile(file, noEnv)).stateFile, join(dir, 'state', 's.json'));
    await writeFile(file, JSON.stringify({ apps, stateFile: '/abs/s.json' }));
    assert.equal((await loadConfigFile(file, noEnv)).stateFile, '/abs/s.json');
  });
  assert.deepEqual(problemsOf({ apps, stateFile: '' }), [
    'stateFile: "" is not a file path (use e.g. "/var/lib/shaper-proxy/state.json", or null)',
  ]);
  assert.match(problemsOf({ apps, stateFile: 5 })[0]!, /^stateFile: 5 is not a file path/);
});

test('a bad rate names its key path', () => {
  assert.deepEqual(
    problemsOf(withShaping((s) => (s['tiers'].free.connection.down = '1 megabit'))),
    ['tiers.free.connection.down: "1 megabit" is not a rate (use bytes/s as a number, "512kbit", "100mbit", "1gbit", "64KB/s", "10MiB/s" or "unlimited")'],
  );
  assert.match(problemsOf(withShaping((s) => (s['global'].up = 0)))[0]!, /^global\.up: 0 is not a rate \(/);
  assert.match(problemsOf(withShaping((s) => (s['tiers'].gold.total.down = '5 gigs')))[0]!, /^tiers\.gold\.total\.down: "5 gigs" is not a rate \(/);
});

test('unknown keys in a level, a tier, a customer or a match name the path', () => {
  assert.deepEqual(problemsOf(withShaping((s) => (s['tiers'].gold.connection.dwn = '1mbit'))), [
    'tiers.gold.connection.dwn: unknown key (did you mean "down"?)',
  ]);
  assert.deepEqual(problemsOf(withShaping((s) => (s['tiers'].gold.maxConnection = 5))), [
    'tiers.gold.maxConnection: unknown key (did you mean "maxConnections"?)',
  ]);
  assert.deepEqual(problemsOf(withShaping((s) => (s['global'].upp = '1gbit'))), ['global.upp: unknown key (did you mean "up"?)']);
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].tiers = 'gold'))), [
    'customers[0].tiers: unknown key (did you mean "tier"?)',
  ]);
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].match.source = ['10.0.0.0/8']))), [
    'customers[0].match.source: unknown key (did you mean "sources"?)',
  ]);
  assert.deepEqual(problemsOf(withShaping((s) => (s['tiers'].gold.connection.burst = { down: '1KiB', upp: 1 }))), [
    'tiers.gold.connection.burst.upp: unknown key (did you mean "up"?)',
  ]);
  assert.deepEqual(problemsOf({ apps, defaultTeir: 'free' }), ['defaultTeir: unknown key (did you mean "defaultTier"?)']);
});

test('bad bursts, rtt, weight, maxConnections and connectionRate name their key paths', () => {
  const lines = problemsOf(
    withShaping((s) => {
      s['tiers'].gold.connection.burst = 'big';
      s['tiers'].gold.customer.burst = { down: 0 };
      s['tiers'].gold.rtt = '0ms';
      s['tiers'].gold.weight = 0;
      s['tiers'].free.maxConnections = 0;
      s['tiers'].free.connectionRate = 'often';
    }),
  );
  assert.deepEqual(lines.sort(), [
    'tiers.free.connectionRate: "often" is not a count rate (use e.g. "10/s", "600/m")',
    'tiers.free.maxConnections: must be an integer >= 1 (got 0)',
    'tiers.gold.connection.burst: "big" is not a size (use bytes as a number or e.g. "64KiB", "1MB")',
    'tiers.gold.customer.burst.down: 0 is not a size (use bytes as a number or e.g. "64KiB", "1MB")',
    'tiers.gold.rtt: must be more than 0 (got "0ms")',
    'tiers.gold.weight: must be a number more than 0 (got 0)',
  ]);
  assert.match(problemsOf(withShaping((s) => (s['tiers'].gold.rtt = 'soon')))[0]!, /^tiers\.gold\.rtt: "soon" is not a duration/);
  assert.match(problemsOf(withShaping((s) => (s['tiers'].gold.weight = 'heavy')))[0]!, /^tiers\.gold\.weight: must be a number more than 0/);
  assert.match(problemsOf(withShaping((s) => (s['tiers'].free.maxConnections = 2.5)))[0]!, /^tiers\.free\.maxConnections: must be an integer >= 1/);
});

test('values of the wrong shape are one problem each', () => {
  assert.deepEqual(problemsOf({ apps, tiers: ['gold'] }), [
    'tiers: must be an object of tiers by name, like {"gold": {"connection": {"down": "100mbit"}}} (got ["gold"])',
  ]);
  assert.deepEqual(problemsOf({ apps, tiers: { gold: 'fast' } }), [
    'tiers.gold: must be an object (keys: rtt, weight, connection, customer, total, maxConnections, connectionRate, quota, schedule), got "fast"',
  ]);
  assert.deepEqual(problemsOf({ apps, tiers: { gold: { connection: '1mbit' } } }), [
    'tiers.gold.connection: must be an object (keys: down, up, burst, peak), got "1mbit"',
  ]);
  assert.deepEqual(problemsOf({ apps, global: '10gbit' }), ['global: must be an object (keys: down, up, burst, peak), got "10gbit"']);
  assert.match(problemsOf({ apps, customers: { acme: { tier: 'gold' } } })[0]!, /^customers: must be a list of customers like /);
  assert.deepEqual(problemsOf({ apps, customers: ['acme'] }), ['customers[0]: must be an object with id, tier and match (got "acme")']);
  assert.deepEqual(problemsOf({ apps, tiers: { t: {} }, customers: [{ id: 'a', tier: 't', match: 'all' }] }), [
    'customers[0].match: must be an object (keys: sources, apps, ports, sni, clientCert), got "all"',
  ]);
});

test('tier names: letters, digits, ".", "_" and "-"', () => {
  assert.deepEqual(problemsOf({ apps, tiers: { 'gold plus': {} } }), [
    'tiers["gold plus"]: "gold plus" is not a valid tier name (use letters, digits, ".", "_" and "-", e.g. "gold")',
  ]);
  assert.deepEqual(problemsOf({ apps, tiers: JSON.parse('{"__proto__": {}}') as unknown }), [
    'tiers["__proto__"]: "__proto__" cannot be used as a tier name',
  ]);
  assert.deepEqual(Object.keys(parseConfig({ apps, tiers: { 'v2.gold_x-1': {} } }, noEnv).tiers), ['v2.gold_x-1']);
});

test('a customer tier must exist', () => {
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].tier = 'platinum'))), [
    'customers[0].tier: "platinum" is not a tier (tiers: free, gold)',
  ]);
  assert.deepEqual(problemsOf({ apps, customers: [{ id: 'a', tier: 'gold' }] }), [
    'customers[0].tier: "gold" is not a tier (no tiers are defined; add them under "tiers")',
  ]);
  assert.deepEqual(problemsOf(withShaping((s) => delete s['customers'][0].tier)), [
    'customers[0].tier: required, the name of one of the tiers, e.g. "gold"',
  ]);
  // a tier with problems of its own is still a tier: no second problem at the reference
  assert.deepEqual(problemsOf(withShaping((s) => (s['tiers'].gold.weight = -1))), ['tiers.gold.weight: must be a number more than 0 (got -1)']);
});

test('customer ids: required, well-formed and unique', () => {
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].id = ''))), ['customers[0].id: required, a non-empty id like "acme"']);
  assert.deepEqual(problemsOf(withShaping((s) => delete s['customers'][0].id)), ['customers[0].id: required, a non-empty id like "acme"']);
  assert.match(problemsOf(withShaping((s) => (s['customers'][0].id = 'acme corp')))[0]!, /^customers\[0\]\.id: "acme corp" is not a valid customer id/);
  assert.deepEqual(
    problemsOf(
      withShaping((s) => {
        s['customers'].push({ id: 'beta', tier: 'free' }, { id: 'acme', tier: 'free', match: { ports: [5002] } });
      }),
    ),
    ['customers[0].id: "acme" is used by customers[0] and customers[2] (customer ids must be unique)'],
  );
});

test('match.apps must name apps of the config', () => {
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].match.apps = ['web', 'wb']))), [
    'customers[0].match.apps[1]: no app named "wb" (apps: web, api)',
  ]);
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].match.apps = ['wb']))), [
    'customers[0].match.apps[0]: no app named "wb" (apps: web, api)',
  ]);
  assert.match(problemsOf(withShaping((s) => (s['customers'][0].match.apps = [5])))[0]!, /^customers\[0\]\.match\.apps\[0\]: 5 is not an app name/);
});

test('match.sources must be CIDRs; match.ports must be ports', () => {
  assert.deepEqual(
    problemsOf(withShaping((s) => s['customers'].push({ id: 'b', tier: 'free', match: { sources: ['10.1.0.0/33', '10.2.0.0/16', 'x'] } }))),
    [
      'customers[1].match.sources[0]: "10.1.0.0/33" is not a CIDR (use e.g. "10.1.0.0/16" or "2001:db8::/32")',
      'customers[1].match.sources[2]: "x" is not a CIDR (use e.g. "10.1.0.0/16" or "2001:db8::/32")',
    ],
  );
  assert.deepEqual(problemsOf(withShaping((s) => (s['customers'][0].match.ports = [5001, 0, 65536, '80']))), [
    'customers[0].match.ports[1]: 0 is not a port (use an integer from 1 to 65535)',
    'customers[0].match.ports[2]: 65536 is not a port (use an integer from 1 to 65535)',
    'customers[0].match.ports[3]: "80" is not a port (use an integer from 1 to 65535)',
  ]);
  assert.match(problemsOf(withShaping((s) => (s['customers'][0].match.sources = '10.0.0.0/8')))[0]!, /^customers\[0\]\.match\.sources: must be a list of CIDRs/);
  assert.match(problemsOf(withShaping((s) => (s['customers'][0].match.sources = [])))[0]!, /^customers\[0\]\.match\.sources: must list at least one .*leave "sources" out to match any/);
});

test('defaultTier must be a tier', () => {
  assert.deepEqual(problemsOf(withShaping((s) => (s['defaultTier'] = 'bronze'))), ['defaultTier: "bronze" is not a tier (tiers: free, gold)']);
  assert.match(problemsOf(withShaping((s) => (s['defaultTier'] = 3)))[0]!, /^defaultTier: 3 is not a tier name/);
  assert.equal(parseConfig(withShaping((s) => delete s['defaultTier']), noEnv).defaultTier, null);
});

test('every shaping problem is reported at once, with the app problems', () => {
  const lines = problemsOf({
    apps: [{ name: 'web', ports: [5001], targets: ['bad'] }],
    tiers: { free: { connection: { down: '1 megabit' } } },
    global: { dwn: 1 },
    customers: [{ id: 'a', tier: 'platinum', match: { apps: ['wb'] } }],
    defaultTier: 'bronze',
  });
  assert.deepEqual(lines.sort(), [
    'apps[0].targets[0]: "bad" is not host:port (use e.g. "127.0.0.1:9001" or "[::1]:9001")',
    'customers[0].match.apps[0]: no app named "wb" (apps: web)',
    'customers[0].tier: "platinum" is not a tier (tiers: free)',
    'defaultTier: "bronze" is not a tier (tiers: free)',
    'global.dwn: unknown key (did you mean "down"?)',
    'tiers.free.connection.down: "1 megabit" is not a rate (use bytes/s as a number, "512kbit", "100mbit", "1gbit", "64KB/s", "10MiB/s" or "unlimited")',
  ]);
});

test('the challenge format still loads, with no shaping', () => {
  const config = parseConfig({ Apps: [{ Name: 'a', Ports: [1], Targets: ['h:1'] }] }, noEnv);
  assert.deepEqual(config.tiers, {});
  assert.deepEqual(config.customers, []);
  assert.equal(config.defaultTier, null);
});

test('cluster: absent or with no redis means running alone; set, it is read with its defaults', () => {
  assert.ok(!Object.hasOwn(parseConfig({ apps }, noEnv), 'cluster'));
  assert.ok(!Object.hasOwn(parseConfig({ apps, cluster: {} }, noEnv), 'cluster'));
  const config = parseConfig({ apps, cluster: { redis: 'redis://127.0.0.1:6379', instance: 'a' } }, noEnv);
  assert.deepEqual(config.cluster, {
    redis: 'redis://127.0.0.1:6379',
    instance: 'a',
    fallbackShare: null,
    rebalanceInterval: 200,
    memberTimeout: 1000,
    redisTimeout: 500,
    prefix: 'shaper:',
  });
  const named = parseConfig({ apps, cluster: { redis: 'redis://h:1' } }, noEnv).cluster!;
  assert.match(named.instance, new RegExp(`-${process.pid}$`));
  const fromEnv = parseConfig({ apps }, { SHAPER_CLUSTER_REDIS: 'rediss://:pw@h:6380/2', SHAPER_CLUSTER_INSTANCE: 'b-1' }).cluster!;
  assert.equal(fromEnv.redis, 'rediss://:pw@h:6380/2');
  assert.equal(fromEnv.instance, 'b-1');
});

test('cluster errors name the key path', () => {
  const problems = (cluster: unknown) => problemsOf({ apps, cluster });
  assert.deepEqual(problems({ instance: 'a' }), [
    'cluster.redis: required when "cluster" is set, the Redis URL of the fleet, e.g. "redis://127.0.0.1:6379" (leave "cluster" out to run alone)',
  ]);
  assert.match(problems({ redis: 'http://h:1' })[0]!, /^cluster\.redis: "http:\/\/h:1" is not a Redis URL/);
  assert.match(problems({ redis: 'redis://h:1', fallbackShare: 0 })[0]!, /^cluster\.fallbackShare: must be a number more than 0 and at most 1/);
  assert.match(problems({ redis: 'redis://h:1', instance: 'a b' })[0]!, /^cluster\.instance: "a b" is not an instance id/);
  assert.match(problems({ redis: 'redis://h:1', rebalanceInterval: '1s' })[0]!, /^cluster\.memberTimeout: must be at least twice cluster\.rebalanceInterval/);
  assert.match(problems({ redis: 'redis://h:1', rebalanceInterval: '5ms' })[0]!, /^cluster\.rebalanceInterval: must be from 20ms to 5000ms/);
  assert.match(problems({ redis: 'redis://h:1', peers: [] })[0]!, /^cluster\.peers: unknown key/);
});
