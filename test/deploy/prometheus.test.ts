/**
 * deploy/prometheus/alerts.yml, checked by Prometheus' own promtool (Debian's prometheus package;
 * .ci/run installs it): `promtool check rules` (syntax, PromQL, templates) and `promtool test rules`
 * over alerts.test.yml, the unit tests that see each alert firing and not firing. Either failing
 * fails the suite. Whether the rules' metric names exist: metric-names.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT, tempDir, which } from '../helpers.js';

const PROMTOOL = which('promtool');
const skip = PROMTOOL ? false : 'promtool not installed (.ci/run installs the prometheus package)';
const DIR = path.join(ROOT, 'deploy/prometheus');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
interface UnitTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const rules = (parse(fs.readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

const promtool = (args: string[]) => spawnSync(PROMTOOL!, args, { cwd: DIR, encoding: 'utf8' });

test('promtool check rules: alerts.yml is valid', { skip }, () => {
  const r = promtool(['check', 'rules', 'alerts.yml']);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('promtool test rules: alerts.test.yml passes, and sees every alert firing and not firing', { skip }, () => {
  const r = promtool(['test', 'rules', 'alerts.test.yml']);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /SUCCESS/);
  const tests = parse(fs.readFileSync(path.join(DIR, 'alerts.test.yml'), 'utf8')) as UnitTests;
  assert.deepEqual(tests.rule_files, ['alerts.yml']);
  const cases = tests.tests.flatMap((x) => x.alert_rule_test ?? []);
  for (const { alert } of rules) {
    const mine = cases.filter((c) => c.alertname === alert);
    assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${alert}: a case where it fires`);
    assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${alert}: a case where it does not`);
  }
});

test('promtool fails on a broken rule and on a unit test that expects the wrong thing (the checks above can fail)', { skip }, async (t) => {
  const dir = await tempDir(t, 'shaper-promtool-');
  const text = fs.readFileSync(path.join(DIR, 'alerts.yml'), 'utf8');
  fs.writeFileSync(path.join(dir, 'alerts.yml'), text.replace('expr: shaper_target_up == 0', 'expr: shaper_target_up == == 0'));
  const check = spawnSync(PROMTOOL!, ['check', 'rules', 'alerts.yml'], { cwd: dir, encoding: 'utf8' });
  assert.notEqual(check.status, 0);
  // a tier cap without `ignoring (level)` never matches the byte counters: the saturation tests fail
  fs.writeFileSync(path.join(dir, 'alerts.yml'), text.replace('/ ignoring (level)', '/'));
  fs.copyFileSync(path.join(DIR, 'alerts.test.yml'), path.join(dir, 'alerts.test.yml'));
  const unit = spawnSync(PROMTOOL!, ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
  assert.notEqual(unit.status, 0);
  assert.match(unit.stdout + unit.stderr, /alertname: ShaperProxyTierSaturated/);
});

test('each alert has a severity, a summary and a description', () => {
  assert.ok(rules.length >= 9);
  for (const r of rules) {
    assert.match(r.alert, /^ShaperProxy[A-Z]\w+$/);
    assert.ok(['warning', 'critical'].includes(r.labels.severity), `${r.alert}: severity`);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: annotations`);
  }
});
