/**
 * TLS termination for apps with `tls`: the secure contexts of an app (one per certificate), built
 * when a config is applied (start and every reload, which re-reads the files), so new connections
 * get the certificates on disk at that reload while open connections keep theirs. The handshake
 * runs on the accepted socket after any PROXY header, before customer matching; with several
 * certificates the client's SNI chooses one (SNICallback), and with `clientAuth` the client's
 * certificate is verified against `clientCa`.
 */
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import type { AppConfig, ClientAuth, ServedCertificate, ServerTlsConfig } from '../config/types.js';
import { ProxyError } from '../errors.js';
import { subjectText } from '../identify/client-cert.js';
import { normaliseServerName } from '../identify/sni.js';
import type { Logger } from '../log.js';

type SniCallback = (servername: string, cb: (err: Error | null, context?: SecureContext) => void) => void;

/** What a connection of a TLS app needs: the contexts in force when it was accepted. */
export interface ServerTls {
  /** the default certificate's (the first): for clients without SNI or with a name no other certificate has */
  context: SecureContext;
  /** chooses a certificate by SNI; only with several */
  SNICallback?: SniCallback;
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
        continue;
      }
      let contexts: SecureContext[];
      try {
        const ca = tls.clientCa ? { ca: tls.clientCa.pem } : {};
        contexts = tls.certificates.map((c) => createSecureContext({ cert: c.cert.pem, key: c.key.pem, minVersion: tls.minVersion, ...ca }));
      } catch (err) {
        // The loader checked the files with this very call; should OpenSSL still refuse, keep what serves now.
        this.log.error({ app: app.name, error: (err as Error).message }, 'TLS certificate not usable; the previous one stays');
        continue;
      }
      const infos = tls.certificates.map((c) => this.#logCertificate(app.name, c));
      this.#byApp.set(app.name, {
        context: contexts[0]!,
        ...(contexts.length > 1 ? { SNICallback: chooser(tls.certificates, contexts) } : {}),
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
function chooser(certificates: readonly ServedCertificate[], contexts: readonly SecureContext[]): SniCallback {
  const byName = new Map<string, SecureContext>();
  certificates.forEach((c, i) => {
    for (const name of c.serverNames) if (!byName.has(name)) byName.set(name, contexts[i]!);
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

/**
 * The client's certificate after the handshake: its subject when it verified against the app's
 * clientCa, none when the client sent none (clientAuth "optional"; with "require" OpenSSL has already
 * failed the handshake), or the verification error. Node leaves the check to whoever runs the
 * handshake (its tls.Server does it in 'secure', with this same call): the handshake itself never
 * fails on a certificate that does not verify, so a socket of our own must ask.
 */
function verifiedClientCertificate(socket: TLSSocket): { subject?: string; error?: Error } {
  const peer = socket.getPeerX509Certificate();
  if (!peer) return {};
  const handle = (socket as unknown as { _handle?: { verifyError?(): Error | null } })._handle;
  // Without the check, refuse: never take a certificate as verified that was not.
  const error = handle?.verifyError ? handle.verifyError() : new ProxyError('SHAPER_ERR_TLS_HANDSHAKE', 'the client certificate cannot be verified');
  return error ? { error } : { subject: subjectText(peer.subject) };
}

/**
 * The server side of a TLS handshake on an accepted (paused) socket. Bytes already read off it (after
 * a PROXY header) are fed to TLS first. Never rejects: a failure is returned, with the TLS socket
 * destroyed.
 */
export function serverHandshake(raw: Socket, tls: ServerTls): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: tls.context,
      ...(tls.SNICallback ? { SNICallback: tls.SNICallback } : {}),
      // "require": OpenSSL fails a handshake without a client certificate; one that is sent is checked in onSecure.
      ...(tls.clientAuth !== 'none' ? { requestCert: true, rejectUnauthorized: tls.clientAuth === 'require' } : {}),
    });
    const finish = (result: Handshake): void => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      raw.off('close', onEnd);
      if (!result.ok) {
        socket.on('error', noop);
        socket.destroy();
      }
      resolve(result);
    };
    const onSecure = (): void => {
      if (tls.clientAuth === 'none') return finish({ ok: true, socket });
      const { subject, error } = verifiedClientCertificate(socket);
      finish(error ? { ok: false, error, gone: false } : { ok: true, socket, ...(subject !== undefined ? { clientCert: subject } : {}) });
    };
    const onError = (err: Error): void => finish({ ok: false, error: err, gone: false });
    const onEnd = (): void =>
      finish({ ok: false, error: new ProxyError('SHAPER_ERR_TLS_HANDSHAKE', 'the client left during the TLS handshake'), gone: raw.bytesRead === 0 });
    const timer = setTimeout(
      () => finish({ ok: false, error: new ProxyError('SHAPER_ERR_TLS_HANDSHAKE', `no TLS handshake within ${tls.handshakeTimeout}ms`), gone: false }),
      tls.handshakeTimeout,
    );
    socket.once('secure', onSecure);
    socket.once('error', onError);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    raw.once('close', onEnd);
  });
}
