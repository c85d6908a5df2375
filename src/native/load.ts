/**
 * Finds the native data plane's addon (built by `npm install` when it can be: see build.mjs).
 * Never throws: when the addon is absent or does not load, the answer says why, once, and the
 * proxy runs its JavaScript data plane.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the addon exports (addon.c). */
export interface NativeAddon {
  open(options: { maxRelays: number; pipeSize: number; shapedPipeSize: number; maxPooled: number }, onEvents: (count: number) => void): { state: ArrayBuffer; ints: ArrayBuffer };
  relay(clientFd: number, backendFd: number, preUp: Buffer | null, preDown: Buffer | null, shapedBits: number, limitUp: number, limitDown: number): number;
  configure(id: number, dir: number, shaped: number, limit: number): void;
  commit(): void;
  release(id: number, reset: boolean): void;
  end(id: number): void;
  close(): void;
}

export type NativeLoad = { addon: NativeAddon; path: string } | { addon: null; reason: string };

/** The built addon, relative to dist/src/native/ (and to src/native/). */
const DEFAULT_PATH = fileURLToPath(new URL('../../../build/Release/shaper_native.node', import.meta.url));

let cached: NativeLoad | undefined;

/**
 * The addon, or why not. SHAPER_NATIVE_ADDON=<file> loads another build (the sanitizer run);
 * SHAPER_NATIVE=off pretends it is absent.
 */
export function loadNative(): NativeLoad {
  cached ??= load();
  return cached;
}

function load(): NativeLoad {
  if (process.env['SHAPER_NATIVE'] === 'off') return { addon: null, reason: 'turned off (SHAPER_NATIVE=off)' };
  if (process.platform !== 'linux') return { addon: null, reason: `it needs Linux (splice), this is ${process.platform}` };
  const file = process.env['SHAPER_NATIVE_ADDON'] || DEFAULT_PATH;
  if (!fs.existsSync(file)) return { addon: null, reason: `not built (${file} is absent; npm install writes why to build/native-build.log)` };
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    if (typeof addon.open !== 'function') return { addon: null, reason: `${file} is not the shaper-proxy data plane` };
    return { addon, path: file };
  } catch (err) {
    return { addon: null, reason: `${file} failed to load: ${(err as Error).message.split('\n', 1)[0]}` };
  }
}
