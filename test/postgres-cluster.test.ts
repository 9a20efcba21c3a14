import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, tempDir, TEST_DATABASE_URL, startTestServer, type TestServer } from './helpers.js';
import { Relay, spawnServer, within, type ServerProcess } from './processes.js';

const TOKEN = 'cluster-test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { 'content-type': 'application/json' };

async function api(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { ...auth, ...(body !== undefined ? json : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

const collect = (base: string, path: string, body: unknown = {}) =>
  fetch(base + path, { method: 'POST', headers: json, body: JSON.stringify(body) });

describe('several collector processes on one PostgreSQL database', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Both start at once: the migrations must serialise between them.
    const start = () =>
      spawnServer({ INTAKE_DATABASE_URL: database.url, INTAKE_ADMIN_TOKEN: TOKEN, INTAKE_DATA_DIR: tempDir() });
    [a, b] = await Promise.all([start(), start()]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
  });

  it('one new session id hit through both processes at once makes one session and one profile', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'race', name: 'Race' })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/ping/race')).status === 200);

    const session = `s-${Date.now()}`;
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => collect(i % 2 === 0 ? a.url : b.url, `/collect/click/race/${session}`, { i })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(40).fill(200));
    const profiles = new Set(
      ((await Promise.all(responses.map((r) => r.json()))) as { profile: { id: string } }[]).map((x) => x.profile.id),
    );
    expect(profiles.size).toBe(1);

    const events = (await api(a.url, 'GET', `/api/events?session=${session}&limit=1000`)).body.items as {
      type: string;
    }[];
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect([count('click'), count('profile-created'), count('session-opened'), count('visit-started')]).toEqual([
      40, 1, 1, 1,
    ]);
  });

  it('a source created, disabled or deleted through one process takes effect on the other within a second', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'shop', name: 'Shop' })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/order/shop')).status === 200);

    expect((await api(b.url, 'PATCH', '/api/sources/shop', { enabled: false })).status).toBe(200);
    await within(1000, async () => {
      const res = await collect(a.url, '/collect/order/shop');
      return res.status === 401 && ((await res.json()) as { detail: string }).detail === 'Event source disabled.';
    });

    expect((await api(a.url, 'DELETE', '/api/sources/shop')).status).toBe(204);
    await within(1000, async () => {
      const res = await collect(b.url, '/collect/order/shop');
      return res.status === 401 && ((await res.json()) as { detail: string }).detail === 'Invalid event source `shop`.';
    });
  });

  it('a pair of profiles discovered through both processes at once is merged once', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'web', name: 'Web' })).status).toBe(201);
    const stripe = { generate_profile: true, identify_profile_by: 'email', replace_profile_id: 'customer.email' };
    expect((await api(a.url, 'POST', '/api/sources', { id: 'stripe', name: 'Stripe', config: stripe })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/ping/stripe', {})).status === 200);
    const session = `merge-${Date.now()}`;
    const visit = (await (await collect(a.url, `/collect/page-view/web/${session}`)).json()) as { profile: { id: string } };
    const paid = (await (await collect(b.url, '/collect/paid/stripe', { customer: { email: 'both@example.com' } })).json()) as {
      profile: { id: string };
    };
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        collect(i % 2 === 0 ? a.url : b.url, `/collect/identification/web/${session}`, { email: { main: 'both@example.com' } }),
      ),
    );
    const ids = new Set(((await Promise.all(responses.map((r) => r.json()))) as { profile: { id: string } }[]).map((r) => r.profile.id));
    expect(ids).toEqual(new Set([visit.profile.id]));
    const survivor = (await api(b.url, 'GET', `/api/profiles/${paid.profile.id}`)).body;
    expect(survivor.id).toBe(visit.profile.id);
    expect(survivor.metadata.merged_from).toEqual([paid.profile.id]);
  });

  it('deliveries retried through both processes at once, in opposite orders, are each stored once', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'retry', name: 'Retry' })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/ping/retry')).status === 200);
    const deliver = (base: string, key: string) =>
      fetch(`${base}/collect/paid/retry`, { method: 'POST', headers: { ...json, 'idempotency-key': key }, body: '{}' });
    for (let round = 0; round < 10; round++) {
      const keys = Array.from({ length: 8 }, (_, i) => `delivery-${round}-${i}`);
      // Each process claims the keys of a batch together: a claim that waited for the other's in
      // a circle would fail as a deadlock (503) instead of answering with the first response.
      const responses = await Promise.all([
        ...keys.map((key) => deliver(a.url, key)),
        ...[...keys].reverse().map((key) => deliver(b.url, key)),
      ]);
      expect(responses.map((r) => r.status)).toEqual(Array(16).fill(200));
      const answers = (await Promise.all(responses.map((r) => r.json()))) as { events: string[] }[];
      // The same answer through both processes: the first one.
      for (const [i, key] of keys.entries()) expect(answers[15 - i]!.events, key).toEqual(answers[i]!.events);
    }
    const stored = (await api(a.url, 'GET', '/api/events?source=retry&type=paid&limit=1000')).body.items as unknown[];
    expect(stored).toHaveLength(80);
  });

  it('events on two sessions of one profile, through both processes at once, all reach the profile', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'shop2', name: 'Shop' })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/ping/shop2')).status === 200);
    // One customer on two devices: the second session's profile merges into the first's.
    const [phone, laptop] = [`phone-${Date.now()}`, `laptop-${Date.now()}`];
    const email = { email: { main: `two-devices-${Date.now()}@example.com` } };
    const first = (await (await collect(a.url, `/collect/identification/shop2/${phone}`, email)).json()) as { profile: { id: string } };
    const second = (await (await collect(b.url, `/collect/identification/shop2/${laptop}`, email)).json()) as { profile: { id: string } };
    expect(second.profile.id).toBe(first.profile.id);
    // A page view appends its category to the profile's interests (the catalogue's mapping).
    const categories = Array.from({ length: 24 }, (_, i) => `category-${i}`);
    const responses = await Promise.all(
      categories.map((category, i) =>
        // Each process gets one of the sessions: no batch waits for the other's session lock.
        collect(i % 2 === 0 ? a.url : b.url, `/collect/page-view/shop2/${i % 2 === 0 ? phone : laptop}`, { url: '/p', category }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(24).fill(200));
    const profile = (await api(a.url, 'GET', `/api/profiles/${first.profile.id}`)).body;
    expect([...profile.interests.categories].sort()).toEqual([...categories].sort());
  });

  it('customers identified through both processes at once, by e-mail and by mapping, end as one profile each', async () => {
    const crm = { generate_profile: true, identify_profile_by: 'email', replace_profile_id: 'customer.email' };
    expect((await api(a.url, 'POST', '/api/sources', { id: 'crm', name: 'CRM', config: crm })).status).toBe(201);
    expect((await api(a.url, 'POST', '/api/sources', { id: 'site', name: 'Site' })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/ping/crm')).status === 200);
    await within(1000, async () => (await collect(b.url, '/collect/ping/site')).status === 200);

    // Each session's one event names an e-mail: a CRM event identifies the e-mail's profile
    // (identity.md §2), an identification event maps the e-mail into the session's profile (§3);
    // either way the first finds no profile with it, and the others must find the first's. Four
    // sessions share each e-mail, two through each process, so that only the e-mails are shared
    // between the processes' batches.
    for (let round = 0; round < 3; round++) {
      const run = `${Date.now()}-${round}`;
      const emails = Array.from({ length: 7 }, (_, e) => `customer-${run}-${e}@example.com`);
      const sessions = Array.from({ length: 28 }, (_, s) => ({ id: `visitor-${run}-${s}`, email: emails[s % 7]! }));
      const responses = await Promise.all(
        sessions.map(({ id, email }, s) => {
          const base = s % 2 === 0 ? a.url : b.url;
          return s % 3 === 0
            ? collect(base, `/collect/identification/site/${id}`, { email: { main: email } })
            : collect(base, `/collect/paid/crm/${id}`, { customer: { email } });
        }),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(sessions.length).fill(200));

      // Each e-mail's profile, as a CRM event on a session of its own finds it, and the profile
      // of each of its sessions now: one and the same, and a different one for each e-mail.
      const owners: string[] = [];
      for (const [e, email] of emails.entries()) {
        const found = (await (await collect(b.url, `/collect/paid/crm/check-${run}-${e}`, { customer: { email } })).json()) as {
          profile: { id: string };
        };
        owners.push(found.profile.id);
      }
      expect(new Set(owners).size).toBe(emails.length);
      for (const [s, { id }] of sessions.entries()) {
        const now = (await (await collect(a.url, `/collect/ping/site/${id}`)).json()) as { profile: { id: string } };
        expect(now.profile.id, `session ${s}`).toBe(owners[s % 7]);
      }
    }
  });

  it('a batch PostgreSQL rolls back to break a deadlock is tried again, and answered 200', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'circle', name: 'Circle' })).status).toBe(201);
    await within(1000, async () => (await collect(a.url, '/collect/ping/circle')).status === 200);
    const session = `circle-${Date.now()}`;
    const opened = (await (await collect(a.url, `/collect/page-view/circle/${session}`)).json()) as { profile: { id: string } };
    let log = '';
    a.child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));

    // Another client takes the profile's lock, then the session's: the order no batch takes them
    // in. The batch, holding the session's lock and waiting for the profile's, is the one
    // PostgreSQL rolls back (this client waits longer before it looks for a circle).
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query("SET deadlock_timeout = '10s'");
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 1))', [opened.profile.id]);
      const answer = collect(a.url, `/collect/purchase/circle/${session}`, { total: 1 });
      await within(5000, async () => {
        const waiting = await other.query(
          `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        );
        return waiting.rowCount === 1;
      });
      await other.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [session]);
      await other.query('COMMIT');
      const res = await answer;
      expect(res.status).toBe(200);
    } finally {
      await other.end();
    }
    const events = (await api(b.url, 'GET', `/api/events?session=${session}&type=purchase`)).body.items as unknown[];
    expect(events).toHaveLength(1);
    expect(log).toContain('batch deadlocked; trying it again');
  });

  it('an event acknowledged by one process is readable through the other at once', async () => {
    expect((await api(a.url, 'POST', '/api/sources', { id: 'read', name: 'Read' })).status).toBe(201);
    await within(1000, async () => (await collect(b.url, '/collect/ping/read')).status === 200);
    for (let i = 0; i < 10; i++) {
      const res = await collect(i % 2 === 0 ? a.url : b.url, '/collect/order/read', { i });
      const [id] = ((await res.json()) as { events: string[] }).events;
      const other = i % 2 === 0 ? b.url : a.url;
      const read = await api(other, 'GET', `/api/events/${id}`);
      expect(read.status).toBe(200);
      expect(read.body.properties).toEqual({ i });
    }
  });
});

/** A test server on a fresh database that it reaches through a relay, to cut or silence. */
async function serverBehindRelay(env: Record<string, string> = {}) {
  const database = await createTestDatabase();
  const target = new URL(TEST_DATABASE_URL);
  const relay = new Relay(target.hostname, Number(target.port || 5432));
  await relay.start();
  const viaRelay = new URL(database.url);
  viaRelay.port = String(relay.port);
  const t = await startTestServer({ INTAKE_DATABASE_URL: viaRelay.toString(), ...env });
  return { database, relay, t };
}

describe('PostgreSQL outage', () => {
  let relay: Relay;
  let t: TestServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    ({ database, relay, t } = await serverBehindRelay());
  });
  afterAll(async () => {
    await t?.close();
    await relay?.cut();
    await database?.drop();
  });

  it('answers 503 with Retry-After while the database is unreachable, and recovers by itself within 5 s', async () => {
    const source = await t.source();
    expect((await collect(t.url, `/collect/before/${source}`)).status).toBe(200);

    await relay.cut();
    const refused = await collect(t.url, `/collect/during/${source}/s1`, { n: 1 });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toEqual({ detail: 'Storage is unavailable; retry later', id: expect.any(String) });
    expect((await t.fetch('/health')).status).toBe(503);

    await relay.start();
    const took = await within(5000, async () => (await t.fetch('/health')).status === 200);
    expect(took).toBeLessThan(5000);
    expect((await collect(t.url, `/collect/after/${source}`)).status).toBe(200);

    const types = ((await t.api('GET', `/api/events?source=${source}`)).body.items as { type: string }[]).map(
      (e) => e.type,
    );
    expect(types).toEqual(['after', 'before']);
  });
});

describe('PostgreSQL timeouts (INTAKE_DATABASE_TIMEOUT_MS)', () => {
  let relay: Relay;
  let t: TestServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    ({ database, relay, t } = await serverBehindRelay({ INTAKE_DATABASE_TIMEOUT_MS: '1000' }));
  });
  afterAll(async () => {
    relay?.thaw();
    await t?.close();
    await relay?.cut();
    await database?.drop();
  });

  const typesOf = async (source: string) =>
    ((await t.api('GET', `/api/events?source=${source}`)).body.items as { type: string }[]).map((e) => e.type);

  it('a statement that waits longer is ended by the database: 503, nothing stored, and the next request is stored', async () => {
    const source = await t.source();
    expect((await collect(t.url, `/collect/before/${source}/s1`)).status).toBe(200);
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const refused = await collect(t.url, `/collect/during/${source}/s1`);
      const took = Date.now() - started;
      await other.query('COMMIT');
      expect(refused.status).toBe(503);
      // The database's own timeout, not the watchdog's, which closes a connection after 2 s.
      expect(took).toBeGreaterThanOrEqual(1000);
      expect(took).toBeLessThan(1900);
    } finally {
      await other.end();
    }
    expect((await collect(t.url, `/collect/after/${source}/s1`)).status).toBe(200);
    expect(await typesOf(source)).toEqual(['after', 'before']);
  });

  it('a database that stops answering: its connection is closed after twice the timeout, 503, and the store recovers', async () => {
    const source = await t.source();
    expect((await collect(t.url, `/collect/before/${source}`)).status).toBe(200);
    relay.freeze();
    const started = Date.now();
    const refused = await collect(t.url, `/collect/during/${source}`);
    const took = Date.now() - started;
    relay.thaw();
    expect(refused.status).toBe(503);
    expect(took).toBeGreaterThanOrEqual(2000);
    expect(took).toBeLessThan(6000);
    await within(5000, async () => (await collect(t.url, `/collect/after/${source}`)).status === 200);
    expect(await typesOf(source)).toEqual(['after', 'before']);
  });
});

describe('PostgreSQL stop', () => {
  it('a server stopped while a statement waits for a reply the network lost stops within twice the timeout', async () => {
    const { database, relay, t } = await serverBehindRelay({ INTAKE_DATABASE_TIMEOUT_MS: '1000' });
    try {
      const source = await t.source();
      // Leaves an idle connection in the pool, which the next source poll (every 250 ms) takes.
      expect((await collect(t.url, `/collect/before/${source}`)).status).toBe(200);
      relay.freeze();
      await new Promise((resolve) => setTimeout(resolve, 600));
      // The poll's reply is lost for good, as on a network that drops packets; the relay forwards
      // again, so the pool can still say goodbye to its other connections.
      relay.thaw();
      const started = Date.now();
      await t.server.close();
      // The watchdog closes the held connection after 2 s, checking every 250 ms.
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      relay.thaw();
      await relay.cut();
      await database.drop();
    }
  });
});

describe('PostgreSQL upgrade', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({}, tempDir(), 'postgres');
  });
  afterAll(() => t?.close());

  it('a database from before the hash index on event ids gets it at start, and every event stored before is still found by id', async () => {
    const source = await t.source();
    const stored: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await collect(t.url, `/collect/order/${source}`, { i });
      expect(res.status).toBe(200);
      stored.push(...((await res.json()) as { events: string[] }).events);
    }
    // Put the database back the way migrations 001 to 003 left it.
    const db = new pg.Client({ connectionString: t.config.databaseUrl! });
    await db.connect();
    const indexOf = async () =>
      (await db.query<{ def: string }>("SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'events_by_id'")).rows[0]?.def;
    try {
      expect(await indexOf()).toContain('USING hash (id)');
      await db.query('DROP INDEX events_by_id');
      await db.query('CREATE INDEX events_by_id ON events (id)');
      await db.query("DELETE FROM intake_migrations WHERE name = '004_events_by_id_hash.sql'");
      expect(await indexOf()).toContain('USING btree (id)');

      await t.restart();

      expect(await indexOf()).toContain('USING hash (id)');
      const applied = await db.query("SELECT 1 FROM intake_migrations WHERE name = '004_events_by_id_hash.sql'");
      expect(applied.rowCount).toBe(1);
    } finally {
      await db.end();
    }
    const res = await collect(t.url, `/collect/order/${source}`, { i: 20 });
    stored.push(...((await res.json()) as { events: string[] }).events);
    for (const [i, id] of stored.entries()) {
      const read = await t.api('GET', `/api/events/${id}`);
      expect(read.status).toBe(200);
      expect(read.body.properties).toEqual({ i });
    }
    expect((await t.api('GET', `/api/events/${randomUUID()}`)).status).toBe(404);
  });
});
