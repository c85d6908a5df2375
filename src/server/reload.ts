import fs from 'node:fs';
import path from 'node:path';

/**
 * Calls `onChange` when the config file changes. Watches the directory, not
 * the file, so editors that save by rename are seen too; debounced, because
 * one save is often several events.
 */
export function watchConfigFile(file: string, onChange: () => void, debounceMs = 250): () => void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && name.toString() !== base) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', () => {});
  } catch {
    // No watcher (unsupported filesystem): SIGHUP still reloads.
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}

/** What a file is now: its inode, size and times (through symlinks), or that it is missing. */
function signature(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/**
 * Watches files the config names but does not contain (TLS certificates, keys, CAs) and calls
 * `onChange` with those that changed on disk, debounced. It watches the directory of each file as
 * named and of the file it links to, and on any event there compares each file's inode, size and
 * times with what it saw last, so a renewal is seen however it is written: in place, by rename, or
 * by swapping symlinks (certbot's live/ links to archive/, a Kubernetes secret's ..data link). A
 * change that does not load (a half-written file) is reported again at the next change.
 */
export class FileWatch {
  readonly #signatures = new Map<string, string>();
  readonly #watchers = new Map<string, fs.FSWatcher>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly onChange: (files: string[]) => void,
    private readonly debounceMs = 250,
  ) {}

  /** The files to watch from now on (after each config load); those watched already keep what was last seen of them. */
  set(files: readonly string[]): void {
    const wanted = new Set(files);
    for (const file of this.#signatures.keys()) if (!wanted.has(file)) this.#signatures.delete(file);
    for (const file of wanted) if (!this.#signatures.has(file)) this.#signatures.set(file, signature(file));
    const dirs = new Set<string>();
    for (const file of wanted) {
      dirs.add(path.dirname(file));
      try {
        dirs.add(path.dirname(fs.realpathSync(file)));
      } catch {
        // missing now: its own directory is watched
      }
    }
    for (const [dir, watcher] of this.#watchers) {
      if (dirs.has(dir)) continue;
      watcher.close();
      this.#watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      try {
        const watcher = fs.watch(dir, { persistent: false }, () => this.#changed());
        watcher.on('error', () => {});
        this.#watchers.set(dir, watcher);
      } catch {
        // No watcher (unsupported filesystem): SIGHUP still reloads.
      }
    }
  }

  #changed(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const changed: string[] = [];
      for (const [file, seen] of this.#signatures) {
        const now = signature(file);
        if (now === seen) continue;
        this.#signatures.set(file, now);
        changed.push(file);
      }
      if (changed.length > 0) this.onChange(changed);
    }, this.debounceMs);
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#signatures.clear();
  }
}
