/** Fields of a query string or form body: values, or arrays of values for repeated keys. */
export type Fields<V = string> = Record<string, V | V[]>;

/** Adds a field; a repeated key becomes an array of its values in order. */
export function addField<V>(fields: Fields<V>, key: string, value: V): void {
  const existing = Object.hasOwn(fields, key) ? fields[key] : undefined;
  if (existing === undefined) fields[key] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else fields[key] = [existing, value];
}

/** A fields object with no prototype: keys like `__proto__` are ordinary data here. */
export function newFields<V = string>(): Fields<V> {
  return Object.create(null) as Fields<V>;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/**
 * Percent-decoding that keeps a malformed escape literally (`%ZZ` stays `%ZZ`); `+` is a space.
 * Well-formed text, nearly every query and form body, goes through the engine's
 * `decodeURIComponent`; only text it refuses (a malformed escape, or escapes that are not UTF-8)
 * takes the lenient path. The inputs never hold lone surrogates (a URL is read as Latin-1, a body
 * is decoded from UTF-8), the one case in which the two would answer differently.
 */
export function decodeComponent(text: string): string {
  const plain = text.includes('+') ? text.replace(/\+/g, ' ') : text;
  if (!plain.includes('%')) return plain;
  try {
    return decodeURIComponent(plain);
  } catch {
    return decodeLeniently(plain);
  }
}

/**
 * The byte-by-byte decoding `decodeComponent` falls back to: each valid escape is a byte, any
 * other character its UTF-8 bytes, and the bytes are read as UTF-8 (a byte sequence that is not
 * UTF-8 becomes U+FFFD). Exported for the test that holds the two paths to the same answers.
 */
export function decodeLeniently(plain: string): string {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < plain.length; i++) {
    const hex = plain.slice(i + 1, i + 3);
    if (plain[i] === '%' && HEX.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      const codePoint = plain.codePointAt(i) as number;
      const char = String.fromCodePoint(codePoint);
      bytes.push(...encoder.encode(char));
      i += char.length - 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses `a=1&a=2&b=&c` the way collector.md §3 says: only `&` separates, split on the first `=`,
 * values stay strings, blank values are kept (fix: Tracardi drops them), no nesting.
 */
export function parseQuery(query: string): Fields {
  const fields = newFields();
  if (query === '') return fields;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq === -1 ? pair : pair.slice(0, eq);
    const value = eq === -1 ? '' : pair.slice(eq + 1);
    addField(fields, decodeComponent(key), decodeComponent(value));
  }
  return fields;
}

/** The raw query string without one parameter (e.g. a `?token=` that must not be stored). */
export function withoutQueryParam(query: string, name: string): string {
  if (query === '') return query;
  return query
    .split('&')
    .filter((pair) => decodeComponent(pair.split('=', 1)[0] as string) !== name)
    .join('&');
}

/**
 * The raw query string with the value of one parameter, however its name is spelled
 * (`%74oken`, `TOKEN`), replaced by `[redacted]`: for log lines, which must never carry a secret.
 */
export function redactQueryParam(query: string, name: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      return decodeComponent(key).toLowerCase() === name ? `${key}=[redacted]` : pair;
    })
    .join('&');
}
