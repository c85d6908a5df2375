/**
 * The proxy's lifecycle events, named in one place (undici's lib/core/diagnostics.js). The data
 * path publishes and knows nobody: counters, histograms and the close log line subscribe in
 * observe/, and a channel without subscribers costs a property read.
 *
 * Channels are process-wide; several proxies in one process (tests, a bench) tell theirs apart by
 * `owner`, the token each proxy hands its connections and listeners.
 */
import diagnostics from 'node:diagnostics_channel';

/** What a subscriber may read of a connection (a Connection satisfies it). */
export interface ConnectionInfo {
  readonly id: number;
  readonly appName: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** the customer's tier, once the connection is shaped */
  readonly tier: string | undefined;
  readonly customer: string | undefined;
  readonly startedAt: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** ms its bytes waited in the shaper, both ways (undefined: unshaped) */
  readonly shaperWaitMs: number | undefined;
}

/** The one summary of a closed connection (its log line). */
export interface ConnectionSummary {
  id: number;
  app: string;
  client: string;
  target: string | undefined;
  customer?: string;
  tier?: string;
  /** the TLS server name the client asked for (apps with `tls` or `sniPreread`) */
  sni?: string;
  /** the subject of the client's verified certificate (apps with `tls.clientAuth`) */
  clientCert?: string;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  /** the proxy port the client connected to */
  port: number;
  /** targets the dial tried (failovers included) */
  dialAttempts?: number;
  /** ms to connect to the target, failovers included */
  connectMs?: number;
  /** ms from the target's accept to its first byte */
  firstByteMs?: number;
  /** ms the connection's bytes waited in the shaper, both ways (shaped connections) */
  shapingWaitMs?: number;
  reason: string;
  error?: string;
}

export interface Owned {
  /** the proxy the event belongs to */
  owner: object;
}
export interface OpenEvent extends Owned {
  conn: ConnectionInfo;
}
export interface TimedEvent extends Owned {
  conn: ConnectionInfo;
  ms: number;
}
export interface CloseEvent extends Owned {
  conn: ConnectionInfo;
  summary: ConnectionSummary;
}
export interface DialingEvent extends Owned {
  conn: ConnectionInfo;
  /** the target the balancer picked, "host:port" */
  target: string;
}
export interface RefusedEvent extends Owned {
  /** why the abuse limits or the descriptor budget refused it */
  reason: string;
  app: string;
  source: string | undefined;
}
export interface TargetFailedEvent extends Owned {
  conn: ConnectionInfo;
  app: string;
  target: string;
  error: Error;
}

/** A customer passed its quota (and moved to `then`, or lost its connections), or is back in its tier. */
export interface QuotaEvent extends Owned {
  customer: string;
  /** its own tier, whose quota it is */
  tier: string;
  then: string | null;
  state: 'exceeded' | 'released';
  /** bytes counted in the period when it happened, and the quota */
  used: number;
  bytes: number;
}
/** A tier's schedule window in force changed (`window` -1: none, its own caps). */
export interface WindowEvent extends Owned {
  tier: string;
  window: number;
}

export const channels = {
  /** accepted, before anything is read from it */
  open: diagnostics.channel('shaper-proxy:connection:open'),
  /** its customer and tier are known (PROXY header, TLS, admission passed): next is the dial */
  identified: diagnostics.channel('shaper-proxy:connection:identified'),
  /** the balancer picked a target and the dial of it begins (once per attempt) */
  dialing: diagnostics.channel('shaper-proxy:dial:attempt'),
  /** the target accepted, `ms` after dialing began (failovers included) */
  connected: diagnostics.channel('shaper-proxy:connection:connected'),
  /** the target's first byte arrived, `ms` after it accepted */
  firstByte: diagnostics.channel('shaper-proxy:connection:firstByte'),
  /** closed, once, with its summary */
  close: diagnostics.channel('shaper-proxy:connection:close'),
  /** refused at accept, before any dial (abuse limits, descriptor budget) */
  refused: diagnostics.channel('shaper-proxy:accept:refused'),
  /** a dial of one target failed (the dial goes on with the next one) */
  targetFailed: diagnostics.channel('shaper-proxy:dial:targetFailed'),
  /** a customer passed its quota, or its period ended while it was over it */
  quota: diagnostics.channel('shaper-proxy:plan:quota'),
  /** a tier's schedule window began or ended */
  window: diagnostics.channel('shaper-proxy:plan:window'),
} as const;

export type ChannelName = keyof typeof channels;

/** The message each channel carries. */
export interface ChannelEvents {
  open: OpenEvent;
  identified: OpenEvent;
  dialing: DialingEvent;
  connected: TimedEvent;
  firstByte: TimedEvent;
  close: CloseEvent;
  refused: RefusedEvent;
  targetFailed: TargetFailedEvent;
  quota: QuotaEvent;
  window: WindowEvent;
}

/** Publish on a channel; without subscribers the event object is not even looked at. */
export function publish<K extends ChannelName>(name: K, event: ChannelEvents[K]): void {
  const channel = channels[name];
  if (channel.hasSubscribers) channel.publish(event);
}

/**
 * Subscribe to several channels for one owner; returns the unsubscribe. Events of other owners
 * are not passed on.
 */
export function subscribe(owner: object, handlers: { [K in ChannelName]?: (event: ChannelEvents[K]) => void }): () => void {
  const subscribed: [diagnostics.Channel, (message: unknown) => void][] = [];
  for (const name of Object.keys(handlers) as ChannelName[]) {
    const handler = handlers[name] as (event: unknown) => void;
    const listener = (message: unknown): void => {
      if ((message as Owned).owner === owner) handler(message);
    };
    channels[name].subscribe(listener);
    subscribed.push([channels[name], listener]);
  }
  return () => {
    for (const [channel, listener] of subscribed) channel.unsubscribe(listener);
  };
}
