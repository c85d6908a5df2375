/**
 * The JSON Schema of a config (config/shaper-proxy.schema.json, `shaper-proxy schema`): generated
 * from the one config schema, committed in sync, valid draft-07 (ajv, strict), taking every config
 * the project ships and refusing wrong ones, and never stricter than the loader itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { parse as parseJsonc } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { parseConfig } from '../../src/config/load.js';
import { ROOT, runToEnd, TLS_DIR } from '../helpers.js';

const COMMITTED = path.join(ROOT, 'config', 'shaper-proxy.schema.json');
const REGENERATE = 'npm run build && node dist/src/cli.js schema > config/shaper-proxy.schema.json';

const schema = configJsonSchema();
const validate = new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true }).compile(schema);
const errors = (): string => JSON.stringify(validate.errors, null, 1);

const PARSERS: Record<string, (text: string) => unknown> = {
  '.json': (text) => JSON.parse(text),
  '.jsonc': (text) => parseJsonc(text, [], { allowTrailingComma: true }),
  '.yaml': (text) => parseYaml(text),
  '.yml': (text) => parseYaml(text),
  '.toml': (text) => parseToml(text),
};

/** Every config file in `dir` (not the schema itself, nor state or stats files; not in folders, which hold other things). */
function configFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, 'utf8')
    .filter((f) => Object.hasOwn(PARSERS, path.extname(f)) && !/\.(schema|state|stats)\./.test(f))
    .map((f) => path.join(dir, f));
}

test('the committed config/shaper-proxy.schema.json is what `shaper-proxy schema` prints', async () => {
  const printed = await runToEnd(['schema']);
  assert.equal(printed.code, 0, printed.stderr);
  assert.deepEqual(JSON.parse(printed.stdout), schema);
  assert.equal(fs.readFileSync(COMMITTED, 'utf8'), printed.stdout, `config/shaper-proxy.schema.json is out of date: ${REGENERATE}`);
});

test('every config in config/ and test/fixtures/ is valid against it', () => {
  const files = [...configFiles(path.join(ROOT, 'config')), ...configFiles(path.join(ROOT, 'test', 'fixtures'))];
  assert.ok(files.some((f) => f.endsWith('fly-challenge.json')) && files.some((f) => f.endsWith('.yaml')), files.join(', '));
  for (const file of files) {
    const value = PARSERS[path.extname(file)]!(fs.readFileSync(file, 'utf8'));
    assert.ok(validate(value), `${path.relative(ROOT, file)}: ${errors()}`);
  }
});

test("the README's jsonc examples are valid against it", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```jsonc\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const reference = parseJsonc(blocks[0]!, [], { allowTrailingComma: true }) as unknown;
  assert.ok(validate(reference), errors());
  const fleet = blocks.find((b) => b.trimStart().startsWith('"cluster"'))!;
  assert.ok(validate(parseJsonc(`{"apps": [{"name": "a", "ports": [1], "targets": ["h:1"]}], ${fleet}}`)), errors());
});

test('it refuses what the loader refuses for its shape or spelling, at the right place', () => {
  const app = { name: 'web', ports: [5001], targets: ['127.0.0.1:9001'] };
  const refused = (config: unknown, where: string): void => {
    assert.equal(validate(config), false, JSON.stringify(config));
    assert.ok(validate.errors!.some((e) => e.instancePath === where), `${where} in ${errors()}`);
    assert.throws(() => parseConfig(config, {}), JSON.stringify(config));
  };
  refused({}, '');
  refused({ apps: [app], tier: {} }, '');
  refused({ apps: [{ ...app, ports: ['5001'] }] }, '/apps/0/ports/0');
  refused({ apps: [{ ...app, targets: ['no port'] }] }, '/apps/0/targets/0');
  refused({ apps: [{ ...app, balance: 'fastest' }] }, '/apps/0/balance');
  refused({ apps: [app], tiers: { gold: { connection: { down: '64kb/s' } } } }, '/tiers/gold/connection/down');
  refused({ apps: [app], tiers: { gold: { connection: { burst: { dwn: '1MiB' } } } } }, '/tiers/gold/connection/burst');
  refused({ apps: [app], drainTimeout: '10 parsecs' }, '/drainTimeout');
  refused({ apps: [app], tiers: { 'gold plus': {} } }, '/tiers');
  refused({ Apps: [{ Name: 'a', Ports: [1], Targets: ['h:1'], Ballance: 'ip-hash' }] }, '/Apps/0');
  // The challenge form: capitalised keys, each value held to the same schema.
  assert.ok(validate({ Apps: [{ Name: 'a', Ports: [1], Targets: ['h:1', { Address: 'h:2', Weight: 2 }] }], DrainTimeout: '2s' }), errors());
  refused({ Apps: [{ Name: 'a', Ports: [1], Targets: ['h:1'] }], DrainTimeout: 'soon' }, '/DrainTimeout');
});

/** A config using most of what there is, TLS files from test/fixtures/tls. */
const full = () => ({
  $schema: './shaper-proxy.schema.json',
  apps: [
    {
      name: 'web', ports: [5001, 0], targets: ['127.0.0.1:9001', { address: '[::1]:9002', weight: 2 }], balance: 'least-conn',
      connectTimeout: '250ms', idleTimeout: 0, sendProxyProtocol: 'v2', tls: { cert: 'server.pem', key: 'server-key.pem', minVersion: 'TLSv1.3' },
    },
    { name: 'raw', ports: [5002], targets: ['h:1'], sniPreread: true, sniPrereadTimeout: '2s', targetTls: { ca: 'ca.pem', servername: 'backend.test' } },
  ],
  bind: '127.0.0.1',
  health: { interval: '5s', timeout: 500, unhealthyAfter: 3, healthyAfter: 2 },
  admin: { listen: '127.0.0.1:0', token: null },
  log: { level: 'warn' },
  observe: { latency: false, foo: true },
  limits: { perSource: { maxConnections: 10, acceptRate: '5/s' }, maxConnections: 100 },
  cluster: { redis: 'redis://127.0.0.1:6379', instance: 'a-1', fallbackShare: 0.5, rebalanceInterval: '200ms', memberTimeout: '1s' },
  drainTimeout: '1m',
  tiers: {
    free: { rtt: '50ms', connection: { down: '1mbit', up: '512kbit' }, maxConnections: 20, connectionRate: '10/s' },
    gold: { weight: 3, connection: { down: '100Mbps', burst: '256KiB' }, customer: { down: '10MiB/s', burst: { down: '1MB' } }, total: { up: 'unlimited' } },
  },
  global: { down: '10Gbit/s', up: 1_000_000 },
  customers: [
    { id: 'acme', tier: 'gold', match: { sources: ['10.1.0.0/16'], apps: ['web'], ports: [5001], sni: '*.example.com' } },
    { id: 'b@x', tier: 'free', match: null },
  ],
  defaultTier: 'free',
  stateFile: 'state.json',
});

const GOOD_VALUES = [
  null, true, false, 0, 1, 2, 1.5, 65535, 65536, -1, '', 'off', 'gold', 'free', 'web', 'v1', 'TLSv1.2', 'require', 'least-conn', '127.0.0.1:0',
  'h:1', '10s', '0ms', '24d', '25d', '5/s', '1MiB', '64kb/s', '100Mbps', 'unlimited', 'redis://h:1', '0.0.0.0', '::', 'server.pem',
  'CN=alice', '*.example.com', [], ['h:1'], [5001], {}, { down: '1mbit' }, { listen: '127.0.0.1:9999' },
];

test('never stricter than the loader: a config the loader takes, the schema takes', () => {
  const places: (string | number)[][] = [
    ['apps', 0], ['apps', 1], ['apps', 0, 'tls'], ['apps', 1, 'targetTls'], ['tiers', 'gold'], ['tiers', 'gold', 'connection'],
    ['customers', 0, 'match'], ['health'], ['admin'], ['limits', 'perSource'], ['cluster'], ['global'], [],
  ];
  const paths = fc.constantFrom(...places);
  const keys = fc.constantFrom(...new Set(JSON.stringify(full()).match(/"[A-Za-z$]+":/g)!.map((k) => k.slice(1, -2))));
  const mutation = fc.record({ at: paths, key: keys, value: fc.constantFrom(...GOOD_VALUES), del: fc.boolean() });
  let taken = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
      const config = full() as Record<string, unknown>;
      for (const { at, key, value, del } of mutations) {
        let node: unknown = config;
        for (const k of at) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[k] : undefined;
        if (typeof node !== 'object' || node === null || Array.isArray(node)) continue;
        if (del) delete (node as Record<string, unknown>)[key];
        else (node as Record<string, unknown>)[key] = structuredClone(value);
      }
      let accepted = true;
      try {
        parseConfig(config, {}, { baseDir: TLS_DIR });
      } catch {
        accepted = false;
      }
      if (accepted) {
        taken++;
        assert.ok(validate(config), `the loader took ${JSON.stringify(config)}\nthe schema did not: ${errors()}`);
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(taken > 30, `only ${taken} of the mutated configs were valid`);
});
