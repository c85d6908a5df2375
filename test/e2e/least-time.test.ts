/**
 * balance "least-time" over real sockets: two TLS targets (their connect time includes the
 * handshake, which a target can hold back), the proxy on the injected clock so the estimates decay
 * only when the test says; counts, not timings, are asserted.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { ManualClock } from '../../src/clock.js';
import { answerWithHash, app, collected, config, pattern, pemFile, proxyFor, rawServer, roundTrip } from '../helpers.js';

/** A TLS target whose handshake starts `delay.ms` after the TCP accept. */
async function slowTlsTarget(t: TestContext): Promise<{ address: string; delay: { ms: number } }> {
  const context = tls.createSecureContext({ cert: pemFile('backend').pem, key: pemFile('backend-key').pem });
  const delay = { ms: 0 };
  const { address } = await rawServer(t, (raw) => {
    const serve = (): void => {
      const s = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
      s.on('error', () => {});
      answerWithHash(s);
    };
    if (delay.ms > 0) setTimeout(serve, delay.ms);
    else serve();
  });
  return { address, delay };
}

test('least-time: a target made 50 ms slower to connect gets no new connections, and gets them again once it recovered', async (t) => {
  const fast = await slowTlsTarget(t);
  const slow = await slowTlsTarget(t);
  const clock = new ManualClock();
  const proxy = await proxyFor(
    t,
    config([app('lt', [fast.address, slow.address], { balance: 'least-time', targetTls: { ca: pemFile('ca'), rejectUnauthorized: true } })], {
      admin: { host: '127.0.0.1', port: 0 },
      // no health check while the test runs (the clock is moved by minutes)
      health: { interval: 3_600_000, timeout: 500, unhealthyAfter: 2, healthyAfter: 1 },
    }),
    { clock },
  );
  /** Client connections proxied to each target so far. */
  const served = (x: { address: string }): number => proxy.upstreams.byAddress.get(x.address)!.total;
  const port = proxy.portOf('lt');
  const data = pattern(1000);
  /** One client connection, its bytes checked; then `step` ms pass on the proxy's clock. */
  const one = async (step: number): Promise<void> => {
    assert.equal((await roundTrip(port, data)).toString(), collected(data));
    clock.advance(step);
  };

  for (let i = 0; i < 10; i++) await one(5000);
  assert.ok(served(fast) > 0 && served(slow) > 0, `both targets in use while equal (${served(fast)}, ${served(slow)})`);

  slow.delay.ms = 50;
  // Both estimates decayed to nearly nothing: the next two connections take one target each, and
  // the one on the slow target measures it...
  clock.advance(100_000);
  const before = served(slow);
  await one(100);
  await one(100);
  assert.equal(served(slow), before + 1, 'the slow target was dialed once');
  // ...and from then on, for the next 2 s, new connections go to the fast one (ten, 200 ms apart:
  // fewer samples of the fast target, fewer chances for a loaded machine to slow one of them past 50 ms).
  for (let i = 0; i < 10; i++) await one(200);
  assert.equal(served(slow), before + 1, 'no new connection to the slow target within 2 s');

  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/status`);
  const status = (await res.json()) as { apps: { balance: string; targets: { address: string; latency: { connectMs: number } }[] }[] };
  assert.equal(status.apps[0]!.balance, 'least-time');
  const shown = Object.fromEntries(status.apps[0]!.targets.map((x) => [x.address, x.latency.connectMs]));
  assert.ok(shown[slow.address]! >= 40 && shown[slow.address]! > shown[fast.address]!, `/status shows the estimates (${JSON.stringify(shown)})`);
  const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  const line = new RegExp(`^shaper_target_latency_seconds\\{app="lt",target="${slow.address}",phase="connect"\\} (\\S+)$`, 'm').exec(metrics);
  assert.ok(line, 'the slow target has a connect latency series');
  // In seconds, as /status shows it in ms (the proxy's clock stood still in between); at least the 50 ms delay's 40.
  const seconds = Number(line[1]);
  assert.ok(seconds >= 0.04 && Math.abs(seconds * 1000 - shown[slow.address]!) < 1, `metric ${seconds} s, /status ${shown[slow.address]} ms`);

  // Recovered: its estimate decays while it is left alone, it is probed, and shares the load again.
  slow.delay.ms = 0;
  clock.advance(60_000);
  const back = served(slow);
  for (let i = 0; i < 20; i++) await one(5000);
  assert.ok(served(slow) - back >= 5, `the recovered target takes connections again (${served(slow) - back} of 20)`);
});
