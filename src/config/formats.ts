/**
 * The file formats of a config: JSON (`.json`), JSON with comments and trailing commas (`.jsonc`),
 * YAML (`.yaml`, `.yml`) and TOML (`.toml`), picked by the extension. A file that cannot be read
 * or parsed is a SHAPER_ERR_CONFIG_READ naming the file, and the line and column where it can.
 */
import { readFile } from 'node:fs/promises';
import type { ParseError } from 'jsonc-parser';
import { extname, resolve } from 'node:path';
import { ProxyError } from '../errors.js';
import { errorText, show } from './problems.js';

type Parse = (text: string) => unknown;

/** A JSONC syntax error at `offset`, worded from jsonc-parser's error code ("CommaExpected" -> "comma expected"). */
class JsoncError extends Error {
  constructor(
    readonly offset: number,
    code: string,
  ) {
    super(code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase());
  }
}

// The YAML, TOML and JSONC parsers are loaded only for such files: YAML and TOML together add
// about 11 MB to the resident size of a proxy whose config is JSON.
const yamlParser = async (): Promise<Parse> => {
  const { parse } = await import('yaml');
  return (text) => parse(text, { logLevel: 'error' }) as unknown;
};
const jsoncParser = async (): Promise<Parse> => {
  const { parse, printParseErrorCode } = await import('jsonc-parser');
  return (text) => {
    const errors: ParseError[] = [];
    const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false }) as unknown;
    const first = errors[0];
    if (first) throw new JsoncError(first.offset, printParseErrorCode(first.error));
    return value;
  };
};
const FORMATS: Record<string, { kind: string; load: () => Promise<Parse> }> = {
  '.json': { kind: 'JSON', load: async () => (text) => JSON.parse(text) as unknown },
  '.jsonc': { kind: 'JSONC', load: jsoncParser },
  '.yaml': { kind: 'YAML', load: yamlParser },
  '.yml': { kind: 'YAML', load: yamlParser },
  '.toml': { kind: 'TOML', load: async () => (await import('smol-toml')).parse },
};
export const CONFIG_EXTENSIONS = Object.keys(FORMATS);

/** The parsed contents of a config file (not yet validated), by the parser of its extension. */
export async function readConfigFile(path: string): Promise<unknown> {
  const file = resolve(path);
  const format = FORMATS[extname(file).toLowerCase()];
  if (!format) {
    throw new ProxyError('SHAPER_ERR_CONFIG_READ', `${file}: unknown config file extension "${extname(file)}" (use ${CONFIG_EXTENSIONS.join(', ')})`);
  }
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (err) {
    throw new ProxyError('SHAPER_ERR_CONFIG_READ', `${file}: cannot read the config file (${errorText(err)})`, { cause: err });
  }
  try {
    return (await format.load())(text);
  } catch (err) {
    const { where, message } = describeParseError(err, text, format.kind);
    throw new ProxyError('SHAPER_ERR_CONFIG_READ', `${file}${where}: not valid ${format.kind}: ${message}`, { cause: err });
  }
}

/** ":line:col" of an offset in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `:${before.length}:${before.at(-1)!.length + 1}`;
}

const found = (text: string, offset: number): string => (offset >= text.length ? 'end of file' : show(text[offset]));

/** ":line:col" (when known) and a one-line message. */
function describeParseError(err: unknown, text: string, kind: string): { where: string; message: string } {
  const firstLine = errorText(err).split('\n')[0]!;
  const e = err as { name?: string; linePos?: { line: number; col: number }[]; line?: number; column?: number };
  if (err instanceof JsoncError) return { where: lineColumn(text, err.offset), message: `${err.message} (found ${found(text, err.offset)})` };
  if (e.name?.startsWith('YAML') && e.linePos) {
    const { line, col } = e.linePos[0]!;
    return { where: `:${line}:${col}`, message: firstLine.replace(/ at line \d+, column \d+:?$/, '') };
  }
  if (err instanceof Error && err.constructor.name === 'TomlError') {
    return { where: `:${e.line}:${e.column}`, message: firstLine.replace(/^Invalid TOML document: /, '') };
  }
  if (kind === 'JSON') {
    // V8's JSON.parse messages carry a position only sometimes, and may quote the source over
    // several lines; find the offending character ourselves instead.
    const offset = jsonErrorOffset(text);
    if (offset >= 0) return { where: lineColumn(text, offset), message: `unexpected ${found(text, offset)}` };
  }
  return { where: '', message: firstLine };
}

/** Offset of the first character that makes `text` invalid JSON, or -1 if it is valid. */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const expect = (ch: string): void => {
    if (text[i] !== ch) fail();
    i++;
  };
  const string = (): void => {
    expect('"');
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      } else if (text.charCodeAt(i) < 0x20) fail();
      i++;
    }
    expect('"');
  };
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      const close = ch === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (close === '}') {
          space();
          string();
          space();
          expect(':');
        }
        value();
        space();
        if (text[i] === ',') i++;
        else return expect(close);
      }
    }
    if (ch === '"') return string();
    const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
    literal.lastIndex = i;
    if (!literal.test(text)) fail();
    i = literal.lastIndex;
  };
  try {
    value();
    space();
    if (i < text.length) fail();
    return -1;
  } catch (offset) {
    if (typeof offset === 'number') return offset;
    throw offset;
  }
}
