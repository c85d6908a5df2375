/**
 * deploy/grafana/shaper-proxy.json as a Grafana import needs it: valid JSON, a uid and title, the
 * Prometheus data source and `instance` variables, panels on the 24-column grid without overlap,
 * each query with a refId and an expression. Every expression parses as PromQL (Prometheus' grammar,
 * then promtool itself), selects through the `instance` variable and takes its rates over
 * $__rate_interval. Whether its metric names exist: metric-names.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { ROOT, tempDir, which } from '../helpers.js';
import { GRAFANA_BUILTINS, expandGrafana, labelValuesMetric, parsePromql } from './promql.js';
import { dashboardQueries, loadDashboard, type Panel } from './dashboard.js';

const dashboard = loadDashboard();
const panels = dashboard.panels.flatMap((p): Panel[] => [p, ...(p.panels ?? [])]);
const queries = dashboardQueries(dashboard);
const VARIABLES = { ...GRAFANA_BUILTINS, datasource: 'prometheus', instance: '.*' };

test('the dashboard has what a Grafana import needs: uid, title, schema version, no fixed id, the variables', () => {
  assert.equal(dashboard.uid, 'shaper-proxy');
  assert.equal(dashboard.title, 'shaper-proxy');
  assert.equal(dashboard.id, null, 'no database id: import creates one');
  assert.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`);
  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
  assert.equal(vars.get('datasource')?.type, 'datasource');
  assert.equal(vars.get('datasource')?.query, 'prometheus');
  const instance = vars.get('instance');
  assert.equal(instance?.type, 'query');
  assert.deepEqual(instance?.datasource, { type: 'prometheus', uid: '${datasource}' });
  assert.equal(labelValuesMetric(typeof instance?.query === 'string' ? instance.query : instance!.query.query), 'shaper_build_info');
  assert.equal(instance?.includeAll && instance.multi && instance.allValue, '.*', 'All selects every instance');
});

test('panels: unique ids, on the 24-column grid without overlap, each query with a refId, an expression and the data source variable', () => {
  assert.ok(panels.length >= 30);
  assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'unique ids');
  const cells = new Map<string, string>();
  for (const p of panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok([x, y, w, h].every(Number.isInteger) && w > 0 && h > 0 && x >= 0 && x + w <= 24, `${p.title}: gridPos inside the grid`);
    for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
      const other = cells.get(`${i},${j}`);
      assert.equal(other, undefined, `${p.title} overlaps ${other}`);
      cells.set(`${i},${j}`, p.title);
    }
    if (p.type === 'row') continue;
    assert.ok(['timeseries', 'stat', 'table', 'bargauge', 'state-timeline'].includes(p.type), `${p.title}: a core panel type`);
    assert.ok(p.title && p.description, `${p.title}: title and description`);
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' });
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: queries`);
    assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length, `${p.title}: unique refIds`);
    for (const t of p.targets) {
      assert.ok(t.expr.trim() !== '', `${p.title} ${t.refId}: an expression`);
      assert.deepEqual(t.datasource, p.datasource);
    }
  }
  // the panels the dashboard is for
  for (const title of ['Tier throughput vs cap: down (to clients)', 'Tier throughput vs cap: up (from clients)', 'Close reasons', 'Refusals', 'Target health', 'Connect to a target', 'Certificate expiry', 'Reloads']) {
    assert.ok(panels.some((p) => p.title === title), title);
  }
});

test('every expression parses as PromQL, selects by $instance and rates over $__rate_interval', () => {
  for (const q of queries) {
    const expr = expandGrafana(q.expr, VARIABLES);
    const { selectors, errors } = parsePromql(expr);
    assert.deepEqual(errors, [], `${q.where}: ${q.expr}`);
    assert.ok(selectors.length > 0, `${q.where}: reads a metric`);
    for (const s of parsePromql(q.expr.replace(/\[\$__rate_interval\]/g, '[5m]')).selectors) {
      assert.ok(s.matchers.some((m) => m.label === 'instance' && m.op === '=~' && m.value === '$instance'), `${q.where}: ${s.name} filtered by instance=~"$instance"`);
    }
    for (const range of q.expr.matchAll(/\[([^\]]+)\]/g)) assert.equal(range[1], '$__rate_interval', `${q.where}: ranges follow the scrape interval`);
  }
  // the parser does catch what is not PromQL
  assert.notDeepEqual(parsePromql('sum(rate(x[5m])').errors, []);
  assert.throws(() => expandGrafana('up{job="$job"}', VARIABLES), /\$job is not defined/);
});

test('promtool check rules takes every expression (Prometheus\' own parser)', { skip: which('promtool') ? false : 'promtool not installed (.ci/run installs the prometheus package)' }, async (t) => {
  const dir = await tempDir(t, 'shaper-grafana-');
  const rules = queries.map((q, i) => ({ record: `grafana:query_${i}`, expr: expandGrafana(q.expr, VARIABLES) }));
  fs.writeFileSync(path.join(dir, 'dashboard.rules.yml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
  const r = spawnSync(which('promtool')!, ['check', 'rules', 'dashboard.rules.yml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('the file is what JSON.stringify writes (2 spaces, a final newline): diffs stay readable', () => {
  const text = fs.readFileSync(path.join(ROOT, 'deploy/grafana/shaper-proxy.json'), 'utf8');
  assert.equal(text, `${JSON.stringify(JSON.parse(text), null, 2)}\n`);
});
