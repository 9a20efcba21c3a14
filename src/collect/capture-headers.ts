/**
 * Headers that are never stored or logged (collector.md §5; fix: Tracardi strips only
 * `authorization` and `cookie`).
 */
export const SECRET_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
]);

/**
 * The headers to store with an event, from the raw `[name, value, name, value …]` list: names
 * lower-cased, repeated headers joined with `, ` (Node's parsed headers drop some repeats, so the
 * raw list is used), secret headers left out, and `alsoSecret` (a source's token header) too.
 */
export function captureHeaders(rawHeaders: readonly string[], alsoSecret: string | null = null): Record<string, string> {
  // A plain object, not a prototype-less one: those are dictionaries to V8, and copying them to
  // the writer thread cost twice as much (docs/performance.md). Own-property checks and
  // defineProperty keep `__proto__` or `constructor` ordinary header names all the same.
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (SECRET_HEADERS.has(name) || name === alsoSecret) continue;
    const value = rawHeaders[i + 1] as string;
    const joined = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
    if (name === '__proto__') Object.defineProperty(headers, name, { value: joined, enumerable: true, writable: true, configurable: true });
    else headers[name] = joined;
  }
  return headers;
}

/** The first value of a header in the raw list, by lower-case name. */
export function headerValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === name) return rawHeaders[i + 1];
  }
  return undefined;
}

/** Every value of a header in the raw list, by lower-case name, in order. */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if ((rawHeaders[i] as string).toLowerCase() === name) values.push(rawHeaders[i + 1] as string);
  return values;
}
