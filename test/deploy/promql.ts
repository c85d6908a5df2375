/**
 * PromQL as the deploy files' tests read it: Prometheus' own grammar (@prometheus-io/lezer-promql,
 * what Prometheus' and Grafana's query editors parse with) gives each vector selector's metric name
 * and label matchers, so function names, label names in `by (...)`, durations and strings are never
 * mistaken for metrics. Grafana's variables are expanded first, as Grafana does before it queries.
 */
import { parser } from '@prometheus-io/lezer-promql';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

export interface Selector {
  /** the metric name (`shaper_connect_duration_seconds_bucket`, as written) */
  name: string;
  matchers: { label: string; op: string; value: string }[];
}

export interface Parsed {
  selectors: Selector[];
  /** syntax errors, each with the text around it */
  errors: string[];
}

export function parsePromql(expr: string): Parsed {
  const tree = parser.parse(expr);
  const text = (n: SyntaxNode) => expr.slice(n.from, n.to);
  const selectors: Selector[] = [];
  const errors: string[] = [];
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) errors.push(`syntax error at ${ref.from}: ...${expr.slice(Math.max(0, ref.from - 20), ref.from + 20)}...`);
      if (ref.name !== 'VectorSelector') return;
      const node = ref.node;
      const id = node.getChild('Identifier');
      const matchers: Selector['matchers'] = [];
      for (const m of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
        const [label, op, value] = [m.getChild('LabelName'), m.getChild('MatchOp'), m.getChild('StringLiteral')];
        if (label && op && value) matchers.push({ label: text(label), op: text(op), value: JSON.parse(text(value).replace(/^'|'$/g, '"')) as string });
      }
      if (!id) errors.push(`a selector without a metric name: ${text(node)}`);
      else selectors.push({ name: text(id), matchers });
    },
  });
  return { selectors, errors };
}

/** Grafana's built-in interval variables, as a query would get them. */
export const GRAFANA_BUILTINS: Record<string, string> = { __rate_interval: '5m', __interval: '1m', __range: '1h', __range_s: '3600' };

/** `$name` and `${name}` (or `${name:format}`) replaced by `values`; a variable with no value throws. */
export function expandGrafana(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_, braced: string | undefined, plain: string | undefined) => {
    const name = (braced ?? plain)!;
    const v = values[name];
    if (v === undefined) throw new Error(`variable $${name} is not defined by the dashboard (${expr})`);
    return v;
  });
}

/** The metric a Grafana `label_values(metric, label)` variable query reads, if any. */
export function labelValuesMetric(query: string): string | undefined {
  return /^\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)\s*$/.exec(query)?.[1];
}
