/** The two directions of a connection: `down` = backend -> client, `up` = client -> backend. */
export type Dir = 'up' | 'down';
export const DIRS: readonly Dir[] = ['up', 'down'];

/** A cap shared by a fleet (cluster mode): a customer's, a tier's total, or the global one, in one direction. */
export type ShareLevel = 'customer' | 'tier' | 'global';

export interface Scope {
  level: ShareLevel;
  /** customer id or tier name; "" for global */
  name: string;
  dir: Dir;
  /** stable text form, e.g. "customer:acme:down" (Redis key suffix, map key) */
  key: string;
}

export function scopeKey(level: ShareLevel, name: string, dir: Dir): string {
  return level === 'global' ? `global:${dir}` : `${level}:${name}:${dir}`;
}
