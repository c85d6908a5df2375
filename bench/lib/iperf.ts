/**
 * iperf3, when the machine has it (Debian package iperf3; the bench never installs it). The
 * server runs as a child for the whole iperf part; each client run is `iperf3 -c ... -J`.
 */
import { execFile } from 'node:child_process';
import { freePort, spawnChild, waitForPort, which, type Child } from './children.js';

export interface IperfServer {
  child: Child;
  port: number;
}

export function iperfPath(): string | undefined {
  return which('iperf3');
}

/**
 * A persistent server (not `-1`): the proxy's start-up health check and our readiness probe each
 * open a connection to it, and a one-off server would spend its single test on the first of them.
 */
export async function startIperfServer(bin: string): Promise<IperfServer> {
  const port = await freePort();
  const child = spawnChild('iperf3 -s', bin, ['-s', '-B', '127.0.0.1', '-p', String(port)]);
  try {
    await waitForPort(port, child);
  } catch (err) {
    await child.kill();
    throw err;
  }
  return { child, port };
}

export interface IperfResult {
  bitsPerSecondReceived: number;
  bitsPerSecondSent: number;
  seconds: number;
}

/** One client run against `port` (the server, or a proxy in front of it); `reverse`: server sends. */
export function runIperfClient(bin: string, port: number, seconds: number, reverse = false): Promise<IperfResult> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: (seconds + 20) * 1000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      let report: {
        error?: string;
        end?: { sum_received?: { bits_per_second?: number; seconds?: number }; sum_sent?: { bits_per_second?: number } };
      };
      try {
        report = JSON.parse(stdout) as typeof report;
      } catch {
        reject(new Error(`iperf3 ${args.join(' ')}: ${err?.message ?? 'no JSON report'} ${stderr.trim()}`));
        return;
      }
      const received = report.end?.sum_received;
      if (report.error || !received?.bits_per_second) {
        reject(new Error(`iperf3 ${args.join(' ')}: ${report.error ?? 'no sum_received in the report'}`));
        return;
      }
      resolve({
        bitsPerSecondReceived: received.bits_per_second,
        bitsPerSecondSent: report.end?.sum_sent?.bits_per_second ?? NaN,
        seconds: received.seconds ?? seconds,
      });
    });
  });
}
