import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors } from '../domain/errors.js';
import type { VerifyConfig } from '../domain/hardening-config.js';
import { headerValue } from './capture-headers.js';
import { parseQuery } from './parse-query.js';

export interface SignedRequest {
  rawHeaders: readonly string[];
  /** The request body as received (after any Content-Encoding is undone). */
  body: Buffer;
  query: string;
  /** When the request was received, in epoch seconds (a replay judges tolerance by this). */
  receivedAt: number;
}

/** Constant-time comparison of two strings or byte strings, false when their lengths differ. */
function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const hmac = (algorithm: string, key: string | Buffer, parts: (string | Buffer)[]) => {
  const h = createHmac(algorithm, key);
  for (const part of parts) h.update(part);
  return h.digest();
};

function decode(text: string, encoding: 'hex' | 'base64'): Buffer {
  return Buffer.from(text.trim(), encoding);
}

function checkTimestamp(seconds: string | undefined, request: SignedRequest, toleranceS: number): void {
  const t = Number(seconds);
  if (seconds === undefined || !Number.isFinite(t)) throw errors.signatureFailed();
  if (Math.abs(request.receivedAt - t) > toleranceS) throw errors.signatureStale();
}

/**
 * Checks that a request comes from the sender a source's secrets belong to (hardening.md §1),
 * over the body bytes as received, in constant time, with any of several active secrets.
 */
export function verifySender(config: VerifyConfig, request: SignedRequest): void {
  const header = (name: string) => headerValue(request.rawHeaders, name);
  const anySecret = (check: (secret: string) => boolean) => {
    if (!config.secrets.some(check)) throw errors.signatureFailed();
  };
  const { body } = request;

  switch (config.scheme) {
    case 'stripe': {
      const fields = (header('stripe-signature') ?? '').split(',').map((f) => f.trim().split('='));
      const t = fields.find(([k]) => k === 't')?.[1];
      const signatures = fields.filter(([k]) => k === 'v1').map(([, v]) => decode(v ?? '', 'hex'));
      if (t === undefined || signatures.length === 0) throw errors.signatureFailed();
      anySecret((secret) => {
        const expected = hmac('sha256', secret, [`${t}.`, body]);
        return signatures.some((s) => same(s, expected));
      });
      checkTimestamp(t, request, config.toleranceS);
      return;
    }
    case 'github': {
      const given = /^sha256=([0-9a-fA-F]+)$/.exec(header('x-hub-signature-256') ?? '')?.[1];
      if (given === undefined) throw errors.signatureFailed();
      anySecret((secret) => same(decode(given, 'hex'), hmac('sha256', secret, [body])));
      return;
    }
    case 'shopify': {
      const given = header('x-shopify-hmac-sha256');
      if (given === undefined) throw errors.signatureFailed();
      anySecret((secret) => same(decode(given, 'base64'), hmac('sha256', secret, [body])));
      return;
    }
    case 'slack': {
      const ts = header('x-slack-request-timestamp');
      const given = /^v0=([0-9a-fA-F]+)$/.exec(header('x-slack-signature') ?? '')?.[1];
      if (ts === undefined || given === undefined) throw errors.signatureFailed();
      anySecret((secret) => same(decode(given, 'hex'), hmac('sha256', secret, [`v0:${ts}:`, body])));
      checkTimestamp(ts, request, config.toleranceS);
      return;
    }
    case 'standard': {
      const id = header('webhook-id');
      const ts = header('webhook-timestamp');
      const signatures = (header('webhook-signature') ?? '')
        .split(' ')
        .map((s) => /^v1,(.+)$/.exec(s.trim())?.[1])
        .filter((s): s is string => s !== undefined)
        .map((s) => decode(s, 'base64'));
      if (id === undefined || ts === undefined || signatures.length === 0) throw errors.signatureFailed();
      anySecret((secret) => {
        const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
        const expected = hmac('sha256', key, [`${id}.${ts}.`, body]);
        return signatures.some((s) => same(s, expected));
      });
      checkTimestamp(ts, request, config.toleranceS);
      return;
    }
    case 'hmac': {
      const raw = header(config.header as string);
      if (raw === undefined || !raw.startsWith(config.prefix)) throw errors.signatureFailed();
      const given = decode(raw.slice(config.prefix.length), config.encoding);
      anySecret((secret) => same(given, hmac(config.algorithm, secret, [body])));
      return;
    }
    case 'basic': {
      const encoded = /^Basic\s+(.+)$/i.exec(header('authorization') ?? '')?.[1];
      if (encoded === undefined) throw errors.signatureFailed();
      const given = Buffer.from(encoded.trim(), 'base64');
      anySecret((secret) => same(given, Buffer.from(secret)));
      return;
    }
    case 'token': {
      const fromQuery = parseQuery(request.query).token;
      const given = header(config.header ?? 'x-intake-token') ?? (typeof fromQuery === 'string' ? fromQuery : undefined);
      if (given === undefined) throw errors.signatureFailed();
      anySecret((secret) => same(Buffer.from(given), Buffer.from(secret)));
      return;
    }
  }
}
