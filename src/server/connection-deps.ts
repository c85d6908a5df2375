/** What a connection gets from the proxy (index.ts builds it; server/acceptor.ts hands it over). */
import type { Refusal, ShapedConnection } from '../shaping/shaper.js';
import type { OwnedRead } from '../shaping/socket-flow.js';
import type { Identity } from '../identify/matcher.js';
import type { Logger } from '../log.js';
import type { Target } from '../upstream/target.js';
import type { ServerTls } from './tls.js';
import type { Analyzer, Stages } from './stages.js';
import type { ConnectionInfo } from '../channels.js';
import type { AppUpstream } from '../upstream/upstreams.js';

/** What a connection needs of the shaper: customer matching and admission, its flows, and the release. */
export interface ShapingPort {
  admit(who: Identity): Promise<ShapedConnection | null | Refusal>;
  /** how `who` is matched, for debug logs */
  explain(who: Identity): { matched: string | undefined; skipped: string[] };
  stages(sc: ShapedConnection, label: string): Stages;
  /** A read path for the backend socket straight into the down stage. */
  backendRead(): OwnedRead;
  release(sc: ShapedConnection): void;
}

/**
 * What a connection gets from the proxy: one object shared by all connections (built per
 * connection, its closures cost ~0.5 KB each), rebuilt when a setting it carries changes.
 */
export interface ConnectionDeps {
  /** The proxy the connection belongs to: its lifecycle events carry it (src/channels.ts). */
  readonly owner: object;
  /** Debug lines only (customer matching, the balancer's choice); the close line is observe's. */
  readonly log: Logger;
  /** Customer matching, admission and flows; undefined while nothing can be shaped. */
  readonly shaping: ShapingPort | undefined;
  /** A dial of a target failed: the passive health check. */
  readonly health: { recordFailure(target: Target, error: Error, passive: boolean): void };
  /** Gives back the source's slot of the abuse limits (taken at accept). */
  readonly limits: { release(address: string | undefined): void };
  /** The open connections: the connection leaves it when it closes. */
  readonly registry: { delete(conn: ConnectionInfo): void };
  /** A dial found no file descriptor left (EMFILE / ENFILE). */
  readonly exhausted: (code: string, app: string) => void;
  /** The TLS to terminate on an app, if it has any (as in force when the connection starts). */
  readonly tlsFor: (app: string) => ServerTls | undefined;
  /** An analyser for this connection's bytes, if its app wants one. */
  readonly analyzer: ((conn: ConnectionInfo & { readonly app: AppUpstream }) => Analyzer | null) | undefined;
  /** Measure the time to the target's first byte (observe.latency). */
  readonly measureFirstByte: boolean;
  /** ms a PROXY header may take to arrive. */
  readonly proxyHeaderTimeoutMs: number;
}
