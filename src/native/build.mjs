#!/usr/bin/env node
/**
 * Builds the native data plane (binding.gyp) with node-gyp, OPTIONALLY: run as the package's
 * `install` script, it never fails the install. When the build cannot run (no compiler, no
 * Node headers, not Linux) it prints one line saying so and why, keeps node-gyp's output in
 * build/native-build.log, and exits 0: the proxy then uses its JavaScript data plane.
 *
 *   node src/native/build.mjs            build into build/Release (the install script)
 *   node src/native/build.mjs --asan DIR build with AddressSanitizer into DIR/build/Release
 *                                        (exits 1 on failure: a sanitizer run wants to know)
 *
 * SHAPER_NATIVE_BUILD=0 skips the build. Nothing is downloaded: node-gyp builds against the
 * headers of the running Node (npm's `nodedir`, or the include/node beside the node binary).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCES = ['binding.gyp', ...['addon.c', 'engine.c', 'relay.c', 'engine.h', 'internal.h'].map((f) => `src/native/${f}`)];

/** node-gyp as npm runs it (npm_config_node_gyp), else the copy bundled with npm, else PATH. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) candidates.push(path.join(path.dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'));
  candidates.push(path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  const js = candidates.find((c) => c && fs.existsSync(c));
  return js ? [process.execPath, js] : ['node-gyp'];
}

/** --nodedir: npm's setting, or the prefix of this node when its headers are installed there. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function build(dir, env) {
  const [cmd, ...pre] = nodeGyp();
  return spawnSync(cmd, [...pre, 'rebuild', '--release', `--directory=${dir}`, ...nodedirArgs()], {
    cwd: dir,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
}

/** The line of the build output that says best what went wrong. */
function reason(r) {
  if (r.error) return r.error.message;
  const lines = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim());
  const noise = /^gyp (info|ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok|\$npm))/;
  const telling = [/\berror:/i, /^gyp: /, /You need to install/, /not found|No such file|Permission denied/i, /\berror\b/i];
  for (const re of telling) {
    const hit = lines.find((l) => re.test(l) && !noise.test(l));
    if (hit) return hit.replace(/^gyp ERR! find Python /, 'node-gyp needs Python: ').slice(0, 300);
  }
  return `node-gyp exited with ${r.status ?? r.signal}`;
}

function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--asan') {
    const dir = path.resolve(args[1] ?? 'build-asan');
    fs.rmSync(dir, { recursive: true, force: true });
    for (const f of SOURCES) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    }
    const flags = '-fsanitize=address -fno-omit-frame-pointer -g';
    const r = build(dir, { ...process.env, CFLAGS: flags, LDFLAGS: '-fsanitize=address' });
    if (r.status !== 0) {
      process.stderr.write(`${r.stdout}\n${r.stderr}\nasan build failed: ${reason(r)}\n`);
      process.exit(1);
    }
    process.stdout.write(`${path.join(dir, 'build/Release/shaper_native.node')}\n`);
    return;
  }

  const say = (line) => process.stdout.write(`shaper-proxy: ${line}\n`);
  if (process.env.SHAPER_NATIVE_BUILD === '0') return say('native data plane not built (SHAPER_NATIVE_BUILD=0); the JavaScript data plane will be used.');
  if (process.platform !== 'linux') return say(`native data plane not built (it needs Linux, this is ${process.platform}); the JavaScript data plane will be used.`);
  const r = build(ROOT, process.env);
  const log = path.join(ROOT, 'build/native-build.log');
  try {
    fs.mkdirSync(path.dirname(log), { recursive: true });
    fs.writeFileSync(log, `${r.stdout ?? ''}\n${r.stderr ?? ''}\n${r.error ? String(r.error) : ''}`);
  } catch {
    // a read-only tree: the line below still says what happened
  }
  if (r.status === 0) say('native data plane built (build/Release/shaper_native.node).');
  else say(`native data plane not built (${reason(r)}); the JavaScript data plane will be used. Details: build/native-build.log`);
}

main();
