/**
 * The schema of shaping: a level's caps (`global`, and each tier's `connection`, `customer` and
 * `total`), a tier, and a customer with what it matches. Whether a customer's tier and apps exist
 * is checked by the loader (shaping.ts) once every tier and app is read.
 */
import type * as Zod from 'zod';
import {
  appRef,
  cidr,
  clock,
  countRate,
  customerId,
  days,
  duration,
  intBetween,
  matchListOf,
  matchPort,
  patterns,
  oneOf,
  positiveNumber,
  rate,
  scheduleList,
  size,
  tierRef,
} from './checks.js';
import { isPlainObject } from './fly.js';
import { either, group, list, nullable, optional, required, section, withDefault } from './kit.js';
import { MIN, PEAK, refineLevel } from './levels.js';
import { show } from './problems.js';
import { QUOTA_DIRECTIONS } from './types.js';

/** A level's caps: `down`/`up` rates (default unlimited), an optional `burst` and `peak` (levels.ts). */
export function level(what: string) {
  return group(levelShape(what)).superRefine(refineLevel, { when: isObjectPayload });
}

/** A tier's `total`: a level with a guaranteed minimum (levels.ts). */
function totalLevel(what: string) {
  return group({ ...levelShape(what), min: MIN }).superRefine(refineLevel, { when: isObjectPayload });
}

function levelShape(what: string) {
  return {
    down: withDefault(rate, 'unlimited', { doc: `Rate to clients (download) of ${what}.` }),
    up: withDefault(rate, 'unlimited', { doc: `Rate from clients (upload) of ${what}.` }),
    burst: nullable(either(group({ down: optional(size, 'Bucket size of the download direction.'), up: optional(size, 'Bucket size of the upload direction.') }), size), {
      doc: 'Bucket size: a size for both directions or {"down": SIZE, "up": SIZE}; default rate x rtt.',
    }),
    peak: PEAK,
  };
}

/** A level's caps inside a schedule window: only the keys given replace the tier's. */
function override(what: string) {
  return group({
    down: optional(rate, `Rate to clients (download) of ${what} inside the window.`),
    up: optional(rate, `Rate from clients (upload) of ${what} inside the window.`),
    burst: optional(either(group({ down: optional(size, 'Bucket size of the download direction.'), up: optional(size, 'Bucket size of the upload direction.') }), size), 'Bucket size inside the window.'),
  });
}

const QUOTA = group({
  bytes: required(size, 'Bytes a customer may move in an accounting period, e.g. "50GB".'),
  direction: withDefault(oneOf(QUOTA_DIRECTIONS), 'both', { doc: 'Which bytes count: "down" (to clients), "up" (from clients) or "both" added up.' }),
  then: nullable(tierRef(false), { doc: 'Tier a customer over its quota is in until the period ends (live, its open connections too); null: its new connections are refused and open ones closed.' }),
});

const WINDOW = group({
  days: withDefault(days, 'daily', { doc: 'Days the window starts on: "mon-fri", "mon,wed,fri", "sat-sun", "daily".' }),
  from: required(clock(false), 'Start, local time in the accounting time zone: "HH:MM".'),
  to: required(clock(true), 'End, "HH:MM" (up to "24:00"); not after `from`: the window runs past midnight.'),
  connection: optional(override('each connection'), 'Caps of each connection inside the window.'),
  customer: optional(override('all connections of a customer'), 'Caps of each customer inside the window.'),
  total: optional(override('all connections of the tier'), 'Caps of the tier inside the window.'),
});

/** The level's own checks run also when a key has a problem of its own: every problem is reported at once. */
const isObjectPayload = (payload: { value: unknown }): boolean => isPlainObject(payload.value);

export const TIER = group({
  rtt: withDefault(duration(true), '50ms', { doc: 'Round-trip time the buckets are sized for (rate x rtt).' }),
  weight: withDefault(positiveNumber, 1, { doc: 'Share of the global rate relative to the other tiers.' }),
  connection: section(level('each connection'), 'Caps of each connection.'),
  customer: section(level('all connections of a customer'), 'Caps of all connections of one customer together.'),
  total: section(totalLevel('all connections of the tier'), 'Caps of all connections of the tier together, and its guaranteed minimum.'),
  maxConnections: nullable(intBetween(1), { doc: 'Concurrent connections per customer.' }),
  connectionRate: nullable(countRate, { doc: 'New connections per customer, e.g. "10/s".' }),
  quota: nullable(QUOTA, { doc: 'Bytes per customer per accounting period, and what happens past them (needs "accounting").' }),
  schedule: nullable(list(WINDOW, scheduleList), { doc: 'Windows of the week in which other caps apply (accounting time zone); the first that holds wins.' }),
});

/** A match criterion: a list of what `item` checks (left out: any). */
function matchList<Item extends Zod.ZodType>(item: Item, what: string, example: string, key: string) {
  return list(item, matchListOf(what, example, key));
}

export const MATCH = group({
  sources: nullable(matchList(cidr, 'CIDRs', '["10.1.0.0/16", "2001:db8::/32"]', 'sources'), { doc: 'Source CIDRs.' }),
  apps: nullable(matchList(appRef, 'app names', '["web"]', 'apps'), { doc: 'Names of apps.' }),
  ports: nullable(matchList(matchPort, 'ports', '[5001]', 'ports'), { doc: 'Listening ports.' }),
  sni: nullable(patterns('sni', 'server names', '["api.example.com", "*.example.com"]'), {
    doc: 'TLS server names ("api.example.com", "*.example.com"); known on apps with tls or sniPreread.',
  }),
  clientCert: nullable(patterns('clientCert', 'certificate subjects', '["CN=alice", "O=Acme"]'), {
    doc: 'Subjects of verified client certificates ("CN=alice", "O=Acme"); known on apps with tls.clientAuth.',
  }),
});

export const CUSTOMER = group(
  {
    id: required(customerId, 'Unique id of the customer.'),
    tier: required(tierRef(true), 'Name of the tier.'),
    match: nullable(MATCH, { doc: 'What connections of the customer look like; left out or null: any connection.' }),
  },
  (v) => `must be an object with id, tier and match (got ${show(v)})`,
);
