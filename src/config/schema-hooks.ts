/**
 * The schema of an app's wake and sleep hooks (`wake`, `sleep`). A hook is a command (argv, run
 * without a shell) or a URL (POSTed to); exactly one of the two.
 */
import { duration } from './checks.js';
import { group, leaf, nullable, required, withDefault } from './kit.js';
import { show } from './problems.js';
import type { HookConfig } from './types.js';

function fail(message: string): never {
  throw new Error(message);
}

/** A command as argv: a non-empty list of non-empty strings, run without a shell. */
const command = leaf<string[]>((v) => {
  if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === 'string' && a !== '' && !a.includes('\0'))) {
    fail(`must be a command as a list of arguments like ["/usr/bin/systemctl", "start", "backend"] (run without a shell; got ${show(v)})`);
  }
}, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } });

/** An http:// or https:// URL. */
const httpUrl = (what: string, example: string) =>
  leaf<string>((v) => {
    let url: URL | undefined;
    try {
      url = typeof v === 'string' ? new URL(v) : undefined;
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') fail(`${show(v)} is not an http(s) URL (${what}, e.g. "${example}")`);
  }, { type: 'string', pattern: '^https?://' });

const hookUrl = httpUrl('POSTed to', 'http://127.0.0.1:8080/wake');

/** The hook keys of `wake` and `sleep`, and the check that exactly one is given. */
const hookKeys = {
  command: nullable(command, { doc: 'Run this command (argv, no shell), e.g. ["/usr/bin/systemctl", "start", "backend"].' }),
  url: nullable(hookUrl, { doc: 'Or POST {"app": NAME, "event": "wake"|"sleep"} to this URL.' }),
};

/** Exactly one of `command` and `url`: the problem and its key, or undefined. */
function hookProblem(hook: { command?: unknown; url?: unknown }): [string, 'command' | 'url'] | undefined {
  const given = (x: unknown): boolean => x !== undefined && x !== null;
  if (given(hook.command) && given(hook.url)) return ['give "command" or "url", not both', 'url'];
  if (!given(hook.command) && !given(hook.url)) return ['required, a "command" like ["/usr/bin/systemctl", "start", "backend"] or a "url" to POST to', 'command'];
  return undefined;
}
const isObject = (payload: { value: unknown }): boolean => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value);

export const WAKE = group(
  {
    ...hookKeys,
    timeout: withDefault(duration(true), '30s', { doc: 'How long held clients wait for a target to accept; then they are closed (close reason wake_timeout).' }),
  },
  (v) => `must be an object like {"command": ["/usr/bin/systemctl", "start", "backend"], "timeout": "30s"} (got ${show(v)})`,
).superRefine(
  (hook, ctx) => {
    const problem = hookProblem(hook);
    if (problem) ctx.addIssue({ code: 'custom', message: problem[0], path: [problem[1]], input: hook[problem[1]] });
  },
  { when: isObject },
);

export const SLEEP = group(
  {
    ...hookKeys,
    after: required(duration(true), 'Run the hook once the app has had no open connection for this long, e.g. "10m".'),
  },
  (v) => `must be an object like {"after": "10m", "command": ["/usr/bin/systemctl", "stop", "backend"]} (got ${show(v)})`,
).superRefine(
  (hook, ctx) => {
    const problem = hookProblem(hook);
    if (problem) ctx.addIssue({ code: 'custom', message: problem[0], path: [problem[1]], input: hook[problem[1]] });
  },
  { when: isObject },
);

/** The typed hook of a validated `wake` or `sleep`. */
export function toHook(raw: { command: string[] | null; url: string | null }): HookConfig {
  return raw.command !== null ? { command: raw.command } : { url: raw.url! };
}
