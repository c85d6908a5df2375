import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isProxyError } from '../../src/errors.js';
import { ConfigError, jsonErrorOffset, loadConfigFile, parseConfig } from '../../src/config/load.js';
import { ROOT, withTempDir } from '../helpers.js';

const flyFixture = join(ROOT, 'test', 'fixtures', 'fly-challenge.json');

/** No process.env in these tests: each passes the env it means. */
const noEnv = {};

const example = {
  apps: [
    {
      name: 'web',
      ports: [5001, 5002],
      bind: '0.0.0.0',
      targets: ['127.0.0.1:9001', { address: 'backend.internal:9002', weight: 2 }],
      balance: 'least-conn',
      connectTimeout: '250ms',
      idleTimeout: 0,
      protocol: 'tcp',
    },
    { name: 'db', ports: [5432], targets: ['[::1]:15432'] },
  ],
  bind: '127.0.0.1',
  health: { interval: '5s', timeout: 500, unhealthyAfter: 3, healthyAfter: 2 },
  admin: { listen: '127.0.0.1:9901' },
  log: { level: 'warn' },
  drainTimeout: '1m',
};

const exampleYaml = `
apps:
  - name: web
    ports: [5001, 5002]
    bind: 0.0.0.0
    targets:
      - 127.0.0.1:9001
      - { address: "backend.internal:9002", weight: 2 }
    balance: least-conn
    connectTimeout: 250ms
    idleTimeout: 0
    protocol: tcp
  - name: db
    ports: [5432]
    targets: ["[::1]:15432"]
bind: 127.0.0.1
health: { interval: 5s, timeout: 500, unhealthyAfter: 3, healthyAfter: 2 }
admin:
  listen: 127.0.0.1:9901
log:
  level: warn
drainTimeout: 1m
`;

const exampleToml = `
bind = "127.0.0.1"
drainTimeout = "1m"

[health]
interval = "5s"
timeout = 500
unhealthyAfter = 3
healthyAfter = 2

[admin]
listen = "127.0.0.1:9901"

[log]
level = "warn"

[[apps]]
name = "web"
ports = [5001, 5002]
bind = "0.0.0.0"
targets = ["127.0.0.1:9001", { address = "backend.internal:9002", weight = 2 }]
balance = "least-conn"
connectTimeout = "250ms"
idleTimeout = 0
protocol = "tcp"

[[apps]]
name = "db"
ports = [5432]
targets = ["[::1]:15432"]
`;

/** The message of the ConfigError that `raw` raises. */
function problemsOf(raw: unknown, env: NodeJS.ProcessEnv = noEnv): string {
  try {
    parseConfig(raw, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG'));
    assert.deepEqual(err.message.split('\n'), err.problems);
    return err.message;
  }
  assert.fail('expected the config to be rejected');
}

/** One valid app to build bad configs around. */
const app = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'web',
  ports: [5001],
  targets: ['127.0.0.1:9001'],
  ...extra,
});

test('the proxy-challenge config loads unchanged, with defaults applied', async () => {
  const config = await loadConfigFile(flyFixture, noEnv);
  assert.equal(config.source, flyFixture);
  assert.deepEqual(
    config.apps.map((a) => [a.name, a.ports]),
    [
      ['five-thousand', [15001, 15200, 15300, 15400]],
      ['six-thousand', [16001, 16200]],
      ['seven-thousand', [17001, 17200]],
    ],
  );
  assert.deepEqual(config.apps[1]!.targets, [
    { address: '127.0.0.1:19003', host: '127.0.0.1', port: 19003, weight: 1 },
    { address: '127.0.0.1:19004', host: '127.0.0.1', port: 19004, weight: 1 },
    { address: 'bad.target.for.testing:6003', host: 'bad.target.for.testing', port: 6003, weight: 1 },
  ]);
  for (const a of config.apps) {
    assert.equal(a.bind, '0.0.0.0');
    assert.equal(a.balance, 'round-robin');
    assert.equal(a.connectTimeout, 3000);
    assert.equal(a.idleTimeout, 3_600_000);
    assert.equal(a.protocol, 'tcp');
  }
  assert.deepEqual(config.health, { interval: 2000, timeout: 1000, unhealthyAfter: 2, healthyAfter: 1 });
  assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9900 });
  assert.deepEqual(config.log, { level: 'info' });
  assert.equal(config.drainTimeout, 10_000);
});

test('other capitalised keys of the challenge form are mapped too', () => {
  const config = parseConfig(
    { Apps: [{ Name: 'a', Ports: [1], Targets: ['h:1'], Balance: 'ip-hash' }], DrainTimeout: '2s' },
    noEnv,
  );
  assert.equal(config.apps[0]!.balance, 'ip-hash');
  assert.equal(config.drainTimeout, 2000);
  assert.match(problemsOf({ Apps: [{ Name: 'a', Ports: [1], Targets: ['h:1'], Ballance: 'x' }] }), /^apps\[0\]\.ballance: unknown key/m);
});

test('JSON, YAML and TOML files of the same config give the same result', async () => {
  await withTempDir(async (dir) => {
    const files = {
      json: join(dir, 'c.json'),
      yaml: join(dir, 'c.yaml'),
      yml: join(dir, 'c.yml'),
      toml: join(dir, 'c.toml'),
    };
    await writeFile(files.json, JSON.stringify(example, null, 2));
    await writeFile(files.yaml, exampleYaml);
    await writeFile(files.yml, exampleYaml);
    await writeFile(files.toml, exampleToml);

    const { source, ...fromJson } = await loadConfigFile(files.json, noEnv);
    assert.equal(source, files.json);
    assert.deepEqual(fromJson, {
      apps: [
        {
          name: 'web',
          ports: [5001, 5002],
          bind: '0.0.0.0',
          targets: [
            { address: '127.0.0.1:9001', host: '127.0.0.1', port: 9001, weight: 1 },
            { address: 'backend.internal:9002', host: 'backend.internal', port: 9002, weight: 2 },
          ],
          balance: 'least-conn',
          connectTimeout: 250,
          idleTimeout: 0,
          protocol: 'tcp',
        },
        {
          name: 'db',
          ports: [5432],
          bind: '127.0.0.1',
          targets: [{ address: '[::1]:15432', host: '::1', port: 15432, weight: 1 }],
          balance: 'round-robin',
          connectTimeout: 3000,
          idleTimeout: 3_600_000,
          protocol: 'tcp',
        },
      ],
      health: { interval: 5000, timeout: 500, unhealthyAfter: 3, healthyAfter: 2 },
      admin: { host: '127.0.0.1', port: 9901 },
      log: { level: 'warn' },
      drainTimeout: 60_000,
      dataPlane: 'auto',
      watch: true,
      observe: { latency: true, foo: true },
      tiers: {},
      global: { down: Infinity, up: Infinity },
      customers: [],
      defaultTier: null,
      stateFile: null,
      // A config file always has a state directory: with no env, the per-user default.
      stateDir: { path: join(homedir(), '.local', 'state', 'shaper-proxy'), from: 'default' },
    });
    for (const file of [files.yaml, files.yml, files.toml]) {
      const { source: s, ...config } = await loadConfigFile(file, noEnv);
      assert.equal(s, file);
      assert.deepEqual(config, fromJson, file);
    }
  });
});

test('a bad target names its key path', () => {
  const message = problemsOf({ apps: [app(), app({ name: 'api', ports: [5002], targets: ['bad:port'] })] });
  assert.equal(message, 'apps[1].targets[0]: "bad:port" is not host:port (use e.g. "127.0.0.1:9001" or "[::1]:9001")');
});

test('a bad port names its key path', () => {
  assert.match(problemsOf({ apps: [app({ ports: [5001, 70000] })] }), /^apps\[0\]\.ports\[1\]: 70000 is not a port/m);
  assert.match(problemsOf({ apps: [app({ ports: [] })] }), /^apps\[0\]\.ports: must list at least one/m);
  assert.match(problemsOf({ apps: [app({ ports: undefined })] }), /^apps\[0\]\.ports: required/m);
});

test('a port used twice names both places; port 0 is exempt', () => {
  const message = problemsOf({
    apps: [app({ ports: [5001, 0] }), app({ name: 'api', ports: [0, 5003, 5003] }), app({ name: 'db', ports: [5004, 5001] })],
  });
  assert.deepEqual(message.split('\n'), [
    'apps[1].ports[2]: port 5003 is already used by app "api" (apps[1].ports[1])',
    'apps[2].ports[1]: port 5001 is already used by app "web" (apps[0].ports[0])',
  ]);
  assert.match(problemsOf({ apps: [app({ ports: [9900] })] }), /^admin\.listen: port 9900 is already used by app "web" \(apps\[0\]\.ports\[0\]\)$/m);
});

test('a bad balance names its key path and the choices', () => {
  assert.equal(
    problemsOf({ apps: [app({ balance: 'fastest' })] }),
    'apps[0].balance: "fastest" is not one of round-robin, least-conn, weighted-least-conn, ip-hash, least-time',
  );
});

test('a bad duration names its key path', () => {
  assert.match(problemsOf({ apps: [app({ connectTimeout: '3 parsecs' })] }), /^apps\[0\]\.connectTimeout: "3 parsecs" is not a duration \(/m);
  assert.match(problemsOf({ apps: [app()], drainTimeout: 'soon' }), /^drainTimeout: "soon" is not a duration/m);
  assert.match(problemsOf({ apps: [app()], health: { interval: '0s' } }), /^health\.interval: must be more than 0/m);
  assert.match(problemsOf({ apps: [app({ idleTimeout: '30d' })] }), /^apps\[0\]\.idleTimeout: "30d" is too long/m);
});

test('health counts must be integers >= 1', () => {
  assert.match(problemsOf({ apps: [app()], health: { unhealthyAfter: 0 } }), /^health\.unhealthyAfter: must be an integer >= 1/m);
  assert.match(problemsOf({ apps: [app()], health: { healthyAfter: 1.5 } }), /^health\.healthyAfter: must be an integer >= 1/m);
});

test('unknown keys are errors naming the path, with a suggestion', () => {
  assert.equal(problemsOf({ apps: [app({ ballance: 'ip-hash' })] }), 'apps[0].ballance: unknown key (did you mean "balance"?)');
  assert.equal(
    problemsOf({ apps: [app({ targets: [{ address: 'h:1', wieght: 2 }] })] }),
    'apps[0].targets[0].wieght: unknown key (did you mean "weight"?)',
  );
  assert.equal(problemsOf({ apps: [app()], drainTimout: '1s' }), 'drainTimout: unknown key (did you mean "drainTimeout"?)');
  assert.match(problemsOf({ apps: [app()], health: { every: '1s' } }), /^health\.every: unknown key \(known keys: interval, /m);
  assert.match(problemsOf({ apps: [app()], extra: { deep: { er: 1 } } }), /^extra: unknown key/m);
  assert.match(problemsOf({ apps: [app()], tier: {} }), /^tier: unknown key \(did you mean "tiers"\?\)/m);
  // Keys that do not read plainly are quoted; "__proto__" (which a JSON file can hold) is no way around the check.
  assert.match(problemsOf({ apps: [app()], 'a.b': 1 }), /^\["a\.b"\]: unknown key \(known keys: \$schema, apps, /m);
  assert.match(problemsOf({ apps: [app()], health: { 'interval.x': 2, '': 3 } }), /^health\["interval\.x"\]: unknown key[^\n]*\nhealth\[""\]: unknown key/m);
  assert.match(problemsOf({ apps: [app()], toString: { a: 1 } }), /^toString: unknown key/m);
  assert.equal(problemsOf(JSON.parse('{"apps": [{"name": "web", "ports": [1], "targets": ["h:1"], "__proto__": {"x": 1}}]}')), 'apps[0].__proto__: unknown key');
});

test('missing or empty apps, or a file that is not an object', () => {
  const required = 'apps: required, a list of apps (each with name, ports, targets)';
  assert.equal(problemsOf({}), required);
  assert.equal(problemsOf(null), required);
  assert.equal(problemsOf([1, 2]), required);
  assert.equal(problemsOf('apps'), required);
  assert.match(problemsOf({ apps: [] }), /^apps: must list at least one app/);
  assert.match(problemsOf({ apps: { web: { ports: [1] } } }), /^apps: must be a list of apps/);
  assert.match(problemsOf({ apps: ['web'] }), /^apps\[0\]: must be an object with name, ports and targets/);
});

test('a bad weight names its key path', () => {
  for (const weight of [0, 1001, 1.5, 'heavy']) {
    assert.match(
      problemsOf({ apps: [app({ targets: [{ address: 'h:1', weight }] })] }),
      /^apps\[0\]\.targets\[0\]\.weight: must be an integer from 1 to 1000/m,
      String(weight),
    );
  }
  assert.match(problemsOf({ apps: [app({ targets: [{ weight: 2 }] })] }), /^apps\[0\]\.targets\[0\]\.address: required/m);
  assert.match(problemsOf({ apps: [app({ targets: [] })] }), /^apps\[0\]\.targets: must list at least one/m);
  assert.match(problemsOf({ apps: [app({ targets: ['h:1', 'h:1'] })] }), /^apps\[0\]\.targets\[1\]: "h:1" is listed twice \(also apps\[0\]\.targets\[0\]\)/m);
});

test('app names: required, well-formed and unique', () => {
  assert.match(problemsOf({ apps: [app({ name: '' })] }), /^apps\[0\]\.name: required/m);
  assert.match(problemsOf({ apps: [app({ name: 'a b' })] }), /^apps\[0\]\.name: "a b" is not a valid name/m);
  const dup = problemsOf({
    apps: [app(), app({ name: 'b', ports: [2] }), app({ name: 'c', ports: [3] }), app({ ports: [4] })],
  });
  assert.match(dup, /^apps\[0\]\.name: "web" is used by apps\[0\] and apps\[3\]/m);
});

test('every problem is reported at once, one line each', () => {
  const message = problemsOf({
    apps: [app({ balance: 'fastest', targets: ['bad:port'] }), app({ ports: [5001] })],
    log: { level: 'loud' },
  });
  const lines = message.split('\n');
  assert.equal(lines.length, 5, message);
  for (const prefix of ['log.level: ', 'apps[0].balance: ', 'apps[0].targets[0]: ', 'apps[0].name: ', 'apps[1].ports[0]: ']) {
    assert.ok(lines.some((l) => l.startsWith(prefix)), `${prefix} in\n${message}`);
  }
});

test('a value of the wrong shape is one problem, not a crash', () => {
  assert.equal(problemsOf({ apps: [app()], log: 'debug' }), 'log: must be an object (keys: level), got "debug"');
  assert.match(problemsOf({ apps: [app({ name: { a: { b: 1 } } })] }), /^apps\[0\]\.name: \{"a":\{"b":1\}\} is not a valid name/);
  assert.equal(problemsOf({ apps: [app({ name: { a: { b: 1 } } })] }).split('\n').length, 1);
});

test('env overrides come from the env argument', () => {
  const raw = { apps: [app()], log: { level: 'info' } };
  assert.equal(parseConfig(raw, noEnv).log.level, 'info');
  const config = parseConfig(raw, {
    SHAPER_LOG_LEVEL: 'debug',
    SHAPER_DRAIN_TIMEOUT: '2s',
    SHAPER_BIND: '127.0.0.1',
    SHAPER_ADMIN_LISTEN: '127.0.0.1:0',
  });
  assert.equal(config.log.level, 'debug');
  assert.equal(config.drainTimeout, 2000);
  assert.equal(config.apps[0]!.bind, '127.0.0.1');
  assert.deepEqual(config.admin, { host: '127.0.0.1', port: 0 });
  assert.equal(parseConfig(raw, { SHAPER_ADMIN_LISTEN: 'off' }).admin, null);
  assert.equal(
    problemsOf(raw, { SHAPER_LOG_LEVEL: 'loud' }),
    'log.level: "loud" is not a log level (use one of fatal, error, warn, info, debug, trace, silent, or 0-7 (0 debug, 1 info, 2 warn, 3 error, 4-6 fatal, 7 silent)) (set by env SHAPER_LOG_LEVEL)',
  );
});

test('log.level takes seed 000\'s numbers too, in the file and in SHAPER_LOG_LEVEL', () => {
  const level = (v: unknown, env: NodeJS.ProcessEnv = noEnv) => parseConfig({ apps: [app()], log: { level: v } }, env).log.level;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((n) => level(n)), ['debug', 'info', 'warn', 'error', 'fatal', 'fatal', 'fatal', 'silent']);
  assert.equal(level('3'), 'error');
  assert.equal(level('info', { SHAPER_LOG_LEVEL: '7' }), 'silent');
  assert.match(problemsOf({ apps: [app()], log: { level: 8 } }), /^log\.level: 8 is not a log level/);
  assert.match(problemsOf({ apps: [app()], log: { level: 1.5 } }), /^log\.level: 1\.5 is not a log level/);
});

test('the admin server can be turned off', () => {
  for (const admin of [false, null, 'off', { listen: null }, { listen: 'off' }]) {
    assert.equal(parseConfig({ apps: [app()], admin }, noEnv).admin, null, JSON.stringify(admin));
  }
  assert.deepEqual(parseConfig({ apps: [app()], admin: '127.0.0.2:9999' }, noEnv).admin, { host: '127.0.0.2', port: 9999 });
  assert.match(problemsOf({ apps: [app()], admin: { listen: 'nowhere' } }), /^admin\.listen: "nowhere" is not host:port/);
});

test('the shaping keys are read; a cluster block without redis adds nothing', () => {
  const config = parseConfig(
    {
      apps: [app()],
      tiers: { gold: { connection: { down: '10mbit' } } },
      customers: [{ id: 'acme', tier: 'gold' }],
      defaultTier: 'gold',
      global: { down: '1gbit' },
      cluster: {},
    },
    noEnv,
  );
  assert.equal(config.apps.length, 1);
  assert.deepEqual(Object.keys(config).sort(), [
    'admin', 'apps', 'customers', 'dataPlane', 'defaultTier', 'drainTimeout', 'global', 'health', 'log', 'observe', 'stateFile', 'tiers', 'watch',
  ]);
  assert.equal(config.tiers['gold']!.connection.down, 1_250_000);
});

test('tracing: off unless set; a bare collector origin gets the OTLP traces path; defaults; problems at their key paths', () => {
  assert.equal(parseConfig({ apps: [app()] }, noEnv).tracing, undefined);
  assert.equal(parseConfig({ apps: [app()], tracing: null }, noEnv).tracing, undefined);
  assert.deepEqual(parseConfig({ apps: [app()], tracing: { otlp: 'http://collector:4318' } }, noEnv).tracing, {
    otlp: 'http://collector:4318/v1/traces',
    sample: 0.1,
    flush: 5000,
    service: 'shaper-proxy',
  });
  const given = parseConfig({ apps: [app()], tracing: { otlp: 'https://otel.example/api/traces', sample: 0, flush: '200ms', service: 'edge' } }, noEnv).tracing;
  assert.deepEqual(given, { otlp: 'https://otel.example/api/traces', sample: 0, flush: 200, service: 'edge' });
  assert.match(problemsOf({ apps: [app()], tracing: { sample: 0.5 } }), /^tracing\.otlp: required, an http\(s\) URL/);
  assert.match(problemsOf({ apps: [app()], tracing: { otlp: 'http://c:4318', sample: -1 } }), /^tracing\.sample: must be a number from 0 to 1/);
  assert.match(problemsOf({ apps: [app()], tracing: { otlp: 'http://c:4318', service: '' } }), /^tracing\.service: must be a name/);
});

test('bind addresses: top-level default, per-app override, IPv6 brackets removed', () => {
  const config = parseConfig({ apps: [app(), app({ name: 'b', ports: [2], bind: '[::]' })] }, noEnv);
  assert.deepEqual(config.apps.map((a) => a.bind), ['0.0.0.0', '::']);
  assert.match(problemsOf({ apps: [app({ bind: 'not an address' })] }), /^apps\[0\]\.bind: "not an address" is not an address to bind/);
});

test('a malformed JSON file is a read error naming the file, line and column', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'bad.json');
    await writeFile(file, '{\n  "apps": [\n    { "name": "web", }\n  ]\n}\n');
    await assert.rejects(loadConfigFile(file, noEnv), (err: unknown) => {
      assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG_READ'));
      assert.equal(err.message, `${file}:3:22: not valid JSON: unexpected "}"`);
      return true;
    });
  });
});

test('malformed YAML and TOML files name the file, line and column', async () => {
  await withTempDir(async (dir) => {
    const yaml = join(dir, 'bad.yaml');
    await writeFile(yaml, 'apps:\n  - name: [web\nbind: x\n');
    await assert.rejects(loadConfigFile(yaml, noEnv), (err: unknown) => {
      assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG_READ'));
      assert.match(err.message, new RegExp(`^${escape(yaml)}:\\d+:\\d+: not valid YAML: `));
      assert.ok(!err.message.includes('\n'));
      return true;
    });
    const toml = join(dir, 'bad.toml');
    await writeFile(toml, '[[apps]]\nname = \n');
    await assert.rejects(loadConfigFile(toml, noEnv), (err: unknown) => {
      assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG_READ'));
      assert.match(err.message, new RegExp(`^${escape(toml)}:2:\\d+: not valid TOML: `));
      return true;
    });
  });
});

test('a .jsonc file may have comments and trailing commas; its syntax errors name the line and column', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'c.jsonc');
    await writeFile(file, [
      '// the proxy of the README, with comments',
      '{',
      '  "$schema": "./shaper-proxy.schema.json", // for editors; ignored',
      '  "apps": [',
      '    /* one app */ { "name": "web", "ports": [5001], "targets": ["127.0.0.1:9001",], },',
      '  ],',
      '}',
    ].join('\n'));
    const config = await loadConfigFile(file, noEnv);
    assert.deepEqual(config.apps.map((a) => [a.name, a.ports, a.targets.map((t) => t.address)]), [['web', [5001], ['127.0.0.1:9001']]]);

    await writeFile(file, '{\n  "apps": [\n    { "name": "web" "ports": [1] }\n  ]\n}\n');
    await assert.rejects(loadConfigFile(file, noEnv), (err: unknown) => {
      assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG_READ'));
      assert.equal(err.message, `${file}:3:21: not valid JSONC: comma expected (found "\\"")`);
      return true;
    });
    await writeFile(file, '{ "apps": [] /* never closed');
    await assert.rejects(loadConfigFile(file, noEnv), /c\.jsonc:1:14: not valid JSONC: unexpected end of comment/);
  });
});

test('"$schema" at the top of a config is accepted and ignored', () => {
  const config = parseConfig({ $schema: './shaper-proxy.schema.json', apps: [app()] }, noEnv);
  assert.deepEqual(config, parseConfig({ apps: [app()] }, noEnv));
  assert.match(problemsOf({ $schema: 5, apps: [app()] }), /^\$schema: /);
  assert.equal(problemsOf({ $schema: 'x', $shema: 'y', apps: [app()] }), '$shema: unknown key (did you mean "$schema"?)');
});

test('an unknown extension or a missing file is a read error naming the file', async () => {
  await withTempDir(async (dir) => {
    const ini = join(dir, 'config.ini');
    await writeFile(ini, '[apps]\n');
    await assert.rejects(loadConfigFile(ini, noEnv), (err: unknown) => {
      assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG_READ'));
      assert.ok(err.message.startsWith(`${ini}: unknown config file extension ".ini"`), err.message);
      return true;
    });
    const missing = join(dir, 'missing.json');
    await assert.rejects(loadConfigFile(missing, noEnv), (err: unknown) => {
      assert.ok(isProxyError(err, 'SHAPER_ERR_CONFIG_READ'));
      assert.ok(err.message.startsWith(`${missing}: cannot read`), err.message);
      return true;
    });
  });
});

test('a file that parses but is invalid gives SHAPER_ERR_CONFIG with the source set', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'c.yml');
    await writeFile(file, 'apps:\n  - name: web\n    ports: [5001]\n    targets: ["bad:port"]\n');
    await assert.rejects(loadConfigFile(file, noEnv), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.source, file);
      assert.deepEqual(err.problems, ['apps[0].targets[0]: "bad:port" is not host:port (use e.g. "127.0.0.1:9001" or "[::1]:9001")']);
      return true;
    });
  });
});

test('jsonErrorOffset agrees with JSON.parse', () => {
  const cases = ['{}', '[1, 2.5e3, "a\\n", true, null]', '{"a": {"b": [ ]}}', '{"a": }', '[1,]', '"\\x"', '{"a" 1}', '', ' 1 2', '"a\nb"', '-', '{"a":1}x'];
  for (const text of cases) {
    let valid = true;
    try {
      JSON.parse(text);
    } catch {
      valid = false;
    }
    assert.equal(jsonErrorOffset(text) === -1, valid, JSON.stringify(text));
  }
  assert.equal(jsonErrorOffset('{"a": }'), 6);
  assert.equal(jsonErrorOffset('[1,'), 3);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('preconnect: defaults, its keys checked by path, and not with both sendProxyProtocol and targetTls', () => {
  assert.deepEqual(parseConfig({ apps: [app({ preconnect: {} })] }, noEnv).apps[0]!.preconnect, { count: 4, maxIdle: 30_000 });
  assert.deepEqual(parseConfig({ apps: [app({ preconnect: { count: 2, maxIdle: '5s' } })] }, noEnv).apps[0]!.preconnect, { count: 2, maxIdle: 5000 });
  assert.equal(parseConfig({ apps: [app()] }, noEnv).apps[0]!.preconnect, undefined);
  assert.match(problemsOf({ apps: [app({ preconnect: { count: 0 } })] }), /^apps\[0\]\.preconnect\.count: /m);
  assert.match(problemsOf({ apps: [app({ preconnect: { maxIdle: 'later' } })] }), /^apps\[0\]\.preconnect\.maxIdle: "later" is not a duration/m);
  assert.match(problemsOf({ apps: [app({ preconnect: 4 })] }), /^apps\[0\]\.preconnect: must be an object like \{"count": 4, "maxIdle": "30s"\}/m);
  assert.match(
    problemsOf({ apps: [app({ preconnect: {}, sendProxyProtocol: 'v1', targetTls: true })] }),
    /^apps\[0\]\.preconnect: cannot be used with both sendProxyProtocol and targetTls/m,
  );
});

test('wake and sleep: a command or a url, exactly one; durations by key path', () => {
  const a = parseConfig({ apps: [app({ wake: { command: ['/bin/true'] }, sleep: { after: '10m', url: 'http://127.0.0.1:1/sleep' } })] }, noEnv).apps[0]!;
  assert.deepEqual(a.wake, { hook: { command: ['/bin/true'] }, timeout: 30_000 });
  assert.deepEqual(a.sleep, { hook: { url: 'http://127.0.0.1:1/sleep' }, after: 600_000 });
  assert.match(problemsOf({ apps: [app({ wake: {} })] }), /^apps\[0\]\.wake\.command: required, a "command"/m);
  assert.match(problemsOf({ apps: [app({ wake: { command: ['/bin/true'], url: 'http://x/' } })] }), /^apps\[0\]\.wake\.url: give "command" or "url", not both/m);
  assert.match(problemsOf({ apps: [app({ wake: { command: 'systemctl start x' } })] }), /^apps\[0\]\.wake\.command: must be a command as a list of arguments/m);
  assert.match(problemsOf({ apps: [app({ wake: { url: 'ftp://x/' } })] }), /^apps\[0\]\.wake\.url: "ftp:\/\/x\/" is not an http\(s\) URL/m);
  assert.match(problemsOf({ apps: [app({ sleep: { command: ['/bin/true'] } })] }), /^apps\[0\]\.sleep\.after: /m);
  assert.match(problemsOf({ apps: [app({ wake: { command: ['/bin/true'], timeout: 'soon' } })] }), /^apps\[0\]\.wake\.timeout: "soon" is not a duration/m);
});
