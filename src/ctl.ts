/**
 * `shaper-proxy ctl`: the admin API from the command line, for operators. Readable tables by
 * default, the API's JSON with --json. Exit status: 0 done, 1 the API refused or could not be
 * reached, 2 a usage error.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ProxyError } from './errors.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9900';

const USAGE = `Usage: shaper-proxy ctl COMMAND [options]

Commands:
  tiers                         list the tiers
  tier NAME                     show one tier
  tier NAME --file FILE         create or replace a tier; FILE holds a tier object as written
                                under "tiers" in the config ("-" reads stdin)
  customers                     list the customers
  customer ID                   show one customer
  customer ID --tier TIER       move a customer to another tier (its match stays)
  customer ID [--tier TIER] --source CIDR... [--app NAME...] [--port N...]
                                create a customer or replace its match
  customer ID --delete          delete a customer
  connections                   list the proxied connections
  fleet                         the fleet (config "cluster"): Redis, members, this instance's shares

Options:
      --admin URL   the proxy's admin API (default $SHAPER_ADMIN_URL, else ${DEFAULT_ADMIN_URL})
      --token TOKEN the admin API's token, admin.token (default $SHAPER_ADMIN_TOKEN)
      --json        print the API's JSON instead of a table
  -h, --help        this text

Changes take effect on live connections at once and are kept in the proxy's state file.
`;

/** What stops a ctl command; `status` is its exit status (2: bad arguments, 1: anything else). */
class CtlError extends ProxyError {
  constructor(
    message: string,
    readonly exitStatus = 1,
  ) {
    super('SHAPER_ERR_CTL', message);
  }
}

interface Out {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processOut: Out = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs `ctl` with its arguments (after "ctl"); resolves to the exit status. */
export async function runCtl(argv: string[], env: NodeJS.ProcessEnv = process.env, out: Out = processOut): Promise<number> {
  try {
    await ctl(argv, env, out);
    return 0;
  } catch (err) {
    if (err instanceof CtlError) {
      out.stderr(`shaper-proxy ctl: ${err.message}\n`);
      return err.exitStatus;
    }
    throw err;
  }
}

async function ctl(argv: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        admin: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        file: { type: 'string' },
        tier: { type: 'string' },
        source: { type: 'string', multiple: true },
        app: { type: 'string', multiple: true },
        port: { type: 'string', multiple: true },
        delete: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw usage((err as Error).message);
  }
  const { values: opts, positionals } = parsed;
  if (opts.help) {
    out.stdout(USAGE);
    return;
  }
  const [command, name, ...extra] = positionals;
  if (command === undefined) throw usage('a command is required');
  if (extra.length > 0) throw usage(`unexpected ${JSON.stringify(extra[0])}`);
  const token = opts.token ?? env['SHAPER_ADMIN_TOKEN'];
  if (token !== undefined && token.trim() === '' && opts.token !== undefined) throw usage('--token: must not be empty');
  const api = new AdminClient(adminUrl(opts.admin ?? env['SHAPER_ADMIN_URL'] ?? DEFAULT_ADMIN_URL), token?.trim() || undefined);
  const show = (value: unknown, table: () => string): void => out.stdout(opts.json ? `${JSON.stringify(value, null, 2)}\n` : table());
  const only = (allowed: string[]): void => {
    const given = (['file', 'tier', 'source', 'app', 'port', 'delete'] as const).filter((k) => opts[k] !== undefined && opts[k] !== false);
    const wrong = given.find((k) => !allowed.includes(k));
    if (wrong) throw usage(`--${wrong} does not go with "${command}"`);
  };
  const needName = (what: string): string => {
    if (name === undefined) throw usage(`"${command}" needs a ${what}`);
    return name;
  };

  switch (command) {
    case 'tiers':
    case 'customers':
    case 'connections': {
      only([]);
      if (name !== undefined) throw usage(`unexpected ${JSON.stringify(name)} (for one, use "${command.slice(0, -1)} ${name}")`);
      const list = (await api.call('GET', `/${command}`)) as Row[];
      show(list, () => (command === 'tiers' ? tiersTable(list) : command === 'customers' ? customersTable(list) : connectionsTable(list)));
      return;
    }
    case 'tier': {
      only(['file']);
      const tierName = needName('tier name');
      const path = `/tiers/${encodeURIComponent(tierName)}`;
      if (opts.file === undefined) {
        const tier = (await api.call('GET', path)) as Row;
        show(tier, () => tiersTable([tier]));
        return;
      }
      const tier = (await api.call('PUT', path, await readJsonFile(opts.file))) as Row;
      show(tier, () => `tier ${tierName} saved\n${tiersTable([tier])}`);
      return;
    }
    case 'customer': {
      only(['tier', 'source', 'app', 'port', 'delete']);
      const id = needName('customer id');
      const path = `/customers/${encodeURIComponent(id)}`;
      const match = matchFrom(opts.source, opts.app, opts.port);
      if (opts.delete) {
        if (opts.tier !== undefined || match) throw usage('--delete takes no --tier, --source, --app or --port');
        const res = await api.call('DELETE', path);
        show(res, () => `customer ${id} deleted\n`);
        return;
      }
      if (opts.tier === undefined && !match) {
        const customer = (await api.call('GET', path)) as Row;
        show(customer, () => customersTable([customer]));
        return;
      }
      let tier = opts.tier;
      let keptMatch: unknown = match;
      if (tier === undefined || !match) {
        // Change one half, keep the other: read the customer first.
        const current = (await api.call('GET', path, undefined, () =>
          `customer ${JSON.stringify(id)} does not exist; to create it give --tier and its match (--source CIDR, --app NAME, --port N)`,
        )) as Row;
        tier ??= String(current['tier']);
        keptMatch ??= current['match'];
      }
      const customer = (await api.call('PUT', path, { tier, match: keptMatch })) as Row;
      show(customer, () => `customer ${id} saved\n${customersTable([customer])}`);
      return;
    }
    case 'fleet': {
      only([]);
      if (name !== undefined) throw usage(`unexpected ${JSON.stringify(name)}`);
      const status = (await api.call('GET', '/status')) as Row;
      const cluster = status['cluster'] as Row | undefined;
      show(cluster ?? null, () => (cluster ? fleetText(cluster) : 'this proxy runs alone (its config has no "cluster")\n'));
      return;
    }
    default:
      throw usage(`unknown command ${JSON.stringify(command)}`);
  }
}

function usage(message: string): CtlError {
  return new CtlError(`${message}\n\n${USAGE}`, 2);
}

function adminUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usage(`--admin: ${JSON.stringify(text)} is not a URL (use e.g. ${DEFAULT_ADMIN_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage(`--admin: ${JSON.stringify(text)} is not an http:// URL`);
  return url;
}

function matchFrom(sources?: string[], apps?: string[], ports?: string[]): Record<string, unknown> | undefined {
  if (!sources && !apps && !ports) return undefined;
  const match: Record<string, unknown> = {};
  if (sources) match['sources'] = sources;
  if (apps) match['apps'] = apps;
  if (ports) {
    match['ports'] = ports.map((p) => {
      if (!/^\d+$/.test(p)) throw usage(`--port: ${JSON.stringify(p)} is not a port number`);
      return Number(p);
    });
  }
  return match;
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new CtlError(`--file: cannot read ${file} (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new CtlError(`--file: ${file} is not valid JSON (${(err as Error).message})`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// ---- talking to the API -----------------------------------------------------------------------

type Row = Record<string, unknown>;

class AdminClient {
  constructor(
    readonly base: URL,
    readonly token?: string,
  ) {}

  /** The parsed JSON answer; an error answer or no answer throws a CtlError saying why. */
  async call(method: string, path: string, body?: unknown, notFound?: () => string): Promise<unknown> {
    const url = `${this.base.href.replace(/\/+$/, '')}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new CtlError(unreachable(err, this.base.href));
    }
    const text = await res.text();
    if (res.status === 401) {
      throw new CtlError(
        this.token === undefined
          ? `the admin API at ${this.base.href} needs a token (HTTP 401): give --token TOKEN or set SHAPER_ADMIN_TOKEN to the proxy's admin.token`
          : `the admin API at ${this.base.href} refused the token (HTTP 401): check --token / SHAPER_ADMIN_TOKEN against the proxy's admin.token`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CtlError(`${method} ${url}: HTTP ${res.status}, not a JSON answer (is ${this.base.href} the proxy's admin API?)`);
    }
    if (!res.ok) {
      if (res.status === 404 && notFound) throw new CtlError(notFound());
      const error = (json as { error?: unknown }).error;
      throw new CtlError(typeof error === 'string' ? error : `${method} ${url}: HTTP ${res.status}`);
    }
    return json;
  }
}

function unreachable(err: unknown, url: string): string {
  const e = err as Error & { cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  if (e.name === 'TimeoutError') return `the admin API at ${url} did not answer within 10s`;
  const code = e.cause?.code ?? e.cause?.errors?.[0]?.code;
  const hint = 'is the proxy running, and is this its admin.listen? (set --admin URL or SHAPER_ADMIN_URL)';
  if (code === 'ECONNREFUSED') return `cannot connect to the admin API at ${url} (connection refused): ${hint}`;
  if (e.cause?.message === 'bad port') return `cannot use the admin API at ${url}: fetch refuses that port (one browsers block); give admin.listen another port`;
  return `cannot reach the admin API at ${url} (${code ?? e.cause?.message ?? e.message}): ${hint}`;
}

// ---- tables -----------------------------------------------------------------------------------

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const right = head.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d.]+$|^-$/.test(r[i]!)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

function fleetText(cluster: Row): string {
  const redis = level(cluster, 'redis');
  const head = `instance ${text(cluster['instance'])}, redis ${text(redis['url'])} ${text(redis['state'])} since ${text(redis['since'])}${
    cluster['fallback'] ? ' (fallback shares in force)' : ''
  }, ${text(cluster['rebalances'])} rebalances\n\n`;
  const members = ((cluster['members'] ?? []) as Row[]).map((m) => [
    `${text(m['instance'])}${m['self'] ? ' (this one)' : ''}`,
    m['live'] ? 'live' : 'gone',
    `${text(m['heartbeatAgeMs'])}ms`,
    text(m['host']),
    text(m['pid']),
    text(m['connections']),
  ]);
  const shares = ((cluster['shares'] ?? []) as Row[]).map((x) => [
    text(x['scope']),
    text(x['demand']),
    text(x['held']),
    text(x['fleetDemand']),
    text(x['fleetHeld']),
    Number(x['share']).toFixed(3),
  ]);
  return `${head}${table(['member', 'state', 'heartbeat', 'host', 'pid', 'connections'], members)}\n${
    shares.length ? table(['shared cap', 'wanting here', 'held here', 'wanting in fleet', 'held in fleet', 'share'], shares) : 'no shared cap is in demand here\n'
  }`;
}

/** bytes/s -> "100mbit", "1.5gbit", "800kbit", "unlimited". */
export function formatRate(rate: unknown): string {
  if (rate === 'unlimited' || rate === null || rate === undefined) return rate === 'unlimited' ? 'unlimited' : '-';
  const bits = Number(rate) * 8;
  for (const [unit, size] of [['tbit', 1e12], ['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) {
    if (bits >= size) return `${trim(bits / size)}${unit}`;
  }
  return `${trim(bits)}bit`;
}

/** bytes -> "1.5MB". */
export function formatBytes(bytes: unknown): string {
  const n = Number(bytes);
  for (const [unit, size] of [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const) {
    if (n >= size) return `${trim(n / size)}${unit}`;
  }
  return `${n}B`;
}

function formatDuration(ms: unknown): string {
  const s = Math.floor(Number(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

const trim = (n: number): string => String(Number(n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)));

const level = (row: Row, key: string): Row => (row[key] ?? {}) as Row;
const text = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));

function tiersTable(rows: Row[]): string {
  return table(
    ['NAME', 'SOURCE', 'CONN-DOWN', 'CONN-UP', 'CUST-DOWN', 'CUST-UP', 'TOTAL-DOWN', 'TOTAL-UP', 'MAX-CONNS', 'CUSTOMERS', 'CONNECTIONS'],
    rows.map((t) => [
      text(t['name']),
      text(t['source']),
      formatRate(level(t, 'connection')['down']),
      formatRate(level(t, 'connection')['up']),
      formatRate(level(t, 'customer')['down']),
      formatRate(level(t, 'customer')['up']),
      formatRate(level(t, 'total')['down']),
      formatRate(level(t, 'total')['up']),
      text(t['maxConnections']),
      text(t['customers']),
      text(t['connections']),
    ]),
  );
}

function customersTable(rows: Row[]): string {
  return table(
    ['ID', 'TIER', 'SOURCE', 'MATCH', 'CONNECTIONS'],
    rows.map((c) => [text(c['id']), text(c['tier']), text(c['source']), matchText(c['match']), text(c['connections'])]),
  );
}

function matchText(match: unknown): string {
  const m = (match ?? {}) as { sources?: string[]; apps?: string[]; ports?: number[]; sni?: string[]; clientCert?: string[] };
  const parts = [
    ...(m.sources ? [`sources=${m.sources.join(',')}`] : []),
    ...(m.apps ? [`apps=${m.apps.join(',')}`] : []),
    ...(m.ports ? [`ports=${m.ports.join(',')}`] : []),
    ...(m.sni ? [`sni=${m.sni.join(',')}`] : []),
    ...(m.clientCert ? [`clientCert=${m.clientCert.map((p) => JSON.stringify(p)).join(',')}`] : []),
  ];
  return parts.length > 0 ? parts.join(' ') : '(any)';
}

function connectionsTable(rows: Row[]): string {
  return table(
    ['ID', 'CLIENT', 'APP', 'TARGET', 'CUSTOMER', 'TIER', 'AGE', 'BYTES-DOWN', 'BYTES-UP', 'RATE-DOWN', 'RATE-UP', 'SNI'],
    rows.map((c) => [
      text(c['id']),
      text(c['client']),
      text(c['app']),
      text(c['target']),
      text(c['customer']),
      text(c['tier']),
      formatDuration(c['durationMs']),
      formatBytes(c['bytesDown']),
      formatBytes(c['bytesUp']),
      formatRate(c['rateDown']),
      formatRate(c['rateUp']),
      text(c['sni']),
    ]),
  );
}
