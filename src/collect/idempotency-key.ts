import { createHash } from 'node:crypto';
import type { IdempotencyConfig, VerifyScheme } from '../domain/hardening-config.js';
import { getPath } from '../domain/json-path.js';
import { isStorableId } from '../domain/storable-text.js';
import { headerValue } from './capture-headers.js';
import { parseQuery } from './parse-query.js';

/** Providers' delivery-id headers, in the order hardening.md §2 lists them. */
const DELIVERY_HEADERS = ['idempotency-key', 'webhook-id', 'x-github-delivery', 'x-shopify-webhook-id'];

const MAX_KEY_LENGTH = 256;

/**
 * A delivery id as a key: trimmed, at most 256 characters. One that is no storable id (a query's
 * `%00`, half of a surrogate pair: `isStorableId`) is kept as its hash, the same on both stores.
 */
function usable(value: unknown): string | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const text = String(value).trim();
  if (text === '' || text.length > MAX_KEY_LENGTH) return null;
  // Hashed as JSON text, which writes a lone surrogate as its escape: as UTF-8 it would be U+FFFD,
  // and two different keys one.
  return isStorableId(text) ? text : `sha256:${createHash('sha256').update(JSON.stringify(text)).digest('hex')}`;
}

/**
 * The key naming one delivery (hardening.md §2): the configured sources of it, a hash of the
 * content, or by default the providers' delivery-id headers (and a Stripe event's `id`). Null: the
 * request has none and is stored as it comes.
 */
export function idempotencyKey(
  config: IdempotencyConfig,
  scheme: VerifyScheme | null,
  request: { method: string; path: string; query: string; rawHeaders: readonly string[]; body: Buffer; json: () => unknown },
): string | null {
  switch (config.mode) {
    case 'off':
      return null;
    case 'content':
      // A GET's content is its query string: its properties come from there (collector.md §3).
      return request.method === 'GET'
        ? createHash('sha256').update(`GET\n${request.path}\n`).update(request.query).digest('hex')
        : createHash('sha256').update(`${request.method}\n${request.path}\n`).update(request.body).digest('hex');
    case 'from':
      for (const { kind, name } of config.from) {
        const value =
          kind === 'header'
            ? headerValue(request.rawHeaders, name)
            : kind === 'query'
              ? parseQuery(request.query)[name]
              : getPath(request.json(), name);
        const key = usable(value);
        if (key !== null) return `${kind}:${key}`;
      }
      return null;
    case 'default': {
      for (const name of DELIVERY_HEADERS) {
        const key = usable(headerValue(request.rawHeaders, name));
        if (key !== null) return key;
      }
      return scheme === 'stripe' ? usable(getPath(request.json(), 'id')) : null;
    }
  }
}
