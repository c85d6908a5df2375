/**
 * The traffic of `soak`: loops that each open connections of one kind, check every byte that
 * comes back, and count what happened. A loop runs until `stop()`; nothing here throws.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { sleep } from './scenario.js';

export interface Counts {
  /** exchanges completed and checked */
  ok: number;
  /** bytes checked */
  bytes: number;
  /** bytes that differed from what was sent or expected, or a wrong length */
  mismatches: number;
  /** closed or failed before the exchange was complete */
  unexpectedCloses: number;
  /** could not connect */
  connectErrors: number;
}

export const newCounts = (): Counts => ({ ok: 0, bytes: 0, mismatches: 0, unexpectedCloses: 0, connectErrors: 0 });

/** What the bench backend's source and paced kinds send: 0x5a bytes. */
const FILL = Buffer.alloc(64 * 1024, 0x5a);

function allFill(chunk: Buffer): boolean {
  for (let at = 0; at < chunk.length; at += FILL.length) {
    const part = chunk.subarray(at, at + FILL.length);
    if (!part.equals(FILL.subarray(0, part.length))) return false;
  }
  return true;
}

/** One connection's outcome: 'ok' after `check`, 'closed' when it ended too early, 'connect' when it never opened. */
type Outcome = 'ok' | 'mismatch' | 'closed' | 'connect';

function record(c: Counts, o: Outcome, bytes: number): void {
  if (o === 'ok') {
    c.ok++;
    c.bytes += bytes;
  } else if (o === 'mismatch') c.mismatches++;
  else if (o === 'closed') c.unexpectedCloses++;
  else c.connectErrors++;
}

/** Sends `payload`, half-closes, and expects exactly the payload back (an echo app). */
export function requestResponse(port: number, payload: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let connected = false;
    const got: Buffer[] = [];
    let n = 0;
    s.on('connect', () => {
      connected = true;
      s.end(payload);
    });
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
    });
    s.on('end', () => {
      s.destroy();
      resolve(n === payload.length && Buffer.concat(got, n).equals(payload) ? 'ok' : 'mismatch');
    });
    s.on('error', () => {});
    s.on('close', () => resolve(connected ? 'closed' : 'connect'));
  });
}

/** Reads a download of `bytes` 0x5a bytes to its end (a source app). */
export function download(port: number, bytes: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let connected = false;
    let n = 0;
    let bad = false;
    s.on('connect', () => {
      connected = true;
    });
    s.on('data', (d: Buffer) => {
      n += d.length;
      if (!bad && !allFill(d)) bad = true;
    });
    s.on('end', () => {
      s.destroy();
      resolve(!bad && n === bytes ? 'ok' : 'mismatch');
    });
    s.on('error', () => {});
    s.on('close', () => resolve(connected ? 'closed' : 'connect'));
  });
}

/** `count` Foo exchanges on one connection: "REQ i data" answered by "ACK i data" (a Foo app). */
export function fooSession(port: number, count: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let connected = false;
    let i = 0;
    let buffered = '';
    const send = () => s.write(`REQ ${i} soak-${i}\n`);
    s.setEncoding('latin1');
    s.on('connect', () => {
      connected = true;
      send();
    });
    s.on('data', (d: string) => {
      buffered += d;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line !== `ACK ${i} soak-${i}` || buffered !== '') {
        s.destroy();
        resolve('mismatch');
        return;
      }
      if (++i === count) {
        s.end();
        resolve('ok');
      } else send();
    });
    s.on('error', () => {});
    s.on('close', () => resolve(connected ? 'closed' : 'connect'));
  });
}

/** Connects, writes a little, and resets the connection (RST) instead of closing it. */
export function reset(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('connect', () => {
      s.write(crypto.randomBytes(512));
      setTimeout(() => {
        s.resetAndDestroy();
        resolve('ok');
      }, 5);
    });
    s.on('error', () => {});
    s.on('close', () => resolve('ok'));
  });
}

export interface Loop {
  counts: Counts;
  stop(): Promise<void>;
}

/** Runs `one()` `parallel` at a time, `pauseMs` between one's end and the next start, until stopped. */
export function loop(parallel: number, pauseMs: number, one: () => Promise<{ outcome: Outcome; bytes: number }>): Loop {
  const counts = newCounts();
  let stopped = false;
  const workers = Array.from({ length: parallel }, async () => {
    while (!stopped) {
      const { outcome, bytes } = await one();
      if (!stopped || outcome === 'ok') record(counts, outcome, bytes);
      if (pauseMs > 0) await sleep(pauseMs);
    }
  });
  return {
    counts,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}
