/**
 * Reloads from the config file, one at a time, for every trigger (SIGHUP, the file or a TLS file
 * changing, POST /reload, `shaper-proxy ctl reload`): load and validate the file, apply it, and
 * remember the result. A reload asked for while one runs is run after it (every reason in its log
 * line); a file that does not load keeps the old config in force and says why by key path.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadConfigFile } from './config/load.js';
import { stateDirReady } from './config/state-dir.js';
import type { ProxyConfig } from './config/types.js';
import { isProxyError, type ConfigError } from './errors.js';
import type { Logger } from './log.js';

export interface ReloadResult {
  ok: boolean;
  /** ISO time */
  at: string;
  why: string;
  /** sha256 of the file that was loaded (or that failed to) */
  hash: string | null;
  /** the problems, each "key.path: what is wrong", when it failed */
  errors?: string[];
}

/** The config file in force: what /status shows. */
export interface ConfigFileState {
  file: string;
  /** sha256 of the file the config in force was loaded from */
  hash: string | null;
  /** ISO time it was loaded */
  loadedAt: string;
  lastReload: ReloadResult | null;
  reloads: { success: number; failure: number };
  /** Unix seconds of the last successful load (start or reload) */
  lastSuccessSeconds: number;
}

export class Reloader {
  #state: ConfigFileState;
  #running: Promise<ReloadResult> | null = null;
  #again: { why: string; waiters: ((r: ReloadResult) => void)[] } | null = null;

  constructor(
    readonly file: string,
    private readonly apply: (config: ProxyConfig, why: string) => void,
    private readonly log: Logger,
    /** overrides applied to every load (the CLI's --log-level) */
    private readonly adjust: (config: ProxyConfig) => ProxyConfig = (c) => c,
  ) {
    this.#state = { file, hash: null, loadedAt: new Date().toISOString(), lastReload: null, reloads: { success: 0, failure: 0 }, lastSuccessSeconds: Date.now() / 1000 };
  }

  /** The file as loaded at start: its hash for /status. */
  async started(): Promise<void> {
    this.#state.hash = await hashOf(this.file);
  }

  get state(): Readonly<ConfigFileState> {
    return this.#state;
  }

  /** Reload now, or right after the reload under way (reasons asked for meanwhile are merged). */
  reload(why: string): Promise<ReloadResult> {
    if (!this.#running) {
      this.#running = this.#run(why).finally(() => {
        this.#running = null;
        const next = this.#again;
        this.#again = null;
        if (next) void this.reload(next.why).then((r) => next.waiters.forEach((w) => w(r)));
      });
      return this.#running;
    }
    if (!this.#again) this.#again = { why, waiters: [] };
    else if (!this.#again.why.split(' + ').includes(why)) this.#again.why = `${this.#again.why} + ${why}`;
    const again = this.#again;
    return new Promise((resolve) => again.waiters.push(resolve));
  }

  async #run(why: string): Promise<ReloadResult> {
    const at = new Date().toISOString();
    const hash = await hashOf(this.file);
    let result: ReloadResult;
    try {
      const next = this.adjust(await loadConfigFile(this.file));
      await stateDirReady(next, true);
      this.apply(next, why);
      result = { ok: true, at, why, hash };
      this.#state = { ...this.#state, hash, loadedAt: at, lastSuccessSeconds: Date.now() / 1000 };
      this.#state.reloads.success++;
    } catch (err) {
      const errors = isProxyError(err, 'SHAPER_ERR_CONFIG') ? [...(err as ConfigError).problems] : [isProxyError(err) ? err.message : String((err as Error).stack ?? err)];
      result = { ok: false, at, why, hash, errors };
      this.#state.reloads.failure++;
      this.log.error({ why, error: errors.join('\n') }, 'reload failed; the old config stays in force');
    }
    this.#state.lastReload = result;
    return result;
  }
}

async function hashOf(file: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await readFile(file)).digest('hex');
  } catch {
    return null;
  }
}
