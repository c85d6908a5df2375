/**
 * A real redis-server for the fleet tests, on a free loopback port, with no persistence.
 * `stop()` kills it (the test may start it again on the same port with `start()`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { cleanup, freePort, waitFor } from './helpers.js';

export const REDIS_SERVER = 'redis-server';

/** Whether redis-server is on the PATH (.ci/run installs it when missing). */
export function haveRedis(): boolean {
  return spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' }).status === 0;
}

export class RedisServer {
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts one on a free port; the test context stops it afterwards. */
  static async start(t: TestContext, extraArgs: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), extraArgs);
    cleanup(t, () => server.stop());
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const proc = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...this.extraArgs], {
      stdio: 'ignore',
    });
    this.#proc = proc;
    this.#exited = new Promise((r) => proc.once('exit', () => r()));
    await waitFor(() => ping(this.port), 5000, `redis-server on port ${this.port}`);
  }

  /** SIGKILL: Redis vanishes the way a crash or a network cut looks to the proxies. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await this.#exited;
  }
}

/** True once the server answers PING. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    s.setTimeout(500, () => s.destroy());
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) s.end();
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(got.startsWith('+PONG')));
  });
}
