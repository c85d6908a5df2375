/**
 * The TLS files of a config (`apps[].tls` with its certificates and client CA, `apps[].targetTls.ca`): read and checked while the
 * config loads, so a missing, unreadable or broken file fails the start or `--check` (exit 2)
 * and a reload keeps the old config, each with the key path and the file.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { normaliseServerName, sniPatternProblem } from '../net/server-name.js';
import { PemFile } from './pem.js';
import type { Problems } from './problems.js';
import type { AdminConfig, AppConfig, ClientAuth, ServedCertificate, ServerTlsConfig, TargetTlsConfig, TlsVersion } from './types.js';
import { parseDuration } from './units.js';

export const DEFAULT_TLS_MIN_VERSION: TlsVersion = 'TLSv1.2';
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT = '10s';

export { PemFile };

const message = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  return e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? String(err));
};

/** Reads one file named at `path` (a key path like apps[0].tls.cert); relative to `baseDir`. */
function readPem(value: unknown, path: string, baseDir: string, problems: Problems): PemFile | undefined {
  if (typeof value !== 'string') return undefined; // the schema reported it
  const file = resolve(baseDir, value);
  try {
    return new PemFile(file, readFileSync(file));
  } catch (err) {
    problems.add(path, `cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? message(err)})`);
    return undefined;
  }
}

function certificate(pem: PemFile, path: string, problems: Problems): X509Certificate | undefined {
  try {
    return new X509Certificate(pem.pem);
  } catch (err) {
    problems.add(path, `${JSON.stringify(pem.path)} is not a PEM certificate (${message(err)})`);
    return undefined;
  }
}

/** `apps[i].tls` after the schema checks: every certificate's files read and checked, and the client CA. */
export function readServerTls(props: Record<string, unknown>, at: string, baseDir: string, problems: Problems): ServerTlsConfig | undefined {
  const minVersion = (props['minVersion'] ?? DEFAULT_TLS_MIN_VERSION) as TlsVersion;
  // `cert` + `key` first: the default certificate; then each of `certificates`.
  const written: { value: Record<string, unknown>; at: string }[] = [];
  if (props['cert'] !== undefined && props['cert'] !== null) written.push({ value: props, at });
  const more = Array.isArray(props['certificates']) ? (props['certificates'] as Record<string, unknown>[]) : [];
  more.forEach((value, i) => written.push({ value, at: `${at}.certificates[${i}]` }));
  const certificates = written.map((c, i) => readCertificate(c.value, c.at, baseDir, problems, minVersion, i === 0));
  const clientAuth = (props['clientAuth'] ?? 'none') as ClientAuth;
  const clientCa = clientAuth === 'none' ? undefined : readCa(props['clientCa'], `${at}.clientCa`, baseDir, problems);
  if (certificates.some((c) => c === undefined) || (clientAuth !== 'none' && !clientCa)) return undefined;
  return {
    certificates: certificates as ServedCertificate[],
    minVersion,
    handshakeTimeout: parseDuration(props['handshakeTimeout'] ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT),
    clientAuth,
    ...(clientCa ? { clientCa } : {}),
  };
}

/** One certificate (`tls` itself, or `tls.certificates[i]`) at `at`: its files, and the server names SNI chooses it for. */
function readCertificate(
  props: Record<string, unknown>,
  at: string,
  baseDir: string,
  problems: Problems,
  minVersion: TlsVersion,
  isDefault: boolean,
): ServedCertificate | undefined {
  const cert = readPem(props['cert'], `${at}.cert`, baseDir, problems);
  const key = readPem(props['key'], `${at}.key`, baseDir, problems);
  if (!cert || !key) return undefined;
  const x509 = certificate(cert, `${at}.cert`, problems);
  let privateKey: KeyObject | undefined;
  try {
    privateKey = createPrivateKey(key.pem);
  } catch (err) {
    problems.add(`${at}.key`, `${JSON.stringify(key.path)} is not an unencrypted PEM private key (${message(err)})`);
  }
  if (!x509 || !privateKey) return undefined;
  if (!x509.checkPrivateKey(privateKey)) {
    problems.add(`${at}.key`, `${JSON.stringify(key.path)} is not the key of the certificate ${JSON.stringify(cert.path)}`);
    return undefined;
  }
  try {
    // What OpenSSL itself refuses (a key too weak for its security level, say).
    createSecureContext({ cert: cert.pem, key: key.pem, minVersion });
  } catch (err) {
    problems.add(`${at}.cert`, `${JSON.stringify(cert.path)} cannot be used (${message(err)})`);
    return undefined;
  }
  const given = props['serverNames'];
  const serverNames = Array.isArray(given) ? (given as string[]).map(normaliseServerName) : dnsNames(x509);
  if (serverNames.length === 0 && !isDefault) {
    problems.add(`${at}.cert`, `${JSON.stringify(cert.path)} names no DNS server name (subjectAltName), so no SNI can choose it; list them in "serverNames"`);
    return undefined;
  }
  return { cert, key, serverNames: [...new Set(serverNames)] };
}

/** The DNS names of a certificate's subjectAltName ("DNS:a.example.com, IP Address:10.0.0.1, DNS:*.example.com"). */
function dnsNames(x509: X509Certificate): string[] {
  return (x509.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:') && sniPatternProblem(entry.slice(4)) === undefined)
    .map((entry) => normaliseServerName(entry.slice(4)));
}

/** `admin.tls` after the schema checks: its certificate and key read and checked. */
export function readAdminTls(props: unknown, baseDir: string, problems: Problems): { cert: PemFile; key: PemFile } | undefined {
  if (props === null || typeof props !== 'object') return undefined;
  const served = readCertificate(props as Record<string, unknown>, 'admin.tls', baseDir, problems, DEFAULT_TLS_MIN_VERSION, true);
  return served ? { cert: served.cert, key: served.key } : undefined;
}

/** A file of CA certificates (`targetTls.ca`, `tls.clientCa`). */
function readCa(value: unknown, at: string, baseDir: string, problems: Problems): PemFile | undefined {
  const ca = readPem(value, at, baseDir, problems);
  return ca && certificate(ca, at, problems) ? ca : undefined;
}

/** `apps[i].targetTls` after the schema checks: true, or an object whose `ca` file is read. */
export function readTargetTls(value: unknown, at: string, baseDir: string, problems: Problems): TargetTlsConfig | undefined {
  if (value === true) return { rejectUnauthorized: true };
  if (value === null || typeof value !== 'object') return undefined; // false / null: off
  const props = value as Record<string, unknown>;
  const config: TargetTlsConfig = { rejectUnauthorized: props['rejectUnauthorized'] !== false };
  if (typeof props['servername'] === 'string') config.servername = props['servername'];
  if (props['ca'] !== undefined) {
    const ca = readCa(props['ca'], `${at}.ca`, baseDir, problems);
    if (!ca) return undefined;
    config.ca = ca;
  }
  return config;
}

/** Every TLS file a config names (certificates, keys, CAs; the admin API's too): what is watched for changes on disk. */
export function tlsFiles(apps: readonly AppConfig[], admin?: AdminConfig | null): string[] {
  const files = new Set<string>();
  if (admin?.tls) files.add(admin.tls.cert.path).add(admin.tls.key.path);
  for (const app of apps) {
    for (const c of app.tls?.certificates ?? []) files.add(c.cert.path).add(c.key.path);
    if (app.tls?.clientCa) files.add(app.tls.clientCa.path);
    if (app.targetTls?.ca) files.add(app.targetTls.ca.path);
  }
  return [...files];
}
