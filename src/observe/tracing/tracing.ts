/**
 * Connection tracing on and off: with `tracing` set, the OpenTelemetry modules are loaded (a
 * dynamic import, so a proxy without tracing never loads them, subscribes to nothing and pays
 * nothing) and a ConnectionTracer (otel.ts) listens to the lifecycle events. A reload with other
 * `tracing` settings retires the old tracer (it finishes the connections it traces, exports them
 * and shuts down) and starts a new one; shutdown exports what is finished, within a bound.
 */
import type { TracingConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import type { ConnectionTracer } from './otel.js';

/** How long shutdown waits for the last spans to be exported. */
export const TRACING_SHUTDOWN_MS = 3000;

export class Tracing {
  #tracer: ConnectionTracer | undefined;
  #retired = new Set<ConnectionTracer>();
  /** the settings in force, as JSON ('' for off) */
  #key = '';
  /** the last change being applied (a load of the modules) */
  #pending: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    readonly owner: object,
    readonly log: Logger,
  ) {}

  /** The tracer in force (tests). */
  get tracer(): ConnectionTracer | undefined {
    return this.#tracer;
  }

  /** Apply `tracing` (at start and at each config change); resolves once it is in force. */
  configure(config: TracingConfig | undefined): Promise<void> {
    const key = config ? JSON.stringify(config) : '';
    if (key === this.#key) return this.#pending;
    this.#key = key;
    this.#pending = this.#pending.then(() => this.#apply(config));
    return this.#pending;
  }

  async #apply(config: TracingConfig | undefined): Promise<void> {
    if (this.#stopped) return;
    const old = this.#tracer;
    this.#tracer = undefined;
    for (const t of this.#retired) if (t.open === 0) this.#retired.delete(t); // shut down by themselves
    if (old) {
      this.#retired.add(old);
      old.retire();
    }
    if (!config) {
      if (old) this.log.info('tracing off');
      return;
    }
    try {
      const { ConnectionTracer } = await import('./otel.js');
      if (this.#stopped) return;
      this.#tracer = new ConnectionTracer(this.owner, config, this.log);
      this.log.info({ otlp: config.otlp, sample: config.sample }, 'tracing connections (OpenTelemetry, OTLP/HTTP)');
    } catch (err) {
      this.log.error({ error: (err as Error).message }, 'cannot load OpenTelemetry: tracing stays off');
    }
  }

  /** Stop tracing: every tracer exports what it has, all within TRACING_SHUTDOWN_MS. */
  async stop(): Promise<void> {
    await this.#pending;
    this.#stopped = true;
    const all = [...this.#retired, ...(this.#tracer ? [this.#tracer] : [])];
    this.#tracer = undefined;
    this.#retired.clear();
    await Promise.all(all.map((t) => t.shutdown(TRACING_SHUTDOWN_MS)));
  }
}
