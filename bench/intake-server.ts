/**
 * What bench/run.ts and bench/ab.ts share: a built Intake server on a store of its own, the
 * source every scenario posts to, and a throwaway PostgreSQL database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { IDENTIFYING_SOURCE, SOURCE_ID } from './load.js';
import { startServer, type ServerProcess } from './server-process.js';

// Passed as --admin-token=…: a base64url token may start with '-', which as a separate argument
// reads as an option (the CLI then stops, as it should).
export const ADMIN_TOKEN = randomBytes(24).toString('base64url');

/** `node <build>/cli.js serve` on a fresh data dir (and database, if given), as an operator runs it. */
export function startIntake(options: {
  dataDir: string;
  databaseUrl: string | null;
  logFile: string;
  /** The built tree; dist unless comparing builds. */
  build?: string;
  /** More `serve` flags, e.g. ['--ids', 'time-ordered']. */
  flags?: string[];
  env?: Record<string, string>;
  /** Flags for node itself, e.g. ['--cpu-prof']. */
  nodeArgs?: string[];
}): Promise<ServerProcess> {
  const { dataDir, databaseUrl, build = 'dist' } = options;
  return startServer(
    [
      ...(options.nodeArgs ?? []),
      `${build}/cli.js`,
      'serve',
      '--host',
      '127.0.0.1',
      '--data-dir',
      dataDir,
      `--admin-token=${ADMIN_TOKEN}`,
      ...(options.flags ?? []),
    ],
    (port) => ['--port', String(port), ...(databaseUrl !== null ? ['--database-url', databaseUrl] : [])],
    options.env ?? {},
    options.logFile,
  );
}

/** Creates the sources the scenarios post to (bench/load.ts, SOURCE_ID and IDENTIFYING_SOURCE). */
export async function createBenchSource(server: ServerProcess): Promise<void> {
  for (const source of [{ id: SOURCE_ID, name: 'Bench' }, IDENTIFYING_SOURCE]) {
    const created = await fetch(`${server.url}/api/sources`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(source),
    });
    if (created.status !== 201) throw new Error(`creating the source ${source.id} answered ${created.status}`);
  }
}

/** A fresh database on the server of `serverUrl`, for `use`, dropped after it. */
export async function withFreshDatabase<T>(serverUrl: string, use: (url: string) => Promise<T>): Promise<T> {
  const name = `intake_bench_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    await client.query(sql).finally(() => client.end());
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  try {
    return await use(url.toString());
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}
