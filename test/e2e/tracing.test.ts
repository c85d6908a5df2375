/**
 * Tracing end to end: real sockets through the proxy, spans exported by the real OpenTelemetry
 * OTLP/HTTP exporter to a small OTLP receiver on loopback, which decodes what it was sent.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { channels } from '../../src/channels.js';
import type { TracingConfig } from '../../src/config/types.js';
import { app, backendFor, captureLogger, cleanup, config, connect, echoesExactly, freePort, pattern, proxyFor, readAll, tier, waitFor } from '../helpers.js';

/** An OTLP/HTTP JSON attribute value, as the exporter writes it. */
type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: AnyValue }[];
  status?: { code?: number; message?: string };
}
interface Received {
  span: OtlpSpan;
  attrs: Record<string, string | number | boolean | undefined>;
  resource: Record<string, string | number | boolean | undefined>;
}

function values(list: { key: string; value: AnyValue }[] = []): Record<string, string | number | boolean | undefined> {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const { key, value } of list) out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ?? value.boolValue;
  return out;
}

/** A receiver of POST /v1/traces (OTLP/HTTP JSON, gzip or not): every span it got, decoded. */
async function otlpReceiver(t: TestContext): Promise<{ url: string; spans: Received[]; posts: number }> {
  const got = { url: '', spans: [] as Received[], posts: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const doc = JSON.parse(body.toString('utf8')) as { resourceSpans: { resource?: { attributes: [] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
      got.posts++;
      for (const rs of doc.resourceSpans) {
        const resource = values(rs.resource?.attributes);
        for (const ss of rs.scopeSpans) for (const span of ss.spans) got.spans.push({ span, attrs: values(span.attributes), resource });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup(t, () => new Promise((resolve) => server.close(resolve)));
  got.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`;
  return got;
}

/** Waits for what `fn` finds (bounded), and hands it over defined. */
async function found<T>(fn: () => T | undefined, what: string): Promise<T> {
  return (await waitFor(fn, 5000, what))!;
}

const tracing = (otlp: string, sample = 1): TracingConfig => ({ otlp, sample, flush: 20, service: 'edge-proxy' });

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

test('tracing: a traced connection is one span with identify, both dial attempts of a failover and the shaping wait as children', async (t) => {
  const receiver = await otlpReceiver(t);
  const live = await backendFor(t, 'echo');
  const dead = `127.0.0.1:${await freePort()}`; // nothing listens: the dial is refused
  const { log, lines } = captureLogger();
  const proxy = await proxyFor(
    t,
    config([app('web', [dead, live.address])], {
      tiers: { gold: tier('gold', { connection: { down: 50_000_000, up: 50_000_000 } }) },
      customers: [{ id: 'acme', tier: 'gold', match: { sources: ['127.0.0.1'] } }],
      tracing: tracing(receiver.url),
    }),
    { backends: [live], log },
  );
  const data = pattern(64 * 1024, 3);
  const c = await connect(proxy.portOf('web'));
  await echoesExactly(c, data);
  const rest = readAll(c);
  c.end();
  await rest;
  const closed = await found(() => lines.find((l) => l['msg'] === 'connection closed'), 'the close line');

  const root = await found(() => receiver.spans.find((s) => s.span.name === 'connection'), 'the connection span');
  const children = await found(() => {
    const all = receiver.spans.filter((s) => s.span.parentSpanId === root.span.spanId);
    return all.length >= 4 ? all : undefined;
  }, 'its four child spans');

  assert.equal(root.span.kind, SPAN_KIND_SERVER);
  assert.ok(!root.span.parentSpanId, 'the trace starts at the proxy');
  assert.equal(root.resource['service.name'], 'edge-proxy');
  assert.equal(root.attrs['shaper.app'], 'web');
  assert.equal(root.attrs['shaper.customer'], 'acme');
  assert.equal(root.attrs['shaper.tier'], 'gold');
  assert.equal(root.attrs['shaper.target'], live.address);
  assert.equal(root.attrs['shaper.bytes_up'], data.length);
  assert.equal(root.attrs['shaper.bytes_down'], data.length);
  assert.equal(root.attrs['shaper.close_reason'], closed['reason']);
  assert.equal(root.attrs['shaper.dial.attempts'], 2);
  assert.equal(root.attrs['client.address'], '127.0.0.1');
  assert.equal(root.attrs['shaper.connection.id'], closed['id']);

  for (const s of children) {
    assert.equal(s.span.traceId, root.span.traceId);
    assert.ok(BigInt(s.span.startTimeUnixNano) >= BigInt(root.span.startTimeUnixNano) && BigInt(s.span.endTimeUnixNano) <= BigInt(root.span.endTimeUnixNano), `${s.span.name} within the connection`);
  }
  assert.deepEqual(children.map((s) => s.span.name).sort(), ['dial', 'dial', 'identify', 'shaping wait']);
  const identify = children.find((s) => s.span.name === 'identify')!;
  assert.equal(identify.attrs['shaper.customer'], 'acme');
  assert.equal(identify.span.startTimeUnixNano, root.span.startTimeUnixNano, 'identify runs from the accept');

  const dials = children.filter((s) => s.span.name === 'dial').sort((a, b) => Number(a.attrs['shaper.dial.attempt']) - Number(b.attrs['shaper.dial.attempt']));
  assert.deepEqual(dials.map((d) => [d.attrs['shaper.dial.attempt'], d.attrs['shaper.target'], d.span.kind]), [[1, dead, SPAN_KIND_CLIENT], [2, live.address, SPAN_KIND_CLIENT]]);
  assert.equal(dials[0]!.span.status?.code, STATUS_ERROR, 'the refused attempt failed');
  assert.equal(dials[0]!.attrs['error.type'], 'ECONNREFUSED');
  assert.notEqual(dials[1]!.span.status?.code, STATUS_ERROR);
  assert.equal(dials[1]!.attrs['server.port'], live.port);
  assert.ok(BigInt(dials[0]!.span.endTimeUnixNano) <= BigInt(dials[1]!.span.startTimeUnixNano), 'failover: the second attempt after the first');

  const shaping = children.find((s) => s.span.name === 'shaping wait')!;
  assert.equal(typeof shaping.attrs['shaper.wait_ms'], 'number');
  assert.equal(shaping.attrs['shaper.wait_ms'], closed['shapingWaitMs'] ?? 0);
});

test('tracing: a refused connection ends its identify span and the connection span in error; unshaped ones have no shaping wait', async (t) => {
  const receiver = await otlpReceiver(t);
  const live = await backendFor(t, 'echo');
  const dead = `127.0.0.1:${await freePort()}`;
  const proxy = await proxyFor(t, config([app('web', [live.address]), app('down', [dead])], { tracing: tracing(receiver.url) }), { backends: [live] });
  const c = await connect(proxy.portOf('down'));
  await readAll(c); // closed by the proxy: no target
  const root = await found(() => receiver.spans.find((s) => s.span.name === 'connection'), 'the connection span');
  assert.equal(root.attrs['shaper.close_reason'], 'no_target');
  assert.equal(root.span.status?.code, STATUS_ERROR);
  const children = await found(() => {
    const all = receiver.spans.filter((s) => s.span.parentSpanId === root.span.spanId);
    return all.length >= 2 ? all : undefined;
  }, 'identify and the dial');
  assert.deepEqual(children.map((s) => s.span.name).sort(), ['dial', 'identify']);
  assert.equal(children.find((s) => s.span.name === 'dial')!.attrs['error.type'], 'ECONNREFUSED');

  const ok = await connect(proxy.portOf('web'));
  await echoesExactly(ok, Buffer.from('plain'));
  ok.end();
  await readAll(ok);
  const plain = await found(() => receiver.spans.find((s) => s.span.name === 'connection' && s.attrs['shaper.app'] === 'web'), 'the unshaped connection');
  assert.equal(plain.attrs['shaper.tier'], undefined);
  await waitFor(() => (receiver.spans.filter((s) => s.span.parentSpanId === plain.span.spanId).length >= 2 ? true : undefined), 5000, 'its children');
  assert.deepEqual(receiver.spans.filter((s) => s.span.parentSpanId === plain.span.spanId).map((s) => s.span.name).sort(), ['dial', 'identify']);
});

test('tracing: off loads nothing and subscribes to nothing; sample 0 exports no span; a reload switches the collector and the old one gets the spans it began', async (t) => {
  const before = await otlpReceiver(t);
  const after = await otlpReceiver(t);
  const live = await backendFor(t, 'echo');
  const base = config([app('web', [live.address])]);
  const proxy = await proxyFor(t, base, { backends: [live] });
  assert.equal(proxy.observer.tracing.tracer, undefined);
  assert.equal(channels.identified.hasSubscribers || channels.dialing.hasSubscribers, false, 'no subscriber when off');

  const round = async () => {
    const c = await connect(proxy.portOf('web'));
    await echoesExactly(c, Buffer.from('x'));
    c.end();
    await readAll(c);
  };
  proxy.reload({ ...base, tracing: tracing(before.url, 0) });
  await waitFor(() => proxy.observer.tracing.tracer, 5000, 'tracing on');
  for (let i = 0; i < 5; i++) await round();
  await proxy.observer.tracing.tracer!.flush();
  assert.equal(before.spans.length, 0, 'sample 0: nothing traced');

  const none = proxy.observer.tracing.tracer;
  proxy.reload({ ...base, tracing: tracing(before.url, 1) });
  await waitFor(() => (proxy.observer.tracing.tracer && proxy.observer.tracing.tracer !== none ? true : undefined), 5000, 'sample 1');
  const held = await connect(proxy.portOf('web'));
  await echoesExactly(held, Buffer.from('held across the reload'));
  const first = proxy.observer.tracing.tracer!;
  await waitFor(() => (first.open === 1 ? true : undefined), 5000, 'the held connection traced');

  proxy.reload({ ...base, tracing: tracing(after.url, 1) });
  await waitFor(() => (proxy.observer.tracing.tracer !== first && proxy.observer.tracing.tracer ? true : undefined), 5000, 'the new collector');
  await round();
  held.end();
  await readAll(held);
  const old = await found(() => before.spans.find((s) => s.span.name === 'connection'), 'the held connection in the old collector');
  assert.equal(old.attrs['shaper.bytes_up'], 'held across the reload'.length);
  await found(() => after.spans.find((s) => s.span.name === 'connection'), 'the new connection in the new collector');
  assert.equal(after.spans.filter((s) => s.span.name === 'connection').length, 1);

  proxy.reload(base);
  await waitFor(() => (proxy.observer.tracing.tracer === undefined ? true : undefined), 5000, 'tracing off again');
});
