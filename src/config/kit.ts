/**
 * The building blocks of the config schema, on zod. zod holds the shape: which keys an object
 * has (any other is an unknown key, with a "did you mean"), which are required, their defaults,
 * lists and maps, the docs, and from all of it the JSON Schema (json-schema.ts). The value at
 * each leaf is checked by a `Check` that says, in the user's terms, what is wrong and how to fix
 * it; the leaf also carries the JSON Schema fragment an editor checks while you type.
 */
import type * as Zod from 'zod';
import { errorText, show } from './problems.js';
import { z } from './zod.js';

/** Throws an Error saying what is wrong with the value (and how to fix it); returns if it is good. */
export type Check = (value: unknown) => void;
/** A piece of JSON Schema (draft-07). */
export type JsonFragment = Record<string, unknown>;

/**
 * The JSON Schema fragments and docs of the schema's parts, read by z.toJSONSchema. A registry of
 * our own, so nothing is written into zod's global one.
 */
export const jsonMeta = z.registry<JsonFragment>();
/** The env variable that overrides a field (see envFields). */
const envOf = new WeakMap<Zod.ZodType, string>();

/** What `check` says about `value`; undefined when the value is good. */
export function problemOf(check: Check, value: unknown): string | undefined {
  try {
    check(value);
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}

/** A leaf whose value `check` checks; typed `T` (what the check lets through), `json` for editors. */
export function leaf<T>(check: Check, json: JsonFragment): Zod.ZodType<T, T> {
  const schema = z.unknown().check((ctx) => {
    const problem = problemOf(check, ctx.value);
    if (problem !== undefined) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
  });
  jsonMeta.add(schema, json);
  return schema as unknown as Zod.ZodType<T, T>;
}

interface FieldOptions {
  doc: string;
  /** An env variable that overrides the value in the file. */
  env?: string;
}

function describe<S extends Zod.ZodType>(schema: S, { doc, env }: FieldOptions): S {
  jsonMeta.add(schema, { description: env ? `${doc} Env: ${env}.` : doc });
  if (env) envOf.set(schema, env);
  return schema;
}

/** A key that must be given. (A clone carries the doc: leaves are shared, and a clone keeps their JSON fragment.) */
export function required<S extends Zod.ZodType>(schema: S, doc: string): S {
  return describe(schema.clone(), { doc });
}

/** A key that may be left out (and has no default). */
export function optional<S extends Zod.ZodType>(schema: S, doc: string) {
  return describe(schema.optional(), { doc });
}

/** A key with a default. */
export function withDefault<S extends Zod.ZodType>(schema: S, value: Zod.util.NoUndefined<Zod.output<S>>, options: FieldOptions) {
  return describe(schema.default(value), options);
}

/** A key that may be null (and is, when left out, unless `value` says otherwise). */
export function nullable<S extends Zod.ZodType>(schema: S, options: FieldOptions & { value?: Zod.util.NoUndefined<Zod.output<S>> }) {
  return describe(schema.nullable().default(options.value ?? null), options);
}

/** A key holding an object of keys, each with its default (the object may be left out). */
export function section<S extends Zod.ZodType>(schema: S, doc: string) {
  return describe(schema.prefault({} as Zod.input<S>), { doc });
}

/**
 * An object with the given keys. Any other key is a problem: it goes to a catch-all that reports
 * it with the known keys, which the loader turns into "did you mean" (validate.ts). `notObject`
 * words the problem of a value that is not an object at all.
 */
export function group<Shape extends Zod.ZodRawShape>(shape: Shape, notObject?: (value: unknown) => string) {
  const keys = Object.keys(shape);
  const unknownKey = z.unknown().check((ctx) => {
    ctx.issues.push({ code: 'custom', message: 'unknown key', params: { knownKeys: keys }, input: ctx.value });
  });
  const schema = z
    .object(shape, {
      error: (issue) => {
        if (issue.code !== 'invalid_type') return undefined;
        return notObject?.(issue.input) ?? `must be an object (keys: ${keys.join(', ')}), got ${show(issue.input)}`;
      },
    })
    .catchall(unknownKey);
  jsonMeta.add(schema, { additionalProperties: false });
  return schema;
}

/** A list of at least one item; `check` words the problem of a missing, empty or non-list value. */
export function list<Item extends Zod.ZodType>(item: Item, check: Check) {
  const error = (issue: { input?: unknown }): string | undefined => problemOf(check, issue.input);
  return z.array(item, { error }).min(1, { error });
}

/** A map from names that `name` checks to values of `value`; `check` words a value that is not a map. */
export function nameMap<Value extends Zod.ZodType>(name: Zod.ZodType<string, string>, value: Value, check: Check) {
  return z.record(name, value, { error: (issue) => (issue.code === 'invalid_type' ? problemOf(check, issue.input) : undefined) });
}

/**
 * A structured form or a scalar: "burst" is {"down", "up"} or a size, a target {address, weight}
 * or "host:port", `match.sni` a list of names or one name. Which one a value meant is clear from
 * its type, so a value that fails both is held to the form of its type (eitherBranch).
 */
export function either<S extends Zod.ZodType, L extends Zod.ZodType>(structured: S, scalar: L) {
  return z.union([structured, scalar]);
}

/**
 * The problems that apply when a value fails both forms of an `either`: those of the first form
 * its type fits (no "invalid type" problem at the value itself); leaves never fail on the type, so
 * the scalar's when the structured form does not fit.
 */
export function eitherBranch<I extends { code: string; path: readonly unknown[] }>(branches: readonly (readonly I[])[]): readonly I[] {
  return branches.find((issues) => !issues.some((i) => i.code === 'invalid_type' && i.path.length === 0)) ?? branches.at(-1) ?? [];
}

/** Every field of `schema` that an env variable overrides, with its key path. */
export function envFields(schema: Zod.ZodType, path: string[] = []): { env: string; path: string[] }[] {
  const env = envOf.get(schema);
  if (env !== undefined) return [{ env, path }];
  const inner = schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodNullable ? schema.unwrap() : undefined;
  if (inner) return envFields(inner as Zod.ZodType, path);
  if (schema instanceof z.ZodUnion) return (schema.options as Zod.ZodType[]).flatMap((option) => envFields(option, path));
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, Zod.ZodType>).flatMap(([key, child]) => envFields(child, [...path, key]));
}
