/**
 * TLS termination for apps with `tls`: per app a tls.Server that never listens (its handshakes
 * run on sockets the proxy accepted, handed over with `server.emit('connection', socket)`, the
 * way Node documents injecting connections) and the secure contexts of its other certificates,
 * built when a config is applied (start and every reload, which re-reads the files), so new
 * connections get the certificates on disk at that reload while open connections keep theirs.
 * The handshake runs on the accepted socket after any PROXY header, before customer matching;
 * with several certificates the client's SNI chooses one (SNICallback), and with `clientAuth` the
 * client's certificate is verified against `clientCa` by Node itself (`authorized` and
 * `authorizationError` of the server's socket: public API, no private handle).
 */
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, createServer, type SecureContext, type Server, type TLSSocket } from 'node:tls';
import type { AppConfig, ClientAuth, ServedCertificate, ServerTlsConfig } from '../config/types.js';
import { ProxyError } from '../errors.js';
import { subjectText } from '../net/subject.js';
import { normaliseServerName } from '../net/server-name.js';
import type { Logger } from '../log.js';

type SniCallback = (servername: string, cb: (err: Error | null, context?: SecureContext) => void) => void;

/** What a connection of a TLS app needs: the handshakes as in force when it was accepted. */
export interface ServerTls {
  handshakes: Handshakes;
  /** ms */
  handshakeTimeout: number;
  clientAuth: ClientAuth;
}

/** A certificate an app serves, for /status and the logs. */
export interface CertificateInfo {
  cert: string;
  subject: string;
  fingerprint256: string;
  validTo: string;
  /** what SNI chooses it for */
  serverNames: string[];
}

interface Entry extends ServerTls {
  config: ServerTlsConfig;
  /** the default first */
  infos: CertificateInfo[];
}

export class TlsContexts {
  readonly #byApp = new Map<string, Entry>();

  constructor(private readonly log: Logger) {}

  /** The apps of a (re)loaded config: build contexts for new or changed certificates, drop the rest. */
  apply(apps: readonly AppConfig[]): void {
    const names = new Set<string>();
    for (const app of apps) {
      if (!app.tls) continue;
      names.add(app.name);
      const old = this.#byApp.get(app.name);
      const tls = app.tls;
      if (old && sameContexts(old.config, tls)) {
        // Unchanged: keep the contexts, and with them the session ticket keys (resumption survives a reload).
        old.config = tls;
        old.handshakeTimeout = tls.handshakeTimeout;
        old.handshakes.timeoutMs = tls.handshakeTimeout;
        continue;
      }
      let handshakes: Handshakes;
      try {
        const ca = tls.clientCa ? { ca: tls.clientCa.pem } : {};
        // The first certificate is the server's own (clients without SNI); the others are chosen by name.
        const others = tls.certificates.slice(1).map((c) => createSecureContext({ cert: c.cert.pem, key: c.key.pem, minVersion: tls.minVersion, ...ca }));
        const first = tls.certificates[0]!;
        handshakes = new Handshakes(
          {
            cert: first.cert.pem,
            key: first.key.pem,
            minVersion: tls.minVersion,
            ...ca,
            handshakeTimeout: tls.handshakeTimeout,
            ...(others.length > 0 ? { SNICallback: chooser(tls.certificates, [undefined, ...others]) } : {}),
          },
          tls.clientAuth,
          tls.handshakeTimeout,
        );
      } catch (err) {
        // The loader checked the files with this very call; should OpenSSL still refuse, keep what serves now.
        this.log.error({ app: app.name, error: (err as Error).message }, 'TLS certificate not usable; the previous one stays');
        continue;
      }
      const infos = tls.certificates.map((c) => this.#logCertificate(app.name, c));
      this.#byApp.set(app.name, {
        handshakes,
        handshakeTimeout: tls.handshakeTimeout,
        clientAuth: tls.clientAuth,
        config: tls,
        infos,
      });
    }
    for (const name of this.#byApp.keys()) if (!names.has(name)) this.#byApp.delete(name);
  }

  get(app: string): ServerTls | undefined {
    return this.#byApp.get(app);
  }

  /** The default certificate `app` serves to new connections. */
  certificate(app: string): CertificateInfo | undefined {
    return this.#byApp.get(app)?.infos[0];
  }

  /** Every certificate `app` serves to new connections, the default first. */
  certificates(app: string): CertificateInfo[] {
    return this.#byApp.get(app)?.infos ?? [];
  }

  #logCertificate(app: string, c: ServedCertificate): CertificateInfo {
    const x509 = new X509Certificate(c.cert.pem);
    const info = { cert: c.cert.path, subject: subjectText(x509.subject), fingerprint256: x509.fingerprint256, validTo: x509.validTo, serverNames: c.serverNames };
    const now = Date.now();
    if (Date.parse(x509.validTo) < now || Date.parse(x509.validFrom) > now) this.log.warn({ app, ...info }, 'TLS certificate is not valid now (clients will refuse it)');
    else this.log.info({ app, ...info }, 'TLS certificate loaded');
    return info;
  }
}

/** Same files and settings: the contexts built from `a` serve `b` as well. */
function sameContexts(a: ServerTlsConfig, b: ServerTlsConfig): boolean {
  const sameNames = (x: string[], y: string[]) => x.length === y.length && x.every((n, i) => n === y[i]);
  return (
    a.minVersion === b.minVersion &&
    a.clientAuth === b.clientAuth &&
    (a.clientCa === undefined ? b.clientCa === undefined : a.clientCa.equals(b.clientCa)) &&
    a.certificates.length === b.certificates.length &&
    a.certificates.every((c, i) => {
      const d = b.certificates[i]!;
      return c.cert.equals(d.cert) && c.key.equals(d.key) && sameNames(c.serverNames, d.serverNames);
    })
  );
}

/**
 * The SNICallback of an app with several certificates: an exact name first, then a wildcard of the
 * name's first label ("*.example.com" covers "a.example.com", not "a.b.example.com", as a client
 * checks it); among certificates with the same name, the first listed. No match: the socket's own
 * context, the default certificate.
 */
function chooser(certificates: readonly ServedCertificate[], contexts: readonly (SecureContext | undefined)[]): SniCallback {
  // undefined: the server's own context (the first certificate's).
  const byName = new Map<string, SecureContext | undefined>();
  certificates.forEach((c, i) => {
    for (const name of c.serverNames) if (!byName.has(name)) byName.set(name, contexts[i]);
  });
  return (servername, cb) => {
    const name = normaliseServerName(servername);
    const dot = name.indexOf('.');
    cb(null, byName.get(name) ?? (dot > 0 ? byName.get(`*${name.slice(dot)}`) : undefined));
  };
}

export type Handshake =
  /** `clientCert`: the subject of the client's verified certificate (apps with `clientAuth`) */
  | { ok: true; socket: TLSSocket; clientCert?: string }
  /** `gone`: the client closed without sending a byte (a port scan, a balancer's TCP check) */
  | { ok: false; error: Error; gone: boolean };

const noop = (): void => {};

/** The 4-tuple that names an accepted socket, and the server-side TLS socket over it. */
const keyOf = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}|${s.localPort}`;

interface Pending {
  raw: Socket;
  resolve(result: Handshake): void;
}

/**
 * One app's TLS handshakes: a tls.Server that never listens. Each accepted socket is handed to it
 * (`emit('connection')`); Node runs the handshake, checks the client's certificate and reports
 * on the server ('secureConnection', 'tlsClientError'), which names the socket by its 4-tuple.
 * Keeping the Server across reloads keeps its session-ticket keys (resumption survives).
 */
export class Handshakes {
  readonly #server: Server;
  readonly #pending = new Map<string, Pending>();

  constructor(
    options: Parameters<typeof createServer>[0],
    private readonly clientAuth: ClientAuth,
    /** ms a client has to finish its handshake */
    public timeoutMs: number,
  ) {
    // rejectUnauthorized false: the verification result is read in 'secureConnection' (the
    // socket is still there to be named), and refused there with OpenSSL's verify code.
    this.#server = createServer({ ...options, handshakeTimeout: 0, ...(clientAuth !== 'none' ? { requestCert: true, rejectUnauthorized: false } : {}) });
    this.#server.on('secureConnection', (socket: TLSSocket) => this.#secure(socket));
    this.#server.on('tlsClientError', (err: Error, socket: TLSSocket) => this.#failed(socket, err));
  }

  /** The server side of a TLS handshake on an accepted (paused) socket; bytes already read off it are fed to TLS first. Never rejects. */
  run(raw: Socket): Promise<Handshake> {
    return new Promise((resolve) => {
      const key = keyOf(raw);
      let timer: NodeJS.Timeout | undefined;
      const finish = (result: Handshake): void => {
        if (this.#pending.get(key)?.raw !== raw) return;
        this.#pending.delete(key);
        clearTimeout(timer);
        raw.off('close', onClose);
        if (!result.ok) raw.destroy();
        resolve(result);
      };
      const onClose = (): void =>
        finish({ ok: false, error: new ProxyError('SHAPER_ERR_TLS_HANDSHAKE', 'the client left during the TLS handshake'), gone: raw.bytesRead === 0 });
      this.#pending.set(key, { raw, resolve: finish });
      // The TLS socket takes the raw one's allowHalfOpen. Off during the handshake, a client that
      // leaves closes the raw socket (this 'close' settles it, even when the TLS socket is gone
      // before it could be named); on again once the handshake is done (#secure).
      raw.allowHalfOpen = false;
      raw.once('close', onClose);
      timer = setTimeout(() => finish({ ok: false, error: new ProxyError('SHAPER_ERR_TLS_HANDSHAKE', `no TLS handshake within ${this.timeoutMs}ms`), gone: false }), this.timeoutMs);
      this.#server.emit('connection', raw);
    });
  }

  #secure(socket: TLSSocket): void {
    const pending = this.#pending.get(keyOf(socket));
    if (!pending) {
      socket.destroy();
      return;
    }
    const refuse = (error: Error): void => {
      socket.on('error', noop);
      socket.destroy();
      pending.resolve({ ok: false, error, gone: false });
    };
    // Half-close is passed on over TLS, as over TCP.
    socket.allowHalfOpen = true;
    if (this.clientAuth === 'none') return pending.resolve({ ok: true, socket });
    const peer = socket.getPeerX509Certificate();
    if (!peer) {
      if (this.clientAuth === 'require') refuse(codedError('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'clientAuth "require": the client sent no certificate'));
      else pending.resolve({ ok: true, socket });
      return;
    }
    // A certificate that is sent must verify, "optional" or not; never take one as verified that was not.
    if (!socket.authorized) return refuse(codedError(socket.authorizationError ? String(socket.authorizationError) : 'SHAPER_ERR_TLS_HANDSHAKE', 'the client certificate did not verify'));
    pending.resolve({ ok: true, socket, clientCert: subjectText(peer.subject) });
  }

  #failed(socket: TLSSocket, error: Error): void {
    socket.on('error', noop);
    // A socket already gone cannot be named: its raw socket's 'close' settles it.
    this.#pending.get(keyOf(socket))?.resolve({ ok: false, error, gone: false });
    socket.destroy();
  }
}

/** An error carrying a code like OpenSSL's (the close log line shows the code). */
function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * The server side of a TLS handshake on an accepted (paused) socket. Never rejects: a failure is
 * returned, with the socket destroyed.
 */
export function serverHandshake(raw: Socket, tls: ServerTls): Promise<Handshake> {
  return tls.handshakes.run(raw);
}
