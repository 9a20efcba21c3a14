import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORES, startTestServer, type TestServer } from './helpers.js';

const post = (t: TestServer, path: string, body: unknown) =>
  t.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

for (const store of STORES) {
  describe(`durable, group-committed writes (${store})`, () => {
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startTestServer({}, undefined, store);
      source = await t.source();
    });
    afterAll(() => t.close());

    it('simultaneous requests with one new session id make one session and one profile', async () => {
      const session = `race-${Date.now()}`;
      const responses = await Promise.all(
        Array.from({ length: 64 }, (_, i) => post(t, `/collect/click/${source}/${session}`, { i })),
      );
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as { profile: { id: string } }[];
      expect(responses.every((r) => r.status === 200)).toBe(true);
      const profiles = new Set(bodies.map((b) => b.profile.id));
      expect(profiles.size).toBe(1);

      const events = (await t.api('GET', `/api/events?session=${session}&limit=1000`)).body.items as {
        type: string;
        profile: { id: string };
      }[];
      const count = (type: string) => events.filter((e) => e.type === type).length;
      expect(count('click')).toBe(64);
      expect(count('profile-created')).toBe(1);
      expect(count('session-opened')).toBe(1);
      expect(count('visit-started')).toBe(1);
      expect(new Set(events.map((e) => e.profile.id))).toEqual(profiles);

      const profile = (await t.api('GET', `/api/profiles/${[...profiles][0]}`)).body;
      expect(profile.metadata.time.visit.count).toBe(1);
    });

    it('a session’s events are applied in arrival order', async () => {
      const session = `order-${Date.now()}`;
      for (let i = 0; i < 5; i++) expect((await post(t, `/collect/step/${source}/${session}`, { i })).status).toBe(200);
      const events = (await t.api('GET', `/api/events?session=${session}&type=step`)).body.items as {
        properties: { i: number };
      }[];
      expect(events.map((e) => e.properties.i)).toEqual([4, 3, 2, 1, 0]);
    });

    it('concurrent requests on many sessions each get their own session and profile', async () => {
      const sessions = Array.from({ length: 20 }, (_, i) => `many-${Date.now()}-${i}`);
      const responses = await Promise.all(sessions.map((s) => post(t, `/collect/hit/${source}/${s}`, {})));
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as {
        session: { id: string };
        profile: { id: string };
      }[];
      expect(bodies.map((b) => b.session.id)).toEqual(sessions);
      expect(new Set(bodies.map((b) => b.profile.id)).size).toBe(sessions.length);
    });
  });
}

describe('embedded store failure', () => {
  let t: TestServer;
  let source: string;
  beforeAll(async () => {
    t = await startTestServer();
    source = await t.source();
  });
  afterAll(() => t.close());

  it('answers 503 with Retry-After, never 200, while the store cannot write; recovers after', async () => {
    // Another process holding the database's write lock is a real way for commits to fail.
    const intruder = new Database(join(t.dataDir, 'intake.sqlite'));
    intruder.prepare('BEGIN IMMEDIATE').run();
    try {
      const refused = await post(t, `/collect/blocked/${source}`, { n: 1 });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(await refused.json()).toEqual({ detail: 'Storage is unavailable; retry later', id: expect.any(String) });
    } finally {
      intruder.prepare('ROLLBACK').run();
      intruder.close();
    }
    const accepted = await post(t, `/collect/blocked/${source}`, { n: 2 });
    expect(accepted.status).toBe(200);
    const stored = (await t.api('GET', `/api/events?type=blocked`)).body.items as { properties: { n: number } }[];
    expect(stored.map((e) => e.properties.n)).toEqual([2]);
  });

  it('copies committed events from the log into the database file in the background', async () => {
    const type = `copied-${Date.now()}`;
    for (let i = 0; i < 20; i++) expect((await post(t, `/collect/${type}/${source}`, { i })).status).toBe(200);
    // The database file alone, without its log, holds only what a checkpoint copied into it. No
    // commit here crosses the writer's own threshold (64 MiB), so the checkpoint thread did it.
    const copy = join(t.dataDir, 'without-log.sqlite');
    let copied = 0;
    for (const deadline = Date.now() + 5000; copied < 20 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      copyFileSync(join(t.dataDir, 'intake.sqlite'), copy);
      const db = new Database(copy, { readonly: true });
      try {
        // Before any checkpoint, even the tables exist only in the log.
        const tables = db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'events'").pluck().get() as number;
        copied = tables === 0 ? 0 : (db.prepare('SELECT count(*) FROM events WHERE type = ?').pluck().get(type) as number);
      } finally {
        db.close();
      }
    }
    expect(copied).toBe(20);
  });

  it('keeps the database in WAL mode', () => {
    const db = new Database(join(t.dataDir, 'intake.sqlite'), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });
});
