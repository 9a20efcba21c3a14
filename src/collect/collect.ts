import { randomUUID } from 'node:crypto';
import { errors, IntakeError } from '../domain/errors.js';
import { toJsonText } from '../domain/json-text.js';
import { DEFAULT_WINDOW_S, type IdempotencyConfig } from '../domain/hardening-config.js';
import type { MappingItem } from '../domain/mapping.js';
import type { IdScheme } from '../domain/new-id.js';
import type { Source } from '../domain/source.js';
import { webhookConfigOf, type WebhookConfig } from '../domain/webhook-config.js';
import type { Store } from '../store/store.js';
import { buildUnit } from './build-unit.js';
import { captureHeaders, headerValues } from './capture-headers.js';
import { idempotencyKey } from './idempotency-key.js';
import { parseBody } from './parse-body.js';
import { parseParams, type CollectParams } from './parse-params.js';
import { parseQuery, withoutQueryParam, type Fields } from './parse-query.js';
import { quarantineRefusal, shouldQuarantine } from './quarantine-refusal.js';
import type { RateLimiter } from './rate-limiter.js';
import { validateSource } from './validate-source.js';
import { verifySender } from './verify-sender.js';

/** A collector request as plain data: the HTTP layer builds it, the pipeline knows no HTTP. */
export interface CollectInput {
  method: 'GET' | 'POST';
  params: { eventType: string; sourceId: string; sessionId?: string };
  /** The URL path as received, without the query string. */
  path: string;
  /** The raw query string, without the `?`. */
  query: string;
  /** `query` already read by `parseQuery`, when the caller has it (the HTTP router reads it). */
  queryFields?: Fields;
  /** Node's raw header list: `[name, value, name, value …]`. */
  rawHeaders: readonly string[];
  body: Buffer;
  /** The body went past the size limit; `body` holds what was read up to it. */
  bodyTooLarge?: boolean;
  /** The body could not be read as sent (an unknown or broken `Content-Encoding`); `body` is raw. */
  bodyRefusal?: IntakeError;
  ip: string | null;
  /** When it was first received; a quarantine replay passes the original time. */
  receivedAt?: Date;
  /** Set on a quarantine replay: a refusal then stays in quarantine rather than being added again. */
  replayOf?: string;
  /**
   * On a replay: the sender had passed verification when the request arrived. A `basic` or
   * `token` credential is not kept in the quarantine, so it cannot be checked again.
   */
  verifiedAtReceipt?: boolean;
}

/** What a collector request produced (collector.md §7). */
export interface CollectResult {
  task: string;
  events: string[];
  sessionId: string | null;
  profileId: string | null;
  /** The delivery was seen before: this is its first answer, and nothing was stored now. */
  replayed: boolean;
}

export interface CollectDeps {
  store: Store;
  findSource: (id: string) => Source | undefined;
  /** The catalogue's and the custom mappings' items for an event type from a source. */
  mappingFor: (type: string, sourceId: string) => MappingItem[];
  /** The key of hashed profile ids (identity.md §4). */
  hashKey: string;
  /** How the ids of new events, profiles and sessions are made (domain/new-id.ts). */
  idScheme: IdScheme;
  /** Refused requests kept per source at most (hardening.md §4). */
  quarantineMax: number;
  /** The largest body accepted, unless a source sets a smaller one (hardening.md §3). */
  bodyLimit: number;
  rateLimiter: RateLimiter;
  /** What the pipeline did, for metrics. */
  report: CollectReport;
}

export interface CollectReport {
  stored(sourceId: string, events: number): void;
  replayed(sourceId: string): void;
  refused(reason: string): void;
  quarantined(sourceId: string, reason: string, dropped: number): void;
}

/**
 * The collection pipeline: check the path and the source, verify the sender, read the
 * properties, build the events (with how each finds its session and profile, what it maps into
 * it, and the delivery's idempotency key), and let the store commit it all durably. Each step
 * throws an `IntakeError` to refuse the request; a refusal the operator can fix is quarantined.
 */
export async function collect(input: CollectInput, deps: CollectDeps): Promise<CollectResult> {
  try {
    return await collectChecked(input, deps);
  } catch (error) {
    if (error instanceof IntakeError) deps.report.refused(error.code);
    throw error;
  }
}

async function collectChecked(input: CollectInput, deps: CollectDeps): Promise<CollectResult> {
  const receivedAt = input.receivedAt ?? new Date();
  const params = parseParams(input.params);
  const source = validateSource(params.sourceId, deps.findSource);
  const config = webhookConfigOf(source);
  const progress = { verified: false };
  try {
    const result = await collectFor(source, config, params, input, deps, receivedAt, progress);
    if (result.replayed) deps.report.replayed(source.id);
    else deps.report.stored(source.id, result.events.length);
    return result;
  } catch (error) {
    if (input.replayOf === undefined && error instanceof IntakeError && shouldQuarantine(error)) {
      const dropped = await quarantineRefusal(
        error,
        { source, config, input, receivedAt, truncated: input.bodyTooLarge === true, verified: progress.verified },
        deps,
      );
      deps.report.quarantined(source.id, error.code, dropped);
    }
    throw error;
  }
}

async function collectFor(
  source: Source,
  config: WebhookConfig,
  params: CollectParams,
  input: CollectInput,
  deps: CollectDeps,
  receivedAt: Date,
  progress: { verified: boolean },
): Promise<CollectResult> {
  if (config.rateLimit !== null && input.replayOf === undefined) {
    const wait = deps.rateLimiter.take(source.id, config.rateLimit);
    if (wait > 0) throw errors.rateLimited(wait);
  }
  if (input.bodyRefusal !== undefined) throw input.bodyRefusal;
  if (input.bodyTooLarge === true) throw errors.bodyTooLarge(Math.min(deps.bodyLimit, config.maxBodyBytes ?? Infinity));
  let query = input.query;
  if (config.verify !== null) {
    // A verified sender should not let whoever knows a session id write into it (hardening.md §1).
    if (params.sessionId !== null && !config.verify.allowUrlSession) throw errors.urlSessionRefused();
    const credentialKept = config.verify.scheme !== 'basic' && config.verify.scheme !== 'token';
    if (credentialKept || input.replayOf === undefined || input.verifiedAtReceipt !== true)
      verifySender(config.verify, {
        rawHeaders: input.rawHeaders,
        body: input.body,
        query,
        receivedAt: Math.floor(receivedAt.getTime() / 1000),
      });
    progress.verified = true;
    // A `?token=` is a secret: never stored with the event (hardening.md §1).
    if (config.verify.scheme === 'token') query = withoutQueryParam(query, 'token');
  }

  const properties =
    input.method === 'POST'
      ? await parseBody(contentTypeOf(input.rawHeaders), input.body)
      : [toJsonText(query === input.query && input.queryFields !== undefined ? input.queryFields : parseQuery(query))];

  const task = randomUUID();
  // A transitional source is validated and answered, but nothing is stored (collector.md §9).
  if (source.transitional) return { task, events: [], sessionId: null, profileId: null, replayed: false };

  const deliveryKey = idempotencyKey(config.idempotency, config.verify?.scheme ?? null, {
    method: input.method,
    path: input.path,
    query,
    rawHeaders: input.rawHeaders,
    body: input.body,
    json: () => (properties.length === 1 ? JSON.parse(properties[0] as string) : undefined),
  });
  // A replay without a delivery key of its own is keyed by its quarantine entry, so two replays
  // of one entry at once store it once, whatever the source's idempotency mode.
  const replayKey = input.replayOf === undefined ? null : `replay:${input.replayOf}`;
  const key = config.idempotency.mode === 'off' ? replayKey : (deliveryKey ?? replayKey);
  const unit = buildUnit({
    task,
    pathType: params.eventType,
    source,
    config,
    sessionId: params.sessionId,
    properties,
    request: {
      method: input.method,
      path: input.path,
      query,
      ip: input.ip,
      headers: captureHeaders(input.rawHeaders, config.verify?.scheme === 'token' ? (config.verify.header ?? 'x-intake-token') : null),
    },
    now: receivedAt,
    hashKey: deps.hashKey,
    idScheme: deps.idScheme,
    mappingFor: deps.mappingFor,
    // Remembered for the window from now: a replay of an old request is remembered as long.
    idempotency: key === null ? null : { key, expiresAt: Date.now() + windowOf(config.idempotency) * 1000 },
  });
  const outcome = await deps.store.collect(unit);
  if (outcome.replay !== undefined) return { ...outcome.replay, replayed: true };
  return {
    task,
    events: unit.events.map((e) => e.id),
    sessionId: outcome.sessionId,
    profileId: outcome.profileId,
    replayed: false,
  };
}

/** Seconds a key is remembered; a replay's key on a source with keys off, the default window. */
const windowOf = (config: IdempotencyConfig) => (config.mode === 'off' ? DEFAULT_WINDOW_S : config.windowS);

/** The one Content-Type of a request; two that differ leave the body's format unknown (400). */
function contentTypeOf(rawHeaders: readonly string[]): string | undefined {
  const values = headerValues(rawHeaders, 'content-type');
  if (new Set(values.map((v) => v.trim().toLowerCase())).size > 1) throw errors.conflictingContentTypes();
  return values[0];
}
