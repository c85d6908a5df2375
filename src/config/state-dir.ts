/**
 * Where the proxy keeps its files: the runtime state (runtime-state.ts) and the counters
 * (observe/observer.ts), in a state directory, not beside the config (a read-only /etc or a
 * ConfigMap mount). The directory, highest precedence first:
 *
 *   1. env SHAPER_STATE_DIR   (env beats the file, as every SHAPER_* override: the deployment
 *                              beats the config baked into an image; relative to the working directory)
 *   2. `stateDir`             (relative to the config file)
 *   3. env STATE_DIRECTORY    (what systemd sets for a unit with StateDirectory=; its first entry)
 *   4. the per-user default   ($XDG_STATE_HOME/shaper-proxy, else ~/.local/state/shaper-proxy; for
 *                              config files only: an in-process config without 1-3 keeps nothing)
 *
 * `stateFile` names the state file itself and beats them all (the counters go beside it). In a
 * directory given by 1-3 the files are named after the config file (`proxy.json` ->
 * `proxy.state.json`, `proxy.stats.json`); the default directory is shared by every config its
 * user runs, so there the name also carries a hash of the config file's path and two configs
 * never share a file.
 */
import { createHash } from 'node:crypto';
import { access, constants, mkdir, open, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { show } from './problems.js';
import type { ProxyConfig, StateDir } from './types.js';

export const STATE_DIR_ENV = 'SHAPER_STATE_DIR';

type Where = Pick<ProxyConfig, 'stateFile' | 'stateDir' | 'source'>;

/**
 * The state directory set by the config's validated `stateDir` (which SHAPER_STATE_DIR, if set,
 * has already replaced) or by systemd; undefined: neither (the caller may take the default).
 */
export function stateDirOf(written: string | null, env: NodeJS.ProcessEnv, baseDir: string): StateDir | undefined {
  if (written !== null) {
    const fromEnv = env[STATE_DIR_ENV] !== undefined;
    return { path: resolve(fromEnv ? process.cwd() : baseDir, written), from: fromEnv ? 'SHAPER_STATE_DIR' : 'stateDir' };
  }
  const systemd = env['STATE_DIRECTORY']?.split(':')[0];
  return systemd ? { path: resolve(systemd), from: 'STATE_DIRECTORY' } : undefined;
}

/** $XDG_STATE_HOME/shaper-proxy (an absolute XDG_STATE_HOME only, as the XDG spec says), else ~/.local/state/shaper-proxy. */
export function defaultStateDir(env: NodeJS.ProcessEnv): StateDir {
  const xdg = env['XDG_STATE_HOME'];
  const base = xdg && isAbsolute(xdg) ? xdg : join(env['HOME'] || homedir(), '.local', 'state');
  return { path: join(base, 'shaper-proxy'), from: 'default' };
}

/** Where runtime changes of this config are kept; null: nowhere (an in-process config with neither stateFile nor stateDir). */
export function stateFileFor(config: Where): string | null {
  if (config.stateFile) return config.stateFile;
  const dir = config.stateDir;
  return dir ? join(dir.path, `${stateName(config.source, dir)}.state.json`) : null;
}

/** The config file's name without its extension (with a hash of its path in the shared default directory). */
function stateName(source: string | undefined, dir: StateDir): string {
  if (!source) return 'shaper-proxy';
  const name = basename(source, extname(source));
  return dir.from === 'default' ? `${name}-${createHash('sha256').update(source).digest('hex').slice(0, 8)}` : name;
}

/**
 * Where this config's state file was kept before the state directory (beside the config file,
 * `<config>.state.json`): read once when the new place has none, so an upgrade loses nothing.
 * null: nothing to look for.
 */
export function legacyStateFileFor(config: Where): string | null {
  if (config.stateFile || !config.source || !config.stateDir) return null;
  const legacy = `${config.source}.state.json`;
  return legacy === stateFileFor(config) ? null : legacy;
}

/** `file` if it exists or `legacy` does not (or is null); else `legacy`, to read once. */
export async function existingOf(file: string, legacy: string | null): Promise<string> {
  if (legacy === null || (await exists(file))) return file;
  return (await exists(legacy)) ? legacy : file;
}

const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  );

/**
 * Whether the state files can be written: at start (`create`) the directory is made and a probe
 * file written and removed there; for `--check` (nothing written) the directory or its nearest
 * existing parent must be a writable directory. Throws a ConfigError naming the key or env var
 * that chose the directory.
 */
export async function stateDirReady(config: Where, create: boolean): Promise<void> {
  const file = stateFileFor(config);
  if (file === null) return;
  const dir = dirname(file);
  try {
    await (create ? probe(dir) : nearestWritable(dir));
  } catch (err) {
    throw new ConfigError([unwritable(config, dir, (err as Error).message)]);
  }
}

async function probe(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `.shaper-proxy-probe.${process.pid}`);
  await (await open(file, 'w', 0o600)).close();
  await unlink(file);
}

async function nearestWritable(dir: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (!(await stat(d)).isDirectory()) throw new Error(`ENOTDIR: not a directory, ${show(d)}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && dirname(d) !== d) continue;
      throw err;
    }
    await access(d, constants.W_OK | constants.X_OK);
    return;
  }
}

function unwritable(config: Where, dir: string, why: string): string {
  const d = config.stateDir;
  if (config.stateFile || !d) return `stateFile: cannot write ${show(config.stateFile)}: its directory ${show(dir)} is not writable (${why})`;
  const fix = 'set stateDir or SHAPER_STATE_DIR to a writable directory';
  switch (d.from) {
    case 'SHAPER_STATE_DIR':
      return `stateDir: ${show(dir)} is not a writable directory (${why}) (set by env SHAPER_STATE_DIR)`;
    case 'stateDir':
      return `stateDir: ${show(dir)} is not a writable directory (${why})`;
    case 'STATE_DIRECTORY':
      return `stateDir: ${show(dir)} (from env STATE_DIRECTORY, systemd's StateDirectory=) is not a writable directory (${why}); ${fix}`;
    case 'default':
      return `stateDir: the default state directory ${show(dir)} is not writable (${why}); ${fix}`;
  }
}
