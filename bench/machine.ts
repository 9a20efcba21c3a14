import { readFileSync } from 'node:fs';
import os from 'node:os';
import Database from 'better-sqlite3';
import pg from 'pg';

/** What the figures were measured on: they mean little without it. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  kernel: string;
  node: string;
  sqlite: string;
  postgres: string | null;
  /** Filesystem and device under the data directories (fsync cost depends on it). */
  disk: string;
}

export async function describeMachine(dataDir: string, databaseUrl: string | null): Promise<Machine> {
  const memory = new Database(':memory:');
  const sqlite = memory.prepare<[], string>('SELECT sqlite_version()').pluck().get() ?? '?';
  memory.close();
  let postgres: string | null = null;
  if (databaseUrl !== null) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    postgres = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    await client.end();
  }
  return {
    cpu: os.cpus()[0]?.model ?? '?',
    cores: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: osRelease(),
    kernel: os.release(),
    node: process.version,
    sqlite,
    postgres,
    disk: mountOf(dataDir),
  };
}

function osRelease(): string {
  try {
    return /PRETTY_NAME="([^"]*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** The mount that holds `path`: device and filesystem type, from /proc/mounts. */
function mountOf(path: string): string {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => f.length > 2 && path.startsWith(f[1] as string))
      .sort((a, b) => (b[1] as string).length - (a[1] as string).length);
    const [device, mountPoint, type] = mounts[0] ?? [];
    return `${type} on ${device} (mounted at ${mountPoint})`;
  } catch {
    return '?';
  }
}
