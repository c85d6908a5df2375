/** The names of the fleet's Redis keys and channel, all under `cluster.prefix`. */

/** The runtime changes (admin API) the fleet shares, one Redis hash each. */
export type RuntimeHash = 'tiers' | 'customers';

export interface FleetKeys {
  /** instance -> Redis time of its last heartbeat */
  members: string;
  /** instance -> its info JSON (host, pid, connections, startedAt) */
  info: string;
  /** version of the runtime changes, bumped by every change */
  version: string;
  /** pub/sub channel announcing changes ("version instance") */
  channel: string;
  runtime: Record<RuntimeHash, string>;
  /** an instance's demand hash (scope -> wanting connections) */
  demand(instance: string): string;
  /** a customer's admitted connections, per instance */
  admission(customer: string): string;
  /** a customer's connectionRate window */
  rate(customer: string): string;
}

export function fleetKeys(prefix: string): FleetKeys {
  const p = prefix;
  return {
    members: `${p}members`,
    info: `${p}info`,
    version: `${p}runtime:version`,
    channel: `${p}control`,
    runtime: { tiers: `${p}runtime:tiers`, customers: `${p}runtime:customers` },
    demand: (instance) => `${p}demand:${instance}`,
    admission: (customer) => `${p}admission:${customer}`,
    rate: (customer) => `${p}rate:${customer}`,
  };
}
