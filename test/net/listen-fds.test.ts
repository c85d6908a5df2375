/**
 * listeningFd() reads `server._handle.fd`, a private Node internal: these tests pin what an upgrade
 * relies on. It is the listening socket's descriptor; a process handed a copy (spawn's stdio) and
 * listening on it with `listen({ fd })` serves the port, also after this process closed its server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { InheritedListeners, listeningFd } from '../../src/net/listen-fds.js';
import { cleanup, connect, readAll } from '../helpers.js';

/** A server answering `word` and closing, on a free loopback port. */
async function answering(word: string): Promise<net.Server> {
  const server = net.createServer((s) => s.end(`${word}\n`));
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => r()));
  return server;
}

async function answer(port: number): Promise<string> {
  return (await readAll(await connect(port))).toString();
}

test('listeningFd: the listening socket; a process handed a copy serves the port after this one closes it', async (t) => {
  const server = await answering('old');
  cleanup(t, () => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const fd = listeningFd(server);
  assert.ok(Number.isInteger(fd) && fd > 2, `a descriptor (${fd})`);
  assert.match(fs.readlinkSync(`/proc/self/fd/${fd}`), /^socket:\[\d+\]$/);
  assert.equal(fs.fstatSync(fd).isSocket(), true);
  // The child listens on fd 4 (its copy), says so on fd 3, and answers "new".
  const script = `
    const net = require('node:net'), fs = require('node:fs');
    const s = net.createServer((c) => c.end('new\\n'));
    s.listen({ fd: 4 }, () => { fs.writeSync(3, s.address().port + '\\n'); fs.closeSync(3); });
    process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'inherit', 'inherit', 'pipe', fd] });
  cleanup(t, () => {
    child.kill('SIGKILL');
    return new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(undefined)));
  });
  const childPort = await new Promise<number>((resolve) => (child.stdio[3] as Readable).once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  assert.equal(childPort, port, 'the same socket: the same port');
  // Closing our server closes our descriptor only: the socket keeps listening in the child.
  await new Promise<void>((r) => server.close(() => r()));
  assert.equal(listeningFd(server), -1, 'no descriptor once closed');
  assert.equal(await answer(port), 'new\n');
  assert.equal(await answer(port), 'new\n');
});

test('listeningFd: -1 for a server that does not listen', () => {
  assert.equal(listeningFd(net.createServer()), -1);
});

test('InheritedListeners: each descriptor is taken once; closeRest closes the ones nobody took', () => {
  const a = fs.openSync('/dev/null', 'r');
  const b = fs.openSync('/dev/null', 'r');
  const inherited = new InheritedListeners([
    { key: 'app:127.0.0.1|5001', fd: a },
    { key: 'admin:127.0.0.1:9900', fd: b },
  ]);
  try {
    assert.equal(inherited.take('app:127.0.0.1|5001'), a);
    assert.equal(inherited.take('app:127.0.0.1|5001'), undefined, 'taken already');
    assert.equal(inherited.take('app:127.0.0.1|5002'), undefined, 'never handed over');
    assert.deepEqual(inherited.closeRest(), ['admin:127.0.0.1:9900']);
    assert.throws(() => fs.fstatSync(b), { code: 'EBADF' });
    assert.equal(fs.fstatSync(a).isCharacterDevice(), true, 'the taken one stays open');
  } finally {
    fs.closeSync(a);
  }
});
