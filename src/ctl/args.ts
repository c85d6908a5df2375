/** The ctl's command line: options, the admin URL, a customer's match, a tier file. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CtlError, DEFAULT_ADMIN_URL, usage } from './usage.js';

const OPTIONS = {
  admin: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
  file: { type: 'string' },
  tier: { type: 'string' },
  source: { type: 'string', multiple: true },
  app: { type: 'string', multiple: true },
  port: { type: 'string', multiple: true },
  delete: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The options that belong to one command or another (the rest go with any). */
export const COMMAND_OPTIONS = ['file', 'tier', 'source', 'app', 'port', 'delete'] as const;
export type CommandOption = (typeof COMMAND_OPTIONS)[number];

export type CtlOptions = ReturnType<typeof parseCtlArgs>['values'];

/** The arguments after "ctl"; a usage error for an unknown or malformed option. */
export function parseCtlArgs(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** --admin / $SHAPER_ADMIN_URL: an http(s) URL. */
export function adminUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usage(`--admin: ${JSON.stringify(text)} is not a URL (use e.g. ${DEFAULT_ADMIN_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage(`--admin: ${JSON.stringify(text)} is not an http:// URL`);
  return url;
}

/** A customer's match from --source, --app and --port; undefined when none is given. */
export function matchFrom(sources?: string[], apps?: string[], ports?: string[]): Record<string, unknown> | undefined {
  if (!sources && !apps && !ports) return undefined;
  const match: Record<string, unknown> = {};
  if (sources) match['sources'] = sources;
  if (apps) match['apps'] = apps;
  if (ports) {
    match['ports'] = ports.map((p) => {
      if (!/^\d+$/.test(p)) throw usage(`--port: ${JSON.stringify(p)} is not a port number`);
      return Number(p);
    });
  }
  return match;
}

/** The JSON in `file` ("-": stdin), a byte-order mark allowed. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new CtlError(`--file: cannot read ${file} (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new CtlError(`--file: ${file} is not valid JSON (${(err as Error).message})`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
