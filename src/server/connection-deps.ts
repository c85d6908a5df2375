/** What a connection gets from the proxy (index.ts builds it; server/acceptor.ts hands it over). */
import type { ConnectionOwner, Refusal, ShapedConnection } from '../shaping/shaper.js';
import type { OwnedRead } from '../shaping/socket-flow.js';
import type { Identity } from '../identify/matcher.js';
import type { Logger } from '../log.js';
import type { Flow } from '../shaping/flow.js';
import type { SchedNode } from '../shaping/scheduler.js';
import type { Dir } from '../shaping/scope.js';
import type { DataPlane } from '../config/types.js';
import type { NativeRelay } from '../native/relay.js';
import type { Socket } from 'node:net';
import type { Target } from '../upstream/target.js';
import type { ServerTls } from './tls.js';
import type { Analyzer, Stages } from './stages.js';
import type { ConnectionInfo } from '../channels.js';
import type { AppUpstream } from '../upstream/upstreams.js';

/** What a connection needs of the shaper: customer matching and admission, its flows, and the release. */
export interface ShapingPort {
  /** `owner`: what a quota closes when the customer is over it with nowhere to go */
  admit(who: Identity, owner: ConnectionOwner): Promise<ShapedConnection | null | Refusal>;
  /** how `who` is matched, for debug logs */
  explain(who: Identity): { matched: string | undefined; skipped: string[] };
  stages(sc: ShapedConnection, label: string): Stages;
  /** A read path for the backend socket straight into the down stage. */
  backendRead(): OwnedRead;
  release(sc: ShapedConnection): void;
  /** Native flows: hang them under the connection's customer; detach them at close. */
  attachFlows(sc: ShapedConnection, label: string, flows: Record<Dir, Flow>): { nodes: Record<Dir, SchedNode>; wake: Record<Dir, () => void> };
  detach(nodes: Record<Dir, SchedNode>): void;
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
  /** The native data plane (undefined: not built, or dataPlane "js" everywhere). */
  readonly native: NativePort | undefined;
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
  /**
   * Whether the client address a PROXY header gave is refused on the app (apps[].allow / deny);
   * a refusal is counted and logged by the caller's side.
   */
  readonly denied: (app: string, address: string) => boolean;
}

/** What a connection needs of the native data plane: the engine's hand-over, and the config's choice. */
export interface NativePort {
  /** the top-level `dataPlane` (an app may override it) */
  readonly plane: DataPlane;
  relay(client: Socket, backend: Socket, options: { prepend?: { up?: Buffer | null }; shaped?: { up?: boolean; down?: boolean } }): NativeRelay;
}
