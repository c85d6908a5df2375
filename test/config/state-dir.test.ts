/**
 * The state directory (src/config/state-dir.ts): which of SHAPER_STATE_DIR, `stateDir`,
 * systemd's STATE_DIRECTORY and the per-user default is used, what the files in it are called,
 * that an unwritable one is a config problem naming who chose it, and that a state file left
 * beside the config by an older version is read once and saved in the state directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { ConfigStore } from '../../src/config/store.js';
import { legacyStateFileFor, stateDirReady, stateFileFor } from '../../src/config/state-dir.js';
import { statsFileFor } from '../../src/observe/observer.js';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Reloader } from '../../src/reloader.js';
import { tempDir } from '../helpers.js';

const apps = [{ name: 'web', ports: [0], targets: ['127.0.0.1:9'] }];
const HOME = '/home/op';

test('precedence: stateFile, then SHAPER_STATE_DIR, stateDir, STATE_DIRECTORY, then the per-user default', async (t) => {
  const dir = await tempDir(t, 'shaper-statedir-');
  const file = join(dir, 'proxy.json');
  const load = async (extra: Record<string, unknown>, env: NodeJS.ProcessEnv) => {
    await writeFile(file, JSON.stringify({ apps, ...extra }));
    return loadConfigFile(file, { HOME, ...env });
  };
  const all = { SHAPER_STATE_DIR: '/run/env-dir', STATE_DIRECTORY: '/var/lib/shaper-proxy:/var/lib/other' };

  let c = await load({ stateDir: 'st', stateFile: '/abs/s.json' }, all);
  assert.equal(stateFileFor(c), '/abs/s.json', 'stateFile beats every directory');
  assert.equal(statsFileFor(stateFileFor(c)), '/abs/s.stats.json');

  c = await load({ stateDir: 'st' }, all);
  assert.deepEqual(c.stateDir, { path: '/run/env-dir', from: 'SHAPER_STATE_DIR' }, 'env beats the file');
  assert.equal(stateFileFor(c), '/run/env-dir/proxy.state.json');
  assert.equal(statsFileFor(stateFileFor(c)), '/run/env-dir/proxy.stats.json');
  c = await load({}, { SHAPER_STATE_DIR: 'rel' });
  assert.deepEqual(c.stateDir, { path: resolve('rel'), from: 'SHAPER_STATE_DIR' }, 'a relative env path is relative to the working directory');

  c = await load({ stateDir: 'st' }, { STATE_DIRECTORY: all.STATE_DIRECTORY });
  assert.deepEqual(c.stateDir, { path: join(dir, 'st'), from: 'stateDir' }, 'relative to the config file; beats systemd');

  c = await load({}, { STATE_DIRECTORY: all.STATE_DIRECTORY });
  assert.deepEqual(c.stateDir, { path: '/var/lib/shaper-proxy', from: 'STATE_DIRECTORY' }, "systemd's first directory");
  assert.equal(stateFileFor(c), '/var/lib/shaper-proxy/proxy.state.json');

  c = await load({ stateDir: null }, {});
  assert.deepEqual(c.stateDir, { path: `${HOME}/.local/state/shaper-proxy`, from: 'default' });
  assert.match(stateFileFor(c)!, /^\/home\/op\/\.local\/state\/shaper-proxy\/proxy-[0-9a-f]{8}\.state\.json$/);
  c = await load({}, { XDG_STATE_HOME: '/xdg' });
  assert.equal(c.stateDir?.path, '/xdg/shaper-proxy');
  c = await load({}, { XDG_STATE_HOME: 'relative/is/ignored' });
  assert.equal(c.stateDir?.path, `${HOME}/.local/state/shaper-proxy`);
});

test('in the shared default directory two configs of the same name never share a file; in a chosen one the name is the config\'s', () => {
  const cfg = (source: string, from: 'default' | 'stateDir') => ({ stateFile: null, source, stateDir: { path: '/s', from } });
  const a = stateFileFor(cfg('/srv/a/proxy.json', 'default'));
  const b = stateFileFor(cfg('/srv/b/proxy.json', 'default'));
  assert.notEqual(a, b);
  assert.equal(a, stateFileFor(cfg('/srv/a/proxy.json', 'default')), 'stable across restarts');
  assert.equal(stateFileFor(cfg('/srv/a/proxy.yaml', 'stateDir')), '/s/proxy.state.json');
  // An in-process config keeps nothing unless it names a place.
  assert.equal(stateFileFor(parseConfig({ apps }, {})), null);
  assert.equal(stateFileFor(parseConfig({ apps, stateDir: '/s' }, {})), '/s/shaper-proxy.state.json');
  // Where an older version kept it.
  assert.equal(legacyStateFileFor(cfg('/etc/p.json', 'stateDir')), '/etc/p.json.state.json');
  assert.equal(legacyStateFileFor({ ...cfg('/etc/p.json', 'stateDir'), stateFile: '/x.json' }), null);
});

test('a bad stateDir or SHAPER_STATE_DIR is a config problem at its key', () => {
  const problems = (raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
    try {
      parseConfig(raw, env);
      return [];
    } catch (err) {
      return [...(err as ConfigError).problems];
    }
  };
  assert.deepEqual(problems({ apps, stateDir: '' }), ['stateDir: "" is not a directory path (use e.g. "/var/lib/shaper-proxy", or null)']);
  assert.deepEqual(problems({ apps }, { SHAPER_STATE_DIR: ' ' }), ['stateDir: " " is not a directory path (use e.g. "/var/lib/shaper-proxy", or null) (set by env SHAPER_STATE_DIR)']);
});

test('an unwritable state directory is a ConfigError naming the key or env var and the directory; --check writes nothing', async (t) => {
  const dir = await tempDir(t, 'shaper-statedir-');
  const aFile = join(dir, 'a-file');
  await writeFile(aFile, 'not a directory\n');
  // Under a regular file: ENOTDIR, which root meets too (permissions would not stop root).
  const under = join(aFile, 'state');
  const cases: [Parameters<typeof stateFileFor>[0], RegExp][] = [
    [{ stateFile: null, source: '/c/p.json', stateDir: { path: under, from: 'SHAPER_STATE_DIR' } }, /^stateDir: ".*\/a-file\/state" is not a writable directory \(ENOTDIR: .*\) \(set by env SHAPER_STATE_DIR\)$/],
    [{ stateFile: null, source: '/c/p.json', stateDir: { path: under, from: 'stateDir' } }, /^stateDir: ".*\/a-file\/state" is not a writable directory \(ENOTDIR: .*\)$/],
    [{ stateFile: null, source: '/c/p.json', stateDir: { path: under, from: 'STATE_DIRECTORY' } }, /^stateDir: ".*" \(from env STATE_DIRECTORY, systemd's StateDirectory=\) is not a writable directory \(ENOTDIR: .*\); set stateDir or SHAPER_STATE_DIR to a writable directory$/],
    [{ stateFile: null, source: '/c/p.json', stateDir: { path: under, from: 'default' } }, /^stateDir: the default state directory ".*" is not writable \(ENOTDIR: .*\); set stateDir or SHAPER_STATE_DIR/],
    [{ stateFile: join(under, 's.json'), source: '/c/p.json' }, /^stateFile: cannot write ".*\/s\.json": its directory ".*" is not writable \(ENOTDIR: .*\)$/],
  ];
  for (const [config, expected] of cases) {
    for (const create of [true, false]) {
      const err = await stateDirReady(config, create).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, `${config.stateDir?.from ?? 'stateFile'} (create ${create})`);
      assert.equal(err.problems.length, 1);
      assert.match(err.problems[0]!, expected);
    }
  }
  // Writable: --check leaves a directory that does not exist yet alone; the start makes it.
  const fresh = { stateFile: null, source: '/c/p.json', stateDir: { path: join(dir, 'new', 'state'), from: 'stateDir' as const } };
  await stateDirReady(fresh, false);
  await assert.rejects(stat(join(dir, 'new')), { code: 'ENOENT' });
  await stateDirReady(fresh, true);
  assert.equal((await stat(fresh.stateDir.path)).mode & 0o777, 0o700);
});

test('a state file beside the config (where an older version kept it) is read once and saved in the state directory', async (t) => {
  const dir = await tempDir(t, 'shaper-statedir-');
  const source = join(dir, 'proxy.json');
  await writeFile(source, JSON.stringify({ apps, tiers: { free: {} } }));
  const legacy = { version: 1, tiers: { gold: { connection: { down: '1mbit' } } }, customers: {} };
  await writeFile(`${source}.state.json`, JSON.stringify(legacy));
  const config = { ...(await loadConfigFile(source, { SHAPER_STATE_DIR: join(dir, 'state') })) };
  const store = new ConfigStore(config, silentLogger());
  await store.start();
  await store.flush();
  assert.deepEqual(Object.keys(store.config.tiers).sort(), ['free', 'gold']);
  const saved = JSON.parse(await readFile(join(dir, 'state', 'proxy.state.json'), 'utf8')) as typeof legacy;
  assert.deepEqual(saved.tiers, legacy.tiers);
  // Once the state directory has its file, the old one is not read again.
  await writeFile(`${source}.state.json`, JSON.stringify({ ...legacy, tiers: {} }));
  const again = new ConfigStore(config, silentLogger());
  await again.start();
  assert.deepEqual(Object.keys(again.config.tiers).sort(), ['free', 'gold']);
});

test('a reload to a state directory that cannot be written fails by key path; the old config stays', async (t) => {
  const dir = await tempDir(t, 'shaper-statedir-');
  const file = join(dir, 'proxy.json');
  await writeFile(join(dir, 'a-file'), '');
  await writeFile(file, JSON.stringify({ apps, stateDir: 'a-file/state' }));
  const applied: unknown[] = [];
  const reloader = new Reloader(file, (c) => applied.push(c), silentLogger());
  const result = await reloader.reload('test');
  assert.equal(result.ok, false);
  assert.match(result.errors?.[0] ?? '', /^stateDir: ".*\/a-file\/state" is not a writable directory \(ENOTDIR: /);
  assert.deepEqual(applied, []);
});
