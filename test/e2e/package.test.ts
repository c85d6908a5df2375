/**
 * The package as users get it: `npm pack`, a global install of the tarball into a temporary prefix,
 * and both bins run from there (the bench is part of the product: operators prove caps with
 * `shaper-bench caps`). The install takes the dependencies from the npm cache first
 * (--prefer-offline), so after `npm ci` or `npm install` on this machine it needs no network.
 * --offline is not used: `npm ci` caches the dependency tarballs but not the registry documents a
 * global install resolves version ranges with, so on a fresh CI runner it fails with ENOTCACHED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers.js';

const exec = promisify(execFile);

/** The environment of the npm that runs this suite, minus its prefixes; this Node first on PATH (the bins' `env node`). */
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries({ ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env['PATH'] ?? ''}` }).filter(
    ([k]) => !/^npm_config_(prefix|global_prefix|local_prefix|global)$/i.test(k),
  ),
);

/** The npm running this suite (npm_execpath), else the one on PATH. */
function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const cli = process.env['npm_execpath'];
  const opts = { cwd, env, maxBuffer: 16 * 1024 * 1024 };
  return cli && /npm-cli\.[cm]?js$/.test(cli) ? exec(process.execPath, [cli, ...args], opts) : exec('npm', args, opts);
}

/**
 * What the package may hold: the built proxy and bench, the example configs, the READMEs, the
 * changelog and licence, the deploy files (systemd unit and its user, Prometheus alerts and their
 * promtool tests, Grafana dashboard), and the native data plane's sources with their build script
 * (built at install, optionally: no binaries).
 */
const SHIPPED =
  /^(dist\/(src|bench)\/.+|config\/[^/]+|README\.md|CHANGELOG\.md|LICENSE|bench\/README\.md|package\.json|binding\.gyp|src\/native\/([a-z-]+\.[ch]|build\.mjs|README\.md)|deploy\/(systemd\/shaper-proxy\.(service|sysusers)|prometheus\/alerts(\.test)?\.yml|grafana\/shaper-proxy\.json))$/;
/** What it must hold beyond the build: the promises of the README (Deploying) and of package.json ("license"). */
const PROMISED = ['LICENSE', 'CHANGELOG.md', 'deploy/systemd/shaper-proxy.service', 'deploy/systemd/shaper-proxy.sysusers', 'deploy/prometheus/alerts.yml', 'deploy/prometheus/alerts.test.yml', 'deploy/grafana/shaper-proxy.json'];

test('npm pack + a global install: shaper-proxy --version and shaper-bench run; no tests or runtime files packed', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shaper-pack-'));
  // runtime files as the proxy writes them beside its config (`<config>.state.json`, `.stats.json`)
  const probes = ['state', 'stats'].map((k) => path.join(ROOT, 'config', `pack-probe-${process.pid}.json.${k}.json`));
  const echo = net.createServer((s) => s.on('error', () => {}).pipe(s));
  t.after(async () => {
    for (const p of probes) fs.rmSync(p, { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    await new Promise((r) => echo.close(r));
  });
  for (const p of probes) fs.writeFileSync(p, '{}\n');

  // --ignore-scripts: dist is built already (`prepare` would run tsc under the running suite)
  const [packed] = JSON.parse((await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT)).stdout) as {
    filename: string;
    files: { path: string }[];
  }[];
  const files = packed!.files.map((f) => f.path);
  for (const f of ['dist/src/cli.js', 'dist/bench/run.js', 'dist/bench/lib/children.js', 'config/tiers.json', 'bench/README.md', ...PROMISED]) {
    assert.ok(files.includes(f), `${f} packed`);
  }
  assert.deepEqual(
    files.filter((f) => !SHIPPED.test(f) || /\.(state|stats)\.json$/.test(f)),
    [],
    'nothing but the build, configs, READMEs, changelog, licence, deploy files and the native sources; no runtime state or counters',
  );

  const prefix = path.join(tmp, 'prefix');
  await npm(['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, packed!.filename)], tmp);
  const bin = (name: string) => path.join(prefix, 'bin', name);
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
  assert.equal((await exec(bin('shaper-proxy'), ['--version'], { cwd: tmp, env })).stdout.trim(), version);
  const help = (await exec(bin('shaper-bench'), ['--help'], { cwd: tmp, env })).stdout;
  assert.match(help, /^Usage: [\s\S]*Scenarios:[\s\S]*\n {2}caps +\S/);

  // a real scenario from the user's folder: its results land there, not in the installed package
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const port = String((echo.address() as net.AddressInfo).port);
  const run = await exec(bin('shaper-bench'), ['load', '--ports', port, '--messages', '5', '--duration', '10'], { cwd: tmp, env });
  assert.match(run.stdout, /wrote shaper-bench-results\/load-[^ ]+\.json/);
  const [result] = fs.readdirSync(path.join(tmp, 'shaper-bench-results'));
  const data = JSON.parse(fs.readFileSync(path.join(tmp, 'shaper-bench-results', result!), 'utf8'));
  assert.deepEqual([data.data.measurements[0].total.sent, data.data.measurements[0].total.answered], [5, 5]);
});

test('runtime files beside a config are ignored by git', async (t) => {
  if (!fs.existsSync(path.join(ROOT, '.git'))) return t.skip('not a git checkout');
  const files = ['config/tiers.json.state.json', 'config/tiers.json.stats.json', 'config/fleet.yaml.state.json'];
  // --no-index: the rule itself, whether or not such a file exists or is tracked
  const r = await exec('git', ['check-ignore', '--no-index', ...files], { cwd: ROOT });
  assert.deepEqual(r.stdout.trim().split('\n'), files);
});

test('LICENSE is the licence package.json names', () => {
  const license = fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
  assert.equal(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).license, 'MIT');
  assert.match(license, /^MIT License\n\nCopyright \(c\) \d{4} the shaper-proxy authors\n/);
});
