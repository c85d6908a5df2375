/**
 * The JSON Schema (draft-07) of a config file, generated from THE config schema (schema.ts) by
 * zod: `shaper-proxy schema` prints it and config/shaper-proxy.schema.json is it, committed (a
 * test keeps the two equal). Editors use it for completion, docs on hover and errors as you type
 * (`"$schema"` in a JSON file, or `# yaml-language-server: $schema=...` in YAML). It checks each
 * value's shape and spelling; the loader also checks what a schema cannot say (a port listened on
 * twice, a tier that does not exist, the TLS files).
 */

import { jsonMeta } from './kit.js';
import { TOP } from './schema.js';
import { z } from './zod.js';

type Json = Record<string, unknown>;

const CONFIG = '#/definitions/config';

export function configJsonSchema(): Json {
  const { $schema, ...config } = z.toJSONSchema(TOP, { target: 'draft-7', io: 'input', metadata: jsonMeta, unrepresentable: 'throw' }) as Json;
  return {
    $schema,
    title: 'shaper-proxy config',
    description: 'A config file of shaper-proxy (JSON, JSONC, YAML or TOML). See the README, "Configuration".',
    definitions: { config, challenge: challengeForm(config) },
    // The proxy-challenge form (capitalised "Apps", "Name", ...) is recognised by "Apps" without "apps" (fly.ts).
    if: { type: 'object', required: ['Apps'], not: { type: 'object', required: ['apps'] } },
    then: { $ref: '#/definitions/challenge' },
    else: { $ref: CONFIG },
  };
}

const capitalised = (key: string): string => key.charAt(0).toUpperCase() + key.slice(1);

/**
 * The challenge form of the config: the keys of the top level, of each app and of each target
 * object may start with a capital letter ("Apps", "Name", "Ports", "Targets", "Weight"); their
 * values are the config's own, by reference.
 */
function challengeForm(config: Json): Json {
  const apps = child(child(config, 'properties'), 'apps');
  const app = child(apps, 'items');
  const targets = child(child(app, 'properties'), 'targets');
  const targetForms = child(child(targets, 'items'), 'anyOf') as unknown as Json[];
  const appsAt = `${CONFIG}/properties/apps`;
  const targetsAt = `${appsAt}/items/properties/targets`;
  const challengeTargets = {
    ...targets,
    items: { anyOf: [eitherCase(targetForms[0]!, `${targetsAt}/items/anyOf/0`, {}), { $ref: `${targetsAt}/items/anyOf/1` }] },
  };
  const challengeApps = { ...apps, items: eitherCase(app, `${appsAt}/items`, { targets: challengeTargets }) };
  return eitherCase(config, CONFIG, { apps: challengeApps });
}

/** An object schema whose keys may also be written capitalised; `own` replaces the schema of some keys. */
function eitherCase(schema: Json, at: string, own: Json): Json {
  const properties: Json = {};
  for (const key of Object.keys(child(schema, 'properties'))) {
    const value = own[key] ?? { $ref: `${at}/properties/${key}` };
    properties[key] = value;
    properties[capitalised(key)] = value;
  }
  const required = (schema['required'] ?? []) as string[];
  return {
    type: 'object',
    properties,
    additionalProperties: false,
    ...(required.length > 0 ? { allOf: required.map((key) => ({ anyOf: [{ required: [key] }, { required: [capitalised(key)] }] })) } : {}),
  };
}

function child(schema: Json, key: string): Json {
  const value = schema[key];
  if (typeof value !== 'object' || value === null) throw new Error(`the generated JSON Schema has no "${key}" where the challenge form expects it`);
  return value as Json;
}
