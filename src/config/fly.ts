/**
 * Compatibility with the proxy-challenge config format, which uses Go-style capitalised keys:
 *   { "Apps": [{ "Name": "web", "Ports": [5001], "Targets": ["127.0.0.1:9001"] }] }
 * Such a file must load unchanged, so its keys are mapped to ours ("Apps" -> "apps",
 * "ConnectTimeout" -> "connectTimeout") before validation.
 */

type PlainObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is PlainObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The challenge form is recognised by its capitalised "Apps" list. */
export function isFlyFormat(raw: unknown): raw is PlainObject {
  return isPlainObject(raw) && Object.hasOwn(raw, 'Apps') && !Object.hasOwn(raw, 'apps');
}

/**
 * Returns `raw` itself when it is not in the challenge form; otherwise a copy whose top-level,
 * app and target-object keys start with a lower-case letter. Nothing else is touched, so
 * validation still reports every problem against the keys as the user will recognise them.
 */
export function fromFlyFormat(raw: unknown): unknown {
  if (!isFlyFormat(raw)) return raw;
  const top = lowerFirstKeys(raw);
  if (Array.isArray(top['apps'])) top['apps'] = top['apps'].map(lowerApp);
  return top;
}

function lowerApp(app: unknown): unknown {
  if (!isPlainObject(app)) return app;
  const out = lowerFirstKeys(app);
  if (Array.isArray(out['targets'])) {
    out['targets'] = out['targets'].map((t: unknown) => (isPlainObject(t) ? lowerFirstKeys(t) : t));
  }
  return out;
}

/**
 * "Name" -> "name". When both "Name" and "name" are present the capitalised key is kept as it
 * is, so that the strict validation reports it as unknown instead of one silently winning.
 */
function lowerFirstKeys(obj: PlainObject): PlainObject {
  const out: PlainObject = {};
  for (const [key, value] of Object.entries(obj)) {
    const lowered = key.charAt(0).toLowerCase() + key.slice(1);
    const target = lowered !== key && Object.hasOwn(obj, lowered) ? key : lowered;
    Object.defineProperty(out, target, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
