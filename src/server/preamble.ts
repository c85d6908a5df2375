/**
 * What is read off a client before anything is dialed, on the accepted (paused) socket: a PROXY
 * protocol header (its client address then names the client), or with `sniPreread` the
 * ClientHello's server name. The bytes after a header, and the whole ClientHello, go back into the
 * socket for the pipes. (TLS termination, the other preamble, is tls.ts.)
 */
import type { Socket } from 'node:net';
import type { AppConfig } from '../config/types.js';
import { parseClientHello } from '../identify/client-hello.js';
import { parseProxyHeader, type Endpoint } from '../identify/proxy-protocol.js';
import { peek } from './peek.js';
import { serverHandshake, type ServerTls } from './tls.js';

/** A client on an `acceptProxyProtocol` port has this long to send its PROXY header. */
export const PROXY_HEADER_TIMEOUT_MS = 5000;
/** A client on an `sniPreread` port has this long to send its ClientHello (unless its app's `sniPrereadTimeout` says otherwise); then it goes on without a name. */
export const SNI_PREREAD_TIMEOUT_MS = 5000;

export type ProxyHeaderResult =
  /** `source` absent: a LOCAL / UNKNOWN header (the balancer's own check), the socket's address stands */
  | { kind: 'ok'; source?: Endpoint; destination?: Endpoint }
  | { kind: 'fail'; why: string };

/** Reads the PROXY header (v1 or v2). */
export async function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeaderResult> {
  const peeked = await peek(
    socket,
    (buf) => {
      const header = parseProxyHeader(buf);
      return header.kind === 'need-more' ? undefined : { value: header, used: header.kind === 'ok' ? header.length : buf.length };
    },
    timeoutMs,
  );
  if (peeked.kind === 'end') return { kind: 'fail', why: 'client ended before the header' };
  if (peeked.kind === 'timeout') return { kind: 'fail', why: 'no header in time' };
  if (peeked.kind !== 'answer') return { kind: 'fail', why: 'client gone' };
  const header = peeked.value;
  if (header.kind === 'error') return { kind: 'fail', why: header.reason };
  if (header.kind === 'ok' && !header.local && header.source) {
    return { kind: 'ok', source: header.source, ...(header.destination ? { destination: header.destination } : {}) };
  }
  return { kind: 'ok' };
}

/**
 * Peeks at the ClientHello for its server name (nginx's ssl_preread) and puts every byte back:
 * TLS passes through untouched. Not TLS, or nothing in time: no name. `gone`: the client ended first.
 */
export async function prereadServerName(socket: Socket, timeoutMs: number): Promise<{ kind: 'name'; name: string | undefined } | { kind: 'gone' }> {
  const peeked = await peek(
    socket,
    (buf) => {
      const hello = parseClientHello(buf);
      return hello.kind === 'need-more' ? undefined : { value: hello.kind === 'ok' ? hello.serverName : undefined, used: 0 };
    },
    timeoutMs,
  );
  if (peeked.kind === 'answer') return { kind: 'name', name: peeked.value };
  if (peeked.kind === 'end') return { kind: 'gone' };
  return { kind: 'name', name: undefined };
}

/** What the preamble found, or why the connection must close before anything is dialed. */
export type Preamble =
  | {
      ok: true;
      /** the client as the rest sees it: the accepted socket, or the TLS socket over it */
      client: Socket;
      /** the PROXY header's client and destination (absent: the socket's own) */
      source?: Endpoint;
      destination?: Endpoint;
      serverName?: string;
      /** the subject of the client's verified certificate */
      clientCert?: string;
    }
  | { ok: false; reason: 'proxy_protocol' | 'denied' | 'tls_handshake' | 'client_gone'; error?: Error };

/**
 * Everything read off a client before the dial, in order: the PROXY header (apps with
 * acceptProxyProtocol), then the TLS handshake (apps with tls: `tls`, the app's TLS as in force
 * at accept) or the ClientHello's server name (sniPreread). `handshaking` tells the owner while
 * the TLS handshake runs (its outcome, not a client's close, decides the close reason then).
 * `denied` (apps[].allow / deny) judges the header's client address, before any handshake: the
 * socket's was the balancer's.
 */
export async function readPreamble(
  raw: Socket,
  app: AppConfig,
  tls: ServerTls | undefined,
  proxyHeaderTimeoutMs: number,
  handshaking: (on: boolean) => void,
  denied: (address: string) => boolean,
): Promise<Preamble> {
  const found: { source?: Endpoint; destination?: Endpoint } = {};
  if (app.acceptProxyProtocol) {
    const header = await readProxyHeader(raw, proxyHeaderTimeoutMs);
    if (header.kind === 'fail') return { ok: false, reason: 'proxy_protocol', error: new Error(`PROXY protocol: ${header.why}`) };
    if (header.source) {
      if (denied(header.source.address)) return { ok: false, reason: 'denied' };
      found.source = header.source;
    }
    if (header.destination) found.destination = header.destination;
  }
  // Never plaintext on a TLS port (its certificates went away while the PROXY header came).
  if (app.tls && !tls) return { ok: false, reason: 'tls_handshake' };
  if (tls) {
    handshaking(true);
    const result = await serverHandshake(raw, tls);
    handshaking(false);
    if (!result.ok) return { ok: false, reason: result.gone ? 'client_gone' : 'tls_handshake', error: result.error };
    const socket = result.socket;
    const name = typeof socket.servername === 'string' && socket.servername !== '' ? socket.servername : undefined;
    return { ok: true, client: socket, ...found, ...(name !== undefined ? { serverName: name } : {}), ...(result.clientCert !== undefined ? { clientCert: result.clientCert } : {}) };
  }
  if (app.sniPreread) {
    const hello = await prereadServerName(raw, app.sniPrereadTimeout ?? SNI_PREREAD_TIMEOUT_MS);
    // A client that ends before a whole ClientHello cannot be speaking TLS to the target.
    if (hello.kind === 'gone') return { ok: false, reason: 'client_gone' };
    return { ok: true, client: raw, ...found, ...(hello.name !== undefined ? { serverName: hello.name } : {}) };
  }
  return { ok: true, client: raw, ...found };
}
