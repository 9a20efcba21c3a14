import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { buildUnit } from '../src/collect/build-unit.js';
import { loadConfig } from '../src/config.js';
import { asJsonText } from '../src/domain/json-text.js';
import { parseWebhookConfig } from '../src/domain/webhook-config.js';
import { openStore } from '../src/store/open-store.js';
import type { CollectOutcome } from '../src/store/store.js';
import { HEADERS, PAYLOAD } from './payload.js';
import type { ServerProcess } from './server-process.js';

/** One read measured many times; `error` when it failed, with what the server answered. */
export interface Latency {
  error?: string;
  queries: number;
  /** Mean number of events a query returned (a page holds at most 100). */
  meanItems: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface ScaleResult {
  store: 'sqlite' | 'postgres';
  events: number;
  profiles: number;
  days: number;
  loadSeconds: number;
  bytesOnDisk: number;
  bytesPerEvent: number;
  /** Bytes per table and index. */
  breakdown: Record<string, number>;
  byProfile: Latency;
  byTypeFrom: Latency;
}

export interface ScaleSize {
  events: number;
  profiles: number;
  queries: number;
}

/** Event types and how often they occur: a few common, a few rare (the rare ones test the index). */
const TYPES: [string, number][] = [
  ['page-view', 0.55],
  ['product-viewed', 0.2],
  ['add-to-cart', 0.1],
  ['checkout-started', 0.06],
  ['charge-succeeded', 0.05],
  ['refund-created', 0.03],
  ['form-submitted', 0.01],
];
const DAYS = 30;
const DAY_MS = 86_400_000;
/** Units waiting for their commit at once: enough to fill the store's batches of 512. */
const WINDOW = 4096;

/** A small seeded generator (mulberry32), so every run loads the same data. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickType(r: number): string {
  for (const [type, share] of TYPES) {
    if (r < share) return type;
    r -= share;
  }
  return TYPES[0]![0];
}

/**
 * Loads `size.events` events (system events included) over `size.profiles` visitors, one session
 * and profile each, spread evenly over the last 30 days, through the store's own batch path:
 * `Store.collect`, whose group commit makes the transactions, as the collector does.
 */
export async function loadEvents(
  config: { dataDir: string; databaseUrl: string | null },
  size: ScaleSize,
): Promise<{ seconds: number; profileIds: string[] }> {
  const store = await openStore(
    loadConfig({
      INTAKE_DATA_DIR: config.dataDir,
      ...(config.databaseUrl !== null ? { INTAKE_DATABASE_URL: config.databaseUrl } : {}),
    }),
    { error: (details, message) => console.error(message, details), warn: (details, message) => console.warn(message, details) },
  );
  const source = await store.createSource({ id: 'scale', name: 'Scale' });
  const webhookConfig = parseWebhookConfig(source.config);
  const next = random(42);
  const profileIds = new Map<string, string>();
  const request = {
    method: 'POST',
    path: '/collect/x/scale/s',
    query: '',
    ip: '203.0.113.7',
    headers: { host: 'intake.example.com', ...HEADERS, 'content-length': String(PAYLOAD.length) },
  };
  const properties = [asJsonText(PAYLOAD)];
  const end = Date.now();
  const start = end - DAYS * DAY_MS;
  const estimatedUnits = size.events - 3 * size.profiles;

  let outstanding = 0;
  let wake: (() => void) | null = null;
  let failure: unknown = null;
  const began = performance.now();
  let events = 0;
  for (let i = 0; events < size.events; i++) {
    const sessionId = `visitor-${Math.floor(next() * size.profiles)}`;
    const opens = !profileIds.has(sessionId);
    if (opens) profileIds.set(sessionId, '');
    const type = pickType(next());
    const unit = buildUnit({
      task: randomUUID(),
      pathType: type,
      source,
      config: webhookConfig,
      sessionId,
      properties,
      request: { ...request, path: `/collect/${type}/scale/${sessionId}` },
      now: new Date(start + Math.floor((i * (end - start)) / estimatedUnits)),
      hashKey: 'scale-bench-hash-key',
      idScheme: 'random',
      mappingFor: () => [],
      idempotency: null,
    });
    events += opens ? 4 : 1;
    outstanding++;
    store.collect(unit).then(
      (outcome: CollectOutcome) => {
        if (opens) profileIds.set(sessionId, outcome.profileId as string);
        if (--outstanding <= WINDOW / 2) wake?.();
      },
      (error: unknown) => {
        failure = error;
        outstanding--;
        wake?.();
      },
    );
    if (outstanding >= WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    if (failure !== null) throw failure;
  }
  await store.close();
  if (failure !== null) throw failure;
  return { seconds: (performance.now() - began) / 1000, profileIds: [...profileIds.values()] };
}

/** Bytes on disk of the embedded store, whole and per table and index (SQLite's dbstat). */
export function sqliteSize(dataDir: string): { total: number; breakdown: Record<string, number> } {
  const path = join(dataDir, 'intake.sqlite');
  const db = new Database(path, { readonly: true });
  try {
    const rows = db
      .prepare<[], { name: string; bytes: number }>(
        'SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC',
      )
      .all();
    return { total: statSync(path).size, breakdown: Object.fromEntries(rows.map((r) => [r.name, r.bytes])) };
  } finally {
    db.close();
  }
}

/** Bytes on disk of the PostgreSQL database, whole and per table and index (partitions summed). */
export async function postgresSize(url: string): Promise<{ total: number; breakdown: Record<string, number> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const total = (await client.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]!.n;
    // Partitions and their indexes are counted under the partitioned parent's name.
    const rows = await client.query<{ name: string; bytes: string }>(`
      SELECT coalesce(parent.relname, c.relname) AS name, sum(pg_relation_size(c.oid)) AS bytes
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
        LEFT JOIN pg_class parent ON parent.oid = i.inhparent
       WHERE c.relkind IN ('r', 'i', 't')
       GROUP BY 1 ORDER BY 2 DESC`);
    return { total: Number(total), breakdown: Object.fromEntries(rows.rows.map((r) => [r.name, Number(r.bytes)])) };
  } finally {
    await client.end();
  }
}

/** Latency of the two reads an operator makes on a big store, one query at a time. */
export async function measureQueries(
  server: ServerProcess,
  adminToken: string,
  profileIds: string[],
  queries: number,
): Promise<{ byProfile: Latency; byTypeFrom: Latency }> {
  const next = random(7);
  const headers = { authorization: `Bearer ${adminToken}` };
  // One kept-alive connection, and the time until the last byte of the answer has arrived, as
  // curl's time_total: the answer is decoded and checked after the clock stops. (Until the sixth
  // session the clock also ran while fetch decoded the 140 KB page into a string, 1.5 ms at p50 and
  // 3 to 4 ms at p95 more on that session's machine: docs/performance.md, finding 23.)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const time = (path: string) =>
    new Promise<{ ms: number; items: number }>((resolve, reject) => {
      const began = performance.now();
      const request = http.get(`${server.url}${path}`, { agent, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const ms = performance.now() - began;
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            if (response.statusCode !== 200) throw new Error(`answered ${response.statusCode} ${text}`);
            resolve({ ms, items: (JSON.parse(text) as { items: unknown[] }).items.length });
          } catch (error) {
            reject(new Error(`${path} after ${ms.toFixed(0)} ms: ${(error as Error).message}`));
          }
        });
      });
      request.on('error', reject);
      // A read that never ends (an answer shorter than its Content-Length, say) fails the run.
      request.setTimeout(60_000, () => request.destroy(new Error(`${path}: no answer within 60 s`)));
    });
  const series = async (path: () => string): Promise<Latency> => {
    const samples: { ms: number; items: number }[] = [];
    try {
      for (let i = 0; i < 10; i++) await time(path()); // warm-up
      for (let i = 0; i < queries; i++) samples.push(await time(path()));
    } catch (error) {
      return { error: (error as Error).message, queries: samples.length, meanItems: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 };
    }
    const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
    const at = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] as number;
    return {
      queries,
      meanItems: samples.reduce((sum, s) => sum + s.items, 0) / samples.length,
      p50Ms: at(0.5),
      p95Ms: at(0.95),
      p99Ms: at(0.99),
    };
  };
  const now = Date.now();
  try {
    return {
      byProfile: await series(() => `/api/events?profile=${profileIds[Math.floor(next() * profileIds.length)]}`),
      byTypeFrom: await series(() => {
        const type = pickType(next());
        const from = new Date(now - Math.ceil(next() * DAYS) * DAY_MS).toISOString();
        return `/api/events?type=${type}&from=${encodeURIComponent(from)}`;
      }),
    };
  } finally {
    agent.destroy();
  }
}

export { DAYS as SCALE_DAYS };
