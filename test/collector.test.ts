/**
 * The collector's behaviour contract (docs: /work/shared/spec/collector.md §1–§9), over real HTTP
 * against a real SQLite store. One `describe` per table or section, one `it` per row or bullet.
 * Stored data is read back only through the management API.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../src/server.js';
import { rawRequest, startTestServer, STORES, type RawResponse, type TestServer } from './helpers.js';

// ---- helpers ---------------------------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LOOPBACK = '127.0.0.1';

type HeaderList = [string, string][];

/** Exact bytes and headers; Node sends no Host header of its own with a raw header list. */
function send(t: TestServer, method: string, path: string, headers: HeaderList = [], body?: string | Buffer) {
  return rawRequest(t.url, {
    method,
    path,
    headers: [['host', new URL(t.url).host], ...headers],
    ...(body !== undefined ? { body } : {}),
  });
}

const get = (t: TestServer, path: string, headers: HeaderList = []) => send(t, 'GET', path, headers);

function post(t: TestServer, path: string, body: string | Buffer, contentType?: string, headers: HeaderList = []) {
  return send(t, 'POST', path, contentType === undefined ? headers : [['content-type', contentType], ...headers], body);
}

const postJson = (t: TestServer, path: string, value: unknown, headers: HeaderList = []) =>
  post(t, path, JSON.stringify(value), 'application/json', headers);

/** A stored event, parsed. */
async function readEvent(t: TestServer, id: string): Promise<any> {
  const res = await t.api('GET', `/api/events/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** A stored event as the exact text the API sends. */
async function readEventText(t: TestServer, id: string): Promise<string> {
  const res = await t.fetch(`/api/events/${id}`, { auth: true });
  expect(res.status).toBe(200);
  return res.text();
}

/** Events matching a list query, newest first. */
async function listEvents(t: TestServer, query: Record<string, string>): Promise<any[]> {
  const res = await t.api('GET', `/api/events?${new URLSearchParams({ ...query, limit: '1000' })}`);
  expect(res.status).toBe(200);
  return res.body.items;
}

const storedFor = async (t: TestServer, source: string) => (await listEvents(t, { source })).length;

async function readSession(t: TestServer, id: string): Promise<{ status: number; body: any }> {
  return t.api('GET', `/api/sessions/${encodeURIComponent(id)}`);
}

async function readProfile(t: TestServer, id: string): Promise<any> {
  const res = await t.api('GET', `/api/profiles/${encodeURIComponent(id)}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** The single event a successful response names. */
async function onlyEvent(t: TestServer, res: RawResponse): Promise<any> {
  expect(res.status, res.text).toBe(200);
  expect(res.json.events).toHaveLength(1);
  return readEvent(t, res.json.events[0]);
}

async function propertiesOf(t: TestServer, res: RawResponse): Promise<unknown> {
  return (await onlyEvent(t, res)).properties;
}

const newSessionId = (label = 'sess') => `${label}-${randomUUID()}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(STORES)('collector on %s', (store) => {
  const startOn = (overrides: Record<string, string> = {}) => startTestServer(overrides, undefined, store);

  // ---- §1 Routes --------------------------------------------------------------------------------

  describe('§1 Routes', () => {
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source();
    });
    afterAll(() => t.close());

    it('POST /collect/{event_type}/{source_id}: properties from the body, no session, no profile', async () => {
      const res = await postJson(t, `/collect/order-paid/${source}`, { total: 10 });
      const event = await onlyEvent(t, res);
      expect(event.properties).toEqual({ total: 10 });
      expect(event.session).toBeNull();
      expect(event.profile).toBeNull();
      expect(event.metadata.profile_less).toBe(true);
      expect(res.json.session).toEqual({ id: null });
      expect(res.json.profile).toEqual({ id: null });
    });

    it('GET /collect/{event_type}/{source_id}: properties from the query string, no session, no profile', async () => {
      const res = await get(t, `/collect/page-view/${source}?page=home`);
      const event = await onlyEvent(t, res);
      expect(event.properties).toEqual({ page: 'home' });
      expect(event.session).toBeNull();
      expect(event.profile).toBeNull();
      expect(event.metadata.profile_less).toBe(true);
    });

    it("POST /collect/{event_type}/{source_id}/{session_id}: properties from the body, the session and its profile", async () => {
      const session = newSessionId();
      const res = await postJson(t, `/collect/order-paid/${source}/${session}`, { total: 11 });
      const event = await onlyEvent(t, res);
      expect(event.properties).toEqual({ total: 11 });
      expect(event.session).toEqual({ id: session });
      expect(event.profile).toEqual({ id: res.json.profile.id });
      expect((await readSession(t, session)).body.profile).toEqual({ id: res.json.profile.id });
    });

    it("GET /collect/{event_type}/{source_id}/{session_id}: properties from the query string, the session and its profile", async () => {
      const session = newSessionId();
      const res = await get(t, `/collect/page-view/${source}/${session}?page=cart`);
      const event = await onlyEvent(t, res);
      expect(event.properties).toEqual({ page: 'cart' });
      expect(event.session).toEqual({ id: session });
      expect(event.profile).toEqual({ id: res.json.profile.id });
      expect(event.metadata.profile_less).toBe(false);
    });

    it('path parameters arrive URL-decoded and are trimmed before any check', async () => {
      const session = `séss ${randomUUID()}`;
      const res = await postJson(
        t,
        `/collect/%09Caf%C3%A9%20Visit%20/%20${source.toUpperCase()}%20/%20${encodeURIComponent(session)}%20%20`,
        {},
      );
      const event = await onlyEvent(t, res);
      expect(event.type).toBe('café-visit');
      expect(event.name).toBe('Café Visit');
      expect(event.source).toEqual({ id: source });
      expect(event.session).toEqual({ id: session });
      expect(res.json.session).toEqual({ id: session });
    });

    it('a POST takes its properties from the body only; the raw query string stays in request.query', async () => {
      const res = await post(t, `/collect/signup/${source}?utm_source=mail&x=%20y`, '{"email":"a@example.com"}', 'application/json');
      const event = await onlyEvent(t, res);
      expect(event.properties).toEqual({ email: 'a@example.com' });
      expect(event.request.query).toBe('utm_source=mail&x=%20y');
    });

    it('a GET takes its properties from the query string only, even when it carries a body', async () => {
      const res = await send(t, 'GET', `/collect/ping/${source}?from=query`, [['content-type', 'application/json']], '{"from":"body"}');
      expect(await propertiesOf(t, res)).toEqual({ from: 'query' });
    });

    it('each call stores one event', async () => {
      const own = await t.source();
      await postJson(t, `/collect/a/${own}`, { n: 1 });
      await get(t, `/collect/b/${own}?n=2`);
      await postJson(t, `/collect/c/${own}/${newSessionId()}`, { n: 3 });
      const events = await listEvents(t, { source: own });
      expect(events.map((e) => e.type)).toEqual(['c', 'b', 'a']);
    });

    it('a JSON array body stores one event per element', async () => {
      const own = await t.source();
      const res = await postJson(t, `/collect/item/${own}`, [{ n: 1 }, { n: 2 }]);
      expect(res.json.events).toHaveLength(2);
      expect(await storedFor(t, own)).toBe(2);
    });

    it('only sources whose type list contains webhook are accepted', async () => {
      const rest = await t.source({ type: ['rest'] });
      const both = await t.source({ type: ['rest', 'webhook'] });
      expect((await postJson(t, `/collect/x/${rest}`, {})).status).toBe(401);
      expect((await postJson(t, `/collect/x/${both}`, {})).status).toBe(200);
    });

    it('no authentication beyond the source id: no credentials needed, and any sent are not checked', async () => {
      expect((await postJson(t, `/collect/x/${source}`, {})).status).toBe(200);
      expect((await postJson(t, `/collect/x/${source}`, {}, [['authorization', 'Bearer not-a-token']])).status).toBe(200);
    });

    describe('event_type, source_id and session_id are 1–128 characters after trimming, without control characters; otherwise 422 naming the parameter', () => {
      const place = (name: string, value: string, src: string) =>
        name === 'event_type'
          ? `/collect/${value}/${src}/s-${randomUUID()}`
          : name === 'source_id'
            ? `/collect/type/${value}/s-${randomUUID()}`
            : `/collect/type/${src}/${value}`;

      async function expectRefused(name: string, value: string) {
        const own = await t.source();
        for (const method of ['POST', 'GET']) {
          const res = await send(t, method, place(name, value, own), [['content-type', 'application/json']], method === 'POST' ? '{}' : undefined);
          expect(res.status, `${method} ${name}=${JSON.stringify(value)}`).toBe(422);
          expect(Object.keys(res.json)).toEqual(['detail']);
          expect(res.json.detail).toContain(name);
        }
        expect(await storedFor(t, own)).toBe(0);
      }

      for (const name of ['event_type', 'source_id', 'session_id']) {
        it(`${name}: empty, or only whitespace`, async () => {
          // A literally empty last segment is a trailing slash, i.e. the session-less route.
          if (name !== 'session_id') await expectRefused(name, '');
          await expectRefused(name, '%20%20');
          await expectRefused(name, '%09%20');
        });

        it(`${name}: longer than 128 characters after trimming`, async () => {
          await expectRefused(name, 'a'.repeat(129));
          await expectRefused(name, encodeURIComponent('é'.repeat(129)));
          await expectRefused(name, 'a'.repeat(4000));
        });

        it(`${name}: control characters`, async () => {
          for (const control of ['%00', '%0A', '%1B', '%7F', '%C2%85']) await expectRefused(name, `a${control}b`);
        });
      }

      it('128 characters after trimming are accepted for each', async () => {
        const id = `${'s'.repeat(120)}-${String(Date.now()).slice(-7)}`;
        const own = await t.source({ id });
        const type = 't'.repeat(128);
        const session = `${'x'.repeat(92)}${randomUUID()}`;
        expect(session).toHaveLength(128);
        const res = await postJson(t, `/collect/%20${type}%20/${own}/${session}%20`, {});
        const event = await onlyEvent(t, res);
        expect(event.type).toBe(type);
        expect(event.session).toEqual({ id: session });
      });
    });
  });

  // ---- §2 POST bodies ---------------------------------------------------------------------------

  describe('§2 POST bodies, by media type', () => {
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source();
    });
    afterAll(() => t.close());

    it('application/json: the parsed JSON', async () => {
      const res = await post(t, `/collect/x/${source}`, '{"a":1,"b":"two"}', 'application/json');
      expect(await propertiesOf(t, res)).toEqual({ a: 1, b: 'two' });
    });

    it('application/json; charset=utf-8, in any case: parameters and case are ignored', async () => {
      for (const type of ['application/json; charset=utf-8', 'Application/JSON; Charset=UTF-8', 'application/json;charset="utf-8"']) {
        const res = await post(t, `/collect/x/${source}`, '{"café":"crème"}', type);
        expect(await propertiesOf(t, res), type).toEqual({ café: 'crème' });
      }
    });

    it('any application/*+json (application/vnd.x+json): the parsed JSON', async () => {
      const res = await post(t, `/collect/x/${source}`, '{"kind":"vendor"}', 'application/vnd.x+json');
      expect(await propertiesOf(t, res)).toEqual({ kind: 'vendor' });
    });

    it('application/x-www-form-urlencoded: strings; a repeated key becomes an array in order; blank values kept', async () => {
      const res = await post(
        t,
        `/collect/form/${source}`,
        'name=Ann+Lee&tag=b&tag=a&tag=c&blank=&flag&city=K%C3%B6ln&n=1',
        'application/x-www-form-urlencoded; charset=UTF-8',
      );
      expect(await propertiesOf(t, res)).toEqual({
        name: 'Ann Lee',
        tag: ['b', 'a', 'c'],
        blank: '',
        flag: '',
        city: 'Köln',
        n: '1',
      });
    });

    it('multipart/form-data: text fields as for forms; a file part becomes {filename, contentType, size}', async () => {
      const form = new FormData();
      form.append('name', 'Ann');
      form.append('tag', 'a');
      form.append('tag', 'b');
      form.append('blank', '');
      const content = 'FILE-CONTENT-NOT-STORED';
      form.append('attachment', new Blob([content], { type: 'text/plain' }), 'note.txt');
      const res = await t.fetch(`/collect/upload/${source}`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      const { events } = (await res.json()) as { events: string[] };
      const text = await readEventText(t, events[0] as string);
      expect(JSON.parse(text).properties).toEqual({
        name: 'Ann',
        tag: ['a', 'b'],
        blank: '',
        attachment: { filename: 'note.txt', contentType: 'text/plain', size: content.length },
      });
      expect(text).not.toContain(content);
    });

    it('multipart/form-data cut off inside a file part, or with a part without a name: 400, and the server goes on', async () => {
      const type = 'multipart/form-data; boundary=XX';
      // The closing delimiter's text inside the file's content does not make the form whole.
      const cut = '--XX\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello --XX-- world';
      const unnamed = '--XX\r\nContent-Disposition: form-data\r\n\r\nnoname\r\n--XX--\r\n';
      const unnamedFile = '--XX\r\nContent-Disposition: form-data; filename="a.txt"\r\n\r\nx\r\n--XX--\r\n';
      for (const [body, detail] of [
        [cut, 'Invalid multipart body: Unexpected end of form'],
        [unnamed, 'Invalid multipart body: a part has no name'],
        [unnamedFile, 'Invalid multipart body: a part has no name'],
      ] as const) {
        const res = await post(t, `/collect/upload/${source}`, body, type);
        expect(res.status).toBe(400);
        expect(res.json.detail).toBe(detail);
      }
      expect((await t.fetch('/health')).status).toBe(200);
    });

    it('text/*: a body that parses as a JSON object is JSON (AWS SNS labels JSON as text/plain)', async () => {
      const sns = '{"Type":"Notification","MessageId":"m-1","Message":"{\\"order\\":1}"}';
      const res = await post(t, `/collect/sns/${source}`, sns, 'text/plain; charset=UTF-8');
      expect(await propertiesOf(t, res)).toEqual({ Type: 'Notification', MessageId: 'm-1', Message: '{"order":1}' });
    });

    it('text/*: a body that parses as a JSON array of objects is JSON, one event each', async () => {
      const res = await post(t, `/collect/batch/${source}`, '[{"i":0},{"i":1}]', 'text/plain');
      expect(res.status).toBe(200);
      expect(res.json.events).toHaveLength(2);
      const props = await Promise.all(res.json.events.map(async (id: string) => (await readEvent(t, id)).properties));
      expect(props).toEqual([{ i: 0 }, { i: 1 }]);
    });

    it('text/*: anything else is {"body": "<the text>"}', async () => {
      const cases: [string, string][] = [
        ['text/plain', 'hello world'],
        ['text/plain', '{not json'],
        ['text/csv', 'a,b\n1,2\n'],
        ['text/html; charset=utf-8', '<p>hi</p>'],
        ['text/plain', '42'],
      ];
      for (const [type, text] of cases) {
        const res = await post(t, `/collect/text/${source}`, text, type);
        expect(await propertiesOf(t, res), `${type} ${text}`).toEqual({ body: text });
      }
    });

    it('text/* in windows-1252 (or iso-8859-1, latin1, us-ascii, as the web reads them): € and curly quotes kept', async () => {
      const bytes = Buffer.from([0x80, 0x20, 0x93, 0x68, 0x69, 0x94, 0x20, 0xe9, 0x20, 0x81]);
      for (const charset of ['windows-1252', 'ISO-8859-1', 'latin1', 'us-ascii']) {
        const res = await post(t, `/collect/text/${source}`, bytes, `text/plain; charset=${charset}`);
        expect(await propertiesOf(t, res), charset).toEqual({ body: '\u20ac \u201chi\u201d \u00e9 \u0081' });
      }
    });

    it('no Content-Type: JSON when the body parses as a JSON object or array, else {"body": "<the text>"}', async () => {
      const json = await post(t, `/collect/bare/${source}`, '{"a":{"b":[1,2]}}');
      expect(await propertiesOf(t, json)).toEqual({ a: { b: [1, 2] } });
      const array = await post(t, `/collect/bare/${source}`, '[{"i":0},{"i":1}]');
      expect(array.status).toBe(200);
      expect(array.json.events).toHaveLength(2);
      const text = await post(t, `/collect/bare/${source}`, 'just words');
      expect(await propertiesOf(t, text)).toEqual({ body: 'just words' });
    });

    it('application/xml and text/xml: {"body": "<the text>"}, never sniffed as JSON', async () => {
      const xml = '<?xml version="1.0"?><order id="1"><total>10</total></order>';
      expect(await propertiesOf(t, await post(t, `/collect/xml/${source}`, xml, 'application/xml'))).toEqual({ body: xml });
      expect(await propertiesOf(t, await post(t, `/collect/xml/${source}`, xml, 'text/xml; charset=utf-8'))).toEqual({ body: xml });
      expect(await propertiesOf(t, await post(t, `/collect/xml/${source}`, '{"a":1}', 'text/xml'))).toEqual({ body: '{"a":1}' });
    });

    it('anything else (application/octet-stream, images…): 415 "Unsupported content type <type>", nothing stored', async () => {
      const own = await t.source();
      for (const type of ['application/octet-stream', 'image/png', 'application/pdf']) {
        const res = await post(t, `/collect/blob/${own}`, Buffer.from([0x89, 0x50, 0x4e, 0x47]), type);
        expect(res.status).toBe(415);
        expect(res.json).toEqual({ detail: `Unsupported content type ${type}` });
      }
      expect(await storedFor(t, own)).toBe(0);
    });

    it('the same rules apply on the route with a session', async () => {
      const session = newSessionId();
      const form = await post(t, `/collect/form/${source}/${session}`, 'a=1&a=2&b=', 'application/x-www-form-urlencoded');
      expect(await propertiesOf(t, form)).toEqual({ a: ['1', '2'], b: '' });
      const json = await post(t, `/collect/json/${source}/${session}`, '{"n":1}', 'application/json; charset=utf-8');
      expect(await propertiesOf(t, json)).toEqual({ n: 1 });
      const text = await post(t, `/collect/text/${source}/${session}`, 'plain', 'text/plain');
      expect(await propertiesOf(t, text)).toEqual({ body: 'plain' });
      const refused = await post(t, `/collect/blob/${source}/${session}`, 'x', 'application/octet-stream');
      expect(refused.status).toBe(415);
    });
  });

  describe('§2 JSON bodies', () => {
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source();
    });
    afterAll(() => t.close());

    it('an object is the event’s properties exactly as sent: empty nested objects and big integers kept', async () => {
      const sent =
        '{"order":{"id":"A-1","lines":[{"sku":"x","qty":2,"meta":{}}],"discount":{}},"empty":{},' +
        '"n":12345678901234567890,"price":1.50,"quote":"a\\"b","dup":1,"nested":{"a":{"b":{}}}}';
      const res = await post(t, `/collect/order/${source}`, sent, 'application/json');
      expect(res.status).toBe(200);
      const text = await readEventText(t, res.json.events[0]);
      expect(text).toContain(`"properties":${sent},`);
    });

    it('an empty body is {}', async () => {
      expect(await propertiesOf(t, await post(t, `/collect/x/${source}`, '', 'application/json'))).toEqual({});
    });

    it('null is {}', async () => {
      expect(await propertiesOf(t, await post(t, `/collect/x/${source}`, 'null', 'application/json'))).toEqual({});
      expect(await propertiesOf(t, await post(t, `/collect/x/${source}`, ' null\n', 'application/json'))).toEqual({});
    });

    it('an array of objects: one event per element, same type, session and profile, one commit, listed in order', async () => {
      const own = await t.source();
      const session = newSessionId();
      const res = await postJson(t, `/collect/line-item/${own}/${session}`, [{ i: 0 }, { i: 1, x: {} }, { i: 2 }]);
      expect(res.status).toBe(200);
      expect(res.json.events).toHaveLength(3);
      const events = await Promise.all(res.json.events.map((id: string) => readEvent(t, id)));
      expect(events.map((e) => e.properties)).toEqual([{ i: 0 }, { i: 1, x: {} }, { i: 2 }]);
      for (const e of events) {
        expect(e.type).toBe('line-item');
        expect(e.session).toEqual({ id: session });
        expect(e.profile).toEqual({ id: res.json.profile.id });
        // One commit: every event of the request carries the request's insert time.
        expect(e.metadata.time.insert).toBe(events[0].metadata.time.insert);
      }
      expect(await storedFor(t, own)).toBe(3);
    });

    it('an empty array: 422, nothing stored', async () => {
      const own = await t.source();
      const res = await post(t, `/collect/x/${own}`, '[]', 'application/json');
      expect(res.status).toBe(422);
      expect(typeof res.json.detail).toBe('string');
      expect(await storedFor(t, own)).toBe(0);
    });

    it('an array holding anything but objects: 422 and nothing stored (no event, no session)', async () => {
      const own = await t.source();
      for (const body of ['[{"i":0},1]', '[{"i":0},[]]', '[{"i":0},null]', '["a"]', '[{"i":0},{"i":1},true]']) {
        const session = newSessionId();
        const res = await post(t, `/collect/x/${own}/${session}`, body, 'application/json');
        expect(res.status, body).toBe(422);
        expect(typeof res.json.detail).toBe('string');
        expect((await readSession(t, session)).status).toBe(404);
      }
      expect(await storedFor(t, own)).toBe(0);
    });

    it('a string, number or boolean: 422 "Event properties must be a JSON object"', async () => {
      const own = await t.source();
      for (const body of ['"text"', '42', '-1.5', 'true', 'false']) {
        const res = await post(t, `/collect/x/${own}`, body, 'application/json');
        expect(res.status, body).toBe(422);
        expect(res.json).toEqual({ detail: 'Event properties must be a JSON object' });
      }
      expect(await storedFor(t, own)).toBe(0);
    });

    it('invalid JSON: 400 "Invalid JSON body: <reason>", nothing stored', async () => {
      const own = await t.source();
      for (const body of ['{"a":', '{"a":1,}', '{a:1}', '{"a":1} trailing', '[{"i":0},]']) {
        const res = await post(t, `/collect/x/${own}/${newSessionId()}`, body, 'application/json');
        expect(res.status, body).toBe(400);
        expect(Object.keys(res.json)).toEqual(['detail']);
        expect(res.json.detail).toMatch(/^Invalid JSON body: .+/);
      }
      expect(await storedFor(t, own)).toBe(0);
    });

    it('bytes that are not valid UTF-8: 400 "Invalid JSON body: <reason>", nothing stored', async () => {
      const own = await t.source();
      const body = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
      for (const type of ['application/json', 'application/json; charset=utf-8']) {
        const res = await post(t, `/collect/x/${own}`, body, type);
        expect(res.status).toBe(400);
        expect(res.json.detail).toMatch(/^Invalid JSON body: .+/);
      }
      expect(await storedFor(t, own)).toBe(0);
    });

    it('__proto__, constructor and prototype are ordinary data, stored as sent, never reaching a prototype', async () => {
      const sent = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true}}';
      const json = await post(t, `/collect/x/${source}`, sent, 'application/json');
      expect(json.status).toBe(200);
      expect(await readEventText(t, json.json.events[0])).toContain(`"properties":${sent},`);

      const form = await post(t, `/collect/x/${source}`, '__proto__=a&constructor=b&prototype=c&__proto__=d', 'application/x-www-form-urlencoded');
      expect(await readEventText(t, form.json.events[0])).toContain(
        '"properties":{"__proto__":["a","d"],"constructor":"b","prototype":"c"},',
      );

      const query = await get(t, `/collect/x/${source}?__proto__=a&constructor=b`);
      expect(await readEventText(t, query.json.events[0])).toContain('"properties":{"__proto__":"a","constructor":"b"},');

      // The server runs in this process: nothing reached Object.prototype.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });
  });

  // ---- §3 Query strings (GET) -------------------------------------------------------------------

  describe('§3 Query strings (GET)', () => {
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source();
    });
    afterAll(() => t.close());

    const rows: [string, string | null, Record<string, string | string[]>][] = [
      ['(none) → {}', null, {}],
      ['a=1&b=2 → values stay strings, no type guessing', 'a=1&b=2', { a: '1', b: '2' }],
      ['a=1&a=2 → a repeated key becomes an array in order', 'a=1&a=2', { a: ['1', '2'] }],
      ['a=&b=1 → blank values kept', 'a=&b=1', { a: '', b: '1' }],
      ['a&b=1 → a key without = is blank', 'a&b=1', { a: '', b: '1' }],
      ['a[b]=1 → no nesting, brackets literal', 'a[b]=1', { 'a[b]': '1' }],
      ['a.b=1 → no nesting, dots literal', 'a.b=1', { 'a.b': '1' }],
      ['x=1%202+3 → + and %20 are spaces', 'x=1%202+3', { x: '1 2 3' }],
      ['a==b → split on the first =', 'a==b', { a: '=b' }],
      ['a=1;b=2 → only & separates', 'a=1;b=2', { a: '1;b=2' }],
      ['a=%ZZ → a malformed escape is kept literally', 'a=%ZZ', { a: '%ZZ' }],
      ['a=1&A=2 → keys are case-sensitive', 'a=1&A=2', { a: '1', A: '2' }],
    ];

    for (const [title, query, expected] of rows) {
      it(title, async () => {
        const res = await get(t, `/collect/q/${source}${query === null ? '' : `?${query}`}`);
        const event = await onlyEvent(t, res);
        expect(event.properties).toEqual(expected);
        expect(event.request.query).toBe(query ?? '');
      });
    }

    it('an empty query string after ? is {}', async () => {
      expect(await propertiesOf(t, await get(t, `/collect/q/${source}?`))).toEqual({});
    });

    it('the query string starts at the first ?, even after a # (which the router splits at)', async () => {
      const res = await get(t, `/collect/q/${source}#frag?a=1&b`);
      const event = await onlyEvent(t, res);
      expect(event.properties).toEqual({ a: '1', b: '' });
      expect(event.request.query).toBe('a=1&b');
    });

    it('the route with a session reads its query string the same way', async () => {
      const res = await get(t, `/collect/q/${source}/${newSessionId()}?a=1&a=2&b=&c&d=1%202+3`);
      expect(await propertiesOf(t, res)).toEqual({ a: ['1', '2'], b: '', c: '', d: '1 2 3' });
    });
  });

  // ---- §4 Source validation ---------------------------------------------------------------------

  describe('§4 Source validation', () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startOn();
    });
    afterAll(() => t.close());

    it('a trimmed source id starting with @: 401 "Internal event sources are not allowed via API."', async () => {
      for (const id of ['@internal', '@internal-x', '%20@internal-x', '%20%20@x%20']) {
        for (const path of [`/collect/x/${id}`, `/collect/x/${id}/${newSessionId()}`]) {
          const res = await postJson(t, path, {});
          expect(res.status, path).toBe(401);
          expect(res.json).toEqual({ detail: 'Internal event sources are not allowed via API.' });
        }
      }
      expect(await storedFor(t, '@internal')).toBe(0);
    });

    it('no source with that id: 401 "Invalid event source `<id>`."', async () => {
      const res = await postJson(t, '/collect/x/no-such-source', { a: 1 });
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ detail: 'Invalid event source `no-such-source`.' });
      const trimmed = await get(t, '/collect/x/%20no-such-source%20?a=1');
      expect(trimmed.status).toBe(401);
      expect(trimmed.json).toEqual({ detail: 'Invalid event source `no-such-source`.' });
    });

    it('source disabled: 401 "Event source disabled."', async () => {
      const source = await t.source({ enabled: false });
      for (const path of [`/collect/x/${source}`, `/collect/x/${source}/${newSessionId()}`]) {
        const res = await postJson(t, path, {});
        expect(res.status).toBe(401);
        expect(res.json).toEqual({ detail: 'Event source disabled.' });
      }
      expect(await storedFor(t, source)).toBe(0);
    });

    it('source type list lacks webhook: 401 "This endpoint allows only sources of type webhook; source `<id>` has types <list>."', async () => {
      const source = await t.source({ type: ['rest', 'redirect'] });
      const res = await postJson(t, `/collect/x/${source}`, {});
      expect(res.status).toBe(401);
      expect(res.json).toEqual({
        detail: `This endpoint allows only sources of type webhook; source \`${source}\` has types ["rest","redirect"].`,
      });
      expect(await storedFor(t, source)).toBe(0);
    });

    it('the checks run in the table’s order', async () => {
      // Internal before lookup: an unknown @ id is refused as internal.
      expect((await postJson(t, '/collect/x/@never-registered', {})).json.detail).toBe(
        'Internal event sources are not allowed via API.',
      );
      // Disabled before the type check.
      const disabledRest = await t.source({ enabled: false, type: ['rest'] });
      const res = await postJson(t, `/collect/x/${disabledRest}`, {});
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ detail: 'Event source disabled.' });
      // Source checks before the body: a refused source with a bad body is a 401, not a 400.
      const bad = await post(t, '/collect/x/no-such-source', '{"a":', 'application/json');
      expect(bad.status).toBe(401);
    });

    it('source ids are case-insensitive: stored and looked up lower-cased', async () => {
      const id = `Shop-EU-${Date.now()}`;
      const source = await t.source({ id });
      expect(source).toBe(id.toLowerCase());
      const res = await postJson(t, `/collect/x/${id.toUpperCase()}`, {});
      const event = await onlyEvent(t, res);
      expect(event.source).toEqual({ id: id.toLowerCase() });
    });

    it('there is no user-agent bot filter (Slackbot, WordPress, Java clients are accepted)', async () => {
      const source = await t.source();
      const agents = [
        'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
        'Slackbot 1.0 (+https://api.slack.com/robots)',
        'WordPress/6.4.2; https://shop.example.com',
        'Java/17.0.2',
        'Apache-HttpClient/4.5.13 (Java/11.0.20)',
        'Googlebot/2.1 (+http://www.google.com/bot.html)',
      ];
      for (const agent of agents) {
        const res = await postJson(t, `/collect/x/${source}`, { agent }, [['user-agent', agent]]);
        expect(res.status, agent).toBe(200);
      }
      expect(await storedFor(t, source)).toBe(agents.length);
    });

    it('the message never contains the payload, the headers or a stack trace', async () => {
      const marker = 'PAYLOAD-MARKER-7f3a';
      const headerMarker = 'HEADER-MARKER-91c2';
      const disabled = await t.source({ enabled: false });
      const rest = await t.source({ type: ['rest'] });
      const ok = await t.source();
      const refusals: [string, string | Buffer, string][] = [
        ['/collect/x/no-such-source', `{"secret":"${marker}"}`, 'application/json'],
        ['/collect/x/@internal', `{"secret":"${marker}"}`, 'application/json'],
        [`/collect/x/${disabled}`, `{"secret":"${marker}"}`, 'application/json'],
        [`/collect/x/${rest}`, `{"secret":"${marker}"}`, 'application/json'],
        [`/collect/x/${ok}`, `{"secret": ${marker}}`, 'application/json'],
        [`/collect/x/${ok}`, `{"password":"${marker}",}`, 'application/json'],
        [`/collect/x/${ok}`, `${marker}`, 'application/json'],
        [`/collect/x/${ok}`, `["${marker}"]`, 'application/json'],
        [`/collect/x/${ok}`, `"${marker}"`, 'application/json'],
        [`/collect/x/${ok}`, marker, 'application/octet-stream'],
      ];
      for (const [path, body, type] of refusals) {
        const res = await post(t, path, body, type, [
          ['x-secret', headerMarker],
          ['authorization', `Bearer ${headerMarker}`],
        ]);
        expect(res.status, `${path} ${body}`).toBeGreaterThanOrEqual(400);
        expect(Object.keys(res.json)).toEqual(['detail']);
        expect(res.text, `${path} ${body}`).not.toContain(marker);
        expect(res.text).not.toContain(headerMarker);
        expect(res.text).not.toMatch(/\n\s+at /);
      }
    });
  });

  // ---- §5 The stored event ----------------------------------------------------------------------

  describe('§5 The stored event', () => {
    let t: TestServer;
    let source: string;
    let channelSource: string;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source();
      channelSource = await t.source({ channel: 'web-shop' });
    });
    afterAll(() => t.close());

    it('holds exactly the fields of the table', async () => {
      const event = await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}));
      expect(Object.keys(event)).toEqual([
        'id', 'type', 'name', 'metadata', 'source', 'session', 'profile',
        'properties', 'context', 'request', 'traits', 'data', 'tags',
      ]);
      expect(Object.keys(event.metadata).sort()).toEqual(['channel', 'ip', 'profile_less', 'status', 'time', 'valid']);
    });

    it('id: a new random UUID', async () => {
      const a = await postJson(t, `/collect/x/${source}`, {});
      const b = await postJson(t, `/collect/x/${source}`, {});
      const [idA, idB] = [a.json.events[0], b.json.events[0]];
      expect(idA).toMatch(UUID);
      expect(idB).toMatch(UUID);
      expect(idA).not.toBe(idB);
      expect((await readEvent(t, idA)).id).toBe(idA);
    });

    it('type: the path type trimmed, lower-cased, inner whitespace runs → "-" ("Coupon Received" → coupon-received)', async () => {
      const cases: [string, string][] = [
        ['Coupon%20Received', 'coupon-received'],
        ['%20%20Coupon%20%20%20Received%20', 'coupon-received'],
        ['coupon-received', 'coupon-received'],
        ['ORDER_PAID', 'order_paid'],
      ];
      for (const [path, type] of cases) {
        const event = await onlyEvent(t, await postJson(t, `/collect/${path}/${source}`, {}));
        expect(event.type, path).toBe(type);
      }
    });

    it('name: the trimmed type split on "-" and spaces, words capitalised, joined with spaces (coupon-received → Coupon Received)', async () => {
      const cases: [string, string][] = [
        ['coupon-received', 'Coupon Received'],
        ['Coupon%20Received', 'Coupon Received'],
        ['%20ORDER-paid%20%20now%20', 'Order Paid Now'],
        ['page--view', 'Page View'],
      ];
      for (const [path, name] of cases) {
        const event = await onlyEvent(t, await postJson(t, `/collect/${path}/${source}`, {}));
        expect(event.name, path).toBe(name);
      }
    });

    it('metadata.time.insert: server time, ISO 8601 UTC with milliseconds', async () => {
      const before = Date.now();
      const event = await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}));
      const after = Date.now();
      expect(event.metadata.time.insert).toMatch(ISO_MS);
      const time = Date.parse(event.metadata.time.insert);
      expect(time).toBeGreaterThanOrEqual(before);
      expect(time).toBeLessThanOrEqual(after);
    });

    it('metadata.status: collected', async () => {
      const event = await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}));
      expect(event.metadata.status).toBe('collected');
    });

    it('metadata.channel: the source’s channel (default "")', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${channelSource}`, {}))).metadata.channel).toBe('web-shop');
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).metadata.channel).toBe('');
    });

    it('metadata.profile_less: true on the session-less routes (false with a session)', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).metadata.profile_less).toBe(true);
      expect((await onlyEvent(t, await get(t, `/collect/x/${source}`))).metadata.profile_less).toBe(true);
      const withSession = await onlyEvent(t, await postJson(t, `/collect/x/${source}/${newSessionId()}`, {}));
      expect(withSession.metadata.profile_less).toBe(false);
    });

    it('metadata.ip: the client IP', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).metadata.ip).toBe(LOOPBACK);
    });

    it('metadata.valid: true', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).metadata.valid).toBe(true);
    });

    it('source: {"id": <source id>}', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).source).toEqual({ id: source });
    });

    it('session: {"id": <session id>} or null', async () => {
      const session = newSessionId();
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}/${session}`, {}))).session).toEqual({ id: session });
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).session).toBeNull();
    });

    it('profile: {"id": <profile id>} or null', async () => {
      const res = await postJson(t, `/collect/x/${source}/${newSessionId()}`, {});
      expect((await onlyEvent(t, res)).profile).toEqual({ id: res.json.profile.id });
      expect(res.json.profile.id).toMatch(UUID);
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).profile).toBeNull();
    });

    it('properties: from the body (§2) or the query string (§3)', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, { a: [1] }))).properties).toEqual({ a: [1] });
      expect((await onlyEvent(t, await get(t, `/collect/x/${source}?a=1`))).properties).toEqual({ a: '1' });
    });

    it('context: {}', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}/${newSessionId()}`, {}))).context).toEqual({});
    });

    it('request: {method, path, query (raw query string), ip, headers}', async () => {
      const path = `/collect/Order%20Paid/${source}`;
      const body = '{"a":1}';
      const res = await send(
        t,
        'POST',
        `${path}?utm=a%20b&x`,
        [['content-type', 'application/json'], ['user-agent', 'shop/1.0'], ['connection', 'close']],
        body,
      );
      const event = await onlyEvent(t, res);
      expect(event.request).toEqual({
        method: 'POST',
        path,
        query: 'utm=a%20b&x',
        ip: LOOPBACK,
        headers: {
          host: new URL(t.url).host,
          'content-type': 'application/json',
          'user-agent': 'shop/1.0',
          'content-length': String(body.length),
          connection: 'close',
        },
      });
      const viaGet = await onlyEvent(t, await get(t, `/collect/x/${source}/${newSessionId()}?q=1`));
      expect(viaGet.request.method).toBe('GET');
      expect(viaGet.request.query).toBe('q=1');
    });

    it('traits and data: {}', async () => {
      const event = await onlyEvent(t, await postJson(t, `/collect/x/${source}`, { traits: { a: 1 }, data: { b: 2 } }));
      expect(event.traits).toEqual({});
      expect(event.data).toEqual({});
    });

    it('tags: {"values": [], "count": 0}', async () => {
      expect((await onlyEvent(t, await postJson(t, `/collect/x/${source}`, {}))).tags).toEqual({ values: [], count: 0 });
    });

    it('stored headers: all request headers, names lower-cased', async () => {
      const res = await send(t, 'GET', `/collect/x/${source}`, [
        ['X-Mixed-Case', 'Value'],
        ['X-SHOP-ID', '42'],
        ['Accept', '*/*'],
        ['Connection', 'close'],
      ]);
      const { headers } = (await onlyEvent(t, res)).request;
      expect(headers).toEqual({
        host: new URL(t.url).host,
        'x-mixed-case': 'Value',
        'x-shop-id': '42',
        accept: '*/*',
        connection: 'close',
      });
    });

    it('stored headers: repeated headers joined with ", "', async () => {
      const res = await send(t, 'GET', `/collect/x/${source}`, [
        ['x-dup', 'a'],
        ['X-Dup', 'b'],
        ['x-dup', 'c'],
        ['accept', 'text/html'],
        ['accept', 'application/json'],
      ]);
      const { headers } = (await onlyEvent(t, res)).request;
      expect(headers['x-dup']).toBe('a, b, c');
      expect(headers.accept).toBe('text/html, application/json');
    });

    it('stored headers: authorization, proxy-authorization, cookie, set-cookie and x-api-key are never stored', async () => {
      const secret = 'SECRET-VALUE-3b9e';
      const res = await send(t, 'POST', `/collect/x/${source}`, [
        ['content-type', 'application/json'],
        ['Authorization', `Bearer ${secret}`],
        ['Proxy-Authorization', `Basic ${secret}`],
        ['Cookie', `sid=${secret}`],
        ['cookie', `other=${secret}`],
        ['Set-Cookie', `sid=${secret}`],
        ['X-API-Key', secret],
        ['x-kept', 'yes'],
        ['connection', 'close'],
      ], '{}');
      const event = await onlyEvent(t, res);
      expect(Object.keys(event.request.headers).sort()).toEqual(['connection', 'content-length', 'content-type', 'host', 'x-kept']);
      expect(await readEventText(t, event.id)).not.toContain(secret);
    });
  });

  // ---- §6 Sessions and profiles -----------------------------------------------------------------

  describe('§6 Sessions and profiles', () => {
    let t: TestServer;
    let source: string;
    const internalEvents = async () => (await listEvents(t, { source: '@internal' })).length;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source({ channel: 'mobile-app' });
    });
    afterAll(() => t.close());

    it('session-less routes: no session or profile is created or referenced; session and profile null, profile_less true', async () => {
      const own = await t.source();
      const internalBefore = await internalEvents();
      for (const res of [await postJson(t, `/collect/x/${own}`, { a: 1 }), await get(t, `/collect/x/${own}?a=1`)]) {
        expect(res.json.session).toEqual({ id: null });
        expect(res.json.profile).toEqual({ id: null });
        const event = await onlyEvent(t, res);
        expect(event.session).toBeNull();
        expect(event.profile).toBeNull();
        expect(event.metadata.profile_less).toBe(true);
      }
      expect(await storedFor(t, own)).toBe(2);
      expect(await internalEvents()).toBe(internalBefore);
    });

    it('unknown session id: a session is created with exactly that id, linked to a new profile (random UUID)', async () => {
      const session = `Visitor-MiXeD.case_${randomUUID()}`;
      const res = await postJson(t, `/collect/page-view/${source}/${session}`, {});
      expect(res.status).toBe(200);
      const profileId = res.json.profile.id;
      expect(profileId).toMatch(UUID);
      expect(res.json.session).toEqual({ id: session });
      const stored = await readSession(t, session);
      expect(stored.status).toBe(200);
      expect(stored.body.id).toBe(session);
      expect(stored.body.profile).toEqual({ id: profileId });
      const profile = await readProfile(t, profileId);
      expect(profile.id).toBe(profileId);
      expect(profile.ids).toContain(profileId);

      const other = await postJson(t, `/collect/page-view/${source}/${newSessionId()}`, {});
      expect(other.json.profile.id).toMatch(UUID);
      expect(other.json.profile.id).not.toBe(profileId);
    });

    it('a session id with quotes, backslashes, SQL and non-ASCII letters is one session, found again exactly', async () => {
      // Session ids reach SQL in the locks and reads of every batch that names them.
      const session = `O'Brien\\'); DROP TABLE events; --"ß漢\\\\${randomUUID()}`;
      const path = `/collect/page-view/${source}/${encodeURIComponent(session)}`;
      const first = await postJson(t, path, { n: 1 });
      expect(first.status, first.text).toBe(200);
      expect(first.json.session).toEqual({ id: session });
      const second = await postJson(t, path, { n: 2 });
      expect(second.status, second.text).toBe(200);
      expect(second.json.profile.id).toBe(first.json.profile.id);
      const stored = await readSession(t, session);
      expect(stored.body.id).toBe(session);
      expect(stored.body.profile).toEqual({ id: first.json.profile.id });
      // Three system events and the two posted; no second profile or session.
      expect(await listEvents(t, { session })).toHaveLength(5);
    });

    it('unknown session id: the profile’s visit counters start (visit.current = now, count = 1)', async () => {
      const res = await postJson(t, `/collect/page-view/${source}/${newSessionId()}`, {});
      const event = await onlyEvent(t, res);
      const now = event.metadata.time.insert;
      const profile = await readProfile(t, res.json.profile.id);
      expect(profile.metadata.time.visit.current).toBe(now);
      expect(profile.metadata.time.visit.count).toBe(1);
      expect(profile.metadata.time.insert).toBe(now);
      expect(profile.metadata.time.update).toBe(now);
    });

    it('unknown session id: three system events from @internal, same session and profile: profile-created, session-opened, visit-started', async () => {
      const session = newSessionId();
      const res = await postJson(t, `/collect/Page%20View/${source}/${session}`, { url: '/' });
      expect(res.status).toBe(200);
      const events = await listEvents(t, { session });
      expect(events).toHaveLength(4);
      const user = events.filter((e) => e.source.id === source);
      expect(user.map((e) => e.id)).toEqual(res.json.events);
      const system = events.filter((e) => e.source.id !== source);
      expect(system.map((e) => e.type).sort()).toEqual(['profile-created', 'session-opened', 'visit-started']);
      for (const e of system) {
        expect(e.source).toEqual({ id: '@internal' });
        expect(e.session).toEqual({ id: session });
        expect(e.profile).toEqual({ id: res.json.profile.id });
        expect(e.id).toMatch(UUID);
      }
      const visit = system.find((e) => e.type === 'visit-started');
      expect(visit.properties).toEqual({ 'trigger-event-types': ['page-view'] });
    });

    it('unknown session id: the session’s context.ip is the client IP, metadata.channel the source channel, metadata.time.insert the request time', async () => {
      const session = newSessionId();
      const event = await onlyEvent(t, await postJson(t, `/collect/x/${source}/${session}`, {}));
      const { body } = await readSession(t, session);
      expect(body.context.ip).toBe(LOOPBACK);
      expect(body.metadata.channel).toBe('mobile-app');
      expect(body.metadata.time.insert).toBe(event.metadata.time.insert);
      expect(body.metadata.status).toBe('started');
      // Fix: Tracardi stamped every new session with the worker's start time.
      await sleep(5);
      const later = newSessionId();
      await postJson(t, `/collect/x/${source}/${later}`, {});
      expect(Date.parse((await readSession(t, later)).body.metadata.time.insert)).toBeGreaterThan(
        Date.parse(body.metadata.time.insert),
      );
    });

    it('known session whose profile exists: linked to that session and profile; status active; no visit counted; no system event', async () => {
      const session = newSessionId();
      const first = await postJson(t, `/collect/page-view/${source}/${session}`, {});
      const profileBefore = await readProfile(t, first.json.profile.id);
      const internalBefore = await internalEvents();

      const second = await get(t, `/collect/add-to-cart/${source}/${session}?sku=1`);
      expect(second.status).toBe(200);
      expect(second.json.session).toEqual({ id: session });
      expect(second.json.profile).toEqual({ id: first.json.profile.id });
      const event = await onlyEvent(t, second);
      expect(event.session).toEqual({ id: session });
      expect(event.profile).toEqual({ id: first.json.profile.id });

      const stored = (await readSession(t, session)).body;
      expect(stored.metadata.status).toBe('active');
      expect(stored.profile).toEqual({ id: first.json.profile.id });
      const profileAfter = await readProfile(t, first.json.profile.id);
      expect(profileAfter.metadata.time.visit).toEqual(profileBefore.metadata.time.visit);
      expect(profileAfter.metadata.time.visit.count).toBe(1);
      expect(await internalEvents()).toBe(internalBefore);
      expect((await listEvents(t, { session })).map((e) => e.type).filter((type) => type === 'visit-started')).toHaveLength(1);
    });

    it('anyone who knows a session id can add events to it, from another source too', async () => {
      const session = newSessionId();
      const first = await postJson(t, `/collect/x/${source}/${session}`, {});
      const other = await t.source();
      const second = await postJson(t, `/collect/y/${other}/${session}`, {});
      expect(second.json.profile).toEqual({ id: first.json.profile.id });
      expect((await onlyEvent(t, second)).session).toEqual({ id: session });
    });

    it('simultaneous requests carrying the same new session id produce exactly one session and one profile', async () => {
      const session = newSessionId('race');
      const responses = await Promise.all(
        Array.from({ length: 24 }, (_, i) => postJson(t, `/collect/tap/${source}/${session}`, { i })),
      );
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
      const profiles = new Set(responses.map((r) => r.json.profile.id));
      expect(profiles.size).toBe(1);
      const events = await listEvents(t, { session });
      const count = (type: string) => events.filter((e) => e.type === type).length;
      expect(count('tap')).toBe(24);
      expect(count('profile-created')).toBe(1);
      expect(count('session-opened')).toBe(1);
      expect(count('visit-started')).toBe(1);
      expect((await readSession(t, session)).body.profile).toEqual({ id: [...profiles][0] });
      expect((await readProfile(t, [...profiles][0] as string)).metadata.time.visit.count).toBe(1);
    });

    it('events of one session are applied in arrival order', async () => {
      const session = newSessionId();
      const sent: string[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await postJson(t, `/collect/step/${source}/${session}`, { i });
        sent.push(res.json.events[0]);
      }
      const listed = await listEvents(t, { session, type: 'step' });
      expect(listed.map((e) => e.id)).toEqual([...sent].reverse());
      expect(listed.map((e) => e.properties.i)).toEqual([5, 4, 3, 2, 1, 0]);
    });

    it('profile fields: id, ids containing id, metadata.time.{insert, update, visit}; data, traits, stats, segments, interests, consents empty', async () => {
      const res = await postJson(t, `/collect/x/${source}/${newSessionId()}`, { email: 'a@example.com' });
      const profile = await readProfile(t, res.json.profile.id);
      expect(profile.id).toBe(res.json.profile.id);
      expect(profile.ids).toEqual([res.json.profile.id]);
      expect(Object.keys(profile.metadata.time.visit).sort()).toEqual(['count', 'current', 'last']);
      expect(profile.data).toEqual({});
      expect(profile.traits).toEqual({});
      expect(profile.stats).toEqual({});
      expect(profile.segments).toEqual([]);
      expect(profile.interests).toEqual({});
      expect(profile.consents).toEqual({});
    });

    it('session fields: id, profile, metadata.time.{insert, update}, channel, status, context with ip; device, os, app', async () => {
      const session = newSessionId();
      const res = await postJson(t, `/collect/x/${source}/${session}`, {});
      const { body } = await readSession(t, session);
      expect(body).toMatchObject({
        id: session,
        profile: { id: res.json.profile.id },
        metadata: { channel: 'mobile-app', status: 'started' },
        context: { ip: LOOPBACK },
      });
      expect(body.metadata.time.insert).toMatch(ISO_MS);
      expect(body.metadata.time.update).toMatch(ISO_MS);
      for (const reserved of ['device', 'os', 'app']) expect(body).toHaveProperty(reserved);
    });
  });

  // ---- §7 Response ------------------------------------------------------------------------------

  describe('§7 Response', () => {
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startOn();
      source = await t.source();
    });
    afterAll(() => t.close());

    it('success is 200 with task, ux, response, events, profile, session, errors, warnings', async () => {
      const session = newSessionId();
      const res = await postJson(t, `/collect/x/${source}/${session}`, {});
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json).toEqual({
        task: expect.stringMatching(UUID),
        ux: [],
        response: {},
        events: [expect.stringMatching(UUID)],
        profile: { id: expect.stringMatching(UUID) },
        session: { id: session },
        errors: [],
        warnings: [],
      });
      expect(Object.keys(res.json)).toEqual(['task', 'ux', 'response', 'events', 'profile', 'session', 'errors', 'warnings']);
      const again = await postJson(t, `/collect/x/${source}/${session}`, {});
      expect(again.json.task).toMatch(UUID);
      expect(again.json.task).not.toBe(res.json.task);
    });

    it('profile.id and session.id are null on the session-less routes', async () => {
      for (const res of [await postJson(t, `/collect/x/${source}`, {}), await get(t, `/collect/x/${source}`)]) {
        expect(res.status).toBe(200);
        expect(res.json.profile).toEqual({ id: null });
        expect(res.json.session).toEqual({ id: null });
      }
    });

    it('events lists the stored user events in order; system events are not listed', async () => {
      const session = newSessionId();
      const res = await postJson(t, `/collect/item/${source}/${session}`, [{ i: 0 }, { i: 1 }, { i: 2 }]);
      expect(res.json.events).toHaveLength(3);
      const stored = await listEvents(t, { session });
      expect(stored).toHaveLength(6);
      const user = stored.filter((e) => e.source.id === source);
      expect(new Set(res.json.events)).toEqual(new Set(user.map((e) => e.id)));
      const props = await Promise.all(res.json.events.map(async (id: string) => (await readEvent(t, id)).properties.i));
      expect(props).toEqual([0, 1, 2]);
      for (const e of stored.filter((e) => e.source.id === '@internal')) expect(res.json.events).not.toContain(e.id);
    });

    it('200 means durable: the events, session and profile of a request survive a restart', async () => {
      const first = await startOn();
      try {
        const own = await first.source();
        const session = newSessionId();
        const res = await postJson(first, `/collect/x/${own}/${session}`, { kept: true });
        expect(res.status).toBe(200);
        await first.restart();
        expect((await readEvent(first, res.json.events[0])).properties).toEqual({ kept: true });
        expect((await readSession(first, session)).body.profile).toEqual({ id: res.json.profile.id });
        expect((await readProfile(first, res.json.profile.id)).id).toBe(res.json.profile.id);
      } finally {
        await first.close();
      }
    });

    // 503 when the store cannot write: test/durability.test.ts (a locked SQLite file) and
    // test/postgres-cluster.test.ts (a cut database connection).

    describe('other statuses, each with a JSON {"detail": ...} body', () => {
      const expectDetail = (res: RawResponse, status: number) => {
        expect(res.status, res.text).toBe(status);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(typeof res.json.detail).toBe('string');
      };

      it('400 bad body', async () => {
        expectDetail(await post(t, `/collect/x/${source}`, '{', 'application/json'), 400);
      });

      it('400 a malformed percent-escape in the path', async () => {
        expectDetail(await get(t, `/collect/a%ZZ/${source}`), 400);
        expectDetail(await get(t, `/collect/x/${source}/s%E0%A4%A`), 400);
      });

      it('431 a request line beyond the 16 KiB head limit', async () => {
        const huge = await get(t, `/collect/${'a'.repeat(20_000)}/${source}`);
        expectDetail(huge, 431);
        expect(huge.json).toEqual({ detail: 'Request line or headers too large' });
      });

      it('401 source refused', async () => {
        expectDetail(await postJson(t, '/collect/x/no-such-source', {}), 401);
      });

      it('404 unknown route', async () => {
        expectDetail(await get(t, '/collect/x'), 404);
        expectDetail(await get(t, `/collect/x/${source}/s/extra`), 404);
        expectDetail(await postJson(t, '/collector/x/y', {}), 404);
      });

      it('405 wrong method', async () => {
        for (const method of ['PUT', 'DELETE', 'PATCH']) {
          const res = await send(t, method, `/collect/x/${source}`, [['content-type', 'application/json']], '{}');
          expectDetail(res, 405);
          expect(String(res.headers.allow).split(/,\s*/).sort()).toEqual(['GET', 'POST']);
        }
        // Whatever the body: a wrong method is never read as a bad or unsupported body.
        expectDetail(await send(t, 'PUT', `/collect/x/${source}/${newSessionId()}`), 405);
        expectDetail(await send(t, 'PUT', `/collect/x/${source}`, [['content-type', 'application/json']], '{'), 405);
        expectDetail(await send(t, 'PATCH', `/collect/x/${source}`, [['content-type', 'image/png']], 'x'), 405);
      });

      it('413 body too large (default limit 1 MiB)', async () => {
        const own = await t.source();
        const fill = (size: number) => `{"pad":"${'x'.repeat(size - 10)}"}`;
        expect(fill(1048576)).toHaveLength(1048576);
        expect((await post(t, `/collect/big/${own}`, fill(1048576), 'application/json')).status).toBe(200);
        expectDetail(await post(t, `/collect/big/${own}`, fill(1048577), 'application/json'), 413);
        expect(await storedFor(t, own)).toBe(1);
      });

      it('415 unsupported content type', async () => {
        expectDetail(await post(t, `/collect/x/${source}`, 'x', 'application/octet-stream'), 415);
      });

      it('422 invalid parameter or properties', async () => {
        expectDetail(await postJson(t, `/collect/%20/${source}`, {}), 422);
        expectDetail(await post(t, `/collect/x/${source}`, '1', 'application/json'), 422);
      });
    });
  });

  // ---- §8 Client IP -----------------------------------------------------------------------------

  describe('§8 Client IP', () => {
    const servers: TestServer[] = [];
    const start = async (overrides: Record<string, string>) => {
      const t = await startOn(overrides);
      servers.push(t);
      return { t, source: await t.source() };
    };
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.close()));
    });

    /** The IP in metadata.ip, request.ip and the new session's context.ip, which must agree. */
    async function clientIp(t: TestServer, source: string, forwardedFor?: string): Promise<string> {
      const session = newSessionId();
      const headers: HeaderList = forwardedFor === undefined ? [] : [['x-forwarded-for', forwardedFor]];
      const event = await onlyEvent(t, await postJson(t, `/collect/x/${source}/${session}`, {}, headers));
      const sessionIp = (await readSession(t, session)).body.context.ip;
      expect(event.request.ip).toBe(event.metadata.ip);
      expect(sessionIp).toBe(event.metadata.ip);
      return event.metadata.ip;
    }

    it('without INTAKE_TRUST_PROXY: the socket peer address; X-Forwarded-For is ignored', async () => {
      const { t, source } = await start({});
      expect(await clientIp(t, source)).toBe(LOOPBACK);
      expect(await clientIp(t, source, '203.0.113.7')).toBe(LOOPBACK);
      expect(await clientIp(t, source, '198.51.100.1, 203.0.113.7')).toBe(LOOPBACK);
    });

    it('INTAKE_TRUST_PROXY as an address: the client address from X-Forwarded-For, split, not the raw header', async () => {
      const { t, source } = await start({ INTAKE_TRUST_PROXY: '127.0.0.1' });
      expect(await clientIp(t, source, '203.0.113.7')).toBe('203.0.113.7');
      // Only the nearest hop is a trusted proxy; the address it saw is the client.
      expect(await clientIp(t, source, '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
      expect(await clientIp(t, source)).toBe(LOOPBACK);
    });

    it('INTAKE_TRUST_PROXY as a list with CIDRs: addresses of trusted proxies are skipped', async () => {
      const { t, source } = await start({ INTAKE_TRUST_PROXY: '127.0.0.1, 203.0.113.0/24' });
      expect(await clientIp(t, source, '198.51.100.1, 203.0.113.7')).toBe('198.51.100.1');
      expect(await clientIp(t, source, '192.0.2.9, 198.51.100.1, 203.0.113.7')).toBe('198.51.100.1');
    });

    it('INTAKE_TRUST_PROXY not covering the peer: X-Forwarded-For is not believed', async () => {
      const { t, source } = await start({ INTAKE_TRUST_PROXY: '10.0.0.0/8' });
      expect(await clientIp(t, source, '203.0.113.7')).toBe(LOOPBACK);
    });

    it('INTAKE_TRUST_PROXY as a hop count: that many proxies nearest to the server are trusted', async () => {
      const one = await start({ INTAKE_TRUST_PROXY: '1' });
      expect(await clientIp(one.t, one.source, '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
      const two = await start({ INTAKE_TRUST_PROXY: '2' });
      expect(await clientIp(two.t, two.source, '198.51.100.1, 203.0.113.7')).toBe('198.51.100.1');
      expect(await clientIp(two.t, two.source, '192.0.2.9, 198.51.100.1, 203.0.113.7')).toBe('198.51.100.1');
    });
  });

  // ---- §9 Sources -------------------------------------------------------------------------------

  describe('§9 Sources', () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startOn();
    });
    afterAll(() => t.close());

    it('transitional: validated and answered, nothing stored (event, session or profile), no events listed, null ids', async () => {
      const source = await t.source({ transitional: true });
      const internalBefore = (await listEvents(t, { source: '@internal' })).length;
      const session = newSessionId();
      const responses = [
        await postJson(t, `/collect/x/${source}/${session}`, { a: 1 }),
        await postJson(t, `/collect/x/${source}`, [{ a: 1 }, { a: 2 }]),
        await get(t, `/collect/x/${source}/${session}?a=1`),
      ];
      for (const res of responses) {
        expect(res.status).toBe(200);
        expect(res.json).toMatchObject({ events: [], profile: { id: null }, session: { id: null }, errors: [] });
        expect(res.json.task).toMatch(UUID);
      }
      expect(await storedFor(t, source)).toBe(0);
      expect((await readSession(t, session)).status).toBe(404);
      expect((await listEvents(t, { source: '@internal' })).length).toBe(internalBefore);

      // Validated all the same: a bad body is refused as for any source.
      expect((await post(t, `/collect/x/${source}`, '"scalar"', 'application/json')).status).toBe(422);
      expect((await post(t, `/collect/x/${source}`, 'x', 'image/png')).status).toBe(415);
      expect((await postJson(t, `/collect/%20/${source}`, {})).status).toBe(422);
    });

    it('a disabled source is refused from the next request on, and accepted again once enabled', async () => {
      const source = await t.source();
      expect((await postJson(t, `/collect/x/${source}`, {})).status).toBe(200);
      expect((await t.api('PATCH', `/api/sources/${source}`, { enabled: false })).status).toBe(200);
      const refused = await postJson(t, `/collect/x/${source}`, {});
      expect(refused.status).toBe(401);
      expect(refused.json).toEqual({ detail: 'Event source disabled.' });
      expect((await t.api('PATCH', `/api/sources/${source}`, { enabled: true })).status).toBe(200);
      expect((await postJson(t, `/collect/x/${source}`, {})).status).toBe(200);
      expect(await storedFor(t, source)).toBe(2);
    });

    it('a deleted source is refused from the next request on', async () => {
      const source = await t.source();
      expect((await postJson(t, `/collect/x/${source}`, {})).status).toBe(200);
      expect((await t.api('DELETE', `/api/sources/${source}`)).status).toBe(204);
      const refused = await postJson(t, `/collect/x/${source}/${newSessionId()}`, {});
      expect(refused.status).toBe(401);
      expect(refused.json).toEqual({ detail: `Invalid event source \`${source}\`.` });
    });

    it('a change to the type list or transitional flag applies to the next request', async () => {
      const source = await t.source();
      await t.api('PATCH', `/api/sources/${source}`, { type: ['rest'] });
      expect((await postJson(t, `/collect/x/${source}`, {})).status).toBe(401);
      await t.api('PATCH', `/api/sources/${source}`, { type: ['webhook'], transitional: true });
      const quiet = await postJson(t, `/collect/x/${source}`, {});
      expect(quiet.status).toBe(200);
      expect(quiet.json.events).toEqual([]);
      expect(await storedFor(t, source)).toBe(0);
    });

    it('a change takes effect on every collector process within one second', async () => {
      // A second collector process on the same store, changed through the first one's API.
      const other = await startServer(t.config);
      const otherUrl = other.url;
      const collectOnOther = (path: string) =>
        rawRequest(otherUrl, {
          method: 'POST',
          path,
          headers: [['host', new URL(otherUrl).host], ['content-type', 'application/json']],
          body: '{}',
        });
      try {
        const disabled = await t.source();
        const deleted = await t.source();
        await sleep(600);
        expect((await collectOnOther(`/collect/x/${disabled}`)).status).toBe(200);
        expect((await collectOnOther(`/collect/x/${deleted}`)).status).toBe(200);

        await t.api('PATCH', `/api/sources/${disabled}`, { enabled: false });
        await t.api('DELETE', `/api/sources/${deleted}`);
        await sleep(1000);
        expect((await collectOnOther(`/collect/x/${disabled}`)).json).toEqual({ detail: 'Event source disabled.' });
        expect((await collectOnOther(`/collect/x/${deleted}`)).json).toEqual({
          detail: `Invalid event source \`${deleted}\`.`,
        });
      } finally {
        await other.close();
      }
    });
  });

  // ---- Ids Intake makes (INTAKE_IDS, README "Configuration") -------------------------------------

  describe('INTAKE_IDS=time-ordered: new event, profile and session ids are UUIDs version 7, which start with their creation time', () => {
    const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    /** The creation time a version-7 UUID carries, in epoch milliseconds (its first 48 bits). */
    const millisOf = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    let t: TestServer;
    let source: string;
    beforeAll(async () => {
      t = await startOn({ INTAKE_IDS: 'time-ordered' });
      source = await t.source();
    });
    afterAll(() => t.close());

    it('a new session: its event, the three system events and the new profile all get one, from the time of the request', async () => {
      const session = `v7-${Date.now()}`;
      const before = Date.now();
      const res = await postJson(t, `/collect/page-view/${source}/${session}`, { url: '/' });
      const after = Date.now();
      expect(res.status, res.text).toBe(200);
      expect(res.json.events[0]).toMatch(UUID_V7);
      const events = await listEvents(t, { session });
      expect(events.map((e) => e.type).sort()).toEqual(['page-view', 'profile-created', 'session-opened', 'visit-started']);
      for (const e of events) {
        expect(e.id).toMatch(UUID_V7);
        expect(millisOf(e.id)).toBeGreaterThanOrEqual(before);
        expect(millisOf(e.id)).toBeLessThanOrEqual(after);
        expect((await readEvent(t, e.id)).id).toBe(e.id);
      }
      const profile = res.json.profile.id as string;
      expect(profile).toMatch(UUID_V7);
      expect(millisOf(profile)).toBeGreaterThanOrEqual(before);
      expect(millisOf(profile)).toBeLessThanOrEqual(after);
      expect((await readProfile(t, profile)).id).toBe(profile);
    });

    it('a profile identified by e-mail gets one, and so does the session made for it when none is given (not sticky)', async () => {
      const res = await t.api('POST', '/api/sources', {
        name: 'v7 identity',
        config: { generate_profile: true, identify_profile_by: 'email', replace_profile_id: 'email', sticky_session: false },
      });
      expect(res.status).toBe(201);
      const sent = await postJson(t, `/collect/signed-up/${res.body.id}`, { email: `v7-${Date.now()}@example.com` });
      expect(sent.status, sent.text).toBe(200);
      expect(sent.json.profile.id).toMatch(UUID_V7);
      expect(sent.json.session.id).toMatch(UUID_V7);
      expect((await readSession(t, sent.json.session.id)).body.profile).toEqual({ id: sent.json.profile.id });
    });

    it('the ids of events stored one after the other carry non-decreasing times, so they sort by millisecond', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await postJson(t, `/collect/ordered/${source}`, { i });
        expect(res.status, res.text).toBe(200);
        ids.push(res.json.events[0] as string);
      }
      const times = ids.map(millisOf);
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      // Text order is time order: the time is the id's first twelve hex digits.
      expect([...ids].sort().map(millisOf)).toEqual(times);
      const stored = await listEvents(t, { type: 'ordered' });
      expect(stored.map((e) => e.properties.i)).toEqual([4, 3, 2, 1, 0]);
    });

    it('the default stays random: version-4 UUIDs', async () => {
      const other = await startOn();
      try {
        const res = await postJson(other, `/collect/default/${await other.source()}/random-${Date.now()}`, {});
        expect(res.json.events[0]).toMatch(UUID);
        expect(res.json.profile.id).toMatch(UUID);
      } finally {
        await other.close();
      }
    });
  });
});
