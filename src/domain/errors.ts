/**
 * Every error Intake answers with, in one place (the way Fastify keeps `lib/errors.js`): a code,
 * an HTTP status and the message a client sees. The HTTP layer maps `IntakeError` by its status
 * without string matching, and the specification's tables can be checked against this file.
 * Messages never carry a payload, a header value or a stack.
 */
export class IntakeError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra response headers, e.g. `Retry-After` on 503. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'IntakeError';
  }
}

/** Seconds a client should wait before retrying when storage is unavailable. */
export const STORE_RETRY_AFTER_SECONDS = 5;

export const errors = {
  // collector.md §1: path parameters
  invalidParameter: (name: string, why: string) =>
    new IntakeError('INVALID_PARAMETER', 422, `Invalid ${name}: ${why}`),
  malformedPath: () => new IntakeError('MALFORMED_PATH', 400, 'Malformed percent-encoding in the URL path'),

  // collector.md §4: source refusals, checked in this order
  internalSource: () =>
    new IntakeError('INTERNAL_SOURCE', 401, 'Internal event sources are not allowed via API.'),
  unknownSource: (id: string) => new IntakeError('UNKNOWN_SOURCE', 401, `Invalid event source \`${id}\`.`),
  sourceDisabled: () => new IntakeError('SOURCE_DISABLED', 401, 'Event source disabled.'),
  sourceNotWebhook: (id: string, types: readonly string[]) =>
    new IntakeError(
      'SOURCE_NOT_WEBHOOK',
      401,
      `This endpoint allows only sources of type webhook; source \`${id}\` has types ${JSON.stringify(types)}.`,
    ),

  // hardening.md §1: sender verification
  signatureFailed: () => new IntakeError('SIGNATURE_FAILED', 401, 'Signature verification failed'),
  signatureStale: () =>
    new IntakeError('SIGNATURE_STALE', 401, 'Signature verification failed: timestamp outside tolerance'),
  urlSessionRefused: () =>
    new IntakeError('URL_SESSION_REFUSED', 403, 'This source does not accept a session id in the URL'),

  // collector.md §2: bodies
  unsupportedContentType: (type: string) =>
    new IntakeError('UNSUPPORTED_CONTENT_TYPE', 415, `Unsupported content type ${type}`),
  unsupportedCharset: (charset: string) =>
    new IntakeError('UNSUPPORTED_CHARSET', 415, `Unsupported charset ${charset}`),
  conflictingContentTypes: () =>
    new IntakeError('CONFLICTING_CONTENT_TYPES', 400, 'The request has several different Content-Type headers'),
  invalidJson: (reason: string) => new IntakeError('INVALID_JSON', 400, `Invalid JSON body: ${reason}`),
  invalidText: (reason: string) => new IntakeError('INVALID_TEXT', 400, `Invalid text body: ${reason}`),
  invalidMultipart: (reason: string) =>
    new IntakeError('INVALID_MULTIPART', 400, `Invalid multipart body: ${reason}`),
  propertiesNotObject: () =>
    new IntakeError('PROPERTIES_NOT_OBJECT', 422, 'Event properties must be a JSON object'),
  jsonTooComplex: (why: string) => new IntakeError('JSON_TOO_COMPLEX', 422, `JSON body is too complex: ${why}`),
  rateLimited: (retryAfterS: number) =>
    new IntakeError('RATE_LIMITED', 429, 'Too many requests for this source; retry later', {
      'retry-after': String(retryAfterS),
    }),
  overloaded: () =>
    new IntakeError('OVERLOADED', 503, 'Too many requests in progress; retry later', { 'retry-after': '1' }),
  emptyBatch: () => new IntakeError('EMPTY_BATCH', 422, 'A JSON array body must hold at least one event object'),
  batchElementNotObject: (index: number) =>
    new IntakeError('BATCH_ELEMENT_NOT_OBJECT', 422, `Element ${index} of the JSON array body is not an object`),
  // identity.md §2: a customer id from the payload
  invalidProfileId: (path: string, max: number) =>
    new IntakeError(
      'INVALID_PROFILE_ID',
      422,
      `The customer id at ${path} must be at most ${max} characters, without control characters or half of a surrogate pair`,
    ),
  // hardening.md §3: compressed bodies
  unsupportedEncoding: (encoding: string) =>
    new IntakeError('UNSUPPORTED_ENCODING', 415, `Unsupported content encoding ${encoding}`),
  invalidEncoding: (encoding: string) => new IntakeError('INVALID_ENCODING', 400, `Invalid ${encoding} body`),
  clientAborted: () => new IntakeError('CLIENT_ABORTED', 400, 'The request was aborted before its body arrived'),
  bodyTooLarge: (limit: number) =>
    new IntakeError('BODY_TOO_LARGE', 413, `Request body is larger than the limit of ${limit} bytes`),

  // storage (collector.md §7: never a 2xx for something not stored)
  storeUnavailable: () =>
    new IntakeError('STORE_UNAVAILABLE', 503, 'Storage is unavailable; retry later', {
      'retry-after': String(STORE_RETRY_AFTER_SECONDS),
    }),

  // A request whose content the store refused, alone (group-commit.ts): retrying cannot help, so
  // it is quarantined (hardening.md §4) for the operator to replay once the cause is fixed.
  unstorable: () =>
    new IntakeError(
      'UNSTORABLE',
      422,
      'The request could not be stored as it is; it is kept in quarantine for the operator',
    ),

  stopping: () =>
    new IntakeError('STOPPING', 503, 'The server is stopping; retry', { 'retry-after': '1', connection: 'close' }),

  // management API (api.md)
  unauthorized: () => new IntakeError('UNAUTHORIZED', 401, 'Unauthorized'),
  notFound: (what = 'Not found') => new IntakeError('NOT_FOUND', 404, what),
  methodNotAllowed: (method: string, allowed: readonly string[]) =>
    new IntakeError('METHOD_NOT_ALLOWED', 405, `Method ${method} not allowed here`, { allow: allowed.join(', ') }),
  sourceExists: (id: string) => new IntakeError('SOURCE_EXISTS', 409, `Source \`${id}\` already exists`),
  conflict: (message: string) => new IntakeError('CONFLICT', 409, message),
  invalidField: (message: string) => new IntakeError('INVALID_FIELD', 422, message),
  truncatedReplay: () =>
    new IntakeError(
      'TRUNCATED_REPLAY',
      409,
      'The body of this request was cut off at the size limit when it arrived; it cannot be replayed',
    ),
  valueNotStorable: () =>
    new IntakeError(
      'VALUE_NOT_STORABLE',
      422,
      'A value in the request is one the store cannot hold or look up (a NUL character, half of a surrogate pair, a time out of range)',
    ),
  invalidCursor: () => new IntakeError('INVALID_CURSOR', 422, 'Invalid cursor'),
  badRequest: (message: string) => new IntakeError('BAD_REQUEST', 400, message),
} as const;
