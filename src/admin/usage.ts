/**
 * The usage routes of the admin API (issue 15), read-only:
 *
 *   GET /usage?limit=N&after=ID   every customer's usage in the current period, a page at a time
 *   GET /usage/:customer          one customer's
 *
 * Each entry: bytes up and down in the period, the quota, the bytes left of it and whether it is
 * exceeded, the tier the customer is in now, and its last closed period (the usage log has all).
 */
import { ProxyError } from '../errors.js';
import type { UsagePage, UsageView } from '../shaping/shaper.js';
import type { Router } from './router.js';

/** What the routes read: the shaper's plans. */
export interface UsageSource {
  /** the accounting config; undefined: accounting is off */
  readonly accounting: object | undefined;
  usage(id: string): Promise<UsageView | undefined>;
  /** null: accounting is off */
  usagePage(after: string | undefined, limit: number): Promise<UsagePage> | null;
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

const OFF = 'usage accounting is off: the config has no "accounting" (e.g. "accounting": {"period": "month", "timezone": "UTC"})';

export function registerUsageApi(router: Router, source: UsageSource): void {
  router
    .on('GET', '/usage', async (req) => {
      const limitText = req.query.get('limit');
      const limit = limitText === null ? DEFAULT_PAGE : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
        throw new ProxyError('SHAPER_ERR_ADMIN_BAD_REQUEST', `limit: ${JSON.stringify(limitText)} is not a page size (an integer from 1 to ${MAX_PAGE})`);
      }
      const page = source.usagePage(req.query.get('after') ?? undefined, limit);
      if (!page) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', OFF);
      return page;
    })
    .on('GET', '/usage/:customer', async (req) => {
      const id = req.params['customer']!;
      if (!source.accounting) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', OFF);
      const view = await source.usage(id);
      if (!view) throw new ProxyError('SHAPER_ERR_ADMIN_NOT_FOUND', `no usage of customer ${JSON.stringify(id)} in this period or the last`);
      return view;
    });
}
