/**
 * Dot paths into JSON values (`data.object.customer_details.email`, `items.0.sku`): a number
 * segment indexes an array. Own properties only, so `__proto__` is just a key.
 */
export function getPath(value: unknown, path: string): unknown {
  let current = value;
  for (const segment of path.split('.')) {
    if (Array.isArray(current) && /^\d+$/.test(segment)) current = current[Number(segment)];
    else if (typeof current === 'object' && current !== null && Object.hasOwn(current, segment))
      current = (current as Record<string, unknown>)[segment];
    else return undefined;
  }
  return current;
}

/** Sets a value, creating plain objects on the way (`defineProperty`, so no key reaches a prototype). */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.');
  let current: Record<string, unknown> = target;
  for (const segment of segments.slice(0, -1)) {
    const next = Object.hasOwn(current, segment) ? current[segment] : undefined;
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) current = next as Record<string, unknown>;
    else {
      const created: Record<string, unknown> = {};
      define(current, segment, created);
      current = created;
    }
  }
  define(current, segments[segments.length - 1] as string, value);
}

function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A valid dot path: non-empty segments. */
export function isDotPath(path: unknown): path is string {
  return typeof path === 'string' && path.length > 0 && path.length <= 512 && path.split('.').every((s) => s !== '');
}
