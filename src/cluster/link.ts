/**
 * The fleet's connections to Redis: one for commands, one subscribed to the control channel.
 *
 * Redis must never become a crash path nor a stall: commands are not queued while Redis is away
 * (they fail at once and the caller falls back), each has a timeout, and the clients reconnect
 * forever with a capped backoff. Up/down transitions are logged once each and reported to the
 * fleet through `onChange`.
 */
import { createRequire } from 'node:module';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';

type RedisCtor = new (url: string, options: RedisOptions) => RedisClient;

// Loaded on first use: a proxy that runs alone never loads ioredis.
let RedisClass: RedisCtor | undefined;
function redisClass(): RedisCtor {
  return (RedisClass ??= (createRequire(import.meta.url)('ioredis') as { Redis: RedisCtor }).Redis);
}

/** A Lua script, sent by EVALSHA (EVAL once after Redis lost its script cache). */
export interface Script {
  name: string;
  lua: string;
}

export class RedisLink {
  readonly cmd: RedisClient;
  readonly sub: RedisClient;
  #up = false;
  #since = Date.now();
  #lastError = '';
  /** commands that failed or timed out, ever */
  errors = 0;
  /** `up` changed (not called for the same state twice) */
  onChange: (up: boolean) => void = () => {};
  readonly #shas = new Map<string, string>();

  constructor(
    url: string,
    readonly timeoutMs: number,
    private readonly log: Logger,
  ) {
    const Redis = redisClass();
    const options: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: Math.max(timeoutMs, 1000),
      enableReadyCheck: true,
      // reconnect forever, backing off to one attempt a second
      retryStrategy: (times) => Math.min(50 * times, 1000),
    };
    this.cmd = new Redis(url, { ...options, connectionName: 'shaper-proxy' });
    this.sub = new Redis(url, { ...options, connectionName: 'shaper-proxy-sub', autoResubscribe: true });
    this.cmd.on('ready', () => this.#set(true));
    this.cmd.on('close', () => this.#set(false, 'connection closed'));
    // ioredis emits 'error' for every failed reconnect; the state change is logged once instead.
    this.cmd.on('error', (err: Error) => this.#note(err));
    this.sub.on('error', () => {});
  }

  get up(): boolean {
    return this.#up;
  }

  /** ms since the last change of `up` */
  get since(): number {
    return this.#since;
  }

  get lastError(): string {
    return this.#lastError;
  }

  /** Starts connecting; resolves once connected or after the timeout (traffic never waits longer). */
  async open(): Promise<void> {
    // The 'error' events carry the cause (ECONNREFUSED ...); connect()'s own rejection only says "closed".
    const connected = Promise.all([this.cmd.connect(), this.sub.connect()]).catch((err: unknown) => this.#lastError || this.#note(err));
    await Promise.race([connected, new Promise((r) => setTimeout(r, Math.max(this.timeoutMs, 1000)).unref())]);
    if (!this.#up) this.#set(false, this.#lastError || 'not reachable', true);
  }

  /**
   * Runs a script; resolves to its reply, or undefined when Redis is away, slow or fails
   * (then `up` goes false until the next command succeeds).
   */
  async eval(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (!this.#up && this.cmd.status !== 'ready') return undefined;
    try {
      let sha = this.#shas.get(script.name);
      if (!sha) {
        sha = (await this.cmd.script('LOAD', script.lua)) as string;
        this.#shas.set(script.name, sha);
      }
      let reply: unknown;
      try {
        reply = await this.cmd.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
        this.#shas.delete(script.name);
        reply = await this.cmd.eval(script.lua, keys.length, ...keys, ...args);
      }
      this.#set(true);
      return reply;
    } catch (err) {
      this.#failed(err);
      return undefined;
    }
  }

  /** Runs `fn` on the command connection; undefined when it fails (see eval). */
  async run<T>(fn: (redis: RedisClient) => Promise<T>): Promise<T | undefined> {
    if (!this.#up && this.cmd.status !== 'ready') return undefined;
    try {
      const value = await fn(this.cmd);
      this.#set(true);
      return value;
    } catch (err) {
      this.#failed(err);
      return undefined;
    }
  }

  #failed(err: unknown): void {
    this.errors++;
    this.#note(err);
    this.#set(false, this.#lastError);
  }

  #note(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
  }

  #set(up: boolean, why = '', atStart = false): void {
    if (up === this.#up && !atStart) return;
    const was = this.#up;
    this.#up = up;
    this.#since = Date.now();
    if (up) this.log.info('cluster: connected to redis, sharing caps with the fleet');
    else if (was || atStart) {
      this.log.warn({ error: why }, 'cluster: redis unreachable; traffic goes on with the fallback share until it is back');
    }
    if (was !== up || atStart) this.onChange(up);
  }

  async close(): Promise<void> {
    this.cmd.removeAllListeners('close');
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}

/** The URL without its password, for /status and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
