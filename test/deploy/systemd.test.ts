/**
 * deploy/systemd/shaper-proxy.service, checked by systemd's own tools (Debian's systemd package):
 * `systemd-analyze verify` on a copy whose ExecStart/ExecReload bin is this build (verify needs an
 * executable there), `systemd-analyze security --offline` for the sandbox, `systemd-sysusers` for the
 * user file; then the unit's own command lines run against this build as systemd would run them:
 * start, reload (a broken file fails the reload with exit 2), SIGTERM within TimeoutStopSec, and the
 * descriptor budget its LimitNOFILE gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { descriptorBudget } from '../../src/server/limits.js';
import { CLI, ROOT, cliFor, ctl, freePort, runToEnd, tempDir, which } from '../helpers.js';

const SYSTEMD_ANALYZE = which('systemd-analyze');
const SYSUSERS = which('systemd-sysusers');
const skip = SYSTEMD_ANALYZE ? false : 'systemd-analyze not installed (Debian package systemd)';

const UNIT_FILE = path.join(ROOT, 'deploy/systemd/shaper-proxy.service');
const SYSUSERS_FILE = path.join(ROOT, 'deploy/systemd/shaper-proxy.sysusers');
/** Where the unit expects the bin: a global npm install with Debian's npm (prefix /usr/local). */
const BIN = '/usr/local/bin/shaper-proxy';

/** The unit's [Service] keys, each with its values in order (systemd.syntax(7): no line continuations used). */
function serviceSection(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      section = line;
      continue;
    }
    assert.ok(!line.endsWith('\\'), `no continuation lines: ${line}`);
    const eq = line.indexOf('=');
    if (section !== '[Service]' || eq < 0) continue;
    const [key, value] = [line.slice(0, eq).trim(), line.slice(eq + 1).trim()];
    keys.set(key, [...(keys.get(key) ?? []), value]);
  }
  return keys;
}

const unitText = fs.readFileSync(UNIT_FILE, 'utf8');
const service = serviceSection(unitText);
const one = (key: string): string => {
  const v = service.get(key);
  assert.equal(v?.length, 1, `${key} set once`);
  return v![0]!;
};
/** A command line of the unit as argv (its words are plain: no quotes or specifiers used). */
const argv = (key: string): string[] => one(key).split(/\s+/);
const seconds = (d: string): number => {
  const m = /^(\d+)(s|min)?$/.exec(d);
  assert.ok(m, `a duration systemd and this test read alike: ${d}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
};

/** The unit with its bin pointed at a wrapper that runs this build's CLI, in a temp dir. */
async function unitForThisBuild(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t, 'shaper-systemd-');
  const wrapper = path.join(dir, 'shaper-proxy');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
  const lines = unitText.split('\n');
  const rewritten = lines.map((l) => (/^Exec(Start|Reload)=/.test(l) ? l.replace(BIN, wrapper) : l));
  assert.equal(rewritten.filter((l, i) => l !== lines[i]).length, 2, `ExecStart and ExecReload run ${BIN}`);
  const file = path.join(dir, 'shaper-proxy.service');
  fs.writeFileSync(file, rewritten.join('\n'));
  return file;
}

test('systemd-analyze verify: the unit has no unknown key, bad value or missing command', { skip }, async (t) => {
  const unit = await unitForThisBuild(t);
  const r = spawnSync(SYSTEMD_ANALYZE!, ['verify', unit], { encoding: 'utf8' });
  // verify only warns (exit 0) about an unknown key or a bad value: any output fails the check
  assert.equal(`${r.stdout}${r.stderr}`, '', 'systemd-analyze verify prints nothing');
  assert.equal(r.status, 0);

  // and it does catch what it should: an unknown key, a command that is not there
  const broken = unit.replace(/\.service$/, '-broken.service');
  fs.writeFileSync(broken, fs.readFileSync(unit, 'utf8').replace('[Service]\n', '[Service]\nLimitNOFILES=1\nExecStartPre=/nonexistent/shaper-proxy --check\n'));
  const b = spawnSync(SYSTEMD_ANALYZE!, ['verify', broken], { encoding: 'utf8' });
  assert.match(b.stderr, /Unknown key 'LimitNOFILES'/);
  assert.match(b.stderr, /\/nonexistent\/shaper-proxy is not executable/);
});

/**
 * What `systemd-analyze security` may still find open, and why the proxy needs it open. Any other
 * finding (a sandboxing line dropped or loosened) fails the test.
 */
const OPEN_BY_NEED: Record<string, string> = {
  'PrivateNetwork=': 'a proxy: it listens and dials on the host network',
  'RestrictAddressFamilies=~AF_(INET|INET6)': 'the same',
  'IPAddressDeny=': 'targets and clients are anywhere the config says',
  'RestrictAddressFamilies=~AF_UNIX': 'Redis on a unix socket; Node itself',
  'RestrictAddressFamilies=~AF_NETLINK': "getaddrinfo's AI_ADDRCONFIG (Node dials host names with it)",
  'MemoryDenyWriteExecute=': 'V8 compiles JavaScript to machine code',
  'PrivateUsers=': 'a user namespace would void CAP_NET_BIND_SERVICE in the low-ports drop-in',
  'ProcSubset=': 'Node and prom-client read /proc beyond the process (meminfo, stat)',
  'RootDirectory=/RootImage=': 'the bin and node come from the host',
  'DeviceAllow=': 'PrivateDevices= already leaves only the pseudo devices',
};

test('systemd-analyze security: the sandbox leaves open only what a proxy needs', { skip }, async (t) => {
  const help = spawnSync(SYSTEMD_ANALYZE!, ['security', '--help'], { encoding: 'utf8' }).stdout;
  if (!/--offline/.test(help) || !/--json/.test(help)) return t.skip('this systemd-analyze has no security --offline / --json (systemd < 250)');
  const unit = await unitForThisBuild(t);
  const r = spawnSync(SYSTEMD_ANALYZE!, ['security', '--offline=true', '--json=short', unit], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const findings = JSON.parse(r.stdout) as { set: boolean; name: string; exposure: string | null }[];
  const open = findings.filter((f) => !f.set && f.exposure !== null).map((f) => f.name);
  assert.deepEqual(open.filter((n) => !(n in OPEN_BY_NEED)), [], 'nothing open beyond what the proxy needs');
  const passed = new Set(findings.filter((f) => f.set).map((f) => f.name));
  for (const must of ['User=/DynamicUser=', 'NoNewPrivileges=', 'ProtectSystem=', 'ProtectHome=', 'PrivateTmp=', 'CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)', 'CapabilityBoundingSet=~CAP_SYS_ADMIN', 'AmbientCapabilities=']) {
    assert.ok(passed.has(must), `${must} holds`);
  }
  const score = spawnSync(SYSTEMD_ANALYZE!, ['security', '--offline=true', '--threshold=20', unit], { encoding: 'utf8' });
  assert.equal(score.status, 0, `overall exposure at most 2.0:\n${score.stdout.split('\n').filter((l) => l.includes('Overall')).join('\n')}`);
});

test('systemd-sysusers creates the user and group the unit runs as', { skip: SYSUSERS ? false : 'systemd-sysusers not installed (Debian package systemd)' }, async (t) => {
  const root = await tempDir(t, 'shaper-sysusers-');
  fs.mkdirSync(path.join(root, 'etc'));
  const r = spawnSync(SYSUSERS!, [`--root=${root}`, '--dry-run', SYSUSERS_FILE], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const said = `${r.stdout}${r.stderr}`;
  assert.match(said, new RegExp(`Creating group '${one('Group')}'`));
  assert.match(said, new RegExp(`Creating user '${one('User')}'`));
  assert.equal(service.get('DynamicUser'), undefined, 'a static user (README: Deploying says why)');
});

test("the unit's command lines on this build: start, reload (exit 2 on a broken file), SIGTERM within TimeoutStopSec", { skip }, async (t) => {
  const start = argv('ExecStart');
  assert.deepEqual(start, [BIN, '--config', '/etc/shaper-proxy/config.json', '--pid-file', one('PIDFile')]);
  // upgrades: systemd adopts the new main process from the pid file, in a directory it makes writable
  assert.equal(path.dirname(one('PIDFile')), `/run/${one('RuntimeDirectory')}`);
  assert.equal(one('KillMode'), 'control-group', 'a process draining after an upgrade drains on at a stop');
  assert.deepEqual(argv('ExecReload'), [BIN, 'ctl', 'reload']);
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.equal(one('StateDirectory'), 'shaper-proxy');
  // a config that does not load exits 2 at start: the unit must not restart on it
  assert.equal(one('RestartPreventExitStatus'), '2');
  assert.equal(one('Restart'), 'on-failure');

  const dir = await tempDir(t, 'shaper-unit-');
  const [port, admin] = [await freePort(), await freePort()];
  const config = path.join(dir, 'config.json');
  const good = { watch: false, bind: '127.0.0.1', admin: { listen: `127.0.0.1:${admin}` }, apps: [{ name: 'web', ports: [port], targets: ['127.0.0.1:9'] }] };
  fs.writeFileSync(config, JSON.stringify(good));
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, JSON.stringify({ ...good, apps: [{ ...good.apps[0], ports: ['http'] }] }));
  // the unit's paths, here in the temp dir
  const pidFile = path.join(dir, 'shaper-proxy.pid');
  const startWith = (file: string) => start.slice(1).map((a) => (a === '/etc/shaper-proxy/config.json' ? file : a === one('PIDFile') ? pidFile : a));
  assert.equal((await runToEnd(startWith(broken))).code, 2, 'a broken config exits 2');

  // as systemd starts it: $STATE_DIRECTORY set, the environment file's SHAPER_ADMIN_URL (admin not on 9900 here)
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  const env = { STATE_DIRECTORY: stateDir, SHAPER_ADMIN_URL: `http://127.0.0.1:${admin}` };
  const proxy = cliFor(t, startWith(config), env);
  await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, 'the admin API');
  assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(proxy.proc.pid), 'PIDFile= names the main process');

  // LimitNOFILE: with the descriptors this proxy holds once started, the budget the proxy would
  // compute under the unit's limit leaves 20,000 connections 6 descriptors each (2 sockets, and in
  // the native plane 2 pipes of 2 while bytes are in flight). The limit itself cannot be raised
  // here without privileges, so the proxy's own formula is applied to it.
  const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const open = Number(/^process_open_fds (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(open > 0, 'process_open_fds scraped');
  const budget = descriptorBudget({ limit: Number(one('LimitNOFILE')), open });
  assert.ok(budget >= 3 * 20_000, `budget ${budget} under LimitNOFILE=${one('LimitNOFILE')} with ${open} open`);

  const reloadArgs = argv('ExecReload').slice(2);
  const ok = await ctl(reloadArgs, env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^reloaded [0-9a-f]{12} /);
  fs.copyFileSync(broken, config);
  const failed = await ctl(reloadArgs, env);
  assert.equal(failed.code, 2, '`systemctl reload` fails');
  assert.match(failed.stderr, /apps\[0\]\.ports\[0\]/, 'with the problem by key path');
  assert.equal((await fetch(`http://127.0.0.1:${admin}/ready`)).status, 200, 'the old config still serves');

  const stopWithin = seconds(one('TimeoutStopSec'));
  assert.ok(stopWithin >= 10 + 10, 'TimeoutStopSec covers the default drainTimeout (10s) with room to save the counters');
  proxy.proc.kill(one('KillSignal') as NodeJS.Signals);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([proxy.exited, new Promise((r) => (timer = setTimeout(() => r('still running'), stopWithin * 1000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, 'exits 0 on SIGTERM before systemd would SIGKILL it');
});
