/**
 * Where usage lives when it is not in memory: a folder of SHARDS JSON files (`<dir>/00.json` ..
 * `ff.json`), each holding the usage of the customers whose id hashes to it, written atomically
 * (temp file, fsync, rename). A customer's usage is read with its shard when the customer comes
 * back, written with it when it changed, and the whole folder is walked once per period to close
 * the periods of customers that are not in memory. Operations on one shard run one at a time.
 */
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../atomic-file.js';

export const SHARDS = 256;
/** shards written at once by a flush */
const PARALLEL = 8;

/** One closed period of one customer. */
export interface ClosedPeriod {
  tier: string;
  /** epoch ms */
  start: number;
  end: number;
  up: number;
  down: number;
}

/** A customer's usage as stored: the current period's counts and the last closed period. */
export interface StoredUsage {
  tier: string;
  start: number;
  end: number;
  up: number;
  down: number;
  last: ClosedPeriod | null;
}

type Shard = Record<string, StoredUsage>;

/** FNV-1a of the id, to a shard number. */
export function shardOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SHARDS;
}

export class UsageStore {
  readonly dir: string;
  readonly #locks: Promise<unknown>[] = Array.from({ length: SHARDS }, () => Promise.resolve());
  readonly #onWarning: (message: string) => void;

  constructor(dir: string, onWarning: (message: string) => void) {
    this.dir = dir;
    this.#onWarning = onWarning;
  }

  /** The stored usage of `id`, if any. */
  get(id: string): Promise<StoredUsage | undefined> {
    const shard = shardOf(id);
    return this.#locked(shard, async () => {
      const data = await this.#read(shard);
      return Object.hasOwn(data, id) ? data[id] : undefined;
    });
  }

  /** Writes each record (null: deletes it), shard by shard. */
  async write(records: ReadonlyMap<string, StoredUsage | null>): Promise<void> {
    const byShard = new Map<number, [string, StoredUsage | null][]>();
    for (const entry of records) {
      const shard = shardOf(entry[0]);
      const list = byShard.get(shard);
      if (list) list.push(entry);
      else byShard.set(shard, [entry]);
    }
    await inBatches([...byShard], ([shard, entries]) =>
      this.#locked(shard, async () => {
        const data = await this.#read(shard);
        for (const [id, rec] of entries) {
          if (rec) data[id] = rec;
          else delete data[id];
        }
        await this.#write(shard, data);
      }),
    );
  }

  /**
   * Visits every stored record, shard by shard: `visit` returns the record to keep (the same
   * object: unchanged), a new one, or null to delete it. Shards that changed are written back.
   */
  async sweep(visit: (id: string, rec: StoredUsage) => StoredUsage | null): Promise<void> {
    for (let shard = 0; shard < SHARDS; shard++) {
      await this.#locked(shard, async () => {
        const data = await this.#read(shard);
        let changed = false;
        for (const [id, rec] of Object.entries(data)) {
          const next = visit(id, rec);
          if (next === rec) continue;
          changed = true;
          if (next) data[id] = next;
          else delete data[id];
        }
        if (changed) await this.#write(shard, data);
      });
    }
  }

  /** The records of one shard, sorted by id (for paged listings). */
  async shard(shard: number): Promise<[string, StoredUsage][]> {
    const data = await this.#locked(shard, () => this.#read(shard));
    return Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  #locked<T>(shard: number, run: () => Promise<T>): Promise<T> {
    const next = this.#locks[shard]!.then(run);
    this.#locks[shard] = next.catch(() => {});
    return next;
  }

  #file(shard: number): string {
    return join(this.dir, `${shard.toString(16).padStart(2, '0')}.json`);
  }

  /** A shard's records; a missing file is none, a corrupt one is moved aside (with a warning) and is none. */
  async #read(shard: number): Promise<Shard> {
    const file = this.#file(shard);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Object.create(null) as Shard;
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as { version?: unknown; customers?: unknown };
      if (parsed.version !== 1 || typeof parsed.customers !== 'object' || parsed.customers === null) throw new Error('not a usage shard of version 1');
      return Object.assign(Object.create(null) as Shard, parsed.customers);
    } catch (err) {
      await rename(file, `${file}.corrupt`).catch(() => {});
      this.#onWarning(`usage file ${file} is corrupt (${(err as Error).message}); moved to ${file}.corrupt, its customers start from zero`);
      return Object.create(null) as Shard;
    }
  }

  #write(shard: number, data: Shard): Promise<void> {
    return writeFileAtomic(this.#file(shard), `${JSON.stringify({ version: 1, customers: data })}\n`);
  }
}

async function inBatches<T>(items: readonly T[], run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) await Promise.all(items.slice(i, i + PARALLEL).map(run));
}
