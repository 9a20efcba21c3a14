/**
 * `npm run bench`: the ceiling of one Node process (a bare node:http server) and of the framework
 * (an empty Fastify route), then Intake on the embedded store and, when INTAKE_TEST_DATABASE_URL is
 * set, on a fresh PostgreSQL database, then the bare server again, all under the same load with
 * the same payload; the SQLite writer's pages of log per request (log-pages.ts); then the scale
 * scenario (1,000,000 stored events).
 * Prints a table and writes it to bench/results/ as JSON and Markdown. docs/performance.md says
 * how to read it.
 *
 * Its options are in USAGE below (`npm run bench -- --help`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_TOKEN, createBenchSource, startIntake, withFreshDatabase } from './intake-server.js';
import { BARE, BARE_AGAIN, FRAMEWORK, INTAKE_SCENARIOS, runScenario, type Load, type Scenario, type ScenarioResult } from './load.js';
import { measureLogPages } from './log-pages.js';
import { describeMachine } from './machine.js';
import { readOptions } from './options.js';
import { toMarkdown, toTable, type Report } from './report.js';
import { loadEvents, measureQueries, postgresSize, sqliteSize, type ScaleResult, type ScaleSize } from './scale.js';
import { startServer, type ServerProcess } from './server-process.js';

const USAGE = `npm run bench [-- options]: every scenario, written to bench/results/ (docs/performance.md)

  --quick         a short run of every scenario that checks only that each ran without errors
  --only=http     the HTTP scenarios and the log pages only;  --only=scale  the scale scenario only

PostgreSQL's scenarios run when INTAKE_TEST_DATABASE_URL is set.`;

const cli = readOptions(USAGE, { quick: { type: 'boolean', default: false }, only: { type: 'string' } });
const quick = cli.values.quick === true;
const only = cli.values.only;
if (only !== undefined && only !== 'http' && only !== 'scale') cli.refuse('--only is http or scale');

const LOAD: Load = quick
  ? { connections: 32, warmupSeconds: 0, seconds: 1 }
  : { connections: 32, warmupSeconds: 3, seconds: 10 };
/** Batches per kind of request when counting pages of log. */
const LOG_BATCHES = quick ? 20 : 200;
const SCALE: ScaleSize = quick
  ? { events: 20_000, profiles: 200, queries: 20 }
  : { events: 1_000_000, profiles: 10_000, queries: 300 };

const DATABASE_URL = process.env.INTAKE_TEST_DATABASE_URL || null;
const workDir = mkdtempSync(join(tmpdir(), 'intake-bench-'));
const runId = Date.now().toString(36);

/** A fresh database on the PostgreSQL server for one part of the run, dropped after it. */
const withDatabase = <T>(use: (url: string) => Promise<T>) => withFreshDatabase(DATABASE_URL as string, use);

/** The built server with default settings unless `flags`, its log in the run's work dir. */
function startIntakeOn(dataDir: string, databaseUrl: string | null, flags: string[] = []): Promise<ServerProcess> {
  return startIntake({ dataDir, databaseUrl, flags, logFile: join(workDir, `intake-${databaseUrl === null ? 'sqlite' : 'postgres'}.log`) });
}

async function intakeScenarios(
  store: 'sqlite' | 'postgres',
  databaseUrl: string | null,
  scenarios = INTAKE_SCENARIOS,
  flags: string[] = [],
): Promise<ScenarioResult[]> {
  const dataDir = mkdtempSync(join(workDir, `${store}-`));
  const server = await startIntakeOn(dataDir, databaseUrl, flags);
  try {
    await createBenchSource(server);
    const results: ScenarioResult[] = [];
    for (const scenario of scenarios) {
      progress(`${store}: ${scenario.name}`);
      results.push(await runScenario(server, store, scenario, LOAD, runId));
    }
    return results;
  } finally {
    await server.stop();
  }
}

/**
 * Two of the scenarios again on a fresh store, with INTAKE_IDS=time-ordered: what version-7 event
 * and profile ids (indexes that grow at their end) change against the default random ones.
 */
function timeOrderedIds(store: 'sqlite' | 'postgres', databaseUrl: string | null): Promise<ScenarioResult[]> {
  const scenarios = INTAKE_SCENARIOS.filter((s) => s.name === 'POST profile-less' || s.name === 'POST new session').map(
    (s) => ({ ...s, name: `${s.name}, time-ordered ids` }),
  );
  return intakeScenarios(store, databaseUrl, scenarios, ['--ids', 'time-ordered']);
}

/** One scenario against a reference server (`bench/<script>`, no Intake in it). */
async function referenceScenario(script: string, store: 'bare' | 'fastify', scenario: Scenario): Promise<ScenarioResult> {
  progress(scenario.name);
  const server = await startServer([`bench/${script}`], (port) => [String(port)], {}, join(workDir, `${store}.log`));
  try {
    return await runScenario(server, store, scenario, LOAD, runId);
  } finally {
    await server.stop();
  }
}

/**
 * The reference servers, then Intake's scenarios, then the bare server again; every ratio is to
 * the mean of the bare server's two runs, and the second is listed right after the first.
 */
async function httpScenarios(failed: string[]): Promise<ScenarioResult[]> {
  const opening = await referenceScenario('bare-server.mjs', 'bare', BARE);
  const results = [await referenceScenario('fastify-server.mjs', 'fastify', FRAMEWORK)];
  results.push(...(await part(failed, 'sqlite HTTP', () => intakeScenarios('sqlite', null), [])));
  results.push(...(await part(failed, 'sqlite HTTP, time-ordered ids', () => timeOrderedIds('sqlite', null), [])));
  if (DATABASE_URL !== null)
    results.push(
      ...(await part(failed, 'postgres HTTP', () => withDatabase((url) => intakeScenarios('postgres', url)), [])),
      ...(await part(failed, 'postgres HTTP, time-ordered ids', () => withDatabase((url) => timeOrderedIds('postgres', url)), [])),
    );
  const closing = await referenceScenario('bare-server.mjs', 'bare', BARE_AGAIN);
  const ceiling = (opening.requestsPerSecond + closing.requestsPerSecond) / 2;
  return [opening, closing, ...results].map((r) => ({ ...r, ratio: r.requestsPerSecond / ceiling }));
}

/** Runs one part of the run; a failure is recorded (with the server's last log lines) and the run goes on. */
async function part<T>(failed: string[], name: string, run: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    failed.push(`${name}: ${(error as Error).message}`);
    progress(`FAILED ${name}: ${(error as Error).message}`);
    return fallback;
  }
}

/** The error lines an Intake server logged, to say why a scenario failed. */
function loggedErrors(store: 'sqlite' | 'postgres'): string {
  try {
    const lines = readFileSync(join(workDir, `intake-${store}.log`), 'utf8').split('\n');
    return lines.filter((l) => /"level":(50|60)/.test(l)).slice(-3).join('\n');
  } catch {
    return '';
  }
}

async function scaleScenario(store: 'sqlite' | 'postgres', databaseUrl: string | null): Promise<ScaleResult> {
  const dataDir = mkdtempSync(join(workDir, `scale-${store}-`));
  progress(`${store}: loading ${SCALE.events} events over ${SCALE.profiles} profiles`);
  const { seconds, profileIds } = await loadEvents({ dataDir, databaseUrl }, SCALE);
  const size = databaseUrl === null ? sqliteSize(dataDir) : await postgresSize(databaseUrl);
  progress(`${store}: querying`);
  const server = await startIntakeOn(dataDir, databaseUrl);
  try {
    const queries = await measureQueries(server, ADMIN_TOKEN, profileIds, SCALE.queries);
    for (const latency of [queries.byProfile, queries.byTypeFrom])
      if (latency.error !== undefined) latency.error += `\n${loggedErrors(store)}`;
    return {
      store,
      events: SCALE.events,
      profiles: profileIds.length,
      days: 30,
      loadSeconds: seconds,
      bytesOnDisk: size.total,
      bytesPerEvent: size.total / SCALE.events,
      breakdown: size.breakdown,
      ...queries,
    };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function progress(what: string): void {
  process.stderr.write(`[bench] ${what}\n`);
}

/** In quick mode, the only claim: every scenario ran, and every request was answered 2xx. */
function failures(report: Report): string[] {
  const bad: string[] = [...report.failed];
  for (const r of report.http) {
    if (r.requests === 0) bad.push(`${r.store} ${r.scenario}: no request completed`);
    if (r.errors > 0 || r.non2xx > 0) bad.push(`${r.store} ${r.scenario}: ${r.errors} errors, ${r.non2xx} non-2xx`);
  }
  for (const w of report.logPages)
    if (!(w.pagesPerRequest > 0)) bad.push(`log pages ${w.scenario} (${w.ids} ids): ${w.pagesPerRequest}`);
  for (const s of report.scale) {
    if (s.profiles !== SCALE.profiles) bad.push(`${s.store} scale: ${s.profiles} profiles, not ${SCALE.profiles}`);
    for (const [query, latency] of [['?profile=', s.byProfile], ['?type=&from=', s.byTypeFrom]] as const) {
      if (latency.error !== undefined) bad.push(`${s.store} scale ${query}: ${latency.error}`);
      else if (latency.meanItems === 0) bad.push(`${s.store} scale ${query}: found nothing`);
    }
  }
  return bad;
}

try {
  const failed: string[] = [];
  const report: Report = {
    date: new Date().toISOString(),
    quick,
    load: LOAD,
    machine: await describeMachine(workDir, DATABASE_URL),
    http: only === 'scale' ? [] : await httpScenarios(failed),
    logPages: [],
    scale: [],
    failed,
  };
  if (only !== 'scale') {
    progress('sqlite: pages of log per request');
    report.logPages.push(...(await part(failed, 'sqlite log pages', () => measureLogPages(workDir, LOG_BATCHES), [])));
  }
  if (only !== 'http') {
    report.scale.push(...(await part(failed, 'sqlite scale', async () => [await scaleScenario('sqlite', null)], [])));
    if (DATABASE_URL !== null)
      report.scale.push(
        ...(await part(failed, 'postgres scale', async () => [await withDatabase((url) => scaleScenario('postgres', url))], [])),
      );
  }
  if (DATABASE_URL === null) progress('PostgreSQL skipped: INTAKE_TEST_DATABASE_URL is not set');
  process.stdout.write(`${toTable(report)}\n`);
  const name = quick ? 'quick' : 'latest';
  const results = new URL('./results/', import.meta.url).pathname;
  writeFileSync(join(results, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(results, `${name}.md`), toMarkdown(report));
  progress(`written to bench/results/${name}.json and ${name}.md`);
  const bad = failures(report);
  if (bad.length > 0) {
    for (const line of bad) process.stderr.write(`[bench] FAILED ${line}\n`);
    process.exitCode = 1;
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
