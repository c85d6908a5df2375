/** The proxy child's memory as it sees it: heap and external from its admin /metrics (prom-client's process metrics). */

export interface ProxyMemory {
  heapUsed: number;
  heapTotal: number;
  external: number;
  rss: number;
  activeHandles: number;
}

const METRICS: Record<keyof ProxyMemory, string> = {
  heapUsed: 'nodejs_heap_size_used_bytes',
  heapTotal: 'nodejs_heap_size_total_bytes',
  external: 'nodejs_external_memory_bytes',
  rss: 'process_resident_memory_bytes',
  activeHandles: 'nodejs_active_handles_total',
};

/** Reads /metrics; a metric the proxy does not export is NaN. */
export async function proxyMemory(adminPort: number): Promise<ProxyMemory> {
  const scrape = async () => (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const text = await scrape();
  const out = {} as ProxyMemory;
  for (const [key, name] of Object.entries(METRICS) as [keyof ProxyMemory, string][]) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text);
    out[key] = m ? Number(m[1]) : NaN;
  }
  return out;
}
