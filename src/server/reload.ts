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
