/**
 * Selling plans (issue 15), through the real proxy in its own process. The cases live in
 * bench/lib/plans-*.ts, one module each:
 *   peak: a peak rate holds within 2 % while the burst lasts, then the base rate within 2 %
 */
import { peakCase, type PlansCaseResult } from './lib/plans-peak.js';
import type { Args, Result, Scenario, Table } from './lib/scenario.js';

export const plans: Scenario = {
  name: 'plans',
  describe: 'plan features through the proxy: peak rates',
  options: {
    cases: { type: 'string', default: 'peak', description: 'which cases to run (peak)' },
  },
  async run(args: Args): Promise<Result> {
    const cases = new Set(String(args['cases']).split(',').map((s) => s.trim()));
    const results: PlansCaseResult[] = [];
    if (cases.has('peak')) results.push(await peakCase());
    const table: Table = {
      title: 'Plans (proxy in its own process)',
      columns: ['case', 'target', 'measured', 'result'],
      rows: results.map((r) => [r.case, r.target, r.measured, r.pass ? 'PASS' : 'FAIL']),
    };
    return { params: { cases: [...cases] }, tables: [table], notes: [], data: results };
  },
};
