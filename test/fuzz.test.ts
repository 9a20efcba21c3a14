import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * Fuzzing the collector over real HTTP with a few thousand generated bad requests. Seeded: a
 * failure names its seed and case, and `FUZZ_SEED=<seed> npm test -- test/fuzz.test.ts` replays it.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);
const CASES = 2000;
const BODY_LIMIT = 4096;

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FuzzCase {
  kind: string;
  method: string;
  path: string;
  headers: [string, string][];
  body?: Buffer;
}

function generate(random: () => number, source: string): FuzzCase[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const int = (n: number) => Math.floor(random() * n);
  const json: [string, string] = ['content-type', 'application/json'];
  const validJson = () => JSON.stringify({ a: int(100), b: ['x', { c: 'é' }], __proto__x: 1 });
  const generators: Record<string, () => FuzzCase> = {
    truncatedJson: () => {
      const text = validJson();
      return { kind: 'truncatedJson', method: 'POST', path: `/collect/t/${source}`, headers: [json], body: Buffer.from(text.slice(0, 1 + int(text.length - 2))) };
    },
    brokenJson: () => ({
      kind: 'brokenJson',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [json],
      body: Buffer.from(pick(['{a:1}', "{'a':1}", '{"a":1,}', '[1,]', '{"__proto__": ', '{"constructor": {"prototype": ', 'nul', 'tru', '{"a" 1}', '01', '"unterminated', '{}}'])),
    }),
    invalidUtf8: () => ({
      kind: 'invalidUtf8',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [pick([json, ['content-type', 'text/plain'], ['content-type', 'application/x-www-form-urlencoded']] as const) as [string, string]],
      body: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x80].slice(0, 1 + int(5))), Buffer.from('"}')]),
    }),
    wrongContentType: () => ({
      kind: 'wrongContentType',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [['content-type', pick(['image/png', 'application/octet-stream', 'video/mp4', 'application/pdf', 'font/woff2', 'audio/ogg'])]],
      body: Buffer.from(validJson()),
    }),
    malformedContentType: () => ({
      kind: 'malformedContentType',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [['content-type', pick(['garbage', '/', ';;;', 'application/', 'text/plain; charset=klingon', 'multipart/form-data'])]],
      body: Buffer.from('x=1'),
    }),
    scalarsAndArrays: () => ({
      kind: 'scalarsAndArrays',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [json],
      body: Buffer.from(pick(['1', '"s"', 'true', '[]', '[1,2]', '[{"a":1},null]', '[{"__proto__":{"polluted":1}}, 3]'])),
    }),
    huge: () => ({
      kind: 'huge',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [json],
      body: Buffer.from(`{"a":"${'x'.repeat(BODY_LIMIT + int(20_000))}"}`),
    }),
    deep: () => {
      const depth = 65 + int(500);
      return { kind: 'deep', method: 'POST', path: `/collect/t/${source}`, headers: [json], body: Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`) };
    },
    oddPath: () => ({
      kind: 'oddPath',
      method: pick(['GET', 'POST']),
      path: pick([
        `/collect/%00/${source}`,
        `/collect/a%ZZ/${source}`,
        `/collect/${'x'.repeat(129 + int(2000))}/${source}`,
        '/collect/t/%40internal',
        '/collect/t/%20%40internal',
        `/collect/t/${source}/%01`,
        `/collect/%20%20/${source}`,
        `/collect/t/${source}/${'s'.repeat(200)}`,
        '/collect/t/no-such-source',
        '/collect//x',
        '/collect/t',
        '/collect/t/a/b/c/d',
      ]),
      headers: [json],
      body: Buffer.from('{}'),
    }),
    wrongMethod: () => ({ kind: 'wrongMethod', method: pick(['PUT', 'PATCH', 'DELETE']), path: `/collect/t/${source}`, headers: [json], body: Buffer.from('{}') }),
    duplicatedHeaders: () => ({
      kind: 'duplicatedHeaders',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [json, ['content-type', 'image/png'], ['x-a', '1'], ['x-a', '2']],
      body: Buffer.from('{"a":1}'),
    }),
    oversizedHeader: () => ({
      kind: 'oversizedHeader',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [json, ['x-big', 'y'.repeat(17_000 + int(5000))]],
      body: Buffer.from('{"a":1}'),
    }),
    badMultipart: () => ({
      kind: 'badMultipart',
      method: 'POST',
      path: `/collect/t/${source}`,
      headers: [['content-type', 'multipart/form-data; boundary=zz']],
      body: Buffer.from(pick(['--zz\r\nContent-Disposition: form-data\r\n\r\nx', 'no boundary here', '--zz--garbage'])),
    }),
  };
  const kinds = Object.keys(generators);
  return Array.from({ length: CASES }, () => (generators[pick(kinds)] as () => FuzzCase)());
}

function send(base: string, c: FuzzCase): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const headers = [['host', `${hostname}:${port}`], ...c.headers] as [string, string][];
    if (c.body !== undefined) headers.push(['content-length', String(c.body.length)]);
    const req = httpRequest({ hostname, port, method: c.method, path: c.path, headers: headers.flat() }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    // A server that refuses early may close before the whole body is written.
    req.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EPIPE' || error.code === 'ECONNRESET' ? resolve({ status: -1, body: '' }) : reject(error),
    );
    req.end(c.body);
  });
}

describe(`fuzzing the collector (seed ${SEED})`, () => {
  let t: TestServer;
  let source: string;
  beforeAll(async () => {
    t = await startTestServer({ INTAKE_BODY_LIMIT: String(BODY_LIMIT), INTAKE_QUARANTINE_MAX: '100' });
    source = await t.source();
  });
  afterAll(() => t.close());

  it(`answers ${CASES} bad requests with a 4xx and a JSON detail, stores nothing, and stays up`, async () => {
    const cases = generate(mulberry32(SEED), source);
    const failures: string[] = [];
    const workers = 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < cases.length) {
          const i = next++;
          const c = cases[i] as FuzzCase;
          const res = await send(t.url, c);
          if (res.status === -1) continue; // closed after answering early: nothing stored, checked below
          let detail: unknown;
          try {
            detail = (JSON.parse(res.body) as { detail?: unknown }).detail;
          } catch {
            detail = undefined;
          }
          if (res.status < 400 || res.status > 499 || typeof detail !== 'string')
            failures.push(`case ${i} (${c.kind} ${c.method} ${c.path.slice(0, 60)}): ${res.status} ${res.body.slice(0, 120)}`);
          if (typeof detail === 'string' && c.body !== undefined && c.body.length > 8 && detail.includes(c.body.toString().slice(0, 40)))
            failures.push(`case ${i} (${c.kind}): the answer echoes the payload`);
        }
      }),
    );
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect((await t.fetch('/health')).status).toBe(200);
    const stored = (await t.api('GET', '/api/events?limit=10')).body.items;
    expect(stored).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
