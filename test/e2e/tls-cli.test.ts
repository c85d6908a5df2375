/**
 * TLS files through the CLI as a real child process: --check on missing or broken files (exit 2
 * with the key path and the file), and certificates reloaded by SIGHUP: new connections get the new
 * certificate, open ones keep working, and a broken one keeps the old certificate in force.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import type tls from 'node:tls';
import { backendFor, cliFor, echoesExactly, freePort, pattern, runToEnd, TLS_DIR, tlsConnect, tempDir, waitFor } from '../helpers.js';

type Log = Record<string, unknown>;

/** Copies fixture `name` ("server", "server2") to cert.pem / key.pem in `dir`: what the config names. */
async function installCert(dir: string, name: string): Promise<void> {
  await fs.copyFile(path.join(TLS_DIR, `${name}.pem`), path.join(dir, 'cert.pem'));
  await fs.copyFile(path.join(TLS_DIR, `${name}-key.pem`), path.join(dir, 'key.pem'));
}

function proxyConfig(port: number, target: string): Record<string, unknown> {
  return {
    bind: '127.0.0.1',
    admin: false,
    health: { interval: '500ms', timeout: '250ms' },
    apps: [{ name: 'web', ports: [port], targets: [target], tls: { cert: 'cert.pem', key: 'key.pem' } }],
  };
}

const fingerprint = (s: tls.TLSSocket): string => s.getPeerCertificate().fingerprint256;
const isMsg = (msg: string) => (l: Log) => l['msg'] === msg;

test('--check: a missing or broken TLS file exits 2 naming the key path and the file; relative paths are the config file\'s', { concurrency: 3 }, async (t) => {
  const dir = await tempDir(t, 'shaper-tls-');
  await installCert(dir, 'server');
  await fs.writeFile(path.join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
  const cases: { name: string; tls: Record<string, unknown>; code: number; expect: RegExp }[] = [
    { name: 'good, relative to the config file', tls: { cert: 'cert.pem', key: 'key.pem' }, code: 0, expect: /OK \(1 apps/ },
    {
      name: 'missing cert',
      tls: { cert: 'missing.pem', key: 'key.pem' },
      code: 2,
      expect: new RegExp(`^shaper-proxy: SHAPER_ERR_CONFIG: apps\\[0\\]\\.tls\\.cert: cannot read "${path.join(dir, 'missing.pem')}" \\(ENOENT\\)$`, 'm'),
    },
    { name: 'broken cert', tls: { cert: 'broken.pem', key: 'key.pem' }, code: 2, expect: /^shaper-proxy: SHAPER_ERR_CONFIG: apps\[0\]\.tls\.cert: ".*broken\.pem" is not a PEM certificate/m },
    { name: 'key of another cert', tls: { cert: 'cert.pem', key: path.join(TLS_DIR, 'server2-key.pem') }, code: 2, expect: /apps\[0\]\.tls\.key: ".*server2-key\.pem" is not the key of the certificate/ },
    {
      name: 'a listed certificate without its key file',
      tls: { cert: 'cert.pem', key: 'key.pem', certificates: [{ cert: path.join(TLS_DIR, 'other.pem'), key: 'missing-key.pem' }] },
      code: 2,
      expect: /^shaper-proxy: SHAPER_ERR_CONFIG: apps\[0\]\.tls\.certificates\[0\]\.key: cannot read ".*missing-key\.pem" \(ENOENT\)$/m,
    },
    {
      name: 'clientAuth without clientCa',
      tls: { cert: 'cert.pem', key: 'key.pem', clientAuth: 'require' },
      code: 2,
      expect: /^shaper-proxy: SHAPER_ERR_CONFIG: apps\[0\]\.tls\.clientCa: required when clientAuth is "require"/m,
    },
  ];
  await Promise.all(
    cases.map((c) =>
      t.test(c.name, async () => {
        const file = path.join(dir, `${c.name.replace(/\W+/g, '-')}.json`);
        await fs.writeFile(file, JSON.stringify({ bind: '127.0.0.1', admin: false, apps: [{ name: 'web', ports: [5001], targets: ['127.0.0.1:9001'], tls: c.tls }] }));
        // The CLI runs in the repo root: relative paths must be the config file's, not the working directory's.
        const r = await runToEnd(['--config', file, '--check']);
        assert.equal(r.code, c.code, r.stderr);
        assert.match(c.code === 0 ? r.stdout : r.stderr, c.expect);
      }),
    ),
  );
});

test('SIGHUP re-reads the certificate: new connections get the new one, an open one keeps working, a broken one keeps the old', async (t) => {
  const dir = await tempDir(t, 'shaper-tls-');
  const echo = await backendFor(t, 'echo');
  const port = await freePort();
  await installCert(dir, 'server');
  const file = path.join(dir, 'proxy.json');
  await fs.writeFile(file, JSON.stringify(proxyConfig(port, echo.address)));
  const c = cliFor(t, ['--config', file]);
  await c.waitLog((l) => l['msg'] === 'listening' && l['port'] === port, 10_000, "'listening'");
  const first = await c.waitLog(isMsg('TLS certificate loaded'));

  const open = await tlsConnect(port);
  t.after(() => open.destroy());
  const oldPrint = fingerprint(open);
  assert.equal(first['fingerprint256'], oldPrint);
  await echoesExactly(open, pattern(20_000, 31));

  // New files, same config text: SIGHUP re-reads them.
  await installCert(dir, 'server2');
  c.proc.kill('SIGHUP');
  await c.waitLog(isMsg('config reloaded'));
  const loaded = c.logs.filter(isMsg('TLS certificate loaded'));
  assert.equal(loaded.length, 2);
  const fresh = await tlsConnect(port);
  const newPrint = fingerprint(fresh);
  assert.notEqual(newPrint, oldPrint);
  assert.equal(loaded[1]!['fingerprint256'], newPrint);
  await echoesExactly(fresh, pattern(20_000, 32));
  fresh.destroy();
  await echoesExactly(open, pattern(50_000, 33)); // the connection from before the reload

  // A broken certificate: the reload fails with the key path, the last good certificate stays.
  await fs.writeFile(path.join(dir, 'cert.pem'), 'not a certificate\n');
  c.proc.kill('SIGHUP');
  const failed = await c.waitLog(isMsg('reload failed; the old config stays in force'));
  assert.match(String(failed['error']), /^apps\[0\]\.tls\.cert: ".*cert\.pem" is not a PEM certificate/m);
  const after = await tlsConnect(port);
  assert.equal(fingerprint(after), newPrint);
  await echoesExactly(after, pattern(10_000, 34));
  after.destroy();
  await echoesExactly(open, pattern(10_000, 35));
  assert.equal(c.proc.exitCode, null, 'the proxy is still running');
});

test('a renewed certificate on disk reloads like SIGHUP: symlinks swapped (certbot), a half-written file keeps the old certificate, the next change loads', async (t) => {
  const dir = await tempDir(t, 'shaper-tls-');
  const echo = await backendFor(t, 'echo');
  const port = await freePort();
  // certbot's layout: live links to numbered files in archive.
  await fs.mkdir(path.join(dir, 'archive'));
  const archive = (f: string) => path.join(dir, 'archive', f);
  const link = async (target: string, name: string) => {
    await fs.symlink(`archive/${target}`, path.join(dir, `${name}.new`));
    await fs.rename(path.join(dir, `${name}.new`), path.join(dir, name));
  };
  await fs.copyFile(path.join(TLS_DIR, 'server.pem'), archive('cert1.pem'));
  await fs.copyFile(path.join(TLS_DIR, 'server-key.pem'), archive('key1.pem'));
  await link('cert1.pem', 'cert.pem');
  await link('key1.pem', 'key.pem');
  const file = path.join(dir, 'proxy.json');
  await fs.writeFile(file, JSON.stringify(proxyConfig(port, echo.address)));
  const c = cliFor(t, ['--config', file]);
  await c.waitLog((l) => l['msg'] === 'listening' && l['port'] === port, 10_000, "'listening'");
  const open = await tlsConnect(port);
  t.after(() => open.destroy());
  const first = fingerprint(open);
  const reloaded = () => c.logs.filter((l) => l['msg'] === 'config reloaded' && /certificate changed/.test(String(l['why'])));

  // Renewal: new files in archive, then the links swapped (the key first, as certbot does).
  await fs.copyFile(path.join(TLS_DIR, 'server2.pem'), archive('cert2.pem'));
  await fs.copyFile(path.join(TLS_DIR, 'server2-key.pem'), archive('key2.pem'));
  await link('key2.pem', 'key.pem');
  await link('cert2.pem', 'cert.pem');
  await waitFor(() => reloaded().length === 1, 10_000, 'the reload for the renewed certificate');
  const changed = c.logs.find(isMsg('TLS files changed on disk'))!;
  assert.ok((changed['files'] as string[]).every((f) => f === path.join(dir, 'cert.pem') || f === path.join(dir, 'key.pem')), String(changed['files']));
  const renewed = await tlsConnect(port);
  const second = fingerprint(renewed);
  renewed.destroy();
  assert.notEqual(second, first);
  await echoesExactly(open, pattern(20_000, 36)); // the connection from before keeps working

  // Half-written: the reload fails with the key path, the renewed certificate stays.
  // (The renewal above may have failed a reload too, had the key's link been seen alone.)
  const failures = () => c.logs.filter((l) => l['msg'] === 'reload failed; the old config stays in force' && /certificate changed/.test(String(l['why'])));
  const failedBefore = failures().length;
  const pem = await fs.readFile(path.join(TLS_DIR, 'server.pem'));
  await fs.writeFile(archive('cert2.pem'), pem.subarray(0, 60));
  await waitFor(() => failures().length > failedBefore, 10_000, 'the failed reload');
  const failed = failures().at(-1)!;
  assert.match(String(failed['error']), /^apps\[0\]\.tls\.cert: ".*cert\.pem" is not a PEM certificate/m);
  const during = await tlsConnect(port);
  assert.equal(fingerprint(during), second);
  during.destroy();

  // The next change is tried again: the whole pair written, the first certificate is back.
  await fs.copyFile(path.join(TLS_DIR, 'server-key.pem'), archive('key2.pem'));
  await fs.writeFile(archive('cert2.pem'), pem);
  await waitFor(() => reloaded().length === 2, 10_000, 'the reload after the file was complete');
  const back = await tlsConnect(port);
  assert.equal(fingerprint(back), first);
  back.destroy();
  await echoesExactly(open, pattern(10_000, 37));
  assert.equal(c.proc.exitCode, null, 'the proxy is still running');
});
