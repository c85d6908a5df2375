/**
 * Pre-dialed target connections (config `apps[].preconnect`, Envoy's preconnect, seed 003's
 * "requeue unused ones"): per app and healthy target up to `count` connections dialed ahead (TLS
 * handshake included with `targetTls`), one handed to each new client at once and a replacement
 * dialed; one unused for `maxIdle` is closed and replaced.
 *
 * A server-first greeting is never lost: bytes a target sends to an idle connection are kept with
 * it (up to GREETING_LIMIT; beyond that the connection is closed unused) and put back in front of
 * the socket's read buffer when a client takes it, so that client reads them first, exactly. A
 * connection the target closes or resets while idle is dropped (it was never anyone's).
 */
import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { AppConfig } from '../config/types.js';
import type { Housekeeping } from '../housekeeping.js';
import { connectTarget } from './dialer.js';
import type { Target } from './target.js';
import type { AppUpstream, PoolPort, Upstreams } from './upstreams.js';

/** Bytes a target may send to an idle connection before it is closed unused. */
export const GREETING_LIMIT = 64 * 1024;
/** How often idle connections are checked for age, and missing ones dialed again. */
const SWEEP_MS = 250;
/** After a failed pre-dial, that target is not pre-dialed again for this long. */
const RETRY_MS = 1000;

interface Idle {
  socket: Socket;
  /** clock time it became idle */
  since: number;
  greeting: Buffer[];
  greetingBytes: number;
  drop: () => void;
}

interface Slot {
  idle: Idle[];
  dialing: number;
  /** clock time before which it is not dialed again (after a failure) */
  retryAt: number;
}

/** What /status shows of an app's pool. */
export type PoolCounts = {
  /** connections handed to clients */
  taken: number;
  /** connections dialed ahead, and those that failed */
  dialed: number;
  failed: number;
  /** closed unused: after maxIdle, by the target, or for a greeting over GREETING_LIMIT */
  expired: number;
  closedByTarget: number;
  greetingTooLong: number;
  /** idle connections the target sent bytes to before a client took them (a server-first greeting) */
  greeted: number;
};

/** One app's pool. */
class AppPool implements PoolPort {
  readonly #slots = new Map<Target, Slot>();
  readonly counts: PoolCounts = { taken: 0, dialed: 0, failed: 0, expired: 0, closedByTarget: 0, greetingTooLong: 0, greeted: 0 };
  #closed = false;

  constructor(
    readonly up: AppUpstream,
    readonly config: AppConfig,
    readonly clock: Clock,
  ) {}

  take(target: Target): Socket | null {
    const slot = this.#slots.get(target);
    let entry: Idle | undefined;
    while ((entry = slot?.idle.shift())) {
      const { socket } = entry;
      socket.off('data', entry.drop).off('end', entry.drop).off('close', entry.drop).off('error', entry.drop);
      if (socket.destroyed || socket.readableEnded) {
        socket.destroy();
        continue;
      }
      // The client's pipeline resumes it once wired; what the target sent so far comes first.
      socket.pause();
      if (entry.greetingBytes > 0) socket.unshift(entry.greeting.length === 1 ? entry.greeting[0]! : Buffer.concat(entry.greeting));
      this.counts.taken++;
      this.#fill(target, this.clock.now());
      return socket;
    }
    return null;
  }

  idle(target: Target): number {
    return this.#slots.get(target)?.idle.length ?? 0;
  }

  /** Drop idle connections past maxIdle or to targets no longer usable; dial what is missing. */
  sweep(now: number): void {
    const usable = new Set(this.up.targets.filter((t) => t.healthy && !t.removed));
    for (const [target, slot] of this.#slots) {
      if (!usable.has(target)) {
        for (const e of slot.idle.splice(0)) e.socket.destroy();
        if (slot.dialing === 0) this.#slots.delete(target);
        continue;
      }
      while (slot.idle.length > 0 && now - slot.idle[0]!.since >= this.config.preconnect!.maxIdle) {
        slot.idle.shift()!.socket.destroy();
        this.counts.expired++;
      }
    }
    for (const t of usable) this.#fill(t, now);
  }

  close(): void {
    this.#closed = true;
    for (const slot of this.#slots.values()) for (const e of slot.idle.splice(0)) e.socket.destroy();
    this.#slots.clear();
  }

  #fill(target: Target, now: number): void {
    if (this.#closed || !target.healthy || target.removed) return;
    let slot = this.#slots.get(target);
    if (!slot) this.#slots.set(target, (slot = { idle: [], dialing: 0, retryAt: 0 }));
    if (now < slot.retryAt) return;
    for (let n = this.config.preconnect!.count - slot.idle.length - slot.dialing; n > 0; n--) this.#dial(target, slot);
  }

  #dial(target: Target, slot: Slot): void {
    slot.dialing++;
    this.counts.dialed++;
    const tls = this.config.targetTls;
    connectTarget(target.host, target.port, this.config.connectTimeout, undefined, tls ? { tls } : {}).then(
      (socket) => {
        slot.dialing--;
        if (this.#closed || target.removed || this.#slots.get(target) !== slot) return void socket.destroy();
        this.#keep(slot, socket);
      },
      () => {
        slot.dialing--;
        this.counts.failed++;
        slot.retryAt = this.clock.now() + RETRY_MS;
      },
    );
  }

  /** An idle connection: kept until taken, closed by the target, or too talkative. */
  #keep(slot: Slot, socket: Socket): void {
    const entry: Idle = {
      socket,
      since: this.clock.now(),
      greeting: [],
      greetingBytes: 0,
      drop: () => {},
    };
    const counts = this.counts;
    const remove = (counter: 'closedByTarget' | 'greetingTooLong'): void => {
      const i = slot.idle.indexOf(entry);
      if (i >= 0) slot.idle.splice(i, 1);
      this.counts[counter]++;
      socket.destroy();
    };
    entry.drop = function (this: Socket, chunk?: unknown) {
      if (Buffer.isBuffer(chunk)) {
        if (entry.greetingBytes === 0) counts.greeted++;
        entry.greeting.push(chunk);
        entry.greetingBytes += chunk.length;
        if (entry.greetingBytes > GREETING_LIMIT) remove('greetingTooLong');
        return;
      }
      remove('closedByTarget');
    };
    socket.on('data', entry.drop).on('end', entry.drop).on('close', entry.drop).on('error', entry.drop);
    slot.idle.push(entry);
  }
}

/** The pools of every app with `preconnect`, hung on their AppUpstream (the dialer takes from there). */
export class Preconnector {
  readonly #pools = new Map<string, AppPool>();
  #sweeping: { cancel(): void } | null = null;

  constructor(
    readonly upstreams: Upstreams,
    readonly housekeeping: Housekeeping,
    readonly clock: Clock,
  ) {}

  /** The config changed: each app's pool made anew (connections dialed for the old config are closed). */
  apply(apps: readonly AppConfig[]): void {
    for (const pool of this.#pools.values()) {
      pool.close();
      pool.up.pool = null;
    }
    this.#pools.clear();
    for (const app of apps) {
      const up = this.upstreams.apps.get(app.name);
      if (!app.preconnect || !up) continue;
      const pool = new AppPool(up, app, this.clock);
      this.#pools.set(app.name, pool);
      up.pool = pool;
    }
    if (this.#pools.size > 0 && !this.#sweeping) this.#sweeping = this.housekeeping.add('preconnect', SWEEP_MS, (now) => this.#sweep(now));
    if (this.#sweeping) this.#sweep(this.clock.now());
  }

  stop(): void {
    this.#sweeping?.cancel();
    this.#sweeping = null;
    for (const pool of this.#pools.values()) {
      pool.close();
      pool.up.pool = null;
    }
    this.#pools.clear();
  }

  #sweep(now: number): void {
    for (const pool of this.#pools.values()) pool.sweep(now);
  }
}
