/**
 * `npm run bench:ab`: one scenario, measured the way docs/performance.md's findings were. Each run
 * starts a server on a fresh store, opens what the scenario needs, warms up for 3 s and measures
 * for `--seconds`, then prints req/s, p50, p99, the server's peak RSS, where the CPU went per request (the server's main
 * thread, its other threads: the SQLite writer and checkpoint threads, V8's and libuv's; the
 * PostgreSQL server processes, this process, the load generator; the machine's idle time), how long
 * the same threads were ready to run but waited for a core (`/proc/…/schedstat`), and the mean size
 * and time of the server's group commits, from its /metrics.
 *
 * Its options are in USAGE below (`npm run bench:ab -- --help`).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBenchSource, startIntake, withFreshDatabase } from './intake-server.js';
import { INTAKE_SCENARIOS, runScenario, type Scenario } from './load.js';
import { readOptions, wholeNumber } from './options.js';
import type { ServerProcess } from './server-process.js';

const USAGE = `npm run bench:ab -- [options]: one scenario, measured in alternating runs (docs/performance.md)

  --store sqlite|postgres     (default sqlite; postgres needs INTAKE_TEST_DATABASE_URL)
  --scenario NAME             (default "POST profile-less"), one of:
                              ${INTAKE_SCENARIOS.map((s) => s.name).join('\n                              ')}
  --seconds N --runs N        (default 10 and 3)
  --connections N             concurrent connections of the load (default 32, as issue 6's targets)
  --dist DIR                  a built tree to run; give it twice or more to compare builds (default dist)
  --env NAME=VALUE            a setting for the server, e.g. --env INTAKE_IDS=time-ordered
  --node-arg ARG              a flag for the server's node, e.g. --node-arg=--cpu-prof`;

const cli = readOptions(USAGE, {
  store: { type: 'string', default: 'sqlite' },
  scenario: { type: 'string', default: 'POST profile-less' },
  seconds: { type: 'string', default: '10' },
  runs: { type: 'string', default: '3' },
  connections: { type: 'string', default: '32' },
  dist: { type: 'string', multiple: true },
  env: { type: 'string', multiple: true },
  'node-arg': { type: 'string', multiple: true },
});
const { values } = cli;
const store = values.store === 'sqlite' || values.store === 'postgres' ? values.store : cli.refuse('--store is sqlite or postgres');
const scenario = INTAKE_SCENARIOS.find((s) => s.name === values.scenario) ?? cli.refuse(`no scenario named "${values.scenario}"`);
const DATABASE_URL = process.env.INTAKE_TEST_DATABASE_URL || null;
if (store === 'postgres' && DATABASE_URL === null) cli.refuse('--store postgres needs INTAKE_TEST_DATABASE_URL');
const env = Object.fromEntries(
  (values.env ?? []).map((pair) => {
    const at = pair.indexOf('=');
    if (at < 1) cli.refuse(`--env takes NAME=VALUE, got ${pair}`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);
const builds = values.dist ?? ['dist'];
for (const dist of builds) if (!existsSync(join(dist, 'cli.js'))) cli.refuse(`--dist ${dist}: no ${join(dist, 'cli.js')} (build it first)`);
const seconds = wholeNumber(cli, 'seconds', values.seconds, 1);
const runs = wholeNumber(cli, 'runs', values.runs, 1);
const connections = wholeNumber(cli, 'connections', values.connections, 1);
const workDir = mkdtempSync(join(tmpdir(), 'intake-ab-'));

/** CPU ticks (user + system) of a process or thread, from its `stat` file; 0 once it is gone. */
function ticks(statPath: string): number {
  try {
    const stat = readFileSync(statPath, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** A figure read from each thread's file under /proc/<pid>/task: the main thread's, and the rest's sum. */
function byThread(pid: number, file: string, read: (path: string) => number): { main: number; other: number } {
  const all = readdirSync(`/proc/${pid}/task`).map((tid) => read(`/proc/${pid}/task/${tid}/${file}`));
  const main = read(`/proc/${pid}/task/${pid}/${file}`);
  return { main, other: all.reduce((a, b) => a + b, 0) - main };
}

/** Nanoseconds a thread spent runnable but waiting for a core (the second field of `schedstat`). */
function waited(schedstatPath: string): number {
  try {
    return Number(readFileSync(schedstatPath, 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

const postgresTicks = () =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('postgres');
      } catch {
        return false;
      }
    })
    .reduce((sum, p) => sum + ticks(`/proc/${p}/stat`), 0);

/** Idle and iowait ticks of all cores, from /proc/stat. */
function idleTicks(): number {
  const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  return (cpu[3] ?? 0) + (cpu[4] ?? 0);
}

function snapshot(server: ServerProcess) {
  const cpu = byThread(server.pid, 'stat', ticks);
  const wait = byThread(server.pid, 'schedstat', waited);
  const self = byThread(process.pid, 'schedstat', waited);
  return {
    main: cpu.main,
    other: cpu.other,
    mainWait: wait.main,
    otherWait: wait.other,
    selfWait: self.main + self.other,
    postgres: postgresTicks(),
    self: ticks('/proc/self/stat'),
    idle: idleTicks(),
  };
}

/** Mean requests per group commit and mean time of one, from the server's own /metrics (warm-up included). */
async function commits(server: ServerProcess): Promise<string> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const batches = value('intake_commit_batch_size_count');
  const size = value('intake_commit_batch_size_sum') / batches;
  const ms = (value('intake_commit_seconds_sum') * 1000) / batches;
  // The share of commits that took longer than a bucket's bound: where a long p99 comes from.
  const slower = (le: string) => {
    const within = Number(new RegExp(`^intake_commit_seconds_bucket\\{le="${le}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return `${((100 * (batches - within)) / batches).toFixed(1)}%`;
  };
  return `commits: ${size.toFixed(1)} requests, ${ms.toFixed(2)} ms each, ${slower('0.005')} over 5 ms, ${slower('0.025')} over 25 ms`;
}

function withStore<T>(use: (databaseUrl: string | null) => Promise<T>): Promise<T> {
  return store === 'sqlite' ? use(null) : withFreshDatabase(DATABASE_URL as string, use);
}

async function measure(build: string, run: number, scenario: Scenario): Promise<string> {
  return withStore(async (databaseUrl) => {
    const dataDir = mkdtempSync(join(workDir, 'data-'));
    const server = await startIntake({
      build,
      dataDir,
      databaseUrl,
      env,
      nodeArgs: values['node-arg'] ?? [],
      logFile: join(workDir, 'server.log'),
    });
    try {
      await createBenchSource(server);
      const runId = `${Date.now().toString(36)}-${run}`;
      let before = snapshot(server);
      let after = before;
      const observe = () => {
        before = snapshot(server);
        return () => (after = snapshot(server));
      };
      const result = await runScenario(server, store, scenario, { connections, warmupSeconds: 3, seconds }, runId, observe);
      // Ticks are 10 ms; per request in µs: ticks × 10,000 / requests.
      const us = (key: keyof typeof before) => Math.round(((after[key] - before[key]) * 10_000) / result.requests);
      const waitUs = (key: 'mainWait' | 'otherWait' | 'selfWait') => Math.round((after[key] - before[key]) / 1000 / result.requests);
      const committed = await commits(server);
      return (
        `${build} run ${run + 1}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ` +
        `RSS ${Math.round(result.peakRssMb)} MB, ` +
        `errors ${result.errors + result.non2xx} | CPU µs/req: main ${us('main')}, other threads ${us('other')}` +
        `${store === 'postgres' ? `, PostgreSQL ${us('postgres')}` : ''}, load generator ${us('self')}, idle ${us('idle')}` +
        ` | waiting for a core µs/req: main ${waitUs('mainWait')}, other threads ${waitUs('otherWait')}, load generator ${waitUs('selfWait')}` +
        ` | ${committed}`
      );
    } finally {
      await server.stop();
    }
  });
}

console.log(`${scenario.name} on ${store}, ${seconds} s per run, ${connections} connections${Object.keys(env).length > 0 ? `, ${JSON.stringify(env)}` : ''}`);
for (let run = 0; run < runs; run++)
  for (const build of builds) console.log(await measure(build, run, scenario));
