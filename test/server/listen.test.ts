/**
 * The listen backlog: while the listening process does not accept (its loop is blocked), the kernel
 * completes and queues up to LISTEN_BACKLOG connections, whether the process bound the port or
 * listens on a descriptor an upgrade handed it (Node's listen({ fd }) would listen again with 511,
 * shrinking the queue the old and new process share). Connections beyond the backlog would get no
 * SYN-ACK: their connect() would not complete until the process accepts again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { LISTEN_BACKLOG, RetryingListen } from '../../src/server/listen.js';
import { silentLogger } from '../../src/log.js';
import { cleanup } from '../helpers.js';

/** More than Node's default backlog (511) and well within ours. */
const CONNECTIONS = 800;
const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));

/**
 * A child that listens through RetryingListen (binding 127.0.0.1:0, or on its fd 4), says its port on
 * fd 3, then blocks its event loop (a synchronous `read` of its stdin) until it is sent a line.
 */
const CHILD = `
  const [listenUrl, logUrl, mode] = process.argv.slice(1);
  const { RetryingListen } = await import(listenUrl);
  const { silentLogger } = await import(logUrl);
  const net = await import('node:net'), fs = await import('node:fs'), cp = await import('node:child_process');
  const l = new RetryingListen(net.createServer(() => {}), '127.0.0.1', 0, silentLogger(), 'test');
  if (mode === 'inherited') l.inheritedFd = 4;
  await l.start();
  fs.writeSync(3, l.boundPort + '\\n');
  fs.closeSync(3);
  cp.execFileSync('sh', ['-c', 'read line'], { stdio: ['inherit', 'ignore', 'inherit'] });
  process.exit(0);`;

async function blockedListener(t: import('node:test').TestContext, mode: 'bound' | 'inherited') {
  const urls = [new URL('../../src/server/listen.js', import.meta.url).href, new URL('../../src/log.js', import.meta.url).href];
  let parent: RetryingListen | undefined;
  const stdio: (number | 'pipe' | 'inherit')[] = ['pipe', 'inherit', 'inherit', 'pipe'];
  if (mode === 'inherited') {
    // The old process: listens with the backlog, hands the descriptor over, then closes its copy.
    parent = new RetryingListen(net.createServer(), '127.0.0.1', 0, silentLogger(), 'test');
    await parent.start();
    stdio.push((parent.server as net.Server & { _handle: { fd: number } })._handle.fd);
  }
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, ...urls, mode], { stdio });
  cleanup(t, () => {
    child.kill('SIGKILL');
    return new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(undefined)));
  });
  const port = await new Promise<number>((resolve, reject) => {
    (child.stdio[3] as Readable).once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before it listened`)));
  });
  if (parent) {
    assert.equal(port, parent.boundPort, 'the same socket');
    await parent.close();
  }
  return { port, release: () => (child.stdin as Writable).write('go\n') };
}

/** Opens `n` connections; resolves with how many connected before `until` resolves, then closes them. */
async function connectedWhile(port: number, n: number, until: Promise<unknown>): Promise<number> {
  const sockets: net.Socket[] = [];
  let connected = 0;
  const all = new Promise<void>((resolve) => {
    for (let i = 0; i < n; i++) {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.once('connect', () => ++connected === n && resolve());
      sockets.push(s);
    }
  });
  await Promise.race([all, until]);
  const count = connected;
  for (const s of sockets) s.destroy();
  return count;
}

for (const mode of ['bound', 'inherited'] as const) {
  test(`listen backlog (${mode}): ${CONNECTIONS} connections complete while the process does not accept`, { skip: somaxconn < CONNECTIONS ? `net.core.somaxconn is ${somaxconn}` : false }, async (t) => {
    assert.ok(LISTEN_BACKLOG >= CONNECTIONS);
    const { port, release } = await blockedListener(t, mode);
    // With a 511 backlog the 513th handshake gets no SYN-ACK while the child is blocked: all never
    // connect, and after 15 s the count says how many did.
    const connected = await connectedWhile(port, CONNECTIONS, new Promise((r) => setTimeout(r, 15_000).unref()));
    release();
    assert.equal(connected, CONNECTIONS, 'every connection completed in the kernel backlog');
  });
}
