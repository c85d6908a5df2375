/**
 * What a load run counts, per target port: messages sent / answered / dropped, bytes both ways,
 * errors by kind and a latency histogram. Counting is plain field increments (hot path).
 */
import { LatencyHistogram, type Summary } from '../../../src/observe/histogram.js';

/** A stable name for what went wrong: the errno code when there is one. */
export function errorKind(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | undefined;
  if (e && typeof e.code === 'string' && e.code !== '') return e.code;
  if (e && typeof e.name === 'string' && e.name !== 'Error') return e.name;
  return 'other';
}

export class LoadStats {
  sent = 0;
  answered = 0;
  /** sent but never answered: in flight when the connection closed or the run stopped */
  dropped = 0;
  bytesSent = 0;
  bytesReceived = 0;
  connects = 0;
  readonly errors: Record<string, number> = {};
  readonly latency = new LatencyHistogram();

  error(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  /** Fold another port's counts into this one (for the total). */
  add(o: LoadStats): void {
    this.sent += o.sent;
    this.answered += o.answered;
    this.dropped += o.dropped;
    this.bytesSent += o.bytesSent;
    this.bytesReceived += o.bytesReceived;
    this.connects += o.connects;
    for (const [k, v] of Object.entries(o.errors)) this.errors[k] = (this.errors[k] ?? 0) + v;
    this.latency.add(o.latency);
  }

  summarize(seconds: number): StatsSummary {
    const per = (x: number) => (seconds > 0 ? x / seconds : 0);
    return {
      sent: this.sent,
      answered: this.answered,
      dropped: this.dropped,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      connects: this.connects,
      errors: { ...this.errors },
      errorCount: Object.values(this.errors).reduce((a, b) => a + b, 0),
      requestsPerSecond: per(this.answered),
      bytesPerSecond: per(this.bytesSent + this.bytesReceived),
      latencyMs: this.latency.summary(),
    };
  }

  destroy(): void {
    this.latency.destroy();
  }
}

export interface StatsSummary {
  sent: number;
  answered: number;
  dropped: number;
  bytesSent: number;
  bytesReceived: number;
  connects: number;
  errors: Record<string, number>;
  errorCount: number;
  /** answered messages per second */
  requestsPerSecond: number;
  /** bytes sent + received per second */
  bytesPerSecond: number;
  latencyMs: Summary;
}
