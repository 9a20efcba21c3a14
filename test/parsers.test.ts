import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseBody, parseMediaType } from '../src/collect/parse-body.js';
import { parseParams } from '../src/collect/parse-params.js';
import { decodeComponent, decodeLeniently, parseQuery } from '../src/collect/parse-query.js';
import { IntakeError } from '../src/domain/errors.js';
import { eventTypeName, normalizeEventType } from '../src/domain/event-type.js';
import { compactJson, jsonShape, splitJsonArray } from '../src/domain/json-text.js';
import { readBody } from '../src/http/read-body.js';

const plain = (value: object) => JSON.parse(JSON.stringify(value));

describe('parseQuery (collector.md §3)', () => {
  const rows: [string, Record<string, unknown>][] = [
    ['', {}],
    ['a=1&b=2', { a: '1', b: '2' }],
    ['a=1&a=2', { a: ['1', '2'] }],
    ['a=1&a=2&a=3', { a: ['1', '2', '3'] }],
    ['a=&b=1', { a: '', b: '1' }],
    ['a&b=1', { a: '', b: '1' }],
    ['a[b]=1', { 'a[b]': '1' }],
    ['a.b=1', { 'a.b': '1' }],
    ['x=1%202+3', { x: '1 2 3' }],
    ['a==b', { a: '=b' }],
    ['a=1;b=2', { a: '1;b=2' }],
    ['a=%ZZ', { a: '%ZZ' }],
    ['a=%E2%82%AC%2', { a: '€%2' }],
    ['a=1&A=2', { a: '1', A: '2' }],
    ['a=1&&b=2', { a: '1', b: '2' }],
  ];
  for (const [query, expected] of rows) {
    it(`${JSON.stringify(query)} → ${JSON.stringify(expected)}`, () => {
      expect(plain(parseQuery(query))).toEqual(expected);
    });
  }

  it('keeps __proto__ as an ordinary key', () => {
    const fields = parseQuery('__proto__=x&constructor=y');
    expect(JSON.stringify(fields)).toBe('{"__proto__":"x","constructor":"y"}');
    expect(Object.getPrototypeOf(fields)).toBeNull();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('decodes percent-encoded UTF-8 and keeps literal non-ASCII', () => {
    expect(decodeComponent('caf%C3%A9+ü')).toBe('café ü');
  });

  it('answers as the lenient byte-by-byte decoding does, for well-formed and malformed escapes', () => {
    // Escapes of valid UTF-8 (the engine's fast path) mixed with stray `%`, bad hex, bytes that
    // are not UTF-8, encoded surrogates, overlong forms and literal non-ASCII (the fallback).
    const escape = (text: string) => encodeURIComponent(text);
    const pieces = [
      'a', 'Z', '0', ' ', '+', '%', '%2', '%G1', '%zz', '%%', 'é', '€', '😀', '=', '&',
      escape('é'), escape('€'), escape('😀'), escape('\u0000'), escape('\uFEFF'), '%41', '%7e', '%2B',
      '%FF', '%C3', '%A9', '%E2%82', '%ED%A0%80', '%C0%AF', '%F4%90%80%80', '%80',
    ];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let fallbacks = 0;
    for (let n = 0; n < 5000; n++) {
      const length = 1 + Math.floor(next() * 8);
      const text = Array.from({ length }, () => pieces[Math.floor(next() * pieces.length)]).join('');
      const plain = text.replace(/\+/g, ' ');
      expect(decodeComponent(text), JSON.stringify(text)).toBe(decodeLeniently(plain));
      try {
        decodeURIComponent(plain);
      } catch {
        fallbacks++;
      }
    }
    // Both paths were taken many times.
    expect(fallbacks).toBeGreaterThan(1000);
    expect(fallbacks).toBeLessThan(4500);
  });
});

describe('parseBody (collector.md §2)', () => {
  const body = (text: string) => Buffer.from(text);
  const parsed = async (type: string | undefined, text: string | Buffer) =>
    (await parseBody(type, typeof text === 'string' ? body(text) : text)).map((t) => JSON.parse(t));
  const refusal = async (type: string | undefined, text: string | Buffer) => {
    try {
      await parseBody(type, typeof text === 'string' ? body(text) : text);
    } catch (error) {
      if (error instanceof IntakeError) return { status: error.status, message: error.message };
      throw error;
    }
    throw new Error('expected a refusal');
  };

  it('chooses by media type, ignoring parameters and case', async () => {
    expect(await parsed('Application/JSON; charset=UTF-8', '{"a":1}')).toEqual([{ a: 1 }]);
    expect(await parsed('application/cloudevents+json', '{"a":1}')).toEqual([{ a: 1 }]);
  });

  it('keeps JSON text as sent, apart from whitespace', async () => {
    const [text] = await parseBody('application/json', body('{ "a" : { } ,\n "n": 1.50, "s": " x " }'));
    expect(text).toBe('{"a":{},"n":1.50,"s":" x "}');
  });

  it('empty body and null give {}', async () => {
    expect(await parsed('application/json', '')).toEqual([{}]);
    expect(await parsed('application/json', ' null ')).toEqual([{}]);
  });

  it('an array of objects gives one event each; empty or mixed arrays are 422', async () => {
    expect(await parsed('application/json', '[{"a":[1,{"b":","}]}, {"c":"]"}]')).toEqual([
      { a: [1, { b: ',' }] },
      { c: ']' },
    ]);
    expect((await refusal('application/json', '[]')).status).toBe(422);
    expect(await refusal('application/json', '[{"a":1}, 2]')).toEqual({
      status: 422,
      message: 'Element 1 of the JSON array body is not an object',
    });
  });

  it('scalars are 422, invalid JSON and invalid UTF-8 are 400', async () => {
    for (const scalar of ['"x"', '1', 'true'])
      expect(await refusal('application/json', scalar)).toEqual({
        status: 422,
        message: 'Event properties must be a JSON object',
      });
    const invalid = await refusal('application/json', '{"a":');
    expect(invalid.status).toBe(400);
    expect(invalid.message).toMatch(/^Invalid JSON body: /);
    expect(await refusal('application/json', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toEqual({
      status: 400,
      message: 'Invalid JSON body: the body is not valid UTF-8',
    });
  });

  it('forms: strings, repeated keys as arrays, blanks kept', async () => {
    expect(await parsed('application/x-www-form-urlencoded; charset=utf-8', 'a=1&a=2&b=&c=x+y')).toEqual([
      { a: ['1', '2'], b: '', c: 'x y' },
    ]);
  });

  it('multipart: text fields and file parts described, content dropped', async () => {
    const boundary = 'XyZ';
    const multipart =
      `--${boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\nhello\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="r.csv"\r\nContent-Type: text/csv\r\n\r\n1,2,3\r\n` +
      `--${boundary}--\r\n`;
    expect(await parsed(`multipart/form-data; boundary=${boundary}`, multipart)).toEqual([
      { a: 'hello', f: { filename: 'r.csv', contentType: 'text/csv', size: 5 } },
    ]);
    expect((await refusal('multipart/form-data', multipart)).status).toBe(400);
  });

  it('text and no content type: JSON when it is an object or array, else {"body"}', async () => {
    expect(await parsed('text/plain', '{"Type":"Notification"}')).toEqual([{ Type: 'Notification' }]);
    expect(await parsed(undefined, '[{"a":1}]')).toEqual([{ a: 1 }]);
    expect(await parsed('text/plain', 'hello')).toEqual([{ body: 'hello' }]);
    expect(await parsed('text/plain', '{not json')).toEqual([{ body: '{not json' }]);
    expect(await parsed('text/plain', '"just a string"')).toEqual([{ body: '"just a string"' }]);
    expect(await parsed(undefined, '')).toEqual([{}]);
    expect(await parsed('text/plain; charset=iso-8859-1', Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toEqual([
      { body: 'café' },
    ]);
  });

  it('XML is kept as text, never sniffed', async () => {
    expect(await parsed('application/xml', '<a>1</a>')).toEqual([{ body: '<a>1</a>' }]);
    expect(await parsed('text/xml', '{"a":1}')).toEqual([{ body: '{"a":1}' }]);
  });

  it('other media types are 415', async () => {
    expect(await refusal('application/octet-stream', 'x')).toEqual({
      status: 415,
      message: 'Unsupported content type application/octet-stream',
    });
    expect((await refusal('image/png', 'x')).status).toBe(415);
    expect((await refusal('text/plain; charset=klingon', 'x')).status).toBe(415);
  });

  it('parseMediaType lower-cases the type and reads parameters', () => {
    const media = parseMediaType('Text/Plain; Charset="UTF-8"');
    expect(media?.type).toBe('text/plain');
    expect(media?.params.get('charset')).toBe('UTF-8');
    expect(parseMediaType(undefined)).toBeNull();
  });
});

describe('parseParams (collector.md §1)', () => {
  it('trims before checking', () => {
    expect(parseParams({ eventType: ' a ', sourceId: ' b ', sessionId: ' c ' })).toEqual({
      eventType: 'a',
      sourceId: 'b',
      sessionId: 'c',
    });
  });

  it('refuses empty, over-long and control-character parameters, naming them', () => {
    const refusal = (raw: Parameters<typeof parseParams>[0]) => {
      try {
        parseParams(raw);
      } catch (error) {
        return error as IntakeError;
      }
      throw new Error('expected a refusal');
    };
    expect(refusal({ eventType: '  ', sourceId: 's' }).message).toBe('Invalid event_type: must not be empty');
    expect(refusal({ eventType: 't', sourceId: 'x'.repeat(129) }).message).toMatch(/^Invalid source_id/);
    expect(refusal({ eventType: 't', sourceId: 's', sessionId: 'a\u0001b' }).status).toBe(422);
    expect(parseParams({ eventType: 'é'.repeat(128), sourceId: 's' }).eventType).toHaveLength(128);
  });
});

describe('event type normalisation (collector.md §5)', () => {
  const rows: [string, string, string][] = [
    ['Coupon Received', 'coupon-received', 'Coupon Received'],
    ['coupon-received', 'coupon-received', 'Coupon Received'],
    ['  page   view ', 'page-view', 'Page View'],
    ['ORDER-completed', 'order-completed', 'Order Completed'],
    ['a\tb', 'a-b', 'A B'],
    ['x--y', 'x--y', 'X Y'],
  ];
  for (const [path, type, name] of rows) {
    it(`${JSON.stringify(path)} → ${type} / ${name}`, () => {
      expect(normalizeEventType(path)).toBe(type);
      expect(eventTypeName(path)).toBe(name);
    });
  }
});

describe('JSON text', () => {
  it('compacts outside strings only, escapes included', () => {
    expect(compactJson('{ "a b" : "c \\" d" , "e":[ 1 , 2 ] }')).toBe('{"a b":"c \\" d","e":[1,2]}');
  });

  it('splits top-level array elements, ignoring commas in strings and nested values', () => {
    expect(splitJsonArray('[{"a":"x,]"},{"b":[1,2]},{}]')).toEqual(['{"a":"x,]"}', '{"b":[1,2]}', '{}']);
  });

  it('ends a string at the first quote after an even run of backslashes', () => {
    // {"a\"{[:":"x\\","b":[{"c":"\\\" ,]"}]}: a quote after one backslash, one after two, one after three.
    const text = JSON.stringify({ 'a"{[:': 'x\\', b: [{ c: '\\" ,]' }] });
    expect(jsonShape(text)).toEqual({ depth: 3, keys: 3, spaced: false });
    expect(compactJson(JSON.stringify(JSON.parse(text), null, 2))).toBe(text);
    const array = JSON.stringify([{ a: '\\' }, { b: ']\\",[' }, {}]);
    expect(splitJsonArray(array)).toEqual([JSON.stringify({ a: '\\' }), JSON.stringify({ b: ']\\",[' }), '{}']);
  });

  it('shape, compaction and splitting agree with JSON.parse on generated documents', () => {
    // Strings of up to 6 characters drawn from those that matter to a scanner.
    const alphabet = ['"', '\\', '{', '}', '[', ']', ':', ',', ' ', '\n', 'a', 'é', '\u2028'];
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n);
    const text = () => Array.from({ length: next(7) }, () => alphabet[next(alphabet.length)]).join('');
    const value = (depth: number): unknown => {
      const kind = depth > 4 ? next(3) : next(5);
      if (kind === 0) return text();
      if (kind === 1) return next(1000) - 500;
      if (kind === 2) return next(2) === 0 ? null : true;
      if (kind === 3) return Array.from({ length: next(4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: next(4) }, () => [text(), value(depth + 1)]));
    };
    const shapeOf = (v: unknown): { depth: number; keys: number } => {
      if (v === null || typeof v !== 'object') return { depth: 0, keys: 0 };
      const children = Array.isArray(v) ? v : Object.values(v);
      const inner = children.map(shapeOf);
      return {
        depth: 1 + Math.max(0, ...inner.map((s) => s.depth)),
        keys: (Array.isArray(v) ? 0 : Object.keys(v).length) + inner.reduce((sum, s) => sum + s.keys, 0),
      };
    };
    for (let i = 0; i < 500; i++) {
      const doc = { k: value(0), l: [value(1), value(1)] };
      const compact = JSON.stringify(doc);
      expect(jsonShape(compact)).toEqual({ ...shapeOf(doc), spaced: false });
      const pretty = JSON.stringify(doc, null, 2);
      expect(jsonShape(pretty)).toEqual({ ...shapeOf(doc), spaced: true });
      expect(compactJson(pretty)).toBe(compact);
      expect(splitJsonArray(JSON.stringify(doc.l))).toEqual(doc.l.map((v) => JSON.stringify(v)));
    }
  });
});

describe('readBody (hardening.md §3)', () => {
  const whole = gzipSync(Buffer.from(JSON.stringify({ pad: 'z'.repeat(20_000) })));

  it('a sender hanging up mid-body fails the read as an abort, whatever the Content-Encoding', async () => {
    for (const encoding of ['identity', 'gzip', 'zstd']) {
      const payload = new PassThrough();
      const read = readBody({ 'content-encoding': encoding }, payload, 1_000_000);
      payload.write(whole.subarray(0, 30));
      await new Promise((r) => setTimeout(r, 10));
      payload.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      await expect(read, encoding).rejects.toMatchObject({ code: 'ECONNRESET' });
    }
  });

  it('a gzip body cut short keeps the bytes that arrived, with the refusal', async () => {
    const payload = new PassThrough();
    const read = readBody({ 'content-encoding': 'gzip' }, payload, 1_000_000);
    payload.end(whole.subarray(0, 30));
    const body = await read;
    expect(body.bytes).toEqual(whole.subarray(0, 30));
    expect(body.refusal).toMatchObject({ code: 'INVALID_ENCODING', status: 400 });
  });
});
