/** deploy/grafana/shaper-proxy.json read for the tests: its shape (what the tests look at) and its queries. */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers.js';

export interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  /** a collapsed row holds its panels */
  panels?: Panel[];
}

export interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: { type: string; uid: string };
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string;
}

export interface Dashboard {
  id: number | null;
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'deploy/grafana/shaper-proxy.json'), 'utf8')) as Dashboard;
}

/** Every query's expression, with the panel and refId it belongs to. */
export function dashboardQueries(d: Dashboard): { where: string; expr: string }[] {
  return d.panels
    .flatMap((p): Panel[] => [p, ...(p.panels ?? [])])
    .flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr })));
}
