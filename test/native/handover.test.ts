import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { handoverProblem, socketFd } from '../../src/native/handover.js';
import { listen, readBytes, relayed, skip } from './harness.js';

// socketFd() reads `socket._handle.fd`, a private Node internal: this pins what we rely on.
test('_handle.fd is the descriptor of a connected or accepted TCP socket, and -1 once destroyed', async (t) => {
  let dialed: (s: net.Socket) => void = () => {};
  const dialedP = new Promise<net.Socket>((r) => (dialed = r));
  const acceptedP = new Promise<net.Socket>((resolve) => {
    void listen(t, resolve).then(({ port }) => {
      const c = net.connect({ port, host: '127.0.0.1' });
      t.after(() => c.destroy());
      c.once('connect', () => dialed(c));
    });
  });
  const [accepted, d] = await Promise.all([acceptedP, dialedP]);
  for (const s of [accepted, d]) {
    const fd = socketFd(s);
    assert.ok(Number.isInteger(fd) && fd > 2, `a descriptor (${fd})`);
    assert.match(fs.readlinkSync(`/proc/self/fd/${fd}`), /^socket:\[\d+\]$/);
    assert.equal(fs.fstatSync(fd).isSocket(), true);
    assert.equal(handoverProblem(s), null);
  }
  // The two ends of one connection are different sockets; their local/remote ports say which is which.
  assert.notEqual(fs.readlinkSync(`/proc/self/fd/${socketFd(accepted)}`), fs.readlinkSync(`/proc/self/fd/${socketFd(d)}`));
  d.destroy();
  assert.equal(socketFd(d), -1, 'no handle after destroy()');
  assert.match(handoverProblem(d) ?? '', /destroyed/);
});

test('handing over refuses unflushed writes and TLS sockets', () => {
  const s = new net.Socket();
  assert.match(handoverProblem(s) ?? '', /descriptor|connecting/);
  assert.match(handoverProblem(Object.assign(new net.Socket(), { encrypted: true })) ?? '', /TLS/);
});

test('the JavaScript sockets are destroyed at the handover and nothing is sent: no FIN, no RST', { skip }, async (t) => {
  let frontSockets: net.Socket[] = [];
  const r = await relayed(t, {}, async (accepted, dialed) => {
    frontSockets = [accepted, dialed];
  });
  assert.ok(frontSockets.every((s) => s.destroyed), 'the front closed its JavaScript sockets');
  let serverEnded = false;
  let clientEnded = false;
  r.server.on('end', () => (serverEnded = true));
  r.client.on('end', () => (clientEnded = true));
  // A FIN from the destroy() would reach each end before any byte sent after it.
  const toServer = readBytes(r.server, 4);
  const toClient = readBytes(r.client, 4);
  r.client.write('ping');
  r.server.write('pong');
  assert.equal((await toServer).toString(), 'ping');
  assert.equal((await toClient).toString(), 'pong');
  assert.equal(serverEnded, false, 'the server saw no FIN');
  assert.equal(clientEnded, false, 'the client saw no FIN');
  assert.equal(r.relay.open, true);
  // And a second exchange after a full loop turn: still open both ways.
  const again = readBytes(r.client, 5);
  r.server.write('again');
  assert.equal((await again).toString(), 'again');
  assert.equal(clientEnded || serverEnded, false);
});
