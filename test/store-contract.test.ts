import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { IntakeError } from '../src/domain/errors.js';
import { asJsonText } from '../src/domain/json-text.js';
import pg from 'pg';
import { openStore } from '../src/store/open-store.js';
import { transaction } from '../src/store/postgres/transaction.js';
import type { CollectUnit, Store } from '../src/store/store.js';
import { createTestDatabase, STORES, tempDir } from './helpers.js';

const logger = { error: () => undefined, warn: () => undefined };

function unit(fields: Partial<CollectUnit> & { properties?: string[]; session?: string }): CollectUnit {
  const { properties = ['{}'], session, ...rest } = fields;
  return {
    time: new Date().toISOString(),
    sourceId: 'contract',
    channel: 'web',
    ip: '192.0.2.1',
    request: { method: 'POST', path: '/collect/x/contract', query: '', ip: '192.0.2.1', headers: {} },
    hashKey: 'contract-key',
    idScheme: 'random',
    task: randomUUID(),
    idempotency: null,
    events: properties.map((p) => ({
      id: randomUUID(),
      type: 'x',
      name: 'X',
      properties: asJsonText(p),
      identity: session === undefined ? null : { sessionId: session, profile: null },
      mapping: [],
    })),
    ...rest,
  };
}

/** The same assertions on every store: where they could differ visibly, they must agree. */
for (const kind of STORES) {
  describe(`Store contract (${kind})`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      const dataDir = tempDir();
      const database = kind === 'postgres' ? await createTestDatabase() : null;
      store = await openStore(
        loadConfig({ INTAKE_DATA_DIR: dataDir, ...(database ? { INTAKE_DATABASE_URL: database.url } : {}) }),
        logger,
      );
      cleanup = async () => {
        await store.close();
        await database?.drop();
        rmSync(dataDir, { recursive: true, force: true });
      };
    });
    afterAll(() => cleanup());

    it('keeps properties as the exact JSON text, big numbers and key order included', async () => {
      const text = '{"z":1,"a":12345678901234567890,"f":1.50,"e":1e400,"u":"\\u0000\\ud83d\\ude00","n":{}}';
      const u = unit({ properties: [text] });
      await store.collect(u);
      const doc = await store.getEvent(u.events[0]!.id);
      expect(doc).toContain(`"properties":${text},`);
    });

    it('lists events with equal times in one total order, newest insert first, across pages', async () => {
      const time = '2026-01-15T10:00:00.000Z';
      const batch = unit({ time, sourceId: 'tie', properties: Array.from({ length: 7 }, (_, i) => `{"i":${i}}`) });
      await store.collect(batch);
      const seen: number[] = [];
      let cursor;
      do {
        const page = await store.listEvents({ source: 'tie', limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((doc) => (JSON.parse(doc) as { properties: { i: number } }).properties.i));
        cursor = page.next ?? undefined;
      } while (cursor);
      expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0]);
    });

    it('filters by time: from inclusive, to exclusive', async () => {
      for (const time of ['2025-03-01T00:00:00.000Z', '2025-03-02T00:00:00.000Z', '2025-03-03T00:00:00.000Z'])
        await store.collect(unit({ time, sourceId: 'times', properties: [`{"t":"${time}"}`] }));
      const page = await store.listEvents({
        source: 'times',
        from: Date.parse('2025-03-01T00:00:00.000Z'),
        to: Date.parse('2025-03-03T00:00:00.000Z'),
        limit: 10,
      });
      expect(page.items.map((d) => (JSON.parse(d) as { properties: { t: string } }).properties.t)).toEqual([
        '2025-03-02T00:00:00.000Z',
        '2025-03-01T00:00:00.000Z',
      ]);
    });

    it('unknown ids, upper-case ids and non-UUIDs find nothing', async () => {
      const u = unit({});
      await store.collect(u);
      expect(await store.getEvent(randomUUID())).toBeNull();
      expect(await store.getEvent(u.events[0]!.id.toUpperCase())).toBeNull();
      expect(await store.getEvent('not-a-uuid')).toBeNull();
      expect(await store.getSession('nope')).toBeNull();
      expect(await store.getProfile('nope')).toBeNull();
    });

    it('opens a session with a new profile once, then reuses it', async () => {
      const session = `s-${randomUUID()}`;
      const first = await store.collect(unit({ session }));
      const second = await store.collect(unit({ session }));
      expect(first.sessionId).toBe(session);
      expect(second).toEqual(first);
      const profile = JSON.parse((await store.getProfile(first.profileId!))!) as { ids: string[] };
      expect(profile.ids).toEqual([first.profileId]);
      const stored = await store.listEvents({ session, limit: 10 });
      expect(stored.items).toHaveLength(5);
    });

    it('commits a session’s events in submission order while several batches are in flight', async () => {
      const session = `s-${randomUUID()}`;
      const time = new Date().toISOString();
      await store.collect(unit({ session, time, sourceId: 'order' }));
      // Waves a turn of the event loop apart become separate batches, the next sent while the
      // previous commits; within one millisecond only the commit order orders them.
      const pending: Promise<unknown>[] = [];
      for (let wave = 0; wave < 8; wave++) {
        for (let i = 0; i < 5; i++)
          pending.push(store.collect(unit({ session, time, sourceId: 'order', properties: [`{"n":${wave * 5 + i}}`] })));
        await new Promise((resolve) => setImmediate(resolve));
        // A batch without sessions in between takes a shorter way to the store; the order holds.
        pending.push(store.collect(unit({ time, sourceId: 'order-free' })));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(pending);
      const listed = await store.listEvents({ session, source: 'order', limit: 100 });
      const numbers = listed.items.map((doc) => (JSON.parse(doc) as { properties: { n?: number } }).properties.n);
      expect(numbers).toEqual([...Array.from({ length: 40 }, (_, i) => 39 - i), undefined]);
    });

    it('commits batches in flight on a pool of one connection, a new month’s partition included', async () => {
      const dataDir = tempDir();
      const database = kind === 'postgres' ? await createTestDatabase() : null;
      const single = await openStore(
        loadConfig({
          INTAKE_DATA_DIR: dataDir,
          INTAKE_DATABASE_POOL: '1',
          ...(database ? { INTAKE_DATABASE_URL: database.url } : {}),
        }),
        logger,
      );
      try {
        // The first batch must create a partition before it begins; the second needs none and
        // would be first to the one connection, were it to take it before its turn.
        const later = unit({ time: '2031-05-01T00:00:00.000Z', sourceId: 'pool-of-one' });
        const first = single.collect(later);
        await new Promise((resolve) => setImmediate(resolve));
        const now = unit({ sourceId: 'pool-of-one' });
        const started = Date.now();
        await Promise.all([first, single.collect(now)]);
        expect(Date.now() - started).toBeLessThan(2000);
        const stored = await single.listEvents({ source: 'pool-of-one', limit: 10 });
        expect(stored.items).toHaveLength(2);
      } finally {
        await single.close();
        await database?.drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });

    it('stores sources with lower-case ids, refuses a taken id, and moves the version on every change', async () => {
      const v0 = await store.sourcesVersion();
      const created = await store.createSource({ id: 'contract-src', name: 'C' });
      expect(created).toMatchObject({ id: 'contract-src', type: ['webhook'], enabled: true, channel: '' });
      await expect(store.createSource({ id: 'contract-src', name: 'again' })).rejects.toMatchObject({
        status: 409,
      } satisfies Partial<IntakeError>);
      const v1 = await store.sourcesVersion();
      expect(v1).toBeGreaterThan(v0);
      const updated = await store.updateSource('contract-src', { enabled: false });
      expect(updated?.enabled).toBe(false);
      expect(updated?.created).toBe(created.created);
      const v2 = await store.sourcesVersion();
      expect(v2).toBeGreaterThan(v1);
      expect(await store.updateSource('missing', { enabled: false })).toBeNull();
      expect(await store.deleteSource('contract-src')).toBe(true);
      expect(await store.deleteSource('contract-src')).toBe(false);
      expect(await store.sourcesVersion()).toBeGreaterThan(v2);
      expect(await store.getSource('contract-src')).toBeNull();
    });

    it('pages sources by id', async () => {
      for (const id of ['p-c', 'p-a', 'p-b']) await store.createSource({ id, name: id });
      const first = await store.listSources(2, 'p-');
      expect(first.items.map((s) => s.id)).toEqual(['p-a', 'p-b']);
      const second = await store.listSources(2, first.next!);
      expect(second.items.map((s) => s.id)).toEqual(['p-c']);
    });

    it('stores a delivery once per idempotency key and source, and answers a retry with the first response', async () => {
      const key = { key: `k-${randomUUID()}`, expiresAt: Date.now() + 60_000 };
      const first = unit({ sourceId: 'idem', idempotency: key, session: `s-${randomUUID()}` });
      const retry = unit({ sourceId: 'idem', idempotency: key });
      const otherSource = unit({ sourceId: 'idem-2', idempotency: key });
      const [a, b, c] = await Promise.all([store.collect(first), store.collect(retry), store.collect(otherSource)]);
      expect(a.replay).toBeUndefined();
      expect(b.replay).toEqual({ task: first.task, events: [first.events[0]!.id], sessionId: a.sessionId, profileId: a.profileId });
      expect(c.replay).toBeUndefined();
      const later = await store.collect(unit({ sourceId: 'idem', idempotency: key }));
      expect(later.replay?.events).toEqual([first.events[0]!.id]);
      expect((await store.listEvents({ source: 'idem', limit: 10 })).items).toHaveLength(1);
      // An expired key may be used again.
      const expired = { key: `k-${randomUUID()}`, expiresAt: Date.now() - 1 };
      await store.collect(unit({ sourceId: 'idem-3', idempotency: expired }));
      expect((await store.collect(unit({ sourceId: 'idem-3', idempotency: expired }))).replay).toBeUndefined();
    });

    it('claims the keys of a batch together: new keys are stored, and a key used before answers every retry in the batch', async () => {
      const key = () => ({ key: `k-${randomUUID()}`, expiresAt: Date.now() + 60_000 });
      const old = key();
      const original = unit({ sourceId: 'idem-batch', idempotency: old });
      await store.collect(original);
      const fresh = Array.from({ length: 5 }, () => unit({ sourceId: 'idem-batch', idempotency: key(), session: `s-${randomUUID()}` }));
      const retries = [unit({ sourceId: 'idem-batch', idempotency: old }), unit({ sourceId: 'idem-batch', idempotency: old })];
      const outcomes = await Promise.all([retries[0]!, ...fresh, retries[1]!].map((u) => store.collect(u)));
      for (const o of [outcomes[0]!, outcomes[6]!]) expect(o.replay?.events).toEqual([original.events[0]!.id]);
      for (const o of outcomes.slice(1, 6)) {
        expect(o.replay).toBeUndefined();
        expect(o.sessionId).not.toBeNull();
      }
      expect((await store.listEvents({ source: 'idem-batch', limit: 20 })).items).toHaveLength(6);
      // Their answers were stored with the keys, in the same commit: a later retry gets each one.
      const again = await store.collect(unit({ sourceId: 'idem-batch', idempotency: fresh[2]!.idempotency }));
      expect(again.replay).toMatchObject({ task: fresh[2]!.task, events: [fresh[2]!.events[0]!.id], sessionId: outcomes[3]!.sessionId });
    });

    it('keeps quarantined requests with their bytes, capped per source, newest first', async () => {
      const entry = (n: number) => ({
        id: randomUUID(),
        source: 'q-src',
        received_at: new Date().toISOString(),
        reason: n % 2 === 0 ? 'INVALID_JSON' : 'SIGNATURE_FAILED',
        detail: 'd',
        method: 'POST',
        path: '/collect/x/q-src',
        params: { eventType: 'x', sourceId: 'q-src' },
        query: '',
        headers: [['content-type', 'application/json']] as [string, string][],
        body: Buffer.from([0xff, n]),
        truncated: false,
      });
      const entries = [0, 1, 2, 3].map(entry);
      const dropped: number[] = [];
      for (const e of entries) dropped.push(await store.quarantine(e, 3));
      expect(dropped).toEqual([0, 0, 0, 1]);
      const page = await store.listQuarantine({ source: 'q-src', limit: 2 });
      expect(page.items.map((i) => i.id)).toEqual([entries[3]!.id, entries[2]!.id]);
      const rest = await store.listQuarantine({ source: 'q-src', limit: 2, cursor: page.next! });
      expect(rest.items.map((i) => i.id)).toEqual([entries[1]!.id]);
      expect((await store.listQuarantine({ reason: 'SIGNATURE_FAILED', limit: 10 })).items.map((i) => i.id)).toEqual([
        entries[3]!.id,
        entries[1]!.id,
      ]);
      const one = await store.getQuarantine(entries[2]!.id);
      expect(one?.body).toEqual(Buffer.from([0xff, 2]));
      expect(one?.headers).toEqual([['content-type', 'application/json']]);
      expect(await store.getQuarantine(entries[0]!.id)).toBeNull();
      expect(await store.deleteQuarantine(entries[2]!.id)).toBe(true);
      expect(await store.deleteQuarantine(entries[2]!.id)).toBe(false);
    });

    it('answers its health check', async () => {
      await expect(store.health()).resolves.toBeUndefined();
    });

    if (kind === 'sqlite')
      it('replaces a writer thread that dies: the batch after it goes to a new thread and is stored', async () => {
        await store.collect(unit({}));
        // The thread is internal. A message it cannot read makes it throw outside any batch, as a
        // fatal error would: the Worker emits 'error', then, in a later turn, 'exit'.
        const writer = (store as unknown as { worker: Worker }).worker;
        const errored = new Promise((resolve) => writer.once('error', resolve));
        const exited = new Promise((resolve) => writer.once('exit', resolve));
        writer.postMessage(null);
        await errored;
        // Sent after the dead thread's 'error' and before its 'exit', which must not fail it.
        const next = unit({});
        const outcome = store.collect(next);
        await exited;
        await expect(outcome).resolves.toEqual({ sessionId: null, profileId: null });
        expect(await store.getEvent(next.events[0]!.id)).not.toBeNull();
      });

    if (kind === 'postgres')
      it('a pipelined transaction whose opening or last statement fails commits nothing, and its connection serves the next', async () => {
        const database = await createTestDatabase();
        // Made as the store makes its pool: statements sent together go out without waiting.
        const pool = new pg.Pool({ connectionString: database.url, max: 1, pipeline: true });
        try {
          await pool.query('CREATE TABLE t (n integer PRIMARY KEY)');
          const insert = (n: number): pg.QueryConfig => ({ text: 'INSERT INTO t (n) VALUES ($1)', values: [n] });
          const count = async () => Number((await pool.query('SELECT count(*) AS c FROM t')).rows[0].c);
          // The last statements: the second repeats a key, and the COMMIT behind them rolls back.
          await expect(transaction(pool, (tx) => tx.commitWith(insert(1), insert(1)))).rejects.toThrow(/duplicate key/);
          expect(await count()).toBe(0);
          // The opening: a statement fails, the ones after it and the function do not run on.
          let ran = false;
          await expect(
            transaction(pool, async () => void (ran = true), [insert(2), { text: 'SELECT 1 / 0' }, insert(3)]),
          ).rejects.toThrow(/division by zero/);
          expect(ran).toBe(false);
          expect(await count()).toBe(0);
          // The same connection (a pool of one) then commits what it is given, opening and all.
          const opened = await transaction(
            pool,
            async (tx) => {
              await tx.commitWith(insert(5));
              return tx.opened.length;
            },
            [insert(4)],
          );
          expect(opened).toBe(1);
          expect((await pool.query('SELECT n FROM t ORDER BY n')).rows).toEqual([{ n: 4 }, { n: 5 }]);
        } finally {
          await pool.end();
          await database.drop();
        }
      });

    if (kind === 'postgres')
      it('pushes source changes to watchers (LISTEN/NOTIFY)', async () => {
        let calls = 0;
        const stop = store.watchSources(() => calls++);
        try {
          await new Promise((r) => setTimeout(r, 300)); // the listener connects, then reports once
          const before = calls;
          await store.createSource({ id: 'watched', name: 'W' });
          const start = Date.now();
          while (calls === before && Date.now() - start < 1000) await new Promise((r) => setTimeout(r, 20));
          expect(calls).toBeGreaterThan(before);
        } finally {
          stop();
        }
      });
  });
}

