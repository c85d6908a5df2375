/** TLS for the tests: the fixture certificates, a client trusting the test CA, and TLS targets. */
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import tls from 'node:tls';
import type { ServedCertificate, ServerTlsConfig } from '../../src/config/types.js';
import { PemFile } from '../../src/config/tls.js';
import { ROOT } from './base.js';
import { answerWithHash, rawServer } from './net.js';

/** TEST ONLY certificates (test/fixtures/tls/README.md). */
export const TLS_DIR = path.join(ROOT, 'test/fixtures/tls');
export const TEST_CA = fs.readFileSync(path.join(TLS_DIR, 'ca.pem'));

/** A fixture file as the config loader reads it, e.g. pemFile('server-key'). */
export function pemFile(name: string): PemFile {
  const file = path.join(TLS_DIR, `${name}.pem`);
  return new PemFile(file, fs.readFileSync(file));
}

/** The fixture cert `name` ("server", "other") and its key, chosen by SNI for `serverNames`. */
export function servedCertificate(name: string, serverNames: string[] = []): ServedCertificate {
  return { cert: pemFile(name), key: pemFile(`${name}-key`), serverNames };
}

/** An app's `tls` with the fixture cert `name` ("server", "server2"). */
export function serverTls(name = 'server', extra: Partial<ServerTlsConfig> = {}): ServerTlsConfig {
  return { certificates: [servedCertificate(name)], minVersion: 'TLSv1.2', handshakeTimeout: 10_000, clientAuth: 'none', ...extra };
}

/** A TLS client trusting the test CA; resolves once the handshake is done. */
export function tlsConnect(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: TEST_CA, allowHalfOpen: true, ...opts } as tls.ConnectionOptions, () => resolve(s));
    s.once('error', reject);
  });
}

export interface TlsTarget {
  address: string;
  /** TLS handshakes finished so far (real connections and the proxy's health checks) */
  handshakes(): number;
  /** With `proxyHeader`: each PROXY header read, v1 as its text (no CRLF), v2 as hex. */
  headers: string[];
}

/** Whether `buf` starts with a whole PROXY header: its length, 0 for not yet (v1 up to CRLF, v2 16 bytes and its length). */
function proxyHeaderLength(buf: Buffer): number {
  if (buf.subarray(0, 6).toString('latin1') === 'PROXY ') {
    const end = buf.indexOf('\r\n');
    return end < 0 ? 0 : end + 2;
  }
  return buf.length < 16 || buf.length < 16 + buf.readUInt16BE(14) ? 0 : 16 + buf.readUInt16BE(14);
}

/**
 * A TLS target on 127.0.0.1 with the fixture cert `cert` that answers like the collect backend
 * ("<sha256> <bytes>\n" after the client's FIN); with `proxyHeader` it first reads a PROXY header
 * (v1 or v2) off the raw socket, in clear. Every socket is destroyed and the server closed after the test.
 */
export async function tlsTargetFor(t: TestContext, cert = 'backend', { proxyHeader = false } = {}): Promise<TlsTarget> {
  const context = tls.createSecureContext({ cert: pemFile(cert).pem, key: pemFile(`${cert}-key`).pem });
  const headers: string[] = [];
  let handshakes = 0;
  const serve = (raw: net.Socket): void => {
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    s.on('secure', () => handshakes++);
    s.on('error', () => {});
    answerWithHash(s);
  };
  const { address } = await rawServer(t, (raw) => {
    if (!proxyHeader) return serve(raw);
    const onReadable = (): void => {
      const buf = raw.read() as Buffer | null;
      if (!buf) return;
      const length = proxyHeaderLength(buf);
      if (length === 0) return void raw.unshift(buf);
      raw.off('readable', onReadable);
      const header = buf.subarray(0, length);
      headers.push(header[0] === 0x50 ? header.toString('latin1').trimEnd() : header.toString('hex'));
      raw.unshift(buf.subarray(length));
      serve(raw);
    };
    raw.on('readable', onReadable);
  });
  return { address, handshakes: () => handshakes, headers };
}
