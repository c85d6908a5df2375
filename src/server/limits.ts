import fs from 'node:fs';
import { isIPv4 } from 'node:net';
import { realClock, type Clock, type Timer } from '../clock.js';
import type { LimitsConfig } from '../config/types.js';

/** Why a connection was refused at accept, before any dial. */
export type RefuseReason = 'source_connections' | 'source_rate' | 'global_connections' | 'resource_exhausted' | 'denied';
export const REFUSE_REASONS: readonly RefuseReason[] = ['source_connections', 'source_rate', 'global_connections', 'resource_exhausted', 'denied'];

/** config `limits` (see LimitsConfig). */
export type AbuseLimitsConfig = LimitsConfig;

export const NO_LIMITS: AbuseLimitsConfig = { perSource: {} };

/** How often idle sources and old log marks are swept out (ms). */
const SWEEP_EVERY_MS = 1_000;
/** A source's refusals are logged at most once per this many ms. */
export const REFUSAL_LOG_EVERY_MS = 10_000;

interface SourceState {
  conns: number;
  /** token bucket of the accept rate (unused without one) */
  tokens: number;
  at: number;
}

/** "::ffff:10.0.0.1" and "10.0.0.1" are the same source. */
export function sourceKey(address: string | undefined): string {
  if (!address) return '';
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7);
  return address;
}

/**
 * Abuse limits checked when a connection is accepted: concurrent connections
 * and accept rate per source address, and concurrent connections in total.
 * `admit()` counts an admitted connection; every admitted one must be
 * `release()`d exactly once. A source's state is dropped once it has no
 * connections and its rate bucket is full again, so the map holds only live
 * or recently active sources.
 */
export class SourceLimits {
  #config: AbuseLimitsConfig = NO_LIMITS;
  readonly #sources = new Map<string, SourceState>();
  /** source -> when its refusals were last logged, and how many were not logged since */
  readonly #logged = new Map<string, { at: number; suppressed: number }>();
  #total = 0;
  #lastSweep: number;
  /**
   * Connections the file-descriptor limit leaves room for (see descriptorBudget); beyond it
   * new connections are refused as `resource_exhausted`. undefined: no budget (not Linux).
   */
  budget: number | undefined;

  constructor(
    config: AbuseLimitsConfig | undefined,
    private readonly clock: Clock = realClock,
  ) {
    this.#lastSweep = clock.now();
    this.configure(config);
  }

  /** Apply new limits (a reload); counts of open connections are kept. */
  configure(config: AbuseLimitsConfig | undefined): void {
    this.#config = config ?? NO_LIMITS;
    const rate = this.#config.perSource.acceptRate;
    for (const s of this.#sources.values()) s.tokens = rate ? Math.min(s.tokens, rate.count) : 0;
  }

  get config(): AbuseLimitsConfig {
    return this.#config;
  }

  /** Connections admitted and not yet released. */
  get total(): number {
    return this.#total;
  }

  /** Sources tracked right now (live or recently active). */
  get sources(): number {
    return this.#sources.size;
  }

  /** Open connections of one source. */
  connectionsOf(address: string): number {
    return this.#sources.get(sourceKey(address))?.conns ?? 0;
  }

  /** null: admitted (and counted); otherwise why it is refused (nothing counted). */
  admit(address: string | undefined): RefuseReason | null {
    const now = this.clock.now();
    if (now - this.#lastSweep >= SWEEP_EVERY_MS) this.sweep();
    const key = sourceKey(address);
    const { perSource, maxConnections } = this.#config;
    if (maxConnections !== undefined && this.#total >= maxConnections) return 'global_connections';
    if (this.budget !== undefined && this.#total >= this.budget) return 'resource_exhausted';
    const rate = perSource.acceptRate;
    let s = this.#sources.get(key);
    if (!s) s = { conns: 0, tokens: rate?.count ?? 0, at: now };
    if (perSource.maxConnections !== undefined && s.conns >= perSource.maxConnections) return 'source_connections';
    if (rate) {
      this.#refill(s, rate, now);
      if (s.tokens < 1) {
        this.#sources.set(key, s); // remember the empty bucket
        return 'source_rate';
      }
      s.tokens -= 1;
    }
    s.conns++;
    this.#total++;
    this.#sources.set(key, s);
    return null;
  }

  /** A connection admitted for `address` has closed. */
  release(address: string | undefined): void {
    const key = sourceKey(address);
    const s = this.#sources.get(key);
    if (this.#total > 0) this.#total--;
    if (!s) return;
    if (s.conns > 0) s.conns--;
    if (this.#idle(s, this.clock.now())) this.#sources.delete(key);
  }

  /**
   * Whether a refusal of `address` should be logged now (at most once per
   * source per 10 s); `suppressed` is how many were not logged since the last.
   */
  shouldLog(address: string | undefined): { suppressed: number } | null {
    const key = sourceKey(address);
    const now = this.clock.now();
    const mark = this.#logged.get(key);
    if (mark && now - mark.at < REFUSAL_LOG_EVERY_MS) {
      mark.suppressed++;
      return null;
    }
    this.#logged.set(key, { at: now, suppressed: 0 });
    return { suppressed: mark?.suppressed ?? 0 };
  }

  /** Drop idle sources and expired log marks (also run from admit() about once a second). */
  sweep(): void {
    const now = this.clock.now();
    this.#lastSweep = now;
    for (const [key, s] of this.#sources) if (this.#idle(s, now)) this.#sources.delete(key);
    for (const [key, m] of this.#logged) if (now - m.at >= REFUSAL_LOG_EVERY_MS) this.#logged.delete(key);
  }

  /** Tracked log marks (for tests: bounded). */
  get logMarks(): number {
    return this.#logged.size;
  }

  #refill(s: SourceState, rate: { count: number; per: number }, now: number): void {
    if (now > s.at) s.tokens = Math.min(rate.count, s.tokens + ((now - s.at) * rate.count) / rate.per);
    s.at = now;
  }

  #idle(s: SourceState, now: number): boolean {
    if (s.conns > 0) return false;
    const rate = this.#config.perSource.acceptRate;
    if (!rate) return true;
    this.#refill(s, rate, now);
    return s.tokens >= rate.count;
  }
}

/** The process's file-descriptor limit (soft RLIMIT_NOFILE) and how many are open now; undefined off Linux. */
export function descriptorUse(): { limit: number; open: number } | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined; // "unlimited"
    return { limit: Number(m[1]), open: fs.readdirSync('/proc/self/fd').length };
  } catch {
    return undefined;
  }
}

/**
 * How many proxied connections fit under the descriptor limit: each holds two (client and
 * backend); `open` are in use already (stdio, epoll, listeners), and a spare of 1 % (at least 16)
 * stays for the admin API, health checks and file writes.
 *
 * Why a budget rather than reacting to EMFILE: at accept libuv hides it. Out of descriptors, it
 * closes a reserve descriptor, accepts and closes every pending connection, and reopens the
 * reserve, so the listener reports no error; the proxy would only see dials fail, and not even
 * that when the last descriptor went to an accept. Refusing at the budget keeps the refusals
 * ours: counted, logged once, and the proxy resumes on its own as connections close.
 */
export function descriptorBudget(use: { limit: number; open: number }): number {
  const spare = Math.max(16, Math.ceil(use.limit / 100));
  return Math.max(0, Math.floor((use.limit - use.open - spare) / 2));
}

/** Error codes that mean the process (or system) is out of file descriptors. */
export function isFdExhaustion(code: string | undefined): boolean {
  return code === 'EMFILE' || code === 'ENFILE';
}

/**
 * Backoff for accepting when file descriptors run out (EMFILE / ENFILE):
 * `exhausted()` pauses for 100 ms, doubling on each further exhaustion up to
 * 2 s; the pause ends by itself. After a calm spell (no exhaustion for twice
 * the longest pause since the last resume) the delay starts again at 100 ms.
 */
export class AcceptPause {
  #paused = false;
  #delay: number;
  #timer: Timer | undefined;
  #resumedAt = -Infinity;
  /** Pauses so far (for /stats and tests). */
  pauses = 0;

  constructor(
    private readonly clock: Clock = realClock,
    private readonly onResume: () => void = () => {},
    readonly firstMs = 100,
    readonly maxMs = 2_000,
  ) {
    this.#delay = firstMs;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The pause the next exhaustion would start (ms). */
  get nextDelay(): number {
    return this.#delay;
  }

  /**
   * Out of descriptors: pause, unless already paused. Returns the pause in ms
   * and whether it starts a new episode (the caller logs only those), or null
   * when already paused.
   */
  exhausted(): { ms: number; firstOfEpisode: boolean } | null {
    if (this.#paused) return null;
    const now = this.clock.now();
    const firstOfEpisode = now - this.#resumedAt >= 2 * this.maxMs;
    if (firstOfEpisode) this.#delay = this.firstMs;
    const ms = this.#delay;
    this.#paused = true;
    this.pauses++;
    this.#timer = this.clock.setTimer(ms, () => {
      this.#timer = undefined;
      this.#paused = false;
      this.#resumedAt = this.clock.now();
      this.onResume();
    });
    this.#delay = Math.min(this.#delay * 2, this.maxMs);
    return { ms, firstOfEpisode };
  }

  /** Cancel a pending resume timer (shutdown). */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#paused = false;
  }
}
