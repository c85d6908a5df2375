/** The validated, normalised configuration every other module consumes. */

export type BalanceKind = 'round-robin' | 'least-conn' | 'weighted-least-conn' | 'ip-hash';
export const BALANCE_KINDS: readonly BalanceKind[] = ['round-robin', 'least-conn', 'weighted-least-conn', 'ip-hash'];

export interface TargetConfig {
  /** As written, "host:port"; the identity of the target across reloads. */
  address: string;
  host: string;
  port: number;
  weight: number;
}

export interface AppConfig {
  name: string;
  ports: number[];
  /** Address the app's ports bind to. */
  bind: string;
  targets: TargetConfig[];
  balance: BalanceKind;
  /** ms */
  connectTimeout: number;
  /** ms; 0 disables */
  idleTimeout: number;
  protocol: 'tcp' | 'foo';
}

export interface HealthConfig {
  interval: number;
  timeout: number;
  unhealthyAfter: number;
  healthyAfter: number;
}

export interface ProxyConfig {
  apps: AppConfig[];
  health: HealthConfig;
  /** null: no admin server */
  admin: { host: string; port: number } | null;
  log: { level: string };
  /** ms connections may drain on shutdown before they are closed */
  drainTimeout: number;
  /** Where the file came from, for reload. */
  source?: string;
}
