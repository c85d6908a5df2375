/** The schema of an app's pre-dialed target connections (`apps[].preconnect`). */
import { duration, intBetween } from './checks.js';
import { group, withDefault } from './kit.js';
import { show } from './problems.js';

export const PRECONNECT = group(
  {
    count: withDefault(intBetween(1, 256), 4, { doc: 'Idle connections kept dialed to each healthy target.' }),
    maxIdle: withDefault(duration(true), '30s', { doc: 'A pre-dialed connection unused this long is closed and replaced.' }),
  },
  (v) => `must be an object like {"count": 4, "maxIdle": "30s"} (got ${show(v)})`,
);
