/**
 * Reload under the operator's control: `"watch": false` leaves a saved file alone until asked;
 * `shaper-proxy ctl reload` (POST /reload) answers with the result, a broken file with its problems
 * and exit status 2 while the old config stays; /status and /metrics say what is in force.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { backendFor, cliFor, ctl, freePort, tempDir, waitFor } from '../helpers.js';

async function setup(t: Parameters<typeof tempDir>[0], watch: boolean) {
  const dir = await tempDir(t, 'shaper-reload-');
  const backend = await backendFor(t, 'echo');
  const [port, admin] = [await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.json');
  const write = (tiers: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    writeFile(file, JSON.stringify({ watch, bind: '127.0.0.1', admin: { listen: `127.0.0.1:${admin}` }, apps: [{ name: 'web', ports: [port], targets: [backend.address] }], tiers, ...extra }));
  await write({ free: { connection: { down: '1mbit' } } });
  const proxy = cliFor(t, ['--config', file]);
  await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, 'the admin API');
  const url = `http://127.0.0.1:${admin}`;
  const tiers = async () => ((await (await fetch(`${url}/tiers`)).json()) as { name: string }[]).map((x) => x.name);
  const status = async () => (await (await fetch(`${url}/status`)).json()) as { config: { hash: string; lastReload: { ok: boolean; errors?: string[] } | null } };
  const metrics = async () => (await fetch(`${url}/metrics`)).text();
  return { file, write, proxy, url, tiers, status, metrics };
}

test('"watch": false: a saved file is not applied until ctl reload, which answers with the result', async (t) => {
  const { file, write, url, tiers, status } = await setup(t, false);
  await write({ free: {}, gold: {} });
  // Watching would have applied this within ~250 ms; give it well over that.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await tiers(), ['free'], 'not applied: watch is off');
  const r = await ctl(['reload', '--admin', url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^reloaded [0-9a-f]{12} /);
  assert.deepEqual(await tiers(), ['free', 'gold']);
  const s = await status();
  assert.equal(s.config.hash, createHash('sha256').update(await readFile(file)).digest('hex'));
  assert.equal(s.config.lastReload?.ok, true);
});

test('ctl reload with a broken file: its problems by key path, exit status 2, the old config stays, the metric says 0', async (t) => {
  const { write, url, tiers, status, metrics, proxy } = await setup(t, false);
  await write({ free: { connection: { down: '1 megabit' } } });
  const r = await ctl(['reload', '--admin', url]);
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /reload failed; the old config stays in force/);
  assert.match(r.stderr, /tiers\.free\.connection\.down: "1 megabit" is not a rate/);
  assert.deepEqual(await tiers(), ['free']);
  const s = await status();
  assert.equal(s.config.lastReload?.ok, false);
  assert.match(s.config.lastReload?.errors?.[0] ?? '', /^tiers\.free\.connection\.down/);
  const m = await metrics();
  assert.match(m, /^shaper_config_last_reload_successful 0$/m);
  assert.match(m, /^shaper_config_reloads_total\{result="failure"\} 1$/m);
  await proxy.waitLog((l) => l['msg'] === 'reload failed; the old config stays in force', 3000, 'the failure logged');
  // Fixed: the next reload succeeds and the metric comes back to 1.
  await write({ free: {}, gold: {} });
  assert.equal((await ctl(['reload', '--admin', url])).code, 0);
  assert.match(await metrics(), /^shaper_config_last_reload_successful 1$/m);
  assert.match(await metrics(), /^shaper_config_reloads_total\{result="success"\} 1$/m);
});

test('"watch" on (the default): saving the file reloads it', async (t) => {
  const { write, tiers } = await setup(t, true);
  await write({ free: {}, silver: {} });
  await waitFor(async () => (await tiers()).includes('silver'), 5000, 'the saved file applied');
});
