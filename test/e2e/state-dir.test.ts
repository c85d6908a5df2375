/**
 * The state directory with the real CLI: a config in a read-only folder (as /etc, or a ConfigMap
 * mount) runs, and its runtime changes and counters go to the state directory; a state directory
 * the proxy cannot write stops the start (and fails --check) with exit 2, naming who chose it.
 *
 * Permissions do not stop root: run as root (as in CI), the proxy runs as `nobody` (uid 65534) for
 * the read-only cases, and "under a regular file" (ENOTDIR) is the case that fails for root too.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { CLI, cliFor, freePort, runToEnd, tempDir, type CliOptions } from '../helpers.js';

const AS_USER: CliOptions = process.getuid?.() === 0 ? { uid: 65534 } : {};

/** Whether `file` is reachable by other users: every folder above it searchable, the file itself `bits` for others. */
function othersMay(file: string, bits: number): boolean {
  if ((statSync(file).mode & bits) !== bits) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (path.dirname(dir) === dir) return true;
  }
}

/** Run as root, the proxy runs as uid 65534: that user must reach this Node and the CLI (.ci/run opens its temp folder). */
const skipAsUser =
  AS_USER.uid === undefined || (othersMay(process.execPath, 0o005) && othersMay(CLI, 0o004)) ? false : `uid 65534 cannot run ${process.execPath} or read ${CLI}`;

/** A folder the proxy's user can read (and, `writable`, write); the temp dir itself is 0700. */
async function folder(t: TestContext): Promise<string> {
  const dir = await tempDir(t, 'shaper-statedir-');
  await chmod(dir, 0o755);
  return dir;
}

async function configIn(dir: string, extra: Record<string, unknown> = {}): Promise<{ file: string; port: number; admin: number }> {
  const backend = `127.0.0.1:${await freePort()}`;
  const [port, admin] = [await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.json');
  await writeFile(file, JSON.stringify({ bind: '127.0.0.1', admin: `127.0.0.1:${admin}`, apps: [{ name: 'web', ports: [port], targets: [backend] }], tiers: { free: {} }, ...extra }));
  await chmod(file, 0o644);
  return { file, port, admin };
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });

test('a config in a read-only folder: runtime changes and counters go to the state directory', { skip: skipAsUser }, async (t) => {
  const root = await folder(t);
  const etc = path.join(root, 'etc');
  const xdg = path.join(root, 'xdg');
  await mkdir(etc);
  await mkdir(xdg, { mode: 0o777 });
  await chmod(xdg, 0o777);
  const { file, admin } = await configIn(etc);
  await chmod(etc, 0o555);

  // No SHAPER_STATE_DIR (cliFor would set one): the per-user default, under XDG_STATE_HOME.
  const proxy = cliFor(t, ['--config', file], { SHAPER_STATE_DIR: undefined, STATE_DIRECTORY: undefined, XDG_STATE_HOME: xdg }, AS_USER);
  await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, 'the admin API');
  const res = await fetch(`http://127.0.0.1:${admin}/tiers/gold`, { method: 'PUT', body: JSON.stringify({ connection: { down: '1mbit' } }) });
  assert.equal(res.status, 200, await res.text());

  const dir = path.join(xdg, 'shaper-proxy');
  // An atomic write under way shows as its temporary file (src/atomic-file.ts): not one of the files.
  const names = async () => (await readdir(dir).catch(() => [])).filter((n) => !n.endsWith('.tmp')).sort();
  for (let i = 0; i < 50 && (await names()).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  const [stateName, statsName] = await names();
  assert.match(stateName ?? '', /^proxy-[0-9a-f]{8}\.state\.json$/);
  assert.equal(statsName, stateName!.replace('.state.json', '.stats.json'));
  const state = JSON.parse(await readFile(path.join(dir, stateName!), 'utf8')) as { tiers: Record<string, unknown> };
  assert.deepEqual(Object.keys(state.tiers), ['gold']);
  assert.deepEqual(await readdir(etc), ['proxy.json'], 'nothing written beside the config');
  assert.equal(proxy.logs.filter((l) => (l['level'] as number) >= 40).length, 0, 'no warning or error');
});

test('a state directory the proxy cannot write: exit 2 naming the env var or key and the directory, nothing listens; --check says so too', { skip: skipAsUser }, async (t) => {
  const root = await folder(t);
  const { file, port } = await configIn(root);
  const readOnly = path.join(root, 'read-only');
  await mkdir(readOnly, { mode: 0o555 });
  await chmod(readOnly, 0o555);
  const aFile = path.join(root, 'a-file');
  await writeFile(aFile, 'not a directory\n');

  // Read-only for the proxy's user (nobody, when the test runs as root): a real EACCES.
  for (const args of [['--config', file], ['--config', file, '--check']]) {
    const r = await runToEnd(args, { SHAPER_STATE_DIR: readOnly }, AS_USER);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^shaper-proxy: SHAPER_ERR_CONFIG: stateDir: "${readOnly}" is not a writable directory \\(EACCES: permission denied, .*\\) \\(set by env SHAPER_STATE_DIR\\)\\n$`));
  }
  assert.equal(await refused(port), true, 'nothing listens');

  // Under a regular file (ENOTDIR: root too), named by the config key.
  const { file: withKey } = await configIn(root, { stateDir: 'a-file/state' });
  for (const args of [['--config', withKey], ['--config', withKey, '--check']]) {
    const r = await runToEnd(args, { SHAPER_STATE_DIR: undefined, STATE_DIRECTORY: undefined });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^shaper-proxy: SHAPER_ERR_CONFIG: stateDir: "${path.join(aFile, 'state')}" is not a writable directory \\(ENOTDIR: not a directory, .*\\)\\n$`));
  }
  // systemd's STATE_DIRECTORY, when nothing else names one.
  const { file: plain, port: plainPort } = await configIn(root);
  const r = await runToEnd(['--config', plain], { SHAPER_STATE_DIR: undefined, STATE_DIRECTORY: path.join(aFile, 'x') });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /stateDir: ".*\/a-file\/x" \(from env STATE_DIRECTORY, systemd's StateDirectory=\) is not a writable directory \(ENOTDIR: .*\); set stateDir or SHAPER_STATE_DIR to a writable directory\n$/);
  assert.equal(await refused(plainPort), true, 'nothing listens');
});
