/**
 * The schema of one app (`apps[]`): its ports, targets, timeouts, PROXY protocol and TLS. The TLS
 * files it names are read by the loader (tls.ts) once these shapes are good.
 */
import type * as Zod from 'zod';
import {
  appName,
  bindAddress,
  bool,
  cidr,
  duration,
  httpUrl,
  intBetween,
  listOf,
  oneOf,
  pemPath,
  port,
  sniPattern,
  targetAddress,
  targetString,
} from './checks.js';
import { either, group, leaf, list, nullable, optional, required, withDefault } from './kit.js';
import { show } from './problems.js';
import { DEFAULT_TLS_HANDSHAKE_TIMEOUT, DEFAULT_TLS_MIN_VERSION } from './tls.js';
import { BALANCE_KINDS, CLIENT_AUTH_MODES, DATA_PLANES, TLS_VERSIONS, type HookConfig } from './types.js';

export const PROTOCOLS = ['tcp', 'foo'] as const;
export const PROXY_PROTOCOL_VERSIONS = ['v1', 'v2'] as const;

export const TARGET = group({
  address: required(targetAddress, '"host:port" of the backend.'),
  weight: withDefault(intBetween(1, 1000), 1, { doc: 'Share of connections relative to the other targets.' }),
});

// ---- TLS -------------------------------------------------------------------------------------

const CERT_FILE = 'the certificate file (PEM, the chain after the leaf)';
const KEY_FILE = 'the private key file (PEM, unencrypted)';

/** A key that may be left out, or null. */
const orNull = <S extends Zod.ZodType>(schema: S, doc: string) => optional(schema.nullable(), doc);

const servedCertificate = group(
  {
    cert: required(pemPath('certificate chain', CERT_FILE), 'The certificate chain file (PEM), relative to the config file.'),
    key: required(pemPath('private key', KEY_FILE), 'The private key file (PEM, unencrypted).'),
    serverNames: orNull(
      list(sniPattern, (v) => {
        throw new Error(`must be a non-empty list of server names like ["api.example.com", "*.example.com"]; leave it out to use the certificate's DNS names (got ${show(v)})`);
      }),
      "Server names (SNI) this certificate is chosen for; default: the certificate's DNS names.",
    ),
  },
  (v) => `must be an object like {"cert": "certs/api.pem", "key": "certs/api-key.pem"} (got ${show(v)})`,
);

const given = (x: unknown): boolean => x !== undefined && x !== null;

export const SERVER_TLS = group(
  {
    cert: orNull(pemPath('certificate chain'), 'The certificate chain file (PEM) served when no other certificate fits the SNI.'),
    key: orNull(pemPath('private key'), 'The private key file of `cert` (PEM, unencrypted).'),
    certificates: orNull(
      list(servedCertificate, listOf('certificates', '[{"cert": "certs/api.pem", "key": "certs/api-key.pem"}]')),
      'More certificates, each chosen by the server names it carries (or `serverNames`).',
    ),
    minVersion: withDefault(oneOf(TLS_VERSIONS), DEFAULT_TLS_MIN_VERSION, { doc: 'Oldest TLS version accepted.' }),
    handshakeTimeout: withDefault(duration(true), DEFAULT_TLS_HANDSHAKE_TIMEOUT, { doc: 'Time a client has to finish its handshake.' }),
    clientAuth: withDefault(oneOf(CLIENT_AUTH_MODES), 'none', { doc: 'Ask for a client certificate ("optional") or require one ("require").' }),
    clientCa: orNull(pemPath('CA certificate(s) client certificates must chain to'), 'CA certificate(s) client certificates must chain to (PEM).'),
  },
  (v) => `must be an object like {"cert": "certs/web.pem", "key": "certs/web-key.pem"} (got ${show(v)})`,
).superRefine(
  (tls, ctx) => {
    const problem = (message: string, key: string): void => ctx.addIssue({ code: 'custom', message, path: [key], input: tls[key] });
    // `cert` and `key` go together; without them, `certificates` must list at least one.
    if (given(tls.cert) && !given(tls.key)) problem(`required, ${KEY_FILE}`, 'key');
    else if (given(tls.key) && !given(tls.cert)) problem(`required, ${CERT_FILE}`, 'cert');
    else if (!given(tls.cert) && !given(tls.certificates)) problem(`required, ${CERT_FILE} (or list "certificates")`, 'cert');
    const auth = tls.clientAuth;
    if (!(CLIENT_AUTH_MODES as readonly unknown[]).includes(auth)) return; // reported
    if (auth !== 'none' && !given(tls.clientCa)) problem(`required when clientAuth is "${String(auth)}", the CA certificate(s) client certificates must chain to (PEM)`, 'clientCa');
    if (auth === 'none' && given(tls.clientCa)) {
      problem('is set but clientAuth is "none" (the default), so no client certificate is asked for: set clientAuth to "require" or "optional"', 'clientCa');
    }
  },
  // Also when a key has a problem of its own: every problem is reported at once.
  { when: (payload) => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value) },
);

const SERVERNAME = /^[A-Za-z0-9._-]+$/;
const TARGET_TLS_OBJECT = group({
  ca: orNull(pemPath('CA certificate(s) trusted besides the system CAs'), 'CA certificate(s) trusted besides the system CAs (PEM).'),
  servername: orNull(
    leaf<string>(
      (x) => {
        if (typeof x !== 'string' || !SERVERNAME.test(x)) throw new Error(`${show(x)} is not a host name (e.g. "backend.internal")`);
      },
      { type: 'string', pattern: SERVERNAME.source },
    ),
    "SNI and the name the target's certificate must carry; default the target's host.",
  ),
  rejectUnauthorized: orNull(bool, 'false: do not verify the certificates of the targets.'),
});
const targetTlsSwitch = leaf<boolean>((v) => {
  if (typeof v !== 'boolean') throw new Error(`must be true, false or an object like {"ca": "certs/ca.pem", "servername": "backend.internal"} (got ${show(v)})`);
}, { type: 'boolean' });

// ---- the app -----------------------------------------------------------------------------------

/**
 * The schema of an app's pre-dialed connections (`preconnect`) and its wake and sleep hooks
 * (`wake`, `sleep`). A hook is a command (argv, run without a shell) or a URL (POSTed to); exactly
 * one of the two.
 */
function fail(message: string): never {
  throw new Error(message);
}

/** A command as argv: a non-empty list of non-empty strings, run without a shell. */
const command = leaf<string[]>((v) => {
  if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === 'string' && a !== '' && !a.includes('\0'))) {
    fail(`must be a command as a list of arguments like ["/usr/bin/systemctl", "start", "backend"] (run without a shell; got ${show(v)})`);
  }
}, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } });

const hookUrl = httpUrl('POSTed to', 'http://127.0.0.1:8080/wake');

/** The hook keys of `wake` and `sleep`, and the check that exactly one is given. */
const hookKeys = {
  command: nullable(command, { doc: 'Run this command (argv, no shell), e.g. ["/usr/bin/systemctl", "start", "backend"].' }),
  url: nullable(hookUrl, { doc: 'Or POST {"app": NAME, "event": "wake"|"sleep"} to this URL.' }),
};

/** Exactly one of `command` and `url`: the problem and its key, or undefined. */
function hookProblem(hook: { command?: unknown; url?: unknown }): [string, 'command' | 'url'] | undefined {
  const given = (x: unknown): boolean => x !== undefined && x !== null;
  if (given(hook.command) && given(hook.url)) return ['give "command" or "url", not both', 'url'];
  if (!given(hook.command) && !given(hook.url)) return ['required, a "command" like ["/usr/bin/systemctl", "start", "backend"] or a "url" to POST to', 'command'];
  return undefined;
}
/** The refinement of `wake` and `sleep`: exactly one of command and url, the problem at that key. */
function oneHook(hook: { command: unknown; url: unknown }, ctx: { addIssue(issue: { code: 'custom'; message: string; path: string[]; input: unknown }): void }): void {
  const problem = hookProblem(hook);
  if (problem) ctx.addIssue({ code: 'custom', message: problem[0], path: [problem[1]], input: hook[problem[1]] });
}
const isObject = (payload: { value: unknown }): boolean => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value);

export const WAKE = group(
  {
    ...hookKeys,
    timeout: withDefault(duration(true), '30s', { doc: 'How long held clients wait for a target to accept; then they are closed (close reason wake_timeout).' }),
  },
  (v) => `must be an object like {"command": ["/usr/bin/systemctl", "start", "backend"], "timeout": "30s"} (got ${show(v)})`,
).superRefine(oneHook, { when: isObject });

export const SLEEP = group(
  {
    ...hookKeys,
    after: required(duration(true), 'Run the hook once the app has had no open connection for this long, e.g. "10m".'),
  },
  (v) => `must be an object like {"after": "10m", "command": ["/usr/bin/systemctl", "stop", "backend"]} (got ${show(v)})`,
).superRefine(oneHook, { when: isObject });

export const PRECONNECT = group(
  {
    count: withDefault(intBetween(1, 256), 4, { doc: 'Idle connections kept dialed to each healthy target.' }),
    maxIdle: withDefault(duration(true), '30s', { doc: 'A pre-dialed connection unused this long is closed and replaced.' }),
  },
  (v) => `must be an object like {"count": 4, "maxIdle": "30s"} (got ${show(v)})`,
);

/** The typed hook of a validated `wake` or `sleep`. */
export function toHook(raw: { command: string[] | null; url: string | null }): HookConfig {
  return raw.command !== null ? { command: raw.command } : { url: raw.url! };
}

export const APP = group(
  {
    name: required(appName, 'Unique name of the app.'),
    ports: required(list(port, listOf('ports', '[5001, 5002]')), 'Ports to listen on; 0 picks a free port.'),
    bind: nullable(bindAddress, { doc: 'Address to bind; defaults to the top-level bind.' }),
    targets: required(
      list(either(TARGET, targetString), listOf('targets', '["127.0.0.1:9001"]')),
      'Backends: "host:port" or {"address": "host:port", "weight": 2}.',
    ),
    balance: withDefault(oneOf(BALANCE_KINDS), 'round-robin', { doc: 'How a target is picked.' }),
    connectTimeout: withDefault(duration(true), '3s', { doc: 'Time a target has to accept a connection.' }),
    idleTimeout: withDefault(duration(false), '1h', { doc: 'Close a connection idle this long; 0 never.' }),
    protocol: withDefault(oneOf(PROTOCOLS), 'tcp', { doc: 'What the connections carry.' }),
    dataPlane: nullable(oneOf(DATA_PLANES), { doc: "This app's data plane, overriding the top-level dataPlane; null: the top level's." }),
    acceptProxyProtocol: withDefault(bool, false, {
      doc: 'Every connection starts with a PROXY protocol header (v1 or v2) from a trusted load balancer; its client address is used.',
    }),
    sendProxyProtocol: nullable(oneOf(PROXY_PROTOCOL_VERSIONS), {
      doc: 'Send a PROXY protocol header ("v1" or "v2") with the client address to the target; null: none.',
    }),
    tls: nullable(SERVER_TLS, {
      doc: 'Terminate TLS: {"cert": FILE, "key": FILE, "certificates": [{"cert", "key", "serverNames"}], "minVersion": "TLSv1.2", "handshakeTimeout": "10s", "clientAuth": "none", "clientCa": FILE}; null: plain TCP.',
    }),
    sniPreread: withDefault(bool, false, {
      doc: "Read the TLS server name (SNI) from the client's ClientHello for customer matching, without terminating TLS (apps without tls).",
    }),
    sniPrereadTimeout: nullable(duration(true), {
      doc: 'With sniPreread: how long a client has to send its ClientHello; then it is dialed without a server name. Default 5s.',
    }),
    allow: nullable(list(cidr, listOf('CIDRs', '["10.0.0.0/8", "2001:db8::/32"]')), {
      doc: 'Source CIDRs allowed to connect; any other source is refused at accept (reason "denied"). null: any source. With acceptProxyProtocol, the balancer and the client address of the header must both be allowed.',
    }),
    deny: nullable(list(cidr, listOf('CIDRs', '["203.0.113.0/24"]')), {
      doc: 'Source CIDRs refused at accept (reason "denied"); wins over allow. With acceptProxyProtocol, also the client address of the header.',
    }),
    targetTls: nullable(either(TARGET_TLS_OBJECT, targetTlsSwitch), {
      doc: 'Speak TLS to the targets: true, or {"ca": FILE, "servername": NAME, "rejectUnauthorized": true}.',
      value: false,
    }),
    preconnect: nullable(PRECONNECT, {
      doc: 'Keep connections to each healthy target dialed ahead and hand one to each new client: {"count": 4, "maxIdle": "30s"}; null: dial per client.',
    }),
    wake: nullable(WAKE, {
      doc: 'When no target accepts: run {"command": [...]} or POST to {"url": ...} once, hold the clients and connect them when a target accepts, within "timeout".',
    }),
    sleep: nullable(SLEEP, { doc: 'Run {"command": [...]} or POST to {"url": ...} once the app has had no open connection for "after".' }),
  },
  (v) => `must be an object with name, ports and targets (got ${show(v)})`,
);
