/**
 * Runs a value through a part of the config schema and writes each problem zod finds as a
 * problem line at its key path, in the words of the check that found it (kit.ts). zod's issues
 * are data (a code, a path, a message), so nothing here reads English text.
 */
import type * as Zod from 'zod';
import { isPlainObject } from './fly.js';
import { eitherBranch, envFields } from './kit.js';
import { keyPath, type PathSegment, type Problems, unknownKeyMessage } from './problems.js';

export interface ValidateOptions {
  /** Env for the fields of the schema that an env variable overrides; default none. */
  env?: NodeJS.ProcessEnv;
  /** Maps of names (by key path) and the problem of "__proto__" as a name in them. */
  nameMaps?: Record<string, (name: string) => string | undefined>;
}

/**
 * `input` checked against `schema`, with defaults and env overrides applied; undefined when it
 * has a problem. Problems go to `problems` with `at` in front of their key paths.
 */
export function validate<S extends Zod.ZodType>(
  schema: S,
  input: unknown,
  at: readonly PathSegment[],
  problems: Problems,
  { env = {}, nameMaps = {} }: ValidateOptions = {},
): Zod.output<S> | undefined {
  const { value, origins } = withEnv(schema, input, env);
  const before = problems.count;
  protoKeys(value, [...at], problems, nameMaps);
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) for (const issue of result.error.issues) report(issue, at, problems, origins);
  return result.success && problems.count === before ? result.data : undefined;
}

/** `input` with the env overrides of `schema` written in (env wins over the file), and which paths they set. */
export function withEnv(schema: Zod.ZodType, input: unknown, env: NodeJS.ProcessEnv): { value: unknown; origins: Map<string, string> } {
  const origins = new Map<string, string>();
  let value = input;
  for (const { env: name, path } of envFields(schema)) {
    const given = env[name];
    if (given === undefined) continue;
    const next = setAt(value, path, given);
    if (next === undefined) continue; // a parent is not an object: reported as such
    value = next;
    origins.set(keyPath(path), name);
  }
  return { value, origins };
}

/** A copy of `root` with `value` at `path` (objects made on the way); undefined if something on the way is not an object. */
function setAt(root: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const node = root === undefined ? {} : root;
  if (!isPlainObject(node)) return undefined;
  const [key, ...rest] = path as [string, ...string[]];
  const child = setAt(Object.hasOwn(node, key) ? node[key] : undefined, rest, value);
  return child === undefined ? undefined : { ...node, [key]: child };
}

/**
 * zod leaves an own "__proto__" key out of what it reads (a JSON file can have one), so it would
 * pass unseen: each is reported here, as an unknown key or, in a map of names, a name it cannot be.
 */
function protoKeys(value: unknown, path: PathSegment[], problems: Problems, nameMaps: ValidateOptions['nameMaps'] = {}): void {
  if (Array.isArray(value)) {
    value.forEach((item: unknown, i) => protoKeys(item, [...path, i], problems, nameMaps));
    return;
  }
  if (!isPlainObject(value)) return;
  for (const key of Object.keys(value)) {
    if (key !== '__proto__') protoKeys(value[key], [...path, key], problems, nameMaps);
    else if (nameMaps[keyPath(path)]) problems.add(quotedKey(path, key), nameMaps[keyPath(path)]!(key) ?? 'unknown key');
    else problems.add(keyPath([...path, key]), 'unknown key');
  }
}

/** `tiers["gold plus"]`: a key of a map of names, always quoted. */
const quotedKey = (parent: readonly PathSegment[], key: PathSegment): string => `${keyPath(parent)}[${JSON.stringify(key)}]`;

function report(issue: Zod.core.$ZodIssue, at: readonly PathSegment[], problems: Problems, origins: Map<string, string>): void {
  const path = [...at, ...issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment))];
  const where = keyPath(path);
  switch (issue.code) {
    case 'invalid_union': {
      // Only `either` makes unions.
      for (const inner of eitherBranch(issue.errors)) report(inner, path, problems, origins);
      return;
    }
    case 'invalid_key':
    case 'invalid_element':
      // A map key that is not a name (quoted, as the problem is the key): its value is not looked at.
      problems.add(quotedKey(path.slice(0, -1), path.at(-1)!), issue.issues[0]?.message ?? issue.message);
      return;
    case 'unrecognized_keys':
      for (const key of issue.keys) problems.add(keyPath([...path, key]), unknownKeyMessage(key, []));
      return;
    case 'custom': {
      const known = (issue.params as { knownKeys?: string[] } | undefined)?.knownKeys;
      if (known) {
        problems.add(where, unknownKeyMessage(String(path.at(-1)), known));
        return;
      }
    }
  }
  const origin = origins.get(where);
  problems.add(where, origin === undefined ? issue.message : `${issue.message} (set by env ${origin})`);
}
