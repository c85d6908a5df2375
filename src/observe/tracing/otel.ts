/**
 * The OpenTelemetry side of tracing, loaded (dynamic import) only when `tracing` is set: a tracer
 * provider exporting OTLP/HTTP JSON in batches, and the subscriber that turns a traced
 * connection's lifecycle events (src/channels.ts) into spans:
 *
 *   connection (SERVER)          accept -> close: app, customer, tier, target, bytes, close reason
 *     identify                   accept -> customer and tier known (PROXY header, TLS, admission)
 *     dial (CLIENT), per attempt balancer's pick -> target accepted or failed (failover visible)
 *     shaping wait               target accepted -> close, on shaped connections; shaper.wait_ms
 *                                is the time its bytes waited in the shaper, both ways
 *
 * Raw TCP carries no trace context (neither a PROXY v2 TLV nor a header is read for one), so every
 * trace starts here. Whether a connection is traced is decided once, at accept: an untraced one
 * costs a random number and a Map miss per event, and allocates nothing.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_NETWORK_TRANSPORT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import { subscribe, type CloseEvent, type ConnectionInfo, type DialingEvent, type OpenEvent, type TargetFailedEvent } from '../../channels.js';
import type { TracingConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import { VERSION } from '../../version.js';

/** What is kept of a traced connection until it closes. */
interface Traced {
  span: Span;
  ctx: Context;
  /** epoch ms of the accept (the connection's and the identify span's start) */
  at: number;
  identified: boolean;
  /** the dial attempt under way */
  dial: Span | undefined;
  attempt: number;
  shaping: Span | undefined;
}

/**
 * Every start and end is given (epoch ms from the monotonic clock): left to itself, the SDK anchors
 * each span to Date.now(), whole milliseconds, so two spans a few µs apart could come out in the
 * wrong order (a failover's second dial before the first one's end).
 */
const now = (): number => performance.timeOrigin + performance.now();

/** The exporter, reporting failed exports once per failing spell (a collector that is down fails every batch). */
class ReportingExporter implements SpanExporter {
  #failing = false;
  constructor(
    readonly inner: SpanExporter,
    readonly log: Logger,
    readonly url: string,
  ) {}

  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.inner.export(spans, (result) => {
      const failed = result.code !== 0;
      if (failed && !this.#failing) this.log.warn({ otlp: this.url, spans: spans.length, error: result.error?.message }, 'cannot export spans (not logged again until an export succeeds)');
      else if (!failed && this.#failing) this.log.info({ otlp: this.url }, 'spans exported again');
      this.#failing = failed;
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * One tracing setup (a provider and its subscription). A reload with other `tracing` settings
 * retires it: it traces no new connection, finishes the ones it traces, then shuts down.
 */
export class ConnectionTracer {
  readonly #provider: BasicTracerProvider;
  readonly #tracer;
  readonly #traced = new Map<ConnectionInfo, Traced>();
  readonly #sample: number;
  readonly #unsubscribe: () => void;
  #retired = false;
  #down: Promise<void> | undefined;

  constructor(owner: object, config: TracingConfig, log: Logger) {
    this.#sample = config.sample;
    const exporter = new OTLPTraceExporter({ url: config.otlp, timeoutMillis: 10_000 });
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.service, [ATTR_SERVICE_VERSION]: VERSION }),
      // The ratio is applied at accept (below), before anything is allocated: what reaches the SDK is traced.
      sampler: new AlwaysOnSampler(),
      spanProcessors: [new BatchSpanProcessor(new ReportingExporter(exporter, log, config.otlp), { scheduledDelayMillis: config.flush, exportTimeoutMillis: 10_000 })],
    });
    this.#tracer = this.#provider.getTracer('shaper-proxy', VERSION);
    this.#unsubscribe = subscribe(owner, {
      open: (e) => this.#open(e),
      identified: (e) => this.#identified(e.conn),
      dialing: (e) => this.#dialing(e),
      targetFailed: (e) => this.#targetFailed(e),
      connected: (e) => this.#connected(e.conn),
      close: (e) => this.#close(e),
    });
  }

  /** Connections being traced. */
  get open(): number {
    return this.#traced.size;
  }

  #open({ conn }: OpenEvent): void {
    if (this.#retired || this.#sample <= 0 || Math.random() >= this.#sample) return;
    const at = now();
    const span = this.#tracer.startSpan(
      'connection',
      {
        kind: SpanKind.SERVER,
        startTime: at,
        attributes: { 'shaper.app': conn.appName, 'shaper.connection.id': conn.id, [ATTR_NETWORK_TRANSPORT]: 'tcp' },
      },
      ROOT_CONTEXT,
    );
    this.#traced.set(conn, { span, ctx: trace.setSpan(ROOT_CONTEXT, span), at, identified: false, dial: undefined, attempt: 0, shaping: undefined });
  }

  #identified(conn: ConnectionInfo): void {
    const t = this.#traced.get(conn);
    if (!t) return;
    t.identified = true;
    this.#child(t, 'identify', t.at, identity(conn)).end(now());
  }

  #dialing({ conn, target }: DialingEvent): void {
    const t = this.#traced.get(conn);
    if (!t) return;
    t.dial?.end(now());
    const colon = target.lastIndexOf(':');
    t.dial = this.#tracer.startSpan(
      'dial',
      {
        kind: SpanKind.CLIENT,
        startTime: now(),
        attributes: {
          'shaper.target': target,
          'shaper.dial.attempt': ++t.attempt,
          [ATTR_SERVER_ADDRESS]: target.slice(0, colon).replace(/^\[|\]$/g, ''),
          [ATTR_SERVER_PORT]: Number(target.slice(colon + 1)),
        },
      },
      t.ctx,
    );
  }

  #targetFailed({ conn, error }: TargetFailedEvent): void {
    const t = this.#traced.get(conn);
    if (!t?.dial) return;
    fail(t.dial, (error as NodeJS.ErrnoException).code ?? 'error', error.message);
    t.dial.end(now());
    t.dial = undefined;
  }

  #connected(conn: ConnectionInfo): void {
    const t = this.#traced.get(conn);
    if (!t) return;
    t.dial?.end(now());
    t.dial = undefined;
    if (conn.tier !== undefined) t.shaping = this.#child(t, 'shaping wait', now(), { 'shaper.tier': conn.tier });
  }

  #close({ conn, summary }: CloseEvent): void {
    const t = this.#traced.get(conn);
    if (!t) return;
    this.#traced.delete(conn);
    const end = now(); // the children end with the connection, not after it
    const reason = summary.reason;
    if (!t.identified) {
      const span = this.#child(t, 'identify', t.at, identity(conn));
      fail(span, reason, summary.error ?? reason);
      span.end(end);
    }
    if (t.dial) {
      fail(t.dial, reason, summary.error ?? reason);
      t.dial.end(end);
    }
    if (t.shaping) {
      t.shaping.setAttribute('shaper.wait_ms', summary.shapingWaitMs ?? 0);
      t.shaping.end(end);
    }
    const span = t.span;
    span.setAttributes({
      ...identity(conn),
      ...(summary.target !== undefined ? { 'shaper.target': summary.target } : {}),
      ...(summary.sni !== undefined ? { 'tls.server_name': summary.sni } : {}),
      'shaper.bytes_up': summary.bytesUp,
      'shaper.bytes_down': summary.bytesDown,
      'shaper.close_reason': reason,
      'shaper.port': summary.port,
      ...(summary.dialAttempts !== undefined ? { 'shaper.dial.attempts': summary.dialAttempts } : {}),
      ...(summary.connectMs !== undefined ? { 'shaper.connect_ms': summary.connectMs } : {}),
      ...(summary.firstByteMs !== undefined ? { 'shaper.first_byte_ms': summary.firstByteMs } : {}),
      ...(summary.shapingWaitMs !== undefined ? { 'shaper.wait_ms': summary.shapingWaitMs } : {}),
    });
    if (summary.error !== undefined) fail(span, reason, summary.error);
    span.end(end);
    if (this.#retired && this.#traced.size === 0) void this.shutdown();
  }

  #child(t: Traced, name: string, startTime: number, attributes: Attributes): Span {
    return this.#tracer.startSpan(name, { startTime, attributes }, t.ctx);
  }

  /** Trace no new connection; shut down once the traced ones are closed (or at shutdown()). */
  retire(): void {
    this.#retired = true;
    if (this.#traced.size === 0) void this.shutdown();
  }

  /** Export what is finished and stop, waiting at most `boundMs`. */
  shutdown(boundMs = 3000): Promise<void> {
    if (!this.#down) {
      this.#retired = true;
      this.#unsubscribe();
      this.#down = this.#provider.shutdown().catch(() => {});
    }
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs).unref()));
    return Promise.race([this.#down, bound]).finally(() => clearTimeout(timer));
  }

  /** Send the finished spans now (tests, and a reload's retiring setup). */
  flush(): Promise<void> {
    return this.#provider.forceFlush();
  }
}

/** Who the connection is: the customer and tier once it is identified, and the client. */
function identity(conn: ConnectionInfo): Attributes {
  return {
    ...(conn.customer !== undefined ? { 'shaper.customer': conn.customer } : {}),
    ...(conn.tier !== undefined ? { 'shaper.tier': conn.tier } : {}),
    [ATTR_CLIENT_ADDRESS]: conn.clientAddress,
    [ATTR_CLIENT_PORT]: conn.clientPort,
  };
}

function fail(span: Span, type: string, message: string): void {
  span.setAttribute(ATTR_ERROR_TYPE, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}
