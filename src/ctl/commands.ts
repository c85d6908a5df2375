/** The ctl's commands: each checks its arguments, calls the admin API and shows the answer. */
import { COMMAND_OPTIONS, matchFrom, readJsonFile, type CommandOption, type CtlOptions } from './args.js';
import type { AdminClient, Row } from './client.js';
import { connectionsTable, customersTable, fleetText, tiersTable, usageTable } from './tables.js';
import { CtlError, usage } from './usage.js';

/** One command as given: its name argument, the options, the API, and where its answer goes. */
export interface Invocation {
  command: string;
  name: string | undefined;
  opts: CtlOptions;
  api: AdminClient;
  /** Prints `value` as JSON with --json, else `table()`. */
  show(value: unknown, table: () => string): void;
}

type Command = (inv: Invocation) => Promise<void>;

/** A usage error when an option given does not go with the command. */
function only(inv: Invocation, allowed: CommandOption[]): void {
  const given = COMMAND_OPTIONS.filter((k) => inv.opts[k] !== undefined && inv.opts[k] !== false);
  const wrong = given.find((k) => !allowed.includes(k));
  if (wrong) throw usage(`--${wrong} does not go with "${inv.command}"`);
}

function needName(inv: Invocation, what: string): string {
  if (inv.name === undefined) throw usage(`"${inv.command}" needs a ${what}`);
  return inv.name;
}

function noName(inv: Invocation, hint = ''): void {
  if (inv.name !== undefined) throw usage(`unexpected ${JSON.stringify(inv.name)}${hint}`);
}

const LIST_TABLES: Record<string, (rows: Row[]) => string> = { tiers: tiersTable, customers: customersTable, connections: connectionsTable };

/** tiers, customers, connections */
const list: Command = async (inv) => {
  const { command, name } = inv;
  only(inv, []);
  noName(inv, ` (for one, use "${command.slice(0, -1)} ${name}")`);
  const rows = (await inv.api.call('GET', `/${command}`)) as Row[];
  inv.show(rows, () => LIST_TABLES[command]!(rows));
};

/** tier NAME [--file FILE | --delete] */
const tier: Command = async (inv) => {
  only(inv, ['file', 'delete']);
  const tierName = needName(inv, 'tier name');
  const path = `/tiers/${encodeURIComponent(tierName)}`;
  if (inv.opts.delete) {
    if (inv.opts.file !== undefined) throw usage('--delete takes no --file');
    const res = await inv.api.call('DELETE', path);
    inv.show(res, () => `tier ${tierName} deleted\n`);
    return;
  }
  if (inv.opts.file === undefined) {
    const shown = (await inv.api.call('GET', path)) as Row;
    inv.show(shown, () => tiersTable([shown]));
    return;
  }
  const saved = (await inv.api.call('PUT', path, await readJsonFile(inv.opts.file))) as Row;
  inv.show(saved, () => `tier ${tierName} saved\n${tiersTable([saved])}`);
};

/** customer ID [--tier TIER] [--source CIDR... --app NAME... --port N...] | --delete */
const customer: Command = async (inv) => {
  const { opts, api } = inv;
  only(inv, ['tier', 'source', 'app', 'port', 'delete']);
  const id = needName(inv, 'customer id');
  const path = `/customers/${encodeURIComponent(id)}`;
  const match = matchFrom(opts.source, opts.app, opts.port);
  if (opts.delete) {
    if (opts.tier !== undefined || match) throw usage('--delete takes no --tier, --source, --app or --port');
    const res = await api.call('DELETE', path);
    inv.show(res, () => `customer ${id} deleted\n`);
    return;
  }
  if (opts.tier === undefined && !match) {
    const shown = (await api.call('GET', path)) as Row;
    inv.show(shown, () => customersTable([shown]));
    return;
  }
  let tierName = opts.tier;
  let keptMatch: unknown = match;
  if (tierName === undefined || !match) {
    // Change one half, keep the other: read the customer first.
    const current = (await api.call('GET', path, undefined, () =>
      `customer ${JSON.stringify(id)} does not exist; to create it give --tier and its match (--source CIDR, --app NAME, --port N)`,
    )) as Row;
    tierName ??= String(current['tier']);
    keptMatch ??= current['match'];
  }
  const saved = (await api.call('PUT', path, { tier: tierName, match: keptMatch })) as Row;
  inv.show(saved, () => `customer ${id} saved\n${customersTable([saved])}`);
};

/** fleet: /status's "cluster" */
const fleet: Command = async (inv) => {
  only(inv, []);
  noName(inv);
  const status = (await inv.api.call('GET', '/status')) as Row;
  const cluster = status['cluster'] as Row | undefined;
  inv.show(cluster ?? null, () => (cluster ? fleetText(cluster) : 'this proxy runs alone (its config has no "cluster")\n'));
};

/** reload: the proxy reads its config file again (POST /reload); a file that does not load exits 2 with its problems. */
const reload: Command = async (inv) => {
  only(inv, []);
  noName(inv);
  const result = (await inv.api.call('POST', '/reload', undefined, undefined, [400])) as Row;
  if (result['ok'] !== true) {
    const errors = Array.isArray(result['errors']) ? (result['errors'] as unknown[]).map(String) : [String(result['error'] ?? 'the reload failed')];
    throw new CtlError(`reload failed; the old config stays in force:\n${errors.join('\n')}`, 2);
  }
  inv.show(result, () => `reloaded ${String(result['hash'] ?? '').slice(0, 12)} (${String(result['at'])})\n`);
};

/** The proxy may take this long to start the new program (its UPGRADE_TIMEOUT_MS, 30 s) and answer. */
const UPGRADE_ANSWER_MS = 40_000;

/**
 * upgrade: the proxy starts the program on disk, hands it the listening sockets and drains (POST
 * /upgrade); a new program that cannot start exits 2 with its reason while the old one keeps serving.
 */
const upgrade: Command = async (inv) => {
  only(inv, []);
  noName(inv);
  const result = (await inv.api.call('POST', '/upgrade', undefined, undefined, [500], UPGRADE_ANSWER_MS)) as Row;
  if (result['ok'] !== true) throw new CtlError(`upgrade failed; the old process keeps serving:\n${String(result['error'] ?? 'no reason given')}`, 2);
  inv.show(result, () => `upgraded: pid ${String(result['newPid'])} serves; pid ${String(result['oldPid'])} drains its ${String(result['draining'])} connections and exits (${String(result['ms'])} ms)\n`);
};

/** usage [ID]: one customer's usage, or every customer's (all pages of GET /usage). */
const usageCommand: Command = async (inv) => {
  only(inv, []);
  if (inv.name !== undefined) {
    const one = (await inv.api.call('GET', `/usage/${encodeURIComponent(inv.name)}`)) as Row;
    inv.show(one, () => usageTable([one]));
    return;
  }
  const rows: Row[] = [];
  let after: string | null = null;
  do {
    const page = (await inv.api.call('GET', `/usage?limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}`)) as { customers: Row[]; next: string | null };
    rows.push(...page.customers);
    after = page.next;
  } while (after !== null);
  inv.show(rows, () => usageTable(rows));
};

/** kill ID: close one connection (DELETE /connections/:id). */
const kill: Command = async (inv) => {
  only(inv, []);
  const id = needName(inv, 'connection id (see "connections")');
  const res = (await inv.api.call('DELETE', `/connections/${encodeURIComponent(id)}`)) as Row;
  inv.show(res, () => `connection ${id} (${String(res['client'])}, app ${String(res['app'])}) closed\n`);
};

/** drain / undrain: stop accepting (the listeners close, /ready 503) or accept again. */
const drain: Command = async (inv) => {
  only(inv, []);
  noName(inv);
  const res = (await inv.api.call('POST', `/${inv.command}`)) as Row;
  const open = `${String(res['connections'])} connection(s) open`;
  inv.show(res, () => (res['draining'] ? `draining: not accepting, ${open}\n` : `accepting, ${open}\n`));
};

export const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['tiers', list],
  ['customers', list],
  ['connections', list],
  ['tier', tier],
  ['customer', customer],
  ['fleet', fleet],
  ['reload', reload],
  ['upgrade', upgrade],
  ['usage', usageCommand],
  ['kill', kill],
  ['drain', drain],
  ['undrain', drain],
]);
