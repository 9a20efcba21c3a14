/**
 * JSON schemas of the HTTP contract. Each route carries its schemas; Fastify validates with them
 * and @fastify/swagger turns them into /openapi.json, so the contract is written once.
 */
import { SOURCE_ID_PATTERN, SOURCE_TYPES } from '../domain/source.js';

export const errorSchema = {
  type: 'object',
  description: 'Every error: a message that never carries the payload, headers or a stack.',
  properties: { detail: { type: 'string' }, id: { type: 'string', description: 'request id (5xx only)' } },
  required: ['detail'],
} as const;

/** Error responses every route may give, by status class. */
export const errorResponses = { '4xx': errorSchema, '5xx': errorSchema } as const;

const ref = { type: ['object', 'null'], properties: { id: { type: 'string' } }, required: ['id'] } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;

export const eventSchema = {
  type: 'object',
  description: 'A stored event (collector.md §5).',
  properties: {
    id: { type: 'string', format: 'uuid' },
    type: { type: 'string' },
    name: { type: 'string' },
    metadata: anyObject,
    source: ref,
    session: ref,
    profile: ref,
    properties: anyObject,
    context: anyObject,
    request: { type: ['object', 'null'], additionalProperties: true },
    traits: anyObject,
    data: anyObject,
    tags: anyObject,
  },
} as const;

export const sessionSchema = {
  type: 'object',
  description: 'A session (collector.md §6).',
  properties: {
    id: { type: 'string' },
    profile: ref,
    metadata: anyObject,
    context: anyObject,
    device: anyObject,
    os: anyObject,
    app: anyObject,
  },
} as const;

export const profileSchema = {
  type: 'object',
  description: 'A profile (collector.md §6).',
  properties: {
    id: { type: 'string' },
    ids: { type: 'array', items: { type: 'string' } },
    metadata: anyObject,
    data: anyObject,
    traits: anyObject,
    stats: anyObject,
    segments: { type: 'array' },
    interests: anyObject,
    consents: anyObject,
  },
} as const;

export const collectResponseSchema = {
  type: 'object',
  description: "Tracardi's response fields; `events` lists the stored user events in order.",
  properties: {
    task: { type: 'string' },
    ux: { type: 'array' },
    response: anyObject,
    events: { type: 'array', items: { type: 'string' } },
    profile: { type: 'object', properties: { id: { type: ['string', 'null'] } } },
    session: { type: 'object', properties: { id: { type: ['string', 'null'] } } },
    errors: { type: 'array' },
    warnings: { type: 'array' },
  },
  required: ['task', 'ux', 'response', 'events', 'profile', 'session', 'errors', 'warnings'],
} as const;

const sourceFields = {
  name: { type: 'string', minLength: 1, maxLength: 256 },
  type: { type: 'array', items: { enum: SOURCE_TYPES }, minItems: 1, uniqueItems: true },
  enabled: { type: 'boolean' },
  // It is copied into sessions and events: no control characters, no half of a surrogate pair.
  channel: { type: 'string', maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff]*$' },
  description: { type: 'string', maxLength: 4096 },
  transitional: { type: 'boolean' },
  config: anyObject,
  tags: { type: 'array', items: { type: 'string', maxLength: 256 } },
} as const;

export const sourceCreateSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128, description: `lower-cased, then ${SOURCE_ID_PATTERN}` },
    ...sourceFields,
  },
  required: ['name'],
  additionalProperties: false,
} as const;

export const sourcePatchSchema = {
  type: 'object',
  properties: sourceFields,
  additionalProperties: false,
  minProperties: 1,
} as const;

export const sourceSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    ...sourceFields,
    created: { type: 'string', format: 'date-time' },
    updated: { type: 'string', format: 'date-time' },
    urls: { type: 'array', items: { type: 'string' }, description: 'webhook URLs, relative to the server' },
  },
} as const;

export const listSchema = (items: object) =>
  ({
    type: 'object',
    properties: { items: { type: 'array', items }, next: { type: ['string', 'null'] } },
    required: ['items', 'next'],
  }) as const;

export const pageQuerySchema = {
  limit: { type: 'string', pattern: '^[0-9]+$', description: '1–1000, default 100' },
  cursor: { type: 'string', description: 'the `next` of the previous page' },
} as const;

export const idParamSchema = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;
