/** Running a wake or sleep hook: a command (argv, no shell) or a POST of {"app", "event"} to a URL. */
import { execFile } from 'node:child_process';
import type { HookConfig } from '../config/types.js';

/** How long a hook may run (a command is killed, a POST aborted) before it counts as failed. */
export const HOOK_TIMEOUT_MS = 60_000;

/** Runs `hook` for `app`; resolves with what happened (never rejects): null when it succeeded, else why not. */
export function runHook(hook: HookConfig, app: string, event: 'wake' | 'sleep'): Promise<string | null> {
  if ('command' in hook) {
    const [file, ...args] = hook.command;
    return new Promise((resolve) => {
      execFile(file!, args, { timeout: HOOK_TIMEOUT_MS, env: { ...process.env, SHAPER_APP: app, SHAPER_EVENT: event } }, (err, _stdout, stderr) => {
        if (!err) return resolve(null);
        const tail = stderr.trim().split('\n').slice(-1)[0];
        resolve(`${err.message.split('\n')[0]}${tail ? ` (${tail})` : ''}`);
      });
    });
  }
  return fetch(hook.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app, event }),
    signal: AbortSignal.timeout(HOOK_TIMEOUT_MS),
  }).then(
    async (res) => {
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? null : `HTTP ${res.status}`;
    },
    (err: Error) => err.message,
  );
}
