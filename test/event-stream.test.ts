/**
 * `GET /api/events/stream` (api.md, "Following new events"): over real HTTP on each real store,
 * with a second server on the same store standing in for another collector process. `EventTail`,
 * the part that decides which events are new, is tested on its own below against a fake list.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonText } from '../src/domain/json-text.js';
import { EventTail, eventId, TAIL_LOOKBACK_MS, TAIL_PAGE_SIZE } from '../src/http/event-tail.js';
import { startServer, type RunningServer } from '../src/server.js';
import type { EventQuery } from '../src/store/store.js';
import { startTestServer, STORES, type TestServer } from './helpers.js';

interface Message {
  event: string;
  id: string | null;
  data: string;
}

/** Waits this long for a message that should come; Live promises two seconds, polls are 0.5 s. */
const ARRIVAL_MS = 5_000;

/**
 * A server-sent-events reader. It uses node:http rather than fetch, whose connection pool may open
 * a spare connection to the server after an abort, which would hold up the server's stop.
 */
async function openStream(url: string, token: string, search = '') {
  const request = httpGet(`${url}/api/events/stream${search}`, { headers: { authorization: `Bearer ${token}` }, agent: false });
  const response = await new Promise<IncomingMessage>((resolve, reject) => request.on('response', resolve).on('error', reject));
  const queue: Message[] = [];
  let ended = false;
  let wake: () => void = () => undefined;
  let buffer = '';
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message: Message = { event: 'message', id: null, data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'event') message.event = value;
        else if (field === 'id') message.id = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0) continue;
      message.data = data.join('\n');
      queue.push(message);
      wake();
    }
  });
  response.on('close', () => {
    ended = true;
    wake();
  });
  return {
    status: response.statusCode,
    headers: response.headers,
    /** The next message, or an error if none comes within `ms`. */
    async next(ms = ARRIVAL_MS): Promise<Message> {
      const deadline = Date.now() + ms;
      while (queue.length === 0) {
        if (ended) throw new Error('stream ended');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no message within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => (clearTimeout(timer), resolve());
        });
      }
      return queue.shift()!;
    },
    /** Messages received and not yet taken. */
    pending: () => queue.length,
    /** Resolves when the server ends the stream, or rejects after `ms`. */
    async ended(ms = ARRIVAL_MS): Promise<void> {
      const deadline = Date.now() + ms;
      while (!ended) {
        if (Date.now() > deadline) throw new Error(`stream still open after ${ms} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () => request.destroy(),
  };
}

/** Posts a JSON body (an object, or its exact text) and returns the stored event's id. */
async function collectEvent(baseUrl: string, path: string, body: unknown): Promise<string> {
  const res = await fetch(baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { events: string[] }).events[0] as string;
}

describe.each(STORES)('GET /api/events/stream on %s', (store) => {
  let t: TestServer;
  /** A second server on the same store: another collector process. */
  let other: RunningServer;
  const streams: { close(): void }[] = [];
  const open = async (search = '', url = t.url) => {
    const stream = await openStream(url, t.token, search);
    streams.push(stream);
    return stream;
  };

  beforeAll(async () => {
    t = await startTestServer({}, undefined, store);
    other = await startServer(t.config);
  });
  afterAll(async () => {
    for (const stream of streams) stream.close();
    await other?.close();
    await t?.close();
  });

  it('refuses a missing or wrong token with 401, like the rest of the API', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-wrong-token']) {
      const res = await fetch(`${t.url}/api/events/stream`, authorization ? { headers: { authorization } } : {});
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ detail: 'Unauthorized' });
    }
  });

  it("carries the sender's X-Request-Id, as every answer does", async () => {
    const { hostname, port } = new URL(t.url);
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      httpGet({ hostname, port, path: '/api/events/stream', headers: { authorization: `Bearer ${t.token}`, 'x-request-id': 'my-req-42' } }, resolve).on(
        'error',
        reject,
      ),
    );
    expect(res.headers['x-request-id']).toBe('my-req-42');
    res.destroy();
  });

  it('a client gone before its stream started leaves no stream open', async () => {
    const { hostname, port } = new URL(t.url);
    const openStreams = async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      return Number(/^intake_event_streams_open (\d+)$/m.exec(text)?.[1]);
    };
    const usual = await openStreams();
    expect(usual).toBeGreaterThanOrEqual(0);
    // Each one leaves at once or a moment later: on PostgreSQL, while the first poll is in flight.
    for (let i = 0; i < 90; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(port), hostname, () => {
          socket.write(`GET /api/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.token}\r\n\r\n`);
          setTimeout(() => socket.destroy(), i % 3);
        });
        socket.on('close', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 1200));
    expect(await openStreams()).toBeLessThanOrEqual(usual);
  });

  it('answers text/event-stream and says ready first', async () => {
    const stream = await open();
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['cache-control']).toMatch(/no-cache/);
    expect(await stream.next()).toEqual({ event: 'ready', id: null, data: '{}' });
    stream.close();
  });

  it('sends each event committed after ready, with its id, as GET /api/events/{id} returns it', async () => {
    const source = await t.source();
    const before = await collectEvent(t.url, `/collect/before/${source}`, { n: 0 });
    const stream = await open(`?source=${source}`);
    expect((await stream.next()).event).toBe('ready');
    const first = await collectEvent(t.url, `/collect/order-paid/${source}`, `{"order":"A-1","big":12345678901234567890}`);
    const second = await collectEvent(t.url, `/collect/order-paid/${source}`, { order: 'A-2' });

    const messages = [await stream.next(), await stream.next()];
    expect(messages.map((m) => m.id)).toEqual([first, second]);
    expect(messages.map((m) => m.id)).not.toContain(before);
    for (const message of messages) {
      expect(message.event).toBe('message');
      const stored = await t.fetch(`/api/events/${message.id}`, { auth: true });
      expect(message.data).toBe(await stored.text());
    }
    expect(messages[0]!.data).toContain('"big":12345678901234567890');
    stream.close();
  });

  it('filters by source and type, normalised like the event list', async () => {
    const wanted = await t.source();
    const elsewhere = await t.source();
    const stream = await open(`?source=${wanted.toUpperCase()}&type=${encodeURIComponent(' Order  Paid ')}`);
    expect((await stream.next()).event).toBe('ready');
    await collectEvent(t.url, `/collect/order-paid/${elsewhere}`, {});
    await collectEvent(t.url, `/collect/page-view/${wanted}`, {});
    // A new session also stores three system events under @internal.
    await collectEvent(t.url, `/collect/page-view/${wanted}/filter-session-${store}`, {});
    const match = await collectEvent(t.url, `/collect/order-paid/${wanted}`, {});

    expect((await stream.next()).id).toBe(match);
    // The others were committed before it, so a poll that found it would have found them too.
    expect(stream.pending()).toBe(0);
    stream.close();
  });

  it('sends events that another process commits to the same store', async () => {
    const source = await t.source();
    // The other process learns of the new source within 250 ms (its source cache polls).
    for (let tries = 0; tries < 40; tries++) {
      const res = await fetch(`${other.url}/collect/warm-up/${source}`, { method: 'POST' });
      if (res.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const stream = await open(`?source=${source}`);
    expect((await stream.next()).event).toBe('ready');
    const id = await collectEvent(other.url, `/collect/elsewhere/${source}/other-process-${store}`, { from: 'other' });
    expect((await stream.next()).id).toBe(id);
    stream.close();
  });

  it('ends when its server stops, so the stop is not held up', async () => {
    const server = await startServer(t.config);
    const stream = await openStream(server.url, t.token);
    streams.push(stream);
    expect((await stream.next()).event).toBe('ready');
    const started = Date.now();
    await server.close();
    await stream.ended();
    expect(Date.now() - started).toBeLessThan(ARRIVAL_MS);
  });
});

describe('EventTail: which events are new', () => {
  /** A store's event list in memory: newest first by (time, seq), `from` inclusive, `limit`, `next`. */
  function fakeStore() {
    const rows: { time: number; seq: number; source: string; doc: JsonText }[] = [];
    const queries: EventQuery[] = [];
    let seq = 0;
    return {
      queries,
      add(id: string, time: number, source = 'shop') {
        rows.push({ time, seq: ++seq, source, doc: `{"id":"${id}","type":"t"}` as JsonText });
      },
      async listEvents(query: EventQuery) {
        queries.push(query);
        const matching = rows
          .filter((r) => (query.from === undefined || r.time >= query.from) && (query.source === undefined || r.source === query.source))
          .sort((a, b) => b.time - a.time || b.seq - a.seq);
        const items = matching.slice(0, query.limit);
        const last = items[items.length - 1];
        return { items: items.map((r) => r.doc), next: matching.length > query.limit && last ? { time: last.time, seq: last.seq } : null };
      },
    };
  }
  const ids = (docs: JsonText[]) => docs.map(eventId);

  it('starts at the first poll: it returns nothing, and nothing committed before it later', async () => {
    const store = fakeStore();
    let now = 100_000;
    store.add('old', now - 1_000);
    const tail = new EventTail((q) => store.listEvents(q), {}, () => now);
    expect(await tail.poll()).toEqual({ events: [], skipped: false });
    now += 500;
    expect((await tail.poll()).events).toEqual([]);
  });

  it('returns the events committed since the previous poll, oldest first', async () => {
    const store = fakeStore();
    let now = 100_000;
    const tail = new EventTail((q) => store.listEvents(q), {}, () => now);
    await tail.poll();
    store.add('a', now + 10);
    store.add('b', now + 20);
    now += 500;
    expect(ids((await tail.poll()).events)).toEqual(['a', 'b']);
    now += 500;
    expect((await tail.poll()).events).toEqual([]);
  });

  it('returns an event committed late, whose insert time is before events it already returned', async () => {
    const store = fakeStore();
    let now = 100_000;
    const tail = new EventTail((q) => store.listEvents(q), {}, () => now);
    await tail.poll();
    store.add('newer', now + 300);
    now += 500;
    expect(ids((await tail.poll()).events)).toEqual(['newer']);
    // Its request came first, but another process committed it only now.
    store.add('late', now - 400);
    now += 500;
    expect(ids((await tail.poll()).events)).toEqual(['late']);
  });

  it('asks the store only for the last TAIL_LOOKBACK_MS, with its filter, one page at a time', async () => {
    const store = fakeStore();
    const tail = new EventTail((q) => store.listEvents(q), { source: 'shop', type: 'order-paid' }, () => 50_000);
    await tail.poll();
    expect(store.queries).toEqual([{ source: 'shop', type: 'order-paid', from: 50_000 - TAIL_LOOKBACK_MS, limit: TAIL_PAGE_SIZE }]);
  });

  it('says skipped when more events arrived than one page holds, and only then', async () => {
    const store = fakeStore();
    let now = 100_000;
    const tail = new EventTail((q) => store.listEvents(q), {}, () => now);
    await tail.poll();
    for (let i = 0; i < TAIL_PAGE_SIZE; i++) store.add(`full-${i}`, now + 1);
    now += 500;
    const full = await tail.poll();
    expect(full.events).toHaveLength(TAIL_PAGE_SIZE);
    expect(full.skipped).toBe(false);
    for (let i = 0; i < TAIL_PAGE_SIZE + 1; i++) store.add(`over-${i}`, now + 1);
    now += 500;
    const over = await tail.poll();
    expect(over.events).toHaveLength(TAIL_PAGE_SIZE);
    expect(over.skipped).toBe(true);
    store.add('one-more', now + 1);
    now += 500;
    expect(await tail.poll()).toEqual({ events: [expect.stringContaining('one-more')], skipped: false });
  });

  it('reads the id from the start of the stored document, or parses it', () => {
    expect(eventId('{"id":"abc","type":"x"}' as JsonText)).toBe('abc');
    expect(eventId('{ "type":"x", "id":"def" }' as JsonText)).toBe('def');
  });
});
