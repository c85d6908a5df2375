/**
 * redis-server and redis-benchmark, when the machine has them (Debian: redis-server, redis-tools;
 * the bench never installs them): a server on a free loopback port, and one benchmark run of GET
 * with `clients` connections, no pipelining, through whatever port is given (the server or a
 * middle in front of it).
 */
import { execFile } from 'node:child_process';
import { freePort, spawnChild, waitForPort, which, type Child } from './children.js';

export interface RedisTools {
  server: string;
  benchmark: string;
}

export function redisTools(): RedisTools | undefined {
  const server = which('redis-server');
  const benchmark = which('redis-benchmark');
  return server && benchmark ? { server, benchmark } : undefined;
}

export async function startRedis(bin: string): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = spawnChild('redis-server', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  try {
    await waitForPort(port, child);
  } catch (err) {
    await child.kill();
    throw err;
  }
  return { child, port };
}

export interface RedisRun {
  rps: number;
  p50: number;
  p99: number;
}

/** One `redis-benchmark -t get` run; latencies in ms. */
export function runRedisBenchmark(bin: string, port: number, clients: number, requests: number): Promise<RedisRun> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-c', String(clients), '-n', String(requests), '-t', 'get', '-q', '--csv'];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      const lines = stdout.trim().split('\n').map((l) => l.split(',').map((c) => c.replace(/"/g, '')));
      const head = lines.find((l) => l[0] === 'test');
      const row = lines.find((l) => l[0] === 'GET');
      if (err || !head || !row) {
        reject(new Error(`redis-benchmark ${args.join(' ')}: ${err?.message ?? 'no GET row'} ${stderr.trim()}`.slice(0, 500)));
        return;
      }
      const col = (name: string) => Number(row[head.indexOf(name)]);
      resolve({ rps: col('rps'), p50: col('p50_latency_ms'), p99: col('p99_latency_ms') });
    });
  });
}
