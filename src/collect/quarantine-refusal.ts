import { randomUUID } from 'node:crypto';
import { errors, type IntakeError } from '../domain/errors.js';
import type { Source } from '../domain/source.js';
import type { WebhookConfig } from '../domain/webhook-config.js';
import { SECRET_HEADERS } from './capture-headers.js';
import { withoutQueryParam } from './parse-query.js';
import type { CollectDeps, CollectInput } from './collect.js';

/**
 * Refusals an operator can fix — a secret, the config, the sender's format — are kept
 * (hardening.md §4). Source refusals are not: an unknown source would let anyone fill the disk.
 */
const QUARANTINED = new Set([
  'SIGNATURE_FAILED',
  'SIGNATURE_STALE',
  'URL_SESSION_REFUSED',
  'INVALID_JSON',
  'INVALID_TEXT',
  'INVALID_MULTIPART',
  'CONFLICTING_CONTENT_TYPES',
  'UNSUPPORTED_CONTENT_TYPE',
  'UNSUPPORTED_CHARSET',
  'PROPERTIES_NOT_OBJECT',
  'EMPTY_BATCH',
  'BATCH_ELEMENT_NOT_OBJECT',
  'JSON_TOO_COMPLEX',
  'INVALID_PROFILE_ID',
  'UNSTORABLE',
  'UNSUPPORTED_ENCODING',
  'INVALID_ENCODING',
  'BODY_TOO_LARGE',
]);

export const shouldQuarantine = (error: IntakeError): boolean => QUARANTINED.has(error.code);

/** Keeps a refused request, secret headers removed, the body raw; resolves with how many old ones were dropped. */
export async function quarantineRefusal(
  error: IntakeError,
  request: { source: Source; config: WebhookConfig; input: CollectInput; receivedAt: Date; truncated?: boolean; verified?: boolean },
  deps: Pick<CollectDeps, 'store' | 'quarantineMax'>,
): Promise<number> {
  const { input, config } = request;
  const tokenHeader = config.verify?.scheme === 'token' ? (config.verify.header ?? 'x-intake-token') : null;
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < input.rawHeaders.length; i += 2) {
    const name = (input.rawHeaders[i] as string).toLowerCase();
    if (!SECRET_HEADERS.has(name) && name !== tokenHeader) headers.push([name, input.rawHeaders[i + 1] as string]);
  }
  try {
    return await deps.store.quarantine(
      {
        id: randomUUID(),
        source: request.source.id,
        received_at: request.receivedAt.toISOString(),
        reason: error.code,
        detail: error.message,
        method: input.method,
        path: input.path,
        params: input.params,
        // A `?token=` is a secret, kept no more than its header is.
        query: tokenHeader === null ? input.query : withoutQueryParam(input.query, 'token'),
        headers,
        body: input.body,
        truncated: request.truncated ?? false,
        verified: request.verified ?? false,
      },
      deps.quarantineMax,
    );
  } catch {
    // Nothing refused is lost: if it cannot be kept, the sender must retry it.
    throw errors.storeUnavailable();
  }
}
