/**
 * TLS termination for apps with `tls`: one secure context per app, built when a config is applied
 * (start and every reload, which re-reads the files), so new connections get the certificate on
 * disk at that reload while open connections keep theirs. The handshake runs on the accepted
 * socket after any PROXY header, before customer matching.
 */
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import type { AppConfig, ServerTlsConfig } from '../config/types.js';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';

/** What a connection of a TLS app needs: the context in force when it was accepted. */
export interface ServerTls {
  context: SecureContext;
  /** ms */
  handshakeTimeout: number;
}

/** The certificate an app serves, for /status and the logs. */
export interface CertificateInfo {
  cert: string;
  subject: string;
  fingerprint256: string;
  validTo: string;
}

interface Entry extends ServerTls {
  config: ServerTlsConfig;
  info: CertificateInfo;
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
      if (old && tls.cert.equals(old.config.cert) && tls.key.equals(old.config.key) && tls.minVersion === old.config.minVersion) {
        // Unchanged: keep the context, and with it the session ticket keys (resumption survives a reload).
        old.config = tls;
        old.handshakeTimeout = tls.handshakeTimeout;
        continue;
      }
      let context: SecureContext;
      try {
        context = createSecureContext({ cert: tls.cert.pem, key: tls.key.pem, minVersion: tls.minVersion });
      } catch (err) {
        // The loader checked the files with this very call; should OpenSSL still refuse, keep what serves now.
        this.log.error({ app: app.name, cert: tls.cert.path, error: (err as Error).message }, 'TLS certificate not usable; the previous one stays');
        continue;
      }
      const info = this.#logCertificate(app.name, tls);
      this.#byApp.set(app.name, { context, handshakeTimeout: tls.handshakeTimeout, config: tls, info });
    }
    for (const name of this.#byApp.keys()) if (!names.has(name)) this.#byApp.delete(name);
  }

  get(app: string): ServerTls | undefined {
    return this.#byApp.get(app);
  }

  /** The certificate `app` serves to new connections. */
  certificate(app: string): CertificateInfo | undefined {
    return this.#byApp.get(app)?.info;
  }

  #logCertificate(app: string, tls: ServerTlsConfig): CertificateInfo {
    const x509 = new X509Certificate(tls.cert.pem);
    const info = { cert: tls.cert.path, subject: x509.subject.replace(/\n/g, ', '), fingerprint256: x509.fingerprint256, validTo: x509.validTo };
    const now = Date.now();
    if (Date.parse(x509.validTo) < now || Date.parse(x509.validFrom) > now) this.log.warn({ app, ...info }, 'TLS certificate is not valid now (clients will refuse it)');
    else this.log.info({ app, ...info }, 'TLS certificate loaded');
    return info;
  }
}

export type Handshake =
  | { ok: true; socket: TLSSocket }
  /** `gone`: the client closed without sending a byte (a port scan, a balancer's TCP check) */
  | { ok: false; error: Error; gone: boolean };

const noop = (): void => {};

/**
 * The server side of a TLS handshake on an accepted (paused) socket. Bytes already read off it (after
 * a PROXY header) are fed to TLS first. Never rejects: a failure is returned, with the TLS socket
 * destroyed.
 */
export function serverHandshake(raw: Socket, tls: ServerTls): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = new TLSSocket(raw, { isServer: true, secureContext: tls.context });
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
    const onSecure = (): void => finish({ ok: true, socket });
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
