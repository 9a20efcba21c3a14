/**
 * "A 200 means committed" (README, ARCHITECTURE "Why it is built this way"), tested the hard way:
 * under concurrent load the server process is killed with SIGKILL — no shutdown, no drain — then
 * started again on the same data, and every event whose 200 reached a client must be read back,
 * exactly once. Several rounds on one store, so recovery itself is recovered from.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { STORES, createTestDatabase, tempDir, type StoreKind } from './helpers.js';
import { spawnServer, within, type ServerProcess } from './processes.js';

const ROUNDS = 3;
const CLIENTS = 16;
const TOKEN = 'crash-safety-admin-token-0123456789';

interface Ack {
  eventId: string;
  marker: string;
  sessionId: string | null;
  profileId: string | null;
}

interface Stored {
  id: string;
  properties: { marker: string };
  session: { id: string } | null;
  profile: { id: string } | null;
}

/**
 * Posts events from `CLIENTS` loops until a request fails (the server is gone). Even loops are
 * profile-less, odd loops use one session each, so sessions and profiles are created mid-crash.
 */
function load(server: ServerProcess, round: number, acks: Ack[]): Promise<void> {
  const loop = async (client: number) => {
    const session = client % 2 === 1 ? `crash-${round}-${client}` : null;
    const path = `/collect/crash/crashy${session === null ? '' : `/${session}`}`;
    for (let n = 0; ; n++) {
      const marker = `r${round}-c${client}-${n}`;
      let response: Response;
      let text: string;
      try {
        response = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ marker, padding: 'x'.repeat(300) }),
        });
        text = await response.text();
      } catch {
        return; // the server was killed: this request counts as not acknowledged
      }
      // Anything but a 200 (a 503 while the store is busy, say) is not an acknowledgement.
      if (response.status !== 200) continue;
      const body = JSON.parse(text) as { events: string[]; session: { id: string | null }; profile: { id: string | null } };
      acks.push({ eventId: body.events[0] as string, marker, sessionId: body.session.id, profileId: body.profile.id });
    }
  };
  return Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(c))).then(() => undefined);
}

async function storedEvents(server: ServerProcess): Promise<Stored[]> {
  const all: Stored[] = [];
  let cursor: string | null = null;
  do {
    const response = await fetch(
      `${server.url}/api/events?type=crash&limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`,
      { headers: { authorization: `Bearer ${TOKEN}` } },
    );
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: Stored[]; next: string | null };
    all.push(...page.items);
    cursor = page.next;
  } while (cursor !== null);
  return all;
}

for (const store of STORES) {
  describe(`crash safety (${store})`, () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterAll(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    it(`every event acknowledged before a SIGKILL is read back exactly once (${ROUNDS} rounds)`, async () => {
      const env = await storeEnv(store, cleanups);
      let server = await spawnServer(env);
      cleanups.push(() => {
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      });
      const created = await fetch(`${server.url}/api/sources`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'crashy', name: 'Crashy' }),
      });
      expect(created.status).toBe(201);

      const acks: Ack[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const before = acks.length;
        const loading = load(server, round, acks);
        // Once events are being acknowledged, killed at a different point of the write path each round.
        await within(15_000, async () => acks.length >= before + 50);
        await new Promise((r) => setTimeout(r, Math.random() * 1000));
        expect(await server.stop('SIGKILL')).toBe(null);
        await loading;

        server = await spawnServer(env);
        const stored = await storedEvents(server);
        const timesStored = new Map<string, number>();
        for (const e of stored) timesStored.set(e.id, (timesStored.get(e.id) ?? 0) + 1);
        const markers = new Map<string, number>();
        for (const e of stored) markers.set(e.properties.marker, (markers.get(e.properties.marker) ?? 0) + 1);

        const lost = acks.filter((a) => timesStored.get(a.eventId) !== 1);
        expect(lost, `acknowledged events not stored exactly once after round ${round}`).toEqual([]);
        expect([...markers].filter(([, n]) => n > 1), 'requests stored twice').toEqual([]);
        // An acknowledged event carries the session and profile its answer named.
        const byId = new Map(stored.map((e) => [e.id, e]));
        for (const ack of acks) {
          const event = byId.get(ack.eventId) as Stored;
          expect(event.properties.marker).toBe(ack.marker);
          expect(event.session?.id ?? null).toBe(ack.sessionId);
          expect(event.profile?.id ?? null).toBe(ack.profileId);
        }
      }
      await server.stop('SIGTERM');
    }, 120_000);
  });
}

async function storeEnv(store: StoreKind, cleanups: (() => Promise<void> | void)[]): Promise<Record<string, string>> {
  const dataDir = tempDir('intake-crash-');
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = { INTAKE_DATA_DIR: dataDir, INTAKE_ADMIN_TOKEN: TOKEN };
  if (store === 'postgres') {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    env.INTAKE_DATABASE_URL = database.url;
  }
  return env;
}
