/**
 * The management API of api.md, over real HTTP against each real store (SQLite, and PostgreSQL
 * when INTAKE_TEST_DATABASE_URL is set): one describe per table of the specification (plus its
 * paragraphs on auth and errors), one it per row or case.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  rawRequest,
  startTestServer,
  STORES,
  type StoreKind,
  type TestServer,
} from './helpers.js';

/** The server of the store under test (the stores are tested one after the other). */
let t: TestServer;
/** Its PostgreSQL database, when the store under test is PostgreSQL. */
let databaseUrl: string | null = null;

interface Collected {
  events: string[];
  session: { id: string | null };
  profile: { id: string | null };
}

/** Posts a JSON body to a collector route and returns Tracardi's response body. */
async function collect(path: string, body: unknown): Promise<Collected> {
  const res = await t.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`collect ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as Collected;
}

/** Every event of a list query, followed page by page through `next`. */
async function allPages(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const suffix: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const res = await t.api('GET', `/api/events?${query}&limit=${limit}${suffix}`);
    expect(res.status).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.items.map((e: { id: string }) => e.id));
    cursor = res.body.next;
    pages++;
    if (pages > 1000) throw new Error('pagination does not end');
  } while (cursor !== null);
  return { ids, pages };
}

const listIds = async (query: string): Promise<string[]> => {
  const res = await t.api('GET', `/api/events?${query}&limit=1000`);
  expect(res.status).toBe(200);
  expect(res.body.next).toBeNull();
  return res.body.items.map((e: { id: string }) => e.id);
};

/** An error body is exactly `{"detail": "<non-empty text>"}`. */
function expectDetail(body: unknown): void {
  expect(body).toEqual({ detail: expect.any(String) });
  expect((body as { detail: string }).detail).not.toBe('');
}

/** Gives a stored profile one more id, in the store under test (both keep `profile_ids`). */
async function addProfileId(profileId: string, alias: string): Promise<void> {
  if (databaseUrl !== null) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ doc: { ids: string[] } }>('SELECT doc FROM profiles WHERE id = $1', [profileId]);
      const doc = rows[0]?.doc;
      if (doc === undefined) throw new Error(`no profile ${profileId}`);
      doc.ids.push(alias);
      await client.query('UPDATE profiles SET doc = $1 WHERE id = $2', [JSON.stringify(doc), profileId]);
      await client.query('INSERT INTO profile_ids (id, profile_id) VALUES ($1, $2)', [alias, profileId]);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    return;
  }
  const db = new Database(join(t.dataDir, 'intake.sqlite'));
  try {
    db.pragma('busy_timeout = 3000');
    db.transaction(() => {
      const doc = JSON.parse(db.prepare('SELECT doc FROM profiles WHERE id = ?').pluck().get(profileId) as string);
      doc.ids.push(alias);
      db.prepare('UPDATE profiles SET doc = ? WHERE id = ?').run(JSON.stringify(doc), profileId);
      db.prepare('INSERT INTO profile_ids (id, profile_id) VALUES (?, ?)').run(alias, profileId);
    })();
  } finally {
    db.close();
  }
}

/** Starts a test server on the given store; on PostgreSQL, on a new database. */
async function startOn(store: StoreKind, overrides: Record<string, string> = {}) {
  const database = store === 'postgres' ? await createTestDatabase() : null;
  const server = await startTestServer({
    ...overrides,
    ...(database !== null ? { INTAKE_DATABASE_URL: database.url } : {}),
  });
  return {
    server,
    databaseUrl: database?.url ?? null,
    async close() {
      await server.close();
      await database?.drop();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sourceCount = async (): Promise<number> => (await t.api('GET', '/api/sources?limit=1000')).body.items.length;

describe.each(STORES)('on %s', (store) => {
  let running: Awaited<ReturnType<typeof startOn>>;
  beforeAll(async () => {
    running = await startOn(store);
    t = running.server;
    databaseUrl = running.databaseUrl;
  });
  afterAll(() => running.close());

  describe('Authorization: a missing or wrong bearer token is 401 {"detail": "Unauthorized"}', () => {
    const calls: { method: string; path: string; body?: unknown; authorized: number }[] = [
      { method: 'POST', path: '/api/sources', body: { id: 'auth-probe', name: 'Probe' }, authorized: 201 },
      { method: 'GET', path: '/api/sources', authorized: 200 },
      { method: 'GET', path: '/api/sources/auth-none', authorized: 404 },
      { method: 'PATCH', path: '/api/sources/auth-none', body: { name: 'x' }, authorized: 404 },
      { method: 'DELETE', path: '/api/sources/auth-none', authorized: 404 },
      { method: 'GET', path: '/api/events', authorized: 200 },
      { method: 'GET', path: '/api/events/auth-none', authorized: 404 },
      { method: 'GET', path: '/api/sessions/auth-none', authorized: 404 },
      { method: 'GET', path: '/api/profiles/auth-none', authorized: 404 },
    ];
    const send = (call: (typeof calls)[number], authorization?: string) =>
      t.fetch(call.path, {
        method: call.method,
        headers: {
          ...(authorization !== undefined ? { authorization } : {}),
          ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
      });

    it.each(calls)('missing token: $method $path → 401', async (call) => {
      const res = await send(call);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ detail: 'Unauthorized' });
    });

    it.each(calls)('wrong token: $method $path → 401', async (call) => {
      for (const authorization of [
        'Bearer wrong-token',
        `Bearer ${t.token}x`,
        `Bearer ${t.token.slice(0, -1)}`,
        `Basic ${t.token}`,
        t.token,
        'Bearer ',
      ]) {
        const res = await send(call, authorization);
        expect(res.status, authorization).toBe(401);
        expect(await res.json()).toEqual({ detail: 'Unauthorized' });
      }
    });

    it('a refused call has no effect: the source posted without a token was not created', async () => {
      expect((await t.api('GET', '/api/sources/auth-probe')).status).toBe(404);
    });

    it.each(calls)('right token: $method $path → $authorized', async (call) => {
      const res = await send(call, `Bearer ${t.token}`);
      expect(res.status).toBe(call.authorized);
    });

    it('the token is checked before the body: an invalid body without a token is 401, not 422', async () => {
      const res = await t.fetch('/api/sources', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"unknown": true}',
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ detail: 'Unauthorized' });
    });
  });

  describe('Sources', () => {
    it('POST /api/sources → 201 the source with its defaults and webhook urls', async () => {
      const res = await t.api('POST', '/api/sources', { id: 'shop', name: 'Shop' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: 'shop',
        name: 'Shop',
        type: ['webhook'],
        enabled: true,
        channel: '',
        description: '',
        transitional: false,
        config: {},
        tags: [],
        created: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        updated: res.body.created,
        urls: ['/collect/{event_type}/shop', '/collect/{event_type}/shop/{session_id}'],
      });
      expect((await t.api('GET', '/api/sources/shop')).body).toEqual(res.body);
    });

    it('POST /api/sources keeps every writable field given', async () => {
      const fields = {
        id: 'crm-1',
        name: 'CRM',
        type: ['webhook', 'rest'],
        enabled: false,
        channel: 'crm',
        description: 'The CRM webhooks',
        transitional: true,
        config: { generate_profile: true, identify_profile_by: 'email', replace_profile_id: 'data.email' },
        tags: ['a', 'b'],
      };
      const res = await t.api('POST', '/api/sources', fields);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject(fields);
      expect((await t.api('GET', '/api/sources/crm-1')).body).toMatchObject(fields);
    });

    it('POST /api/sources without an id → a generated UUID id', async () => {
      const res = await t.api('POST', '/api/sources', { name: 'No id' });
      expect(res.status).toBe(201);
      expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(res.body.urls).toEqual([
        `/collect/{event_type}/${res.body.id}`,
        `/collect/{event_type}/${res.body.id}/{session_id}`,
      ]);
      const again = await t.api('POST', '/api/sources', { name: 'No id' });
      expect(again.body.id).not.toBe(res.body.id);
    });

    it('POST /api/sources with a mixed-case id → stored lower-cased, found by any case', async () => {
      const res = await t.api('POST', '/api/sources', { id: 'Stripe.EU_1:Live-X', name: 'Stripe' });
      expect(res.status).toBe(201);
      expect(res.body.id).toBe('stripe.eu_1:live-x');
      expect((await t.api('GET', '/api/sources/STRIPE.EU_1:LIVE-X')).body.id).toBe('stripe.eu_1:live-x');
      // and the collector accepts it under any case (collector.md §4)
      expect((await collect('/collect/charge/Stripe.EU_1:LIVE-x', {})).events).toHaveLength(1);
    });

    it('POST /api/sources with an existing id → 409, the stored source unchanged', async () => {
      await t.api('POST', '/api/sources', { id: 'dup', name: 'First' });
      for (const id of ['dup', 'DUP']) {
        const res = await t.api('POST', '/api/sources', { id, name: 'Second' });
        expect(res.status).toBe(409);
        expectDetail(res.body);
      }
      expect((await t.api('GET', '/api/sources/dup')).body.name).toBe('First');
    });

    const invalid: [string, unknown][] = [
      ['an id with a space', { id: 'has space', name: 'x' }],
      ['an id with a slash', { id: 'a/b', name: 'x' }],
      ['an id starting with @ (reserved for internal sources)', { id: '@internal-x', name: 'x' }],
      ['an id with non-ASCII letters', { id: 'café', name: 'x' }],
      ['an empty id', { id: '', name: 'x' }],
      ['an id of 129 characters', { id: 'a'.repeat(129), name: 'x' }],
      ['an unknown field', { name: 'x', colour: 'red' }],
      ['no name', { id: 'nameless' }],
      ['an empty name', { name: '' }],
      ['a name of the wrong type', { name: 5 }],
      ['enabled of the wrong type', { name: 'x', enabled: 'yes' }],
      ['type not a list', { name: 'x', type: 'webhook' }],
      ['an unknown type value', { name: 'x', type: ['email'] }],
      ['an empty type list', { name: 'x', type: [] }],
      ['config not an object', { name: 'x', config: ['a'] }],
      ['tags not strings', { name: 'x', tags: [1] }],
      ['a body that is not an object', ['name']],
    ];
    it.each(invalid)('POST /api/sources with %s → 422 with a JSON detail, nothing created', async (_what, body) => {
      const before = await sourceCount();
      const res = await t.api('POST', '/api/sources', body);
      expect(res.status).toBe(422);
      expectDetail(res.body);
      expect(await sourceCount()).toBe(before);
    });

    it('GET /api/sources → 200 every source once, by id, page by page through limit and cursor', async () => {
      const mine = ['list-c', 'list-a', 'list-e', 'list-b', 'list-d'];
      for (const id of mine) expect((await t.api('POST', '/api/sources', { id, name: id })).status).toBe(201);
      const all = await t.api('GET', '/api/sources?limit=1000');
      expect(all.status).toBe(200);
      expect(all.body.next).toBeNull();
      const allIds: string[] = all.body.items.map((s: { id: string }) => s.id);
      expect(allIds).toEqual([...allIds].sort());
      expect(allIds).toEqual(expect.arrayContaining(mine));
      for (const item of all.body.items) expect(item.urls).toEqual([`/collect/{event_type}/${item.id}`, `/collect/{event_type}/${item.id}/{session_id}`]);

      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
        const page = await t.api('GET', `/api/sources?limit=2${query}`);
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        paged.push(...page.body.items.map((s: { id: string }) => s.id));
        cursor = page.body.next;
      } while (cursor !== null);
      expect(paged).toEqual(allIds);
    });

    it('GET /api/sources without a limit → pages of 100', async () => {
      const missing = 101 - (await sourceCount());
      for (let i = 0; i < missing; i++) await t.source();
      const first = await t.api('GET', '/api/sources');
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(100);
      expect(first.body.next).toEqual(expect.any(String));
      const rest = await t.api('GET', `/api/sources?cursor=${encodeURIComponent(first.body.next)}`);
      expect(rest.body.items.length).toBeGreaterThanOrEqual(1);
    });

    it('GET /api/sources?limit= accepts 1 and 1000', async () => {
      const one = await t.api('GET', '/api/sources?limit=1');
      expect(one.status).toBe(200);
      expect(one.body.items).toHaveLength(1);
      expect(one.body.next).toEqual(expect.any(String));
      const max = await t.api('GET', '/api/sources?limit=1000');
      expect(max.status).toBe(200);
      expect(max.body.items.length).toBeGreaterThan(100);
    });

    it.each(['0', '1001', '-1', '1.5', 'ten', ''])('GET /api/sources?limit=%s → 422', async (limit) => {
      const res = await t.api('GET', `/api/sources?limit=${limit}`);
      expect(res.status).toBe(422);
      expectDetail(res.body);
    });

    it('GET /api/sources/{id} → 200 the source; 404 if none', async () => {
      expect((await t.api('GET', '/api/sources/shop')).body.name).toBe('Shop');
      const res = await t.api('GET', '/api/sources/no-such-source');
      expect(res.status).toBe(404);
      expectDetail(res.body);
    });

    it('PATCH /api/sources/{id} → 200 the updated source, stored', async () => {
      await t.api('POST', '/api/sources', { id: 'patch-me', name: 'Before', channel: 'web' });
      const created = (await t.api('GET', '/api/sources/patch-me')).body;
      await sleep(5);
      const res = await t.api('PATCH', '/api/sources/PATCH-ME', {
        name: 'After',
        enabled: false,
        tags: ['x'],
        config: { sticky_session: false },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: 'patch-me',
        name: 'After',
        enabled: false,
        channel: 'web',
        tags: ['x'],
        config: { sticky_session: false },
        created: created.created,
        urls: ['/collect/{event_type}/patch-me', '/collect/{event_type}/patch-me/{session_id}'],
      });
      expect(res.body.updated > created.updated).toBe(true);
      expect((await t.api('GET', '/api/sources/patch-me')).body).toEqual(res.body);
    });

    it('PATCH /api/sources/{id} of an unknown source → 404', async () => {
      const res = await t.api('PATCH', '/api/sources/no-such-source', { name: 'x' });
      expect(res.status).toBe(404);
      expectDetail(res.body);
      expect((await t.api('GET', '/api/sources/no-such-source')).status).toBe(404);
    });

    it.each([
      ['the id (not writable)', { id: 'other' }],
      ['an unknown field', { colour: 'red' }],
      ['a field of the wrong type', { enabled: 'no' }],
      ['an unknown type value', { type: ['email'] }],
      ['no field at all', {}],
    ])('PATCH /api/sources/{id} with %s → 422, the source unchanged', async (_what, body) => {
      const before = (await t.api('GET', '/api/sources/shop')).body;
      const res = await t.api('PATCH', '/api/sources/shop', body);
      expect(res.status).toBe(422);
      expectDetail(res.body);
      expect((await t.api('GET', '/api/sources/shop')).body).toEqual(before);
    });

    it('DELETE /api/sources/{id} → 204; its stored events stay readable', async () => {
      await t.api('POST', '/api/sources', { id: 'doomed', name: 'Doomed' });
      const { events } = await collect('/collect/order/doomed', { n: 1 });
      const res = await t.fetch('/api/sources/doomed', { method: 'DELETE', auth: true });
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
      expect((await t.api('GET', '/api/sources/doomed')).status).toBe(404);
      const event = await t.api('GET', `/api/events/${events[0]}`);
      expect(event.status).toBe(200);
      expect(event.body.source).toEqual({ id: 'doomed' });
      expect(await listIds('source=doomed')).toEqual(events);
      // and the collector no longer accepts it
      const refused = await t.fetch('/collect/order/doomed', { method: 'POST' });
      expect(refused.status).toBe(401);
      expect(await refused.json()).toEqual({ detail: 'Invalid event source `doomed`.' });
    });

    it('DELETE /api/sources/{id} of an unknown source → 404', async () => {
      const res = await t.api('DELETE', '/api/sources/no-such-source');
      expect(res.status).toBe(404);
      expectDetail(res.body);
    });
  });

  describe('Values no store can hold or look up', () => {
    it('a NUL, half a surrogate pair or a time out of range: never a 503, a 404, an empty list or a 422', async () => {
      const cursor = (time: number) => Buffer.from(JSON.stringify([time, 1])).toString('base64url');
      for (const path of ['/api/sessions/%00', '/api/profiles/%00', '/api/sources/%00', '/api/mappings/%00']) {
        const res = await t.api('GET', path);
        expect([404, 422], path).toContain(res.status);
        expect(typeof res.body.detail).toBe('string');
      }
      for (const query of ['source=%00', 'type=a%00', 'session=%00', 'profile=%00']) {
        const res = await t.api('GET', `/api/events?${query}`);
        expect([200, 422], query).toContain(res.status);
        if (res.status === 200) expect(res.body.items).toEqual([]);
      }
      for (const [query, detail] of [
        ['from=%2B100000-01-01T00:00:00Z', 'from must be a time in the years 0001 to 9999'],
        ['to=-000001-01-01T00:00:00Z', 'to must be a time in the years 0001 to 9999'],
        [`cursor=${cursor(253402300800000)}`, 'Invalid cursor'],
        [`cursor=${cursor(Number.MAX_SAFE_INTEGER)}`, 'Invalid cursor'],
      ]) {
        const res = await t.api('GET', `/api/events?${query}`);
        expect(res, query).toMatchObject({ status: 422, body: { detail } });
      }
      for (const raw of ['', '%20', '0x10', '1e3', '-1']) {
        const res = await t.api('GET', `/api/quarantine?cursor=${raw}`);
        expect(res, raw).toMatchObject({ status: 422, body: { detail: 'Invalid cursor' } });
      }
      const items = [{ event: 'properties.x', profile: 'traits.x', op: 'set' }];
      expect((await t.api('POST', '/api/mappings', { id: 'm\u0000', event_type: 'order', items })).status).toBe(422);
      expect((await t.api('POST', '/api/mappings', { id: 'm\ud800', event_type: 'order', items })).status).toBe(422);
      for (const channel of ['web\u0000x', 'web\udc00'])
        expect((await t.api('POST', '/api/sources', { name: 'c', channel })).status, channel).toBe(422);
    });
  });

  describe('Events, sessions, profiles (read)', () => {
    it('GET /api/events/{id} → 200 the stored event (collector.md §5); 404 if none', async () => {
      const source = await t.source({ channel: 'shop' });
      const { events } = await collect(`/collect/Order Paid/${source}`, { total: 12.5 });
      const res = await t.api('GET', `/api/events/${events[0]}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: events[0],
        type: 'order-paid',
        name: 'Order Paid',
        metadata: { status: 'collected', channel: 'shop', profile_less: true, valid: true },
        source: { id: source },
        session: null,
        profile: null,
        properties: { total: 12.5 },
      });
      const missing = await t.api('GET', `/api/events/${randomUUID()}`);
      expect(missing.status).toBe(404);
      expectDetail(missing.body);
    });

    it('GET /api/events → 200 newest first', async () => {
      const source = await t.source();
      const posted: string[] = [];
      for (let i = 0; i < 4; i++) {
        posted.push(...(await collect(`/collect/step/${source}`, { i })).events);
        await sleep(3);
      }
      const res = await t.api('GET', `/api/events?source=${source}`);
      expect(res.status).toBe(200);
      expect(res.body.next).toBeNull();
      expect(res.body.items.map((e: { id: string }) => e.id)).toEqual([...posted].reverse());
      const times: string[] = res.body.items.map((e: { metadata: { time: { insert: string } } }) => e.metadata.time.insert);
      expect(times).toEqual([...times].sort().reverse());
    });

    it('GET /api/events → a page of many large events arrives whole: Content-Length is its bytes, text intact', async () => {
      const source = await t.source();
      // About 250 KB of events, several times the piece a page is sent in (http/json-page.ts),
      // one of them larger than a piece, with characters of two, three and four bytes in UTF-8.
      const posted = Array.from({ length: 12 }, (_, i) => ({ i, note: `${i} é € 😀 `.repeat(i === 5 ? 4000 : 1200) }));
      const events: string[] = [];
      for (const properties of posted) events.push(...(await collect(`/collect/big/${source}`, properties)).events);
      const res = await t.fetch(`/api/events?source=${source}`, { auth: true });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(bytes.length).toBeGreaterThan(250_000);
      expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
      const page = JSON.parse(bytes.toString('utf8')) as { items: { id: string; properties: unknown }[]; next: unknown };
      expect(page.next).toBeNull();
      expect(page.items.map((e) => e.id)).toEqual([...events].reverse());
      expect(page.items.map((e) => e.properties)).toEqual([...posted].reverse());
    });

    it('GET /api/events → a total order when insert times tie: every page of 1 shows the next event', async () => {
      const source = await t.source();
      // One array body: five events with one insert time.
      const { events } = await collect(`/collect/batch/${source}`, [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
      const listed = await t.api('GET', `/api/events?source=${source}`);
      const insertTimes = new Set(listed.body.items.map((e: { metadata: { time: { insert: string } } }) => e.metadata.time.insert));
      expect(insertTimes.size).toBe(1);
      // Newest first: the last element of the array was stored last.
      expect(listed.body.items.map((e: { id: string }) => e.id)).toEqual([...events].reverse());
      for (const limit of [1, 2, 3]) {
        const { ids } = await allPages(`source=${source}`, limit);
        expect(ids, `limit ${limit}`).toEqual([...events].reverse());
      }
      // The same query twice gives the same order.
      expect(await listIds(`source=${source}`)).toEqual(await listIds(`source=${source}`));
    });

    it('GET /api/events with ?cursor= over many events never skips or repeats one', async () => {
      const source = await t.source();
      const sizes = Array.from({ length: 40 }, (_, i) => 1 + ((i * 7) % 8));
      // Concurrent posts commit in groups, so many requests share insert times as well.
      const results = await Promise.all(
        sizes.map((n, r) => collect(`/collect/many/${source}`, Array.from({ length: n }, (_, i) => ({ r, i })))),
      );
      const stored = results.flatMap((r) => r.events);
      const full = await listIds(`source=${source}`);
      expect(full).toHaveLength(stored.length);
      expect(new Set(full)).toEqual(new Set(stored));
      for (const limit of [1, 7, 100]) {
        const { ids, pages } = await allPages(`source=${source}`, limit);
        expect(ids, `limit ${limit}`).toEqual(full);
        expect(pages).toBe(Math.ceil(full.length / limit));
      }
      // limit defaults to 100
      const first = await t.api('GET', `/api/events?source=${source}`);
      expect(first.body.items).toHaveLength(100);
      expect(first.body.next).toEqual(expect.any(String));
    });

    it('GET /api/events pages stay stable while new events arrive', async () => {
      const source = await t.source();
      const { events } = await collect(`/collect/early/${source}`, Array.from({ length: 6 }, (_, i) => ({ i })));
      const page1 = await t.api('GET', `/api/events?source=${source}&limit=3`);
      await sleep(3);
      await collect(`/collect/late/${source}`, [{ late: 1 }, { late: 2 }]);
      const page2 = await t.api('GET', `/api/events?source=${source}&limit=3&cursor=${encodeURIComponent(page1.body.next)}`);
      const ids = [...page1.body.items, ...page2.body.items].map((e: { id: string }) => e.id);
      expect(ids).toEqual([...events].reverse());
    });

    describe('GET /api/events filters', () => {
      let sourceA: string;
      let sourceB: string;
      let a1: Collected;
      let a2: Collected;
      let b1: Collected;
      let withSession: Collected;
      let sessionId: string;
      beforeAll(async () => {
        sourceA = await t.source();
        sourceB = await t.source();
        sessionId = `sess-${randomUUID()}`;
        a1 = await collect(`/collect/Page View/${sourceA}`, { n: 1 });
        await sleep(5);
        a2 = await collect(`/collect/purchase/${sourceA}`, { n: 2 });
        await sleep(5);
        b1 = await collect(`/collect/page-view/${sourceB}`, { n: 3 });
        await sleep(5);
        withSession = await collect(`/collect/page-view/${sourceB}/${sessionId}`, [{ n: 4 }, { n: 5 }]);
      });

      it('source= lists only that source’s events, matched case-insensitively', async () => {
        expect(await listIds(`source=${sourceA}`)).toEqual([...a2.events, ...a1.events]);
        expect(await listIds(`source=${sourceA.toUpperCase()}`)).toEqual([...a2.events, ...a1.events]);
        expect(await listIds('source=no-such-source')).toEqual([]);
      });

      it('type= lists only that type, normalised like a collected type', async () => {
        expect(await listIds(`source=${sourceA}&type=page-view`)).toEqual(a1.events);
        expect(await listIds(`source=${sourceA}&type=${encodeURIComponent(' Page  View ')}`)).toEqual(a1.events);
        expect(await listIds(`source=${sourceB}&type=page-view`)).toEqual([
          ...[...withSession.events].reverse(),
          ...b1.events,
        ]);
      });

      it('session= lists the session’s events, its system events included', async () => {
        const res = await t.api('GET', `/api/events?session=${sessionId}`);
        expect(res.status).toBe(200);
        const items: { id: string; type: string; source: { id: string } }[] = res.body.items;
        expect(items.map((e) => e.type).sort()).toEqual(
          ['page-view', 'page-view', 'profile-created', 'session-opened', 'visit-started'].sort(),
        );
        expect(items.filter((e) => e.source.id === '@internal')).toHaveLength(3);
        expect(await listIds(`session=${sessionId}&type=page-view`)).toEqual([...withSession.events].reverse());
        expect(await listIds('session=no-such-session')).toEqual([]);
      });

      it('profile= lists the profile’s events', async () => {
        const profileId = withSession.profile.id as string;
        expect(await listIds(`profile=${profileId}`)).toEqual(await listIds(`session=${sessionId}`));
        expect(await listIds(`profile=${profileId}&source=${sourceB}`)).toEqual([...withSession.events].reverse());
        expect(await listIds(`profile=${randomUUID()}`)).toEqual([]);
      });

      it('from= (inclusive) and to= (exclusive) are ISO times on metadata.time.insert', async () => {
        const time = async (id: string): Promise<string> =>
          (await t.api('GET', `/api/events/${id}`)).body.metadata.time.insert;
        const t1 = await time(a1.events[0] as string);
        const t2 = await time(a2.events[0] as string);
        expect(t2 > t1).toBe(true);
        expect(await listIds(`source=${sourceA}&from=${t2}`)).toEqual(a2.events);
        expect(await listIds(`source=${sourceA}&to=${t2}`)).toEqual(a1.events);
        expect(await listIds(`source=${sourceA}&from=${t1}&to=${t2}`)).toEqual(a1.events);
        expect(await listIds(`source=${sourceA}&from=${t2}&to=${t2}`)).toEqual([]);
        // any ISO form of the same instant
        const offset = new Date(t2).toISOString().replace('Z', '+00:00');
        expect(await listIds(`source=${sourceA}&from=${encodeURIComponent(offset)}`)).toEqual(a2.events);
      });

      it('filters combine with pagination', async () => {
        const { ids } = await allPages(`source=${sourceB}&type=page-view`, 1);
        expect(ids).toEqual([...[...withSession.events].reverse(), ...b1.events]);
      });
    });

    it.each([
      ['cursor=not-a-cursor', 'an unreadable cursor'],
      [`cursor=${Buffer.from('[1]').toString('base64url')}`, 'a cursor of the wrong shape'],
      [`cursor=${Buffer.from('["a","b"]').toString('base64url')}`, 'a cursor of the wrong types'],
      ['from=yesterday', 'an invalid from'],
      ['to=2024-13-45T99:00:00Z', 'an invalid to'],
      ['limit=0', 'limit 0'],
      ['limit=1001', 'limit 1001'],
    ])('GET /api/events?%s (%s) → 422', async (query) => {
      const res = await t.api('GET', `/api/events?${query}`);
      expect(res.status).toBe(422);
      expectDetail(res.body);
    });

    it('GET /api/sessions/{id} → 200 the session; 404 if none', async () => {
      const source = await t.source({ channel: 'web' });
      const sessionId = `sess-${randomUUID()}`;
      const posted = await collect(`/collect/page-view/${source}/${sessionId}`, {});
      expect(posted.session.id).toBe(sessionId);
      const res = await t.api('GET', `/api/sessions/${sessionId}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: sessionId,
        profile: { id: posted.profile.id },
        metadata: { channel: 'web', status: 'started' },
        context: { ip: '127.0.0.1' },
      });
      await collect(`/collect/page-view/${source}/${sessionId}`, {});
      expect((await t.api('GET', `/api/sessions/${sessionId}`)).body.metadata.status).toBe('active');

      const missing = await t.api('GET', `/api/sessions/${randomUUID()}`);
      expect(missing.status).toBe(404);
      expectDetail(missing.body);
    });

    it('GET /api/profiles/{id} → 200 the profile by its id; 404 if none', async () => {
      const source = await t.source();
      const posted = await collect(`/collect/page-view/${source}/sess-${randomUUID()}`, {});
      const profileId = posted.profile.id as string;
      const res = await t.api('GET', `/api/profiles/${profileId}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: profileId, ids: [profileId], metadata: { time: { visit: { count: 1 } } } });
      const missing = await t.api('GET', `/api/profiles/${randomUUID()}`);
      expect(missing.status).toBe(404);
      expectDetail(missing.body);
    });

    it('GET /api/profiles/{id} → 200 the profile by any id in its ids', async () => {
      const source = await t.source();
      const posted = await collect(`/collect/page-view/${source}/sess-${randomUUID()}`, {});
      const profileId = posted.profile.id as string;
      const alias = `crm-${randomUUID()}`;
      // Nothing in the API adds ids to a profile yet (that is the identity work), so the second id
      // is written into the real store beside the running server, the way the store keeps ids.
      await addProfileId(profileId, alias);
      const byAlias = await t.api('GET', `/api/profiles/${alias}`);
      expect(byAlias.status).toBe(200);
      expect(byAlias.body.id).toBe(profileId);
      expect(byAlias.body.ids).toEqual([profileId, alias]);
      expect((await t.api('GET', `/api/profiles/${profileId}`)).body).toEqual(byAlias.body);
    });
  });

  describe('Service', () => {
    it('GET /health → 200 {"status": "ok"} without a token', async () => {
      const res = await t.fetch('/health');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    });

    describe('GET /openapi.json', () => {
      let doc: any;
      beforeAll(async () => {
        const res = await t.fetch('/openapi.json');
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        doc = await res.json();
      });
      const op = (path: string, method: string) => doc.paths[path][method];
      const paramNames = (path: string, method: string, where: string): string[] =>
        (op(path, method).parameters ?? [])
          .filter((p: { in: string }) => p.in === where)
          .map((p: { name: string }) => p.name)
          .sort();
      const responseSchema = (path: string, method: string, status: string) =>
        op(path, method).responses[status]?.content?.['application/json']?.schema;

      it('is an OpenAPI 3 document, served without a token', () => {
        expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
        expect(doc.info).toMatchObject({ title: 'Intake', version: expect.any(String) });
      });

      it('lists every route, and only the routes, with their methods', () => {
        const routes = Object.fromEntries(
          Object.entries(doc.paths as Record<string, object>).map(([path, item]) => [path, Object.keys(item).sort()]),
        );
        expect(routes).toEqual({
          '/collect/{event_type}/{source_id}': ['get', 'post'],
          '/collect/{event_type}/{source_id}/{session_id}': ['get', 'post'],
          '/api/sources': ['get', 'post'],
          '/api/sources/{id}': ['delete', 'get', 'patch'],
          '/api/events': ['get'],
          '/api/events/{id}': ['get'],
          '/api/events/stream': ['get'],
          '/api/sessions/{id}': ['get'],
          '/api/profiles/{id}': ['get'],
          '/api/profiles': ['get'],
          '/api/event-types': ['get'],
          '/api/mappings': ['get', 'post'],
          '/api/mappings/{id}': ['delete', 'get', 'patch'],
          '/api/quarantine': ['get'],
          '/api/quarantine/{id}': ['delete', 'get'],
          '/api/quarantine/{id}/replay': ['post'],
          '/health': ['get'],
          '/metrics': ['get'],
        });
      });

      it('documents the collector routes: path params, POST bodies, the response', () => {
        for (const [path, params] of [
          ['/collect/{event_type}/{source_id}', ['event_type', 'source_id']],
          ['/collect/{event_type}/{source_id}/{session_id}', ['event_type', 'session_id', 'source_id']],
        ] as const) {
          for (const method of ['get', 'post']) {
            expect(paramNames(path, method, 'path')).toEqual(params);
            expect(responseSchema(path, method, '200').required).toEqual(
              expect.arrayContaining(['task', 'events', 'profile', 'session']),
            );
            expect(op(path, method).responses['4XX']).toBeDefined();
          }
          expect(Object.keys(op(path, 'post').requestBody.content)).toEqual(
            expect.arrayContaining(['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']),
          );
        }
      });

      it('documents the source routes: params, bodies, responses and the bearer token', () => {
        expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
        const create = op('/api/sources', 'post');
        const createBody = create.requestBody.content['application/json'].schema;
        expect(createBody.required).toEqual(['name']);
        expect(createBody.additionalProperties).toBe(false);
        expect(Object.keys(createBody.properties).sort()).toEqual(
          ['channel', 'config', 'description', 'enabled', 'id', 'name', 'tags', 'transitional', 'type'].sort(),
        );
        expect(responseSchema('/api/sources', 'post', '201').properties.urls).toBeDefined();
        expect(paramNames('/api/sources', 'get', 'query')).toEqual(['cursor', 'limit']);
        expect(responseSchema('/api/sources', 'get', '200').properties.items.items.properties.urls).toBeDefined();
        for (const method of ['get', 'patch', 'delete']) expect(paramNames('/api/sources/{id}', method, 'path')).toEqual(['id']);
        const patchBody = op('/api/sources/{id}', 'patch').requestBody.content['application/json'].schema;
        expect(patchBody.properties.id).toBeUndefined();
        expect(patchBody.properties.enabled).toEqual({ type: 'boolean' });
        expect(responseSchema('/api/sources/{id}', 'get', '200').properties.id).toBeDefined();
        expect(responseSchema('/api/sources/{id}', 'patch', '200').properties.id).toBeDefined();
        expect(op('/api/sources/{id}', 'delete').responses['204']).toBeDefined();
        for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>))
          if (path.startsWith('/api/'))
            for (const operation of Object.values(item)) {
              expect(operation.security, path).toEqual([{ bearer: [] }]);
              expect(operation.responses['4XX'].content['application/json'].schema.required, path).toEqual(['detail']);
            }
      });

      it('documents the read routes: filters, params and the documents returned', () => {
        expect(paramNames('/api/events', 'get', 'query')).toEqual(
          ['cursor', 'from', 'limit', 'profile', 'session', 'source', 'to', 'type'],
        );
        expect(responseSchema('/api/events', 'get', '200').properties.items.items.properties.metadata).toBeDefined();
        expect(responseSchema('/api/events', 'get', '200').properties.next).toBeDefined();
        for (const [path, field] of [
          ['/api/events/{id}', 'properties'],
          ['/api/sessions/{id}', 'profile'],
          ['/api/profiles/{id}', 'ids'],
        ] as const) {
          expect(paramNames(path, 'get', 'path')).toEqual(['id']);
          expect(responseSchema(path, 'get', '200').properties[field], path).toBeDefined();
        }
      });

      it('documents /health', () => {
        expect(responseSchema('/health', 'get', '200').properties.status).toBeDefined();
        expect(op('/health', 'get').security).toBeUndefined();
      });
    });
  });

  describe('Errors are JSON {"detail": ...}', () => {
    let smallLimit: Awaited<ReturnType<typeof startOn>>;
    let small: TestServer;
    beforeAll(async () => {
      smallLimit = await startOn(store, { INTAKE_BODY_LIMIT: '1000' });
      small = smallLimit.server;
    });
    afterAll(() => smallLimit.close());

    it.each([
      ['GET', '/nope'],
      ['GET', '/api/nope'],
      ['GET', '/api/sources/a/b'],
      ['POST', '/collect/only-a-type'],
      ['POST', '/collect/a/b/c/d'],
    ])('404 on an unknown route: %s %s', async (method, path) => {
      const res = await t.fetch(path, { method, auth: true });
      expect(res.status).toBe(404);
      expectDetail(await res.json());
    });

    it.each([
      ['PUT', '/api/sources', ['GET', 'HEAD', 'POST']],
      ['DELETE', '/api/sources', ['GET', 'HEAD', 'POST']],
      ['POST', '/api/sources/shop', ['DELETE', 'GET', 'HEAD', 'PATCH']],
      ['PUT', '/api/sources/shop', ['DELETE', 'GET', 'HEAD', 'PATCH']],
      ['POST', '/api/events', ['GET', 'HEAD']],
      ['DELETE', '/api/events/x', ['GET', 'HEAD']],
      ['PATCH', '/api/sessions/x', ['GET', 'HEAD']],
      ['DELETE', '/api/profiles/x', ['GET', 'HEAD']],
      ['POST', '/health', ['GET', 'HEAD']],
      ['PUT', '/collect/page-view/shop', ['GET', 'POST']],
      ['DELETE', '/collect/page-view/shop/sess-1', ['GET', 'POST']],
    ])('405 on a known path with the wrong method: %s %s, with Allow', async (method, path, allowed) => {
      const res = await t.fetch(path, { method, auth: true });
      expect(res.status).toBe(405);
      expectDetail(await res.json());
      const allow = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim()).sort();
      expect(allow).toEqual(allowed);
    });

    it('413 on an API body over INTAKE_BODY_LIMIT; a body of exactly the limit is accepted', async () => {
      const body = (n: number) => {
        const shell = JSON.stringify({ name: 'Big', description: '' });
        return JSON.stringify({ name: 'Big', description: 'x'.repeat(n - Buffer.byteLength(shell)) });
      };
      expect(Buffer.byteLength(body(1000))).toBe(1000);
      const headers = { 'content-type': 'application/json' };
      const over = await small.fetch('/api/sources', { method: 'POST', auth: true, headers, body: body(1001) });
      expect(over.status).toBe(413);
      expectDetail(await over.json());
      expect(await small.api('GET', '/api/sources')).toMatchObject({ body: { items: [] } });
      const at = await small.fetch('/api/sources', { method: 'POST', auth: true, headers, body: body(1000) });
      expect(at.status).toBe(201);
    });

    it('413 on a collector body over INTAKE_BODY_LIMIT, nothing stored', async () => {
      const source = await small.source();
      const res = await small.fetch(`/collect/big/${source}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pad: 'x'.repeat(1000) }),
      });
      expect(res.status).toBe(413);
      expectDetail(await res.json());
      expect((await small.api('GET', `/api/events?source=${source}`)).body.items).toEqual([]);
    });

    it.each([
      ['text/plain', '{"name":"Plain"}'],
      ['application/x-www-form-urlencoded', 'name=Form'],
      ['application/octet-stream', '{"name":"Octets"}'],
    ])('415 on an API body of type %s, nothing created', async (type, body) => {
      const before = await sourceCount();
      const res = await t.fetch('/api/sources', { method: 'POST', auth: true, headers: { 'content-type': type }, body });
      expect(res.status).toBe(415);
      expectDetail(await res.json());
      expect(await sourceCount()).toBe(before);
    });

    it('415 on an API body without a Content-Type', async () => {
      const res = await rawRequest(t.url, {
        method: 'POST',
        path: '/api/sources',
        headers: [
          ['host', new URL(t.url).host],
          ['authorization', `Bearer ${t.token}`],
        ],
        body: '{"name":"Untyped"}',
      });
      expect(res.status).toBe(415);
      expectDetail(res.json);
    });

    it.each(['{"name": "x"', '{"name": x}', '{name: "x"}', 'not json'])(
      '400 on a malformed JSON body on the API: %s',
      async (body) => {
        const res = await t.fetch('/api/sources', {
          method: 'POST',
          auth: true,
          headers: { 'content-type': 'application/json' },
          body,
        });
        expect(res.status).toBe(400);
        expectDetail(await res.json());
      },
    );

    it('no 4xx body echoes the payload, its headers or its query', async () => {
      const secret = 'S3cr3tPayl0ad';
      const json = { 'content-type': 'application/json', 'x-secret': secret };
      const requests: [TestServer, string, RequestInit & { auth?: boolean }][] = [
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": ${secret}}` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": "${secret}"` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": "x", "${secret}": 1}` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": "x", "enabled": "${secret}"}` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": "x", "type": ["${secret}"]}` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": "x", "id": "a b ${secret}"}` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: json, body: `{"name": "x", "tags": [${secret}]}` }],
        [t, '/api/sources/shop', { method: 'PATCH', auth: true, headers: json, body: `{"name": 1, "x": "${secret}"}` }],
        [t, '/api/sources', { method: 'POST', auth: true, headers: { 'content-type': 'text/plain', 'x-secret': secret }, body: secret }],
        [t, '/api/sources', { method: 'POST', headers: { ...json, authorization: `Bearer ${secret}` }, body: `{"name": "${secret}"}` }],
        [t, `/api/events?cursor=${secret}`, { auth: true, headers: { 'x-secret': secret } }],
        [t, `/api/events?from=${secret}`, { auth: true }],
        [t, `/api/events?limit=${secret}`, { auth: true }],
        [t, `/api/sources?limit=9${secret.replace(/\D/g, '')}`, { auth: true }],
        [t, `/nope?q=${secret}`, { headers: { 'x-secret': secret } }],
        [t, `/api/sources?q=${secret}`, { method: 'PUT', auth: true, headers: json, body: `{"name": "${secret}"}` }],
        [small, '/api/sources', { method: 'POST', auth: true, headers: json, body: JSON.stringify({ name: secret.repeat(100) }) }],
      ];
      for (const [server, path, init] of requests) {
        const res = await server.fetch(path, init);
        const text = await res.text();
        const what = `${init.method ?? 'GET'} ${path} → ${res.status} ${text}`;
        expect(res.status, what).toBeGreaterThanOrEqual(400);
        expect(res.status, what).toBeLessThan(500);
        expectDetail(JSON.parse(text));
        expect(text.toLowerCase(), what).not.toContain(secret.toLowerCase());
      }
    });
  });
});
