/** The ctl's tables: the admin API's JSON as columns for a terminal. */
import type { Row } from './client.js';

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const right = head.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d.]+$|^-$/.test(r[i]!)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** A column: its head, and its cell in one row. */
type Column = readonly [head: string, cell: (row: Row) => string];

/** The rows as a table of `columns`. */
function rowsTable(columns: readonly Column[], rows: Row[]): string {
  return table(
    columns.map(([head]) => head),
    rows.map((row) => columns.map(([, cell]) => cell(row))),
  );
}

const field = (key: string) => (row: Row) => text(row[key]);
const limit = (key: string, dir: 'down' | 'up') => (row: Row) => formatRate(level(row, key)[dir]);

const TIER_COLUMNS: readonly Column[] = [
  ['NAME', field('name')],
  ['SOURCE', field('source')],
  ['CONN-DOWN', limit('connection', 'down')],
  ['CONN-UP', limit('connection', 'up')],
  ['CUST-DOWN', limit('customer', 'down')],
  ['CUST-UP', limit('customer', 'up')],
  ['TOTAL-DOWN', limit('total', 'down')],
  ['TOTAL-UP', limit('total', 'up')],
  ['MAX-CONNS', field('maxConnections')],
  ['CUSTOMERS', field('customers')],
  ['CONNECTIONS', field('connections')],
];

const CUSTOMER_COLUMNS: readonly Column[] = [
  ['ID', field('id')],
  ['TIER', field('tier')],
  ['SOURCE', field('source')],
  ['MATCH', (c) => matchText(c['match'])],
  ['CONNECTIONS', field('connections')],
];

const CONNECTION_COLUMNS: readonly Column[] = [
  ['ID', field('id')],
  ['CLIENT', field('client')],
  ['APP', field('app')],
  ['TARGET', field('target')],
  ['CUSTOMER', field('customer')],
  ['TIER', field('tier')],
  ['AGE', (c) => formatDuration(c['durationMs'])],
  ['BYTES-DOWN', (c) => formatBytes(c['bytesDown'])],
  ['BYTES-UP', (c) => formatBytes(c['bytesUp'])],
  ['RATE-DOWN', (c) => formatRate(c['rateDown'])],
  ['RATE-UP', (c) => formatRate(c['rateUp'])],
  ['SNI', field('sni')],
];

const quotaText = (row: Row): string => {
  const q = row['quota'] as Row | null | undefined;
  return q ? `${formatBytes(q['bytes'])} ${text(q['direction'])}${q['then'] ? ` then ${text(q['then'])}` : ''}` : '-';
};

const USAGE_COLUMNS: readonly Column[] = [
  ['CUSTOMER', field('customer')],
  ['TIER', (u) => (u['inTier'] !== u['tier'] ? `${text(u['tier'])} (in ${text(u['inTier'])})` : text(u['tier']))],
  ['DOWN', (u) => formatBytes(u['down'])],
  ['UP', (u) => formatBytes(u['up'])],
  ['QUOTA', quotaText],
  ['LEFT', (u) => (u['remaining'] === null || u['remaining'] === undefined ? '-' : formatBytes(u['remaining']))],
  ['EXCEEDED', (u) => (u['exceeded'] ? 'yes' : 'no')],
  ['CONNECTIONS', field('connections')],
  ['PERIOD', (u) => text((u['period'] as Row | undefined)?.['start'])],
  ['LAST-DOWN', (u) => ((u['last'] as Row | null) ? formatBytes((u['last'] as Row)['down']) : '-')],
  ['LAST-UP', (u) => ((u['last'] as Row | null) ? formatBytes((u['last'] as Row)['up']) : '-')],
];

export const tiersTable = (rows: Row[]): string => rowsTable(TIER_COLUMNS, rows);
export const usageTable = (rows: Row[]): string => rowsTable(USAGE_COLUMNS, rows);
export const customersTable = (rows: Row[]): string => rowsTable(CUSTOMER_COLUMNS, rows);
export const connectionsTable = (rows: Row[]): string => rowsTable(CONNECTION_COLUMNS, rows);

/** /status's "cluster": Redis, the members, this instance's shares. */
export function fleetText(cluster: Row): string {
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

const RATE_UNITS = [['tbit', 1e12], ['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const;
const BYTE_UNITS = [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const;

/** bytes/s -> "100mbit", "1.5gbit", "800kbit", "unlimited". */
export function formatRate(rate: unknown): string {
  if (rate === 'unlimited' || rate === null || rate === undefined) return rate === 'unlimited' ? 'unlimited' : '-';
  const bits = Number(rate) * 8;
  return inUnits(bits, RATE_UNITS) ?? `${trim(bits)}bit`;
}

/** bytes -> "1.5MB". */
export function formatBytes(bytes: unknown): string {
  const n = Number(bytes);
  return inUnits(n, BYTE_UNITS) ?? `${n}B`;
}

/** `n` in the largest of `units` it reaches; undefined below the smallest. */
function inUnits(n: number, units: readonly (readonly [string, number])[]): string | undefined {
  for (const [unit, size] of units) {
    if (n >= size) return `${trim(n / size)}${unit}`;
  }
  return undefined;
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
