import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';

export type StoreKind = 'sqlite' | 'postgres';

/** The PostgreSQL server the PostgreSQL half of the suite runs against, if any. */
export const TEST_DATABASE_URL = process.env.INTAKE_TEST_DATABASE_URL ?? '';

/**
 * Every store the contract tests run on: SQLite always, PostgreSQL when INTAKE_TEST_DATABASE_URL
 * is set (test/global-setup.ts says plainly when it is not).
 */
export const STORES: StoreKind[] = TEST_DATABASE_URL === '' ? ['sqlite'] : ['sqlite', 'postgres'];

/** A database URL with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

let databaseCounter = 0;

/** A new, empty database on the test server for one test server (or group of processes). */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `intake_test_${process.pid}_${Date.now().toString(36)}_${++databaseCounter}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(TEST_DATABASE_URL, name),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface TestServer {
  url: string;
  token: string;
  dataDir: string;
  /** The configuration it runs with; a second server started with it shares its store. */
  config: Config;
  server: RunningServer;
  /** Stops the server (SIGTERM-like: in-flight requests finish) and starts it again on the same store. */
  restart(): Promise<void>;
  /** fetch against the server; `auth` adds the admin token. */
  fetch(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  /** JSON helper for the management API (always authenticated). */
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }>;
  /** Creates a webhook source and returns its id. */
  source(fields?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export function tempDir(prefix = 'intake-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts a real server on a free loopback port, on a real store: a SQLite file in a temp dir, or
 * a new PostgreSQL database that `close` drops.
 */
export async function startTestServer(
  overrides: Partial<Record<string, string>> = {},
  dataDir = tempDir(),
  store: StoreKind = 'sqlite',
): Promise<TestServer> {
  const database = store === 'postgres' ? await createTestDatabase() : null;
  const config: Config = loadConfig(
    {
      INTAKE_DATA_DIR: dataDir,
      INTAKE_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...(database !== null ? { INTAKE_DATABASE_URL: database.url } : {}),
      ...overrides,
    },
    { port: '0', host: '127.0.0.1' },
  );
  const server = await startServer(config);
  const token = server.adminToken;
  let counter = 0;
  const t: TestServer = {
    url: server.url,
    token,
    dataDir,
    config,
    server,
    async restart() {
      await t.server.close();
      t.server = await startServer(config);
      t.url = t.server.url;
    },
    fetch(path, init = {}) {
      const { auth, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (auth) headers.set('authorization', `Bearer ${token}`);
      return fetch(t.url + path, { ...rest, headers });
    },
    async api(method, path, body) {
      const res = await t.fetch(path, {
        method,
        auth: true,
        ...(body !== undefined
          ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
          : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
    },
    async source(fields = {}) {
      const id = `src-${process.pid}-${++counter}`;
      const res = await t.api('POST', '/api/sources', { id, name: `Source ${counter}`, ...fields });
      if (res.status !== 201) throw new Error(`source create failed: ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    },
    async close() {
      await t.server.close();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/**
 * A request with full control of the bytes and headers (fetch normalises both): raw paths,
 * repeated headers, invalid UTF-8, no content type.
 */
export function rawRequest(
  baseUrl: string,
  options: { method: string; path: string; headers?: [string, string][]; body?: Buffer | string },
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const given = options.headers ?? [];
    // HTTP/1.1 requires a Host header; add one unless the test sends its own.
    const withHost: [string, string][] = given.some(([name]) => name.toLowerCase() === 'host')
      ? given
      : [['host', `${hostname}:${port}`], ...given];
    const flatHeaders = withHost.flat();
    if (options.body !== undefined) flatHeaders.push('content-length', String(Buffer.byteLength(options.body)));
    const req = httpRequest({ hostname, port, method: options.method, path: options.path, headers: flatHeaders }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
