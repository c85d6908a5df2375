import type { BalanceKind } from '../config/types.js';
import type { Balancer } from './balancer.js';
import { IpHashBalancer } from './ip-hash.js';
import { LeastConnBalancer } from './least-conn.js';
import { LeastTimeBalancer } from './least-time.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedLeastConnBalancer } from './weighted-least-conn.js';

export function createBalancer(kind: BalanceKind): Balancer {
  switch (kind) {
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'least-conn':
      return new LeastConnBalancer();
    case 'weighted-least-conn':
      return new WeightedLeastConnBalancer();
    case 'ip-hash':
      return new IpHashBalancer();
    case 'least-time':
      return new LeastTimeBalancer();
    default: {
      const unknown: never = kind;
      throw new Error(`unknown balance kind ${String(unknown)}`);
    }
  }
}
