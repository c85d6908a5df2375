/** The progress bar while a load measurement runs (cli-progress, on stderr so stdout stays the report). */
import cliProgress from 'cli-progress';
import type { Sample } from './engine.js';
import type { LoadStats } from './stats.js';

export interface Progress {
  update(s: Sample, total: LoadStats): void;
  stop(): void;
}

export function progressBar(label: string, seconds: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} s | conns {conns} | {rps} req/s | p99 {p99} ms | dropped {dropped} | errors {errors}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.ceil(seconds), 0, { conns: 0, rps: 0, p99: 0, dropped: 0, errors: 0 });
  return {
    update(s, total) {
      bar.update(Math.min(Math.floor(s.t), Math.ceil(seconds)), {
        conns: s.connections,
        rps: Math.round(s.requestsPerSecond),
        p99: total.latency.at(99).toFixed(2),
        dropped: total.dropped,
        errors: Object.values(total.errors).reduce((a, b) => a + b, 0),
      });
    },
    stop() {
      bar.stop();
    },
  };
}
