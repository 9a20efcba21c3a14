import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORES, startTestServer, type StoreKind, type TestServer } from './helpers.js';

const hex = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest('hex');
const b64 = (key: string | Buffer, data: string, alg = 'sha256') => createHmac(alg, key).update(data).digest('base64');
const now = () => Math.floor(Date.now() / 1000);

async function send(t: TestServer, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await t.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as any };
}

const storedFor = async (t: TestServer, source: string) =>
  (await t.api('GET', `/api/events?source=${source}&limit=1000`)).body.items as any[];
const quarantined = async (t: TestServer, source: string) =>
  (await t.api('GET', `/api/quarantine?source=${source}`)).body.items as any[];

/**
 * Writes a profile row straight into the server's database, as a damaged or hand-edited store
 * could hold it: the collector's own code then fails on the requests that read it.
 */
async function writeProfileRow(t: TestServer, store: StoreKind, id: string, doc: string): Promise<void> {
  if (store === 'sqlite') {
    const db = new Database(join(t.dataDir, 'intake.sqlite'));
    try {
      db.pragma('busy_timeout = 3000');
      db.prepare('INSERT INTO profiles (id, doc) VALUES (?, ?)').run(id, doc);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: t.config.databaseUrl! });
  await client.connect();
  try {
    await client.query('INSERT INTO profiles (id, doc) VALUES ($1, $2)', [id, doc]);
  } finally {
    await client.end();
  }
}

for (const store of STORES) {
  describe(`hardening on ${store}`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ INTAKE_QUARANTINE_MAX: '5' }, undefined, store);
    });
    afterAll(() => t.close());

    const verified = (verify: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      t.source({ config: { verify, ...extra } });

    describe('§1 sender verification', () => {
      const body = JSON.stringify({ id: 'evt_1', type: 'charge.succeeded', data: { amount: 100 } });

      it('stripe: t=…,v1=… over "<t>.<body>"; tampered body, stale timestamp and rotated secret', async () => {
        const source = await verified({ scheme: 'stripe', secrets: ['whsec_old_secret_value', 'whsec_new_secret_value'] });
        const t0 = now();
        const sign = (secret: string, ts: number, payload: string) => `t=${ts},v1=${hex(secret, `${ts}.${payload}`)}`;
        const ok = await send(t, `/collect/charge/${source}`, body, { 'stripe-signature': sign('whsec_new_secret_value', t0, body) });
        expect(ok.status).toBe(200);
        // Either active secret verifies (rotation); one of several v1 signatures suffices.
        const second = body.replace('evt_1', 'evt_2');
        const rotated = `t=${t0},v1=${'0'.repeat(64)},v1=${hex('whsec_old_secret_value', `${t0}.${second}`)}`;
        expect((await send(t, `/collect/charge/${source}`, second, { 'stripe-signature': rotated })).status).toBe(200);
        const tampered = await send(t, `/collect/charge/${source}`, body.replace('100', '999'), {
          'stripe-signature': sign('whsec_new_secret_value', t0, body),
        });
        expect(tampered).toMatchObject({ status: 401, body: { detail: 'Signature verification failed' } });
        const stale = await send(t, `/collect/charge/${source}`, body, {
          'stripe-signature': sign('whsec_new_secret_value', t0 - 3600, body),
        });
        expect(stale).toMatchObject({ status: 401, body: { detail: 'Signature verification failed: timestamp outside tolerance' } });
        const wrong = await send(t, `/collect/charge/${source}`, body, { 'stripe-signature': sign('whsec_other', t0, body) });
        expect(wrong.status).toBe(401);
        expect((await send(t, `/collect/charge/${source}`, body)).status).toBe(401);
        expect(await storedFor(t, source)).toHaveLength(2);
        expect((await quarantined(t, source)).map((q) => q.reason).sort()).toEqual([
          'SIGNATURE_FAILED',
          'SIGNATURE_FAILED',
          'SIGNATURE_FAILED',
          'SIGNATURE_STALE',
        ]);
      });

      it('github: X-Hub-Signature-256 sha256=<hex> over the body', async () => {
        const source = await verified({ scheme: 'github', secrets: ['gh-secret'] });
        const good = { 'x-hub-signature-256': `sha256=${hex('gh-secret', body)}` };
        expect((await send(t, `/collect/push/${source}`, body, good)).status).toBe(200);
        expect((await send(t, `/collect/push/${source}`, `${body} `, good)).status).toBe(401);
        expect((await send(t, `/collect/push/${source}`, body, { 'x-hub-signature-256': hex('gh-secret', body) })).status).toBe(401);
      });

      it('shopify: X-Shopify-Hmac-Sha256 base64 over the body', async () => {
        const source = await verified({ scheme: 'shopify', secrets: ['shpss_secret'] });
        expect((await send(t, `/collect/order/${source}`, body, { 'x-shopify-hmac-sha256': b64('shpss_secret', body) })).status).toBe(200);
        expect((await send(t, `/collect/order/${source}`, body, { 'x-shopify-hmac-sha256': b64('shpss_other', body) })).status).toBe(401);
      });

      it('slack: v0=<hex> over "v0:<ts>:<body>", timestamp within tolerance', async () => {
        const source = await verified({ scheme: 'slack', secrets: ['slack-signing'], tolerance_s: 60 });
        const ts = String(now());
        const headers = (secret: string, stamp: string, payload: string) => ({
          'x-slack-request-timestamp': stamp,
          'x-slack-signature': `v0=${hex(secret, `v0:${stamp}:${payload}`)}`,
        });
        expect((await send(t, `/collect/cmd/${source}`, body, headers('slack-signing', ts, body))).status).toBe(200);
        const old = String(now() - 120);
        expect((await send(t, `/collect/cmd/${source}`, body, headers('slack-signing', old, body))).body.detail).toContain('tolerance');
        expect((await send(t, `/collect/cmd/${source}`, '{}', headers('slack-signing', ts, body))).status).toBe(401);
      });

      it('standard webhooks: v1,<base64> over "<id>.<ts>.<body>" with the base64 key after whsec_', async () => {
        const key = Buffer.from('standard-webhooks-key-bytes');
        const source = await verified({ scheme: 'standard', secrets: [`whsec_${key.toString('base64')}`] });
        const id = `msg_${randomUUID()}`;
        const ts = String(now());
        const sig = b64(key, `${id}.${ts}.${body}`);
        const headers = { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,bm9wZQ== v1,${sig}` };
        expect((await send(t, `/collect/evt/${source}`, body, headers)).status).toBe(200);
        expect((await send(t, `/collect/evt/${source}`, body, { ...headers, 'webhook-id': 'msg_other' })).status).toBe(401);
        const stale = String(now() - 1000);
        const staleHeaders = { ...headers, 'webhook-timestamp': stale, 'webhook-signature': `v1,${b64(key, `${id}.${stale}.${body}`)}` };
        expect((await send(t, `/collect/evt/${source}`, body, staleHeaders)).body.detail).toContain('tolerance');
      });

      it('hmac: the configured header, algorithm, encoding and prefix', async () => {
        const source = await verified({ scheme: 'hmac', secrets: ['generic'], header: 'X-Signature', algorithm: 'sha512', encoding: 'base64', prefix: 'sha512=' });
        const sig = `sha512=${b64('generic', body, 'sha512')}`;
        expect((await send(t, `/collect/x/${source}`, body, { 'x-signature': sig })).status).toBe(200);
        expect((await send(t, `/collect/x/${source}`, body, { 'x-signature': sig.slice(7) })).status).toBe(401);
      });

      it('basic: Authorization Basic user:password', async () => {
        const source = await verified({ scheme: 'basic', secrets: ['hook:pa55word'] });
        const auth = (pair: string) => ({ authorization: `Basic ${Buffer.from(pair).toString('base64')}` });
        expect((await send(t, `/collect/x/${source}`, body, auth('hook:pa55word'))).status).toBe(200);
        expect((await send(t, `/collect/x/${source}`, body, auth('hook:nope'))).status).toBe(401);
      });

      it('token: header or ?token=, and the token is never stored with the event', async () => {
        const source = await verified({ scheme: 'token', secrets: ['tok-123456789'] });
        const viaHeader = await send(t, `/collect/x/${source}?a=1`, body, { 'x-intake-token': 'tok-123456789' });
        expect(viaHeader.status).toBe(200);
        const pixel = await t.fetch(`/collect/open/${source}?token=tok-123456789&campaign=c1`);
        expect(pixel.status).toBe(200);
        const [id] = ((await pixel.json()) as any).events;
        const event = (await t.api('GET', `/api/events/${id}`)).body;
        expect(event.properties).toEqual({ campaign: 'c1' });
        expect(event.request.query).toBe('campaign=c1');
        const headerEvent = (await t.api('GET', `/api/events/${viaHeader.body.events[0]}`)).body;
        expect(headerEvent.request.headers['x-intake-token']).toBeUndefined();
        expect((await t.fetch(`/collect/open/${source}?token=wrong`)).status).toBe(401);
      });

      it('refuses a session id in the URL unless allow_url_session', async () => {
        const strict = await verified({ scheme: 'token', secrets: ['tok-abcdefghijk'] });
        const res = await send(t, `/collect/x/${strict}/sess-1`, '{}', { 'x-intake-token': 'tok-abcdefghijk' });
        expect(res).toMatchObject({ status: 403, body: { detail: 'This source does not accept a session id in the URL' } });
        const open = await verified({ scheme: 'token', secrets: ['tok-abcdefghijk'], allow_url_session: true });
        expect((await send(t, `/collect/x/${open}/sess-1`, '{}', { 'x-intake-token': 'tok-abcdefghijk' })).status).toBe(200);
      });

      it('secrets are write-only: masked when read, kept when the mask is sent back', async () => {
        const created = await t.api('POST', '/api/sources', {
          name: 's',
          config: { verify: { scheme: 'github', secrets: ['whsec_abcdefghijklmnop1234'] } },
        });
        expect(created.body.config.verify.secrets).toEqual(['whsec_…1234']);
        expect(JSON.stringify(created.body)).not.toContain('abcdefghijklmnop');
        const read = (await t.api('GET', `/api/sources/${created.body.id}`)).body;
        const patched = await t.api('PATCH', `/api/sources/${created.body.id}`, {
          config: { ...read.config, verify: { ...read.config.verify, tolerance_s: 60 } },
        });
        expect(patched.status).toBe(200);
        const signed = { 'x-hub-signature-256': `sha256=${hex('whsec_abcdefghijklmnop1234', body)}` };
        expect((await send(t, `/collect/push/${created.body.id}`, body, signed)).status).toBe(200);
      });

      it('masks that stand for several secrets: the list as read keeps each in place, a lone one is a 422', async () => {
        const sign = (secret: string) => ({ 'x-hub-signature-256': `sha256=${hex(secret, body)}` });
        const created = await t.api('POST', '/api/sources', {
          name: 'rot',
          config: { verify: { scheme: 'github', secrets: ['rotation-old-2024', 'rotation-new-2024', 'alpha-one', 'bravo-two'] } },
        });
        const id = created.body.id;
        const read = (await t.api('GET', `/api/sources/${id}`)).body;
        expect(read.config.verify.secrets).toEqual(['…2024', '…2024', '…', '…']);
        // Sent back as read, with another option changed: all four still verify.
        const kept = await t.api('PATCH', `/api/sources/${id}`, { config: { verify: { ...read.config.verify, tolerance_s: 60 } } });
        expect(kept.status).toBe(200);
        for (const secret of ['rotation-old-2024', 'rotation-new-2024', 'alpha-one', 'bravo-two'])
          expect((await send(t, `/collect/push/${id}`, body, sign(secret))).status, secret).toBe(200);
        // Which of the two ending in 2024 is meant? Not a guess: a 422, and nothing changes.
        const ambiguous = await t.api('PATCH', `/api/sources/${id}`, { config: { verify: { scheme: 'github', secrets: ['…2024'] } } });
        expect(ambiguous.status).toBe(422);
        expect(ambiguous.body.detail).toBe('config.verify.secrets[0] is the mask of several secrets; send the secret itself');
        const unknown = await t.api('PATCH', `/api/sources/${id}`, { config: { verify: { scheme: 'github', secrets: ['…9999'] } } });
        expect(unknown.status).toBe(422);
        expect((await send(t, `/collect/push/${id}`, body, sign('rotation-new-2024'))).status).toBe(200);
        // Dropping the old secret is done by sending the new one itself.
        expect((await t.api('PATCH', `/api/sources/${id}`, { config: { verify: { scheme: 'github', secrets: ['rotation-new-2024'] } } })).status).toBe(200);
        expect((await send(t, `/collect/push/${id}`, body, sign('rotation-old-2024'))).status).toBe(401);
        expect((await send(t, `/collect/push/${id}`, body, sign('rotation-new-2024'))).status).toBe(200);
      });

      it('refuses a bad verify config when the source is saved', async () => {
        for (const verify of [{ scheme: 'md5', secrets: ['x'] }, { scheme: 'github', secrets: [] }, { scheme: 'hmac', secrets: ['x'] }, { scheme: 'basic', secrets: ['nocolon'] }]) {
          const res = await t.api('POST', '/api/sources', { name: 's', config: { verify } });
          expect(res.status).toBe(422);
          expect(res.body.detail).toMatch(/^config\.verify/);
        }
      });
    });

    describe('§2 exactly-once storage of retried deliveries', () => {
      it('default keys: Idempotency-Key, webhook-id, X-GitHub-Delivery, X-Shopify-Webhook-Id', async () => {
        for (const header of ['idempotency-key', 'webhook-id', 'x-github-delivery', 'x-shopify-webhook-id']) {
          const source = await t.source();
          const key = randomUUID();
          const first = await send(t, `/collect/x/${source}`, '{"n":1}', { [header]: key });
          const retry = await send(t, `/collect/x/${source}`, '{"n":2}', { [header]: key });
          expect(first.headers.get('idempotent-replayed')).toBeNull();
          expect(retry.headers.get('idempotent-replayed')).toBe('true');
          expect(retry.body).toEqual(first.body);
          expect(await storedFor(t, source)).toHaveLength(1);
        }
      });

      it("stripe sources: the event's id", async () => {
        const source = await verified({ scheme: 'stripe', secrets: ['whsec_idem'] });
        const payload = JSON.stringify({ id: `evt_${randomUUID()}`, type: 'x' });
        const ts = now();
        const headers = { 'stripe-signature': `t=${ts},v1=${hex('whsec_idem', `${ts}.${payload}`)}` };
        const first = await send(t, `/collect/x/${source}`, payload, headers);
        const retry = await send(t, `/collect/x/${source}`, payload, headers);
        expect(retry.body.events).toEqual(first.body.events);
        expect(await storedFor(t, source)).toHaveLength(1);
      });

      it('configured keys (first present wins), content mode and off', async () => {
        const from = await t.source({ config: { idempotency: { from: ['header:x-request-id', 'body:data.id', 'query:delivery'] } } });
        await send(t, `/collect/x/${from}`, '{"data":{"id":"d1"}}');
        await send(t, `/collect/x/${from}`, '{"data":{"id":"d1"},"again":true}');
        await send(t, `/collect/x/${from}?delivery=q1`, '{}');
        await send(t, `/collect/x/${from}?delivery=q1`, '{}');
        await send(t, `/collect/x/${from}`, '{"data":{"id":"d1"}}', { 'x-request-id': 'r1' });
        expect(await storedFor(t, from)).toHaveLength(3);

        const content = await t.source({ config: { idempotency: { mode: 'content' } } });
        await send(t, `/collect/x/${content}`, '{"a":1}');
        await send(t, `/collect/x/${content}`, '{"a":1}');
        await send(t, `/collect/x/${content}`, '{"a":2}');
        expect(await storedFor(t, content)).toHaveLength(2);

        const off = await t.source({ config: { idempotency: { mode: 'off' } } });
        await send(t, `/collect/x/${off}`, '{}', { 'idempotency-key': 'same' });
        await send(t, `/collect/x/${off}`, '{}', { 'idempotency-key': 'same' });
        expect(await storedFor(t, off)).toHaveLength(2);
      });

      it('content mode: a GET pixel is the same delivery only with the same query', async () => {
        const source = await t.source({ config: { idempotency: { mode: 'content' } } });
        const a = await t.fetch(`/collect/pv/${source}?a=1`);
        const b = await t.fetch(`/collect/pv/${source}?a=2`);
        const again = await t.fetch(`/collect/pv/${source}?a=2`);
        expect([a.headers.get('idempotent-replayed'), b.headers.get('idempotent-replayed')]).toEqual([null, null]);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
        expect(await storedFor(t, source)).toHaveLength(2);
      });

      it('keys are scoped to the source', async () => {
        const a = await t.source();
        const b = await t.source();
        await send(t, `/collect/x/${a}`, '{}', { 'idempotency-key': 'shared' });
        const other = await send(t, `/collect/x/${b}`, '{}', { 'idempotency-key': 'shared' });
        expect(other.headers.get('idempotent-replayed')).toBeNull();
        expect(await storedFor(t, b)).toHaveLength(1);
      });

      it('a delivery id with control characters is a key like any other', async () => {
        const source = await t.source({ config: { idempotency: { from: ['query:delivery'] } } });
        const first = await send(t, `/collect/x/${source}?delivery=a%00b`, '{}');
        const retry = await send(t, `/collect/x/${source}?delivery=a%00b`, '{}');
        expect([first.status, retry.status]).toEqual([200, 200]);
        expect(retry.headers.get('idempotent-replayed')).toBe('true');
        expect(retry.body.events).toEqual(first.body.events);
        const other = await send(t, `/collect/x/${source}?delivery=a%01b`, '{}');
        expect(other.headers.get('idempotent-replayed')).toBeNull();
        expect(await storedFor(t, source)).toHaveLength(2);
        // Half of a surrogate pair (PostgreSQL would receive U+FFFD): two keys, each once.
        const fromBody = await t.source({ config: { idempotency: { from: ['body:k'] } } });
        const answers = [];
        for (const k of ['k\\ud800', 'k\\udbff', 'k\\ud800']) answers.push(await send(t, `/collect/x/${fromBody}`, `{"k":"${k}"}`));
        expect(answers.map((a) => [a.status, a.headers.get('idempotent-replayed')])).toEqual([
          [200, null],
          [200, null],
          [200, 'true'],
        ]);
        expect(await storedFor(t, fromBody)).toHaveLength(2);
      });

      it('concurrent duplicates store once and all answer with the same event ids', async () => {
        const source = await t.source();
        const key = randomUUID();
        const session = `idem-${randomUUID()}`;
        const answers = await Promise.all(
          Array.from({ length: 20 }, () => send(t, `/collect/x/${source}/${session}`, '{"once":true}', { 'idempotency-key': key })),
        );
        expect(new Set(answers.map((a) => JSON.stringify(a.body.events))).size).toBe(1);
        expect(answers.filter((a) => a.headers.get('idempotent-replayed') === null)).toHaveLength(1);
        expect(await storedFor(t, source)).toHaveLength(1);
      });
    });

    describe('§3 limits and back-pressure', () => {
      const sendBytes = (path: string, body: Buffer, headers: Record<string, string>) =>
        t.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

      it("a source's max_body_bytes: 413, with what was read kept in quarantine", async () => {
        const source = await t.source({ config: { max_body_bytes: 100 } });
        const small = await sendBytes(`/collect/x/${source}`, Buffer.from(JSON.stringify({ a: 'x'.repeat(80) })), {});
        expect(small.status).toBe(200);
        const big = await sendBytes(`/collect/x/${source}`, Buffer.from(JSON.stringify({ a: 'x'.repeat(200) })), {});
        expect(big.status).toBe(413);
        expect(await big.json()).toEqual({ detail: 'Request body is larger than the limit of 100 bytes' });
        const [item] = await quarantined(t, source);
        expect(item).toMatchObject({ reason: 'BODY_TOO_LARGE', truncated: true });
      });

      it('gzip, deflate and br bodies are decompressed; the limit applies to the decompressed bytes', async () => {
        const source = await t.source({ config: { max_body_bytes: 10_000 } });
        const payload = Buffer.from(JSON.stringify({ compressed: true }));
        for (const [encoding, bytes] of [
          ['gzip', gzipSync(payload)],
          ['deflate', deflateSync(payload)],
          ['br', brotliCompressSync(payload)],
        ] as const) {
          const res = await sendBytes(`/collect/x/${source}`, bytes, { 'content-encoding': encoding });
          expect(res.status, encoding).toBe(200);
          const [id] = ((await res.json()) as any).events;
          expect((await t.api('GET', `/api/events/${id}`)).body.properties).toEqual({ compressed: true });
        }
        const bomb = gzipSync(Buffer.from(`{"z":"${'0'.repeat(5_000_000)}"}`));
        expect(bomb.length).toBeLessThan(10_000);
        expect((await sendBytes(`/collect/x/${source}`, bomb, { 'content-encoding': 'gzip' })).status).toBe(413);
        expect((await sendBytes(`/collect/x/${source}`, payload, { 'content-encoding': 'compress' })).status).toBe(415);
        const corrupt = await sendBytes(`/collect/x/${source}`, Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' });
        expect(corrupt.status).toBe(400);
        expect(await corrupt.json()).toEqual({ detail: 'Invalid gzip body' });
      });

      it('a body in an unknown or broken Content-Encoding is quarantined as it came', async () => {
        const source = await t.source();
        const zstdish = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x01, 0x02, 0x03]);
        const unknown = await sendBytes(`/collect/x/${source}`, zstdish, { 'content-encoding': 'zstd' });
        expect(unknown.status).toBe(415);
        expect(await unknown.json()).toEqual({ detail: 'Unsupported content encoding zstd' });
        // Half a gzip stream: the bytes that arrived are kept, not what would have decoded.
        const cut = gzipSync(Buffer.from(JSON.stringify({ pad: 'y'.repeat(5000) }))).subarray(0, 40);
        expect((await sendBytes(`/collect/x/${source}`, cut, { 'content-encoding': 'gzip' })).status).toBe(400);
        const items = await quarantined(t, source);
        expect(items.map((q) => q.reason)).toEqual(['INVALID_ENCODING', 'UNSUPPORTED_ENCODING']);
        const kept = await Promise.all(items.map(async (q) => Buffer.from((await t.api('GET', `/api/quarantine/${q.id}`)).body.body, 'base64')));
        expect(kept).toEqual([cut, zstdish]);
        // A replay reads it as the collector would, and refuses it the same way.
        const replay = await t.api('POST', `/api/quarantine/${items[0].id}/replay`);
        expect(replay).toMatchObject({ status: 400, body: { detail: 'Invalid gzip body' } });
        expect(await storedFor(t, source)).toEqual([]);
      });

      it('a quarantined gzip body replays decompressed', async () => {
        const source = await verified({ scheme: 'github', secrets: ['gz-old'] });
        const payload = gzipSync(Buffer.from('{"zipped":true}'));
        const res = await sendBytes(`/collect/x/${source}`, payload, {
          'content-encoding': 'gzip',
          'x-hub-signature-256': `sha256=${hex('gz-new', '{"zipped":true}')}`,
        });
        expect(res.status).toBe(401);
        const [item] = await quarantined(t, source);
        await t.api('PATCH', `/api/sources/${source}`, { config: { verify: { scheme: 'github', secrets: ['gz-new'] } } });
        const replay = await t.api('POST', `/api/quarantine/${item.id}/replay`);
        expect(replay.status).toBe(200);
        expect((await t.api('GET', `/api/events/${replay.body.events[0]}`)).body.properties).toEqual({ zipped: true });
      });

      it('JSON nested deeper than 64 or with more than 10,000 keys: 422', async () => {
        const source = await t.source();
        const deep = `${'{"a":'.repeat(65)}1${'}'.repeat(65)}`;
        const tooDeep = await send(t, `/collect/x/${source}`, deep);
        expect(tooDeep).toMatchObject({ status: 422, body: { detail: 'JSON body is too complex: nested deeper than 64 levels' } });
        expect((await send(t, `/collect/x/${source}`, `${'{"a":'.repeat(64)}1${'}'.repeat(64)}`)).status).toBe(200);
        const wide = JSON.stringify(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i])));
        expect((await send(t, `/collect/x/${source}`, wide)).body.detail).toBe('JSON body is too complex: more than 10000 keys');
        expect((await send(t, `/collect/x/${source}`, '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]')).status).toBe(422);
      });

      it('a per-source rate limit: 429 with Retry-After, other sources unaffected', async () => {
        const source = await t.source({ config: { rate_limit: { per_second: 1, burst: 3 } } });
        const statuses: number[] = [];
        let retryAfter: string | null = null;
        for (let i = 0; i < 5; i++) {
          const res = await send(t, `/collect/x/${source}`, '{}');
          statuses.push(res.status);
          if (res.status === 429) retryAfter = res.headers.get('retry-after');
        }
        expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
        expect(statuses.slice(3)).toContain(429);
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
        expect((await send(t, `/collect/x/${await t.source()}`, '{}')).status).toBe(200);
      });
    });

    describe('§4 quarantine and re-ingest', () => {
      it('keeps refusals an operator can fix, with the raw body and redacted headers; not unknown sources', async () => {
        const source = await t.source();
        const res = await send(t, `/collect/x/${source}?q=1`, '{"broken": ', { authorization: 'Bearer secret', cookie: 'c=1', 'x-trace': 't1' });
        expect(res.status).toBe(400);
        const [item] = await quarantined(t, source);
        expect(item).toMatchObject({ source, reason: 'INVALID_JSON', method: 'POST', query: 'q=1', size: 11 });
        const full = (await t.api('GET', `/api/quarantine/${item.id}`)).body;
        expect(Buffer.from(full.body, 'base64').toString()).toBe('{"broken": ');
        expect(full.body_text).toBe('{"broken": ');
        const names = full.headers.map(([name]: string[]) => name);
        expect(names).toContain('x-trace');
        expect(names).not.toContain('authorization');
        expect(names).not.toContain('cookie');
        await send(t, '/collect/x/no-such-source-q', '{"broken": ');
        expect(await quarantined(t, 'no-such-source-q')).toEqual([]);
        expect((await t.api('GET', `/api/quarantine?reason=invalid_json`)).body.items.length).toBeGreaterThan(0);
      });

      it('replay: after the operator fixes the secret, the stored request is collected with its first time', async () => {
        const source = await verified({ scheme: 'github', secrets: ['old-secret'] });
        const payload = '{"ref":"main"}';
        const refused = await send(t, `/collect/push/${source}`, payload, {
          'x-hub-signature-256': `sha256=${hex('new-secret', payload)}`,
          'x-github-delivery': 'delivery-1',
        });
        expect(refused.status).toBe(401);
        const [item] = await quarantined(t, source);
        const stillRefused = await t.api('POST', `/api/quarantine/${item.id}/replay`);
        expect(stillRefused.status).toBe(401);
        expect(await quarantined(t, source)).toHaveLength(1);

        await t.api('PATCH', `/api/sources/${source}`, { config: { verify: { scheme: 'github', secrets: ['new-secret'] } } });
        const replayed = await t.api('POST', `/api/quarantine/${item.id}/replay`);
        expect(replayed.status).toBe(200);
        expect(replayed.body.events).toHaveLength(1);
        const event = (await t.api('GET', `/api/events/${replayed.body.events[0]}`)).body;
        expect(event.properties).toEqual({ ref: 'main' });
        expect(event.metadata.time.insert).toBe(item.received_at);
        expect(await quarantined(t, source)).toEqual([]);

        // The delivery id came along: the sender's own retry is not stored twice.
        const retry = await send(t, `/collect/push/${source}`, payload, {
          'x-hub-signature-256': `sha256=${hex('new-secret', payload)}`,
          'x-github-delivery': 'delivery-1',
        });
        expect(retry.headers.get('idempotent-replayed')).toBe('true');
        expect(await storedFor(t, source)).toHaveLength(1);
      });

      it('a request the store fails on fails alone: 422 and quarantined, the requests committed with it stored', async () => {
        const source = await t.source({ config: { replace_profile_id: 'customer' } });
        const broken = `broken-${randomUUID()}`;
        // A profile without its metadata: counting a visit on it fails in Intake's own code.
        await writeProfileRow(t, store, broken, JSON.stringify({ id: broken }));
        const customers = Array.from({ length: 41 }, (_, i) => (i === 20 ? broken : `fine-${i}-${randomUUID()}`));
        const answers = await Promise.all(customers.map((customer) => send(t, `/collect/order/${source}`, JSON.stringify({ customer }))));
        expect(answers.map((a) => a.status)).toEqual(customers.map((c) => (c === broken ? 422 : 200)));
        expect(answers[20]!.body.detail).toBe('The request could not be stored as it is; it is kept in quarantine for the operator');
        const stored = await storedFor(t, source);
        expect(stored.map((e) => e.profile.id).sort()).toEqual(customers.filter((c) => c !== broken).sort());
        const [item] = await quarantined(t, source);
        expect(item).toMatchObject({ source, reason: 'UNSTORABLE' });
        const kept = (await t.api('GET', `/api/quarantine/${item.id}`)).body;
        expect(JSON.parse(kept.body_text)).toEqual({ customer: broken });
      });

      it('a ?token= is not kept; a request refused after its token passed replays without it', async () => {
        const secret = 'tok-quarantine-0123456789';
        const source = await verified({ scheme: 'token', secrets: [secret] }, { replace_profile_id: 'customer' });
        // Its token passes; the source's config then takes a text no id can be for the customer id.
        const refused = await send(t, `/collect/x/${source}?a=1&token=${secret}`, JSON.stringify({ customer: 'x'.repeat(300), name: 'ann' }));
        expect(refused.status).toBe(422);
        const wrong = await send(t, `/collect/x/${source}?%74oken=wrong-${secret}`, '{}');
        expect(wrong.status).toBe(401);
        const items = await quarantined(t, source);
        expect(items.map((q) => [q.reason, q.query, q.verified])).toEqual([
          ['SIGNATURE_FAILED', '', false],
          ['INVALID_PROFILE_ID', 'a=1', true],
        ]);
        const listed = JSON.stringify((await t.api('GET', `/api/quarantine?source=${source}`)).body);
        const shown = JSON.stringify((await t.api('GET', `/api/quarantine/${items[1].id}`)).body);
        expect(listed + shown).not.toContain(secret);
        // The sender whose token failed cannot be vouched for without it: it stays.
        expect((await t.api('POST', `/api/quarantine/${items[0].id}/replay`)).status).toBe(401);
        // The operator fixes the path; the request whose token passed is stored.
        const read = (await t.api('GET', `/api/sources/${source}`)).body;
        expect((await t.api('PATCH', `/api/sources/${source}`, { config: { ...read.config, replace_profile_id: 'name' } })).status).toBe(200);
        const replayed = await t.api('POST', `/api/quarantine/${items[1].id}/replay`);
        expect(replayed.status).toBe(200);
        expect(replayed.body.profile.id).toBe('ann');
        expect((await quarantined(t, source)).map((q) => q.reason)).toEqual(['SIGNATURE_FAILED']);
      });

      it('replay of a request cut off at the size limit: 409, and it stays in quarantine', async () => {
        const secret = 'tok-size-0123456789';
        const source = await verified({ scheme: 'token', secrets: [secret] }, { max_body_bytes: 100 });
        const big = JSON.stringify({ pad: 'x'.repeat(150) });
        // Declared length over the limit: refused before the body is read, so nothing of it is kept.
        const res = await send(t, `/collect/x/${source}`, big, { 'x-intake-token': secret });
        expect(res.status).toBe(413);
        const [item] = await quarantined(t, source);
        expect(item).toMatchObject({ reason: 'BODY_TOO_LARGE', truncated: true });
        await t.api('PATCH', `/api/sources/${source}`, { config: { verify: { scheme: 'token', secrets: [secret] } } });
        const replay = await t.api('POST', `/api/quarantine/${item.id}/replay`);
        expect(replay.status).toBe(409);
        expect(replay.body.detail).toBe('The body of this request was cut off at the size limit when it arrived; it cannot be replayed');
        expect(await quarantined(t, source)).toHaveLength(1);
        expect(await storedFor(t, source)).toEqual([]);
      });

      it('replays of one entry at once store it once, and all answer with its events', async () => {
        const source = await verified({ scheme: 'github', secrets: ['old-secret-x'] }, { idempotency: { mode: 'off' } });
        const payload = '{"concurrent":true}';
        await send(t, `/collect/push/${source}`, payload, { 'x-hub-signature-256': `sha256=${hex('new-secret-x', payload)}` });
        const [item] = await quarantined(t, source);
        await t.api('PATCH', `/api/sources/${source}`, {
          config: { verify: { scheme: 'github', secrets: ['new-secret-x'] }, idempotency: { mode: 'off' } },
        });
        const answers = await Promise.all(Array.from({ length: 6 }, () => t.api('POST', `/api/quarantine/${item.id}/replay`)));
        const stored = answers.filter((a) => a.status === 200);
        expect(stored.length).toBeGreaterThan(0);
        expect(answers.every((a) => a.status === 200 || a.status === 404)).toBe(true);
        expect(new Set(stored.map((a) => JSON.stringify(a.body.events))).size).toBe(1);
        expect(await storedFor(t, source)).toHaveLength(1);
        expect(await quarantined(t, source)).toEqual([]);
      });

      it('delete drops one; unknown ids are 404', async () => {
        const source = await t.source();
        await send(t, `/collect/x/${source}`, '[]');
        const [item] = await quarantined(t, source);
        expect((await t.api('DELETE', `/api/quarantine/${item.id}`)).status).toBe(204);
        expect((await t.api('GET', `/api/quarantine/${item.id}`)).status).toBe(404);
        expect((await t.api('DELETE', `/api/quarantine/${item.id}`)).status).toBe(404);
        expect((await t.api('POST', `/api/quarantine/${randomUUID()}/replay`)).status).toBe(404);
      });

      it('is capped per source (INTAKE_QUARANTINE_MAX), oldest dropped first', async () => {
        const source = await t.source();
        for (let i = 0; i < 7; i++) await send(t, `/collect/x/${source}`, `{"n":${i},`);
        const items = await quarantined(t, source);
        expect(items).toHaveLength(5);
        const bodies = await Promise.all(items.map(async (q) => (await t.api('GET', `/api/quarantine/${q.id}`)).body.body_text));
        expect(bodies).toEqual(['{"n":6,', '{"n":5,', '{"n":4,', '{"n":3,', '{"n":2,']);
      });
    });
  });
}

describe('§3 a global cap on requests in progress', () => {
  it('answers 503 with Retry-After beyond INTAKE_MAX_INFLIGHT', async () => {
    const t = await startTestServer({ INTAKE_MAX_INFLIGHT: '1' });
    try {
      const source = await t.source();
      const { hostname, port } = new URL(t.url);
      // One request that sends half its body and waits.
      const slow = httpRequest({
        hostname,
        port,
        method: 'POST',
        path: `/collect/slow/${source}`,
        headers: { 'content-type': 'application/json', 'content-length': '10' },
      });
      const slowAnswer = new Promise<number>((resolve) => slow.on('response', (res) => resolve(res.statusCode ?? 0)));
      slow.write('{"a":');
      await new Promise((r) => setTimeout(r, 200));
      const refused = await t.fetch(`/collect/x/${source}`, { method: 'POST', body: '{}' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      slow.end('1234}');
      expect(await slowAnswer).toBe(200);
      expect((await t.fetch(`/collect/x/${source}`, { method: 'POST', body: '{}' })).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('§5 observability', () => {
  it('serves Prometheus metrics prefixed intake_, and an X-Request-Id on every answer', async () => {
    const t = await startTestServer();
    try {
      const source = await t.source();
      const ok = await t.fetch(`/collect/x/${source}`, { method: 'POST', headers: { 'x-request-id': 'sender-id-1' }, body: '{}' });
      expect(ok.headers.get('x-request-id')).toBe('sender-id-1');
      await t.fetch(`/collect/x/${source}`, { method: 'POST', headers: { 'idempotency-key': 'k' }, body: '{}' });
      await t.fetch(`/collect/x/${source}`, { method: 'POST', headers: { 'idempotency-key': 'k' }, body: '{}' });
      const bad = await t.fetch(`/collect/x/${source}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
      expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      const odd = await t.fetch('/health', { headers: { 'x-request-id': 'bad id with spaces' } });
      expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      await t.fetch('/collect/x/nobody', { method: 'POST', body: '{}' });

      const res = await t.fetch('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string);
      expect(names.every((n) => n.startsWith('intake_'))).toBe(true);
      expect(text).toContain(`intake_requests_total{route="/collect/:event_type/:source_id",source="${source}",status="200"} 3`);
      expect(text).toContain(`intake_requests_total{route="/collect/:event_type/:source_id",source="unknown",status="401"} 1`);
      expect(text).toContain(`intake_events_stored_total{source="${source}"} 2`);
      expect(text).toContain(`intake_idempotent_replays_total{source="${source}"} 1`);
      expect(text).toContain('intake_rejected_total{reason="INVALID_JSON"} 1');
      expect(text).toContain(`intake_quarantined_total{source="${source}",reason="INVALID_JSON"} 1`);
      expect(text).toMatch(/^intake_quarantine_size 1$/m);
      expect(text).toMatch(/intake_commit_batch_size_count \d+/);
      expect(text).toMatch(/intake_commit_seconds_bucket/);
    } finally {
      await t.close();
    }
  });
});

describe('§3 slow senders', () => {
  it('closes a connection whose headers do not arrive within 10 s, answering 408', async () => {
    const t = await startTestServer();
    try {
      const { hostname, port } = new URL(t.url);
      const socket = connect(Number(port), hostname);
      socket.write(`POST /collect/x/y HTTP/1.1\r\nHost: ${hostname}\r\nX-Slow: `);
      const started = Date.now();
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.on('close', () => resolve(text));
      });
      const waited = Date.now() - started;
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(waited).toBeGreaterThanOrEqual(9_000);
      expect(waited).toBeLessThan(14_000);
    } finally {
      await t.close();
    }
  }, 20_000);
});
