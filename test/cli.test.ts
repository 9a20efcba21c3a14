/**
 * The operator's contract of api.md ("Starting", "Configuration", "CLI") and the cross-process
 * source rule of collector.md §9, through real processes started as a user starts them:
 * `node --import tsx src/cli.ts <args>` from the project root.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUN_TIMEOUT_MS = 15_000;

type Child = ChildProcessByStdio<null, Readable, Readable>;
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Servers still running; a one-shot command is awaited by its test and killed on its timeout. */
const serving = new Set<Child>();
const oneShots = new Set<Child>();
const dirs: string[] = [];

/** Kills the children this file started, by their own handles, and waits for them to end. */
function killAll(children: Set<Child>): Promise<unknown> {
  return Promise.all(
    [...children].map((child) => {
      const closed = new Promise((resolve) => child.once('close', resolve));
      child.kill('SIGKILL');
      return closed;
    }),
  );
}

afterEach(() => killAll(serving));
afterAll(async () => {
  await killAll(oneShots);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = tempDir('intake-cli-');
  dirs.push(dir);
  return dir;
}

/** The user's environment without any Intake setting, plus the given ones. */
function envWith(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!/^(PORT|HOST|INTAKE_\w+)$/.test(key)) env[key] = value;
  return { ...env, ...settings };
}

function spawnCli(
  args: string[],
  env: Record<string, string>,
  running: Set<Child>,
): { child: Child; exited: Promise<Exit> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    env: envWith(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<Exit>((resolve) =>
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, exited };
}

interface Finished extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `intake <args>` to its end. */
async function runCli(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  const { child, exited } = spawnCli(args, env, oneShots);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const exit = await exited;
  clearTimeout(timer);
  return { ...exit, stdout, stderr };
}

interface Serving {
  url: string;
  pid: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** Sends the signal and waits for the process to end. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

/**
 * Starts `intake serve` on a free loopback port and waits for the JSON log line
 * `Server listening at http://127.0.0.1:PORT`.
 */
async function serve(dataDir: string, args: string[] = [], env: Record<string, string> = {}): Promise<Serving> {
  const { child, exited } = spawnCli(['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, ...args], env, serving);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stdout}\n${stderr}`)), RUN_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const line of stdout.split('\n')) {
        const match = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(line);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      }
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${JSON.stringify(exit)}:\n${stdout}\n${stderr}`));
    });
  });
  return {
    url,
    pid: child.pid as number,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

const tokenOf = (dataDir: string): string => readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

async function api(server: Serving, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(server.url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

async function post(server: Serving, path: string, body: unknown = {}) {
  const res = await fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The non-empty lines of a stream's output. */
const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');

describe('Configuration', () => {
  describe.concurrent('an invalid value stops the start with one line naming it, exit code 2', () => {
    it.each([
      ['PORT', 'abc'],
      ['PORT', '65536'],
      ['PORT', '-1'],
      ['HOST', 'not a host'],
      ['INTAKE_BODY_LIMIT', '0'],
      ['INTAKE_BODY_LIMIT', '1e6'],
      ['INTAKE_LOG_LEVEL', 'loud'],
      ['INTAKE_IDS', 'sequential'],
      ['INTAKE_TRUST_PROXY', 'notanip'],
      ['INTAKE_TRUST_PROXY', '10.0.0.0/33'],
      ['INTAKE_ADMIN_TOKEN', 'short'],
      ['INTAKE_DATABASE_URL', 'mysql://localhost/intake'],
      ['INTAKE_DATABASE_TIMEOUT_MS', '99'],
      ['INTAKE_DATABASE_TIMEOUT_MS', '15s'],
    ])('%s=%s', async (variable, value) => {
      const dataDir = join(newDir(), 'data');
      // No --port/--host flags here: the variable itself must be read (and refused).
      const result = await runCli(['serve'], { [variable]: value, INTAKE_DATA_DIR: dataDir });
      expect(result.code).toBe(2);
      expect(lines(result.stderr)).toHaveLength(1);
      expect(result.stderr).toContain(variable);
      expect(result.stdout).toBe('');
      expect(existsSync(dataDir)).toBe(false);
    });

    it('an invalid flag is named as the flag: --body-limit 0', async () => {
      const dataDir = join(newDir(), 'data');
      const result = await runCli(['serve', '--data-dir', dataDir, '--body-limit', '0'], { INTAKE_BODY_LIMIT: '5000' });
      expect(result.code).toBe(2);
      expect(lines(result.stderr)).toHaveLength(1);
      expect(result.stderr).toContain('--body-limit');
      expect(existsSync(dataDir)).toBe(false);
    });
  });

  it('settings are read from the environment', async () => {
    const dataDir = newDir();
    const token = 'env-token-0123456789abcdef';
    const server = await serve(dataDir, [], { INTAKE_ADMIN_TOKEN: token, INTAKE_BODY_LIMIT: '200' });
    // INTAKE_ADMIN_TOKEN: used, nothing generated or printed
    expect(server.stdout()).not.toContain('Generated admin token');
    expect(existsSync(join(dataDir, 'admin-token'))).toBe(false);
    expect((await api(server, token, 'POST', '/api/sources', { id: 'env', name: 'Env' })).status).toBe(201);
    // INTAKE_BODY_LIMIT
    expect((await post(server, '/collect/small/env', { pad: 'x'.repeat(100) })).status).toBe(200);
    expect((await post(server, '/collect/big/env', { pad: 'x'.repeat(300) })).status).toBe(413);
    // INTAKE_DATA_DIR
    expect(existsSync(join(dataDir, 'intake.sqlite'))).toBe(true);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('a flag wins over the environment', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir, ['--log-level', 'info', '--body-limit', '100000', '--admin-token', 'flag-token-0123456789'], {
      PORT: 'abc',
      HOST: '0.0.0.0',
      INTAKE_LOG_LEVEL: 'loud',
      INTAKE_BODY_LIMIT: '100',
      INTAKE_ADMIN_TOKEN: 'env-token-0123456789abcdef',
      INTAKE_DATA_DIR: join(dataDir, 'not-this-one'),
    });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await api(server, 'env-token-0123456789abcdef', 'GET', '/api/sources')).status).toBe(401);
    expect((await api(server, 'flag-token-0123456789', 'POST', '/api/sources', { id: 'flags', name: 'F' })).status).toBe(201);
    expect((await post(server, '/collect/big/flags', { pad: 'x'.repeat(2000) })).status).toBe(200);
    expect(existsSync(join(dataDir, 'intake.sqlite'))).toBe(true);
    expect(existsSync(join(dataDir, 'not-this-one'))).toBe(false);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('Secrets in the log', () => {
  it('a ?token= is never logged, however its name is spelled', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir, ['--log-level', 'debug', '--admin-token', 'log-token-0123456789']);
    const token = 'log-token-0123456789';
    const secret = 'SECRET-TOKEN-0123456789';
    const created = await api(server, token, 'POST', '/api/sources', {
      id: 'tk',
      name: 'T',
      config: { verify: { scheme: 'token', secrets: [secret] } },
    });
    expect(created.status).toBe(201);
    for (const query of [`token=${secret}`, `%74oken=${secret}&page=1`, `a=1&TOKEN=${secret}`, `%74%6Fken=${secret}`]) {
      const res = await fetch(`${server.url}/collect/pv/tk?${query}`);
      expect([200, 401], query).toContain(res.status);
    }
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toContain('[redacted]');
    expect(server.stdout()).not.toContain(secret);
  });
});

describe('A sender that hangs up', () => {
  it('in the middle of its body is no server error in the log', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir, ['--log-level', 'info', '--admin-token', 'hangup-token-0123456789']);
    expect((await api(server, 'hangup-token-0123456789', 'POST', '/api/sources', { id: 'hang', name: 'H' })).status).toBe(201);
    const { hostname, port } = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write('POST /collect/x/hang HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"half":');
        setTimeout(() => socket.destroy(), 200);
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    // The server goes on, and says nothing of an unhandled error or a stack.
    expect((await post(server, '/collect/x/hang', { whole: true })).status).toBe(200);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(server.stdout()).not.toContain('unhandled error');
    expect(server.stdout()).not.toContain('"level":50');
  });
});

describe('Starting', () => {
  it('serve prints the generated admin token once, on the first start only, and saves it with mode 0600', async () => {
    const dataDir = newDir();
    const first = await serve(dataDir);
    const token = tokenOf(dataDir);
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
    expect(first.stdout().split(token)).toHaveLength(2); // printed exactly once
    expect(lines(first.stdout())[0]).toContain(token);
    expect((await api(first, token, 'GET', '/api/sources')).status).toBe(200);
    expect(await first.stop()).toEqual({ code: 0, signal: null });
    expect(first.stdout().split(token)).toHaveLength(2); // and never logged afterwards

    const second = await serve(dataDir);
    expect((await api(second, token, 'GET', '/api/sources')).status).toBe(200);
    expect(await second.stop()).toEqual({ code: 0, signal: null });
    expect(second.stdout()).not.toContain(token);
    expect(second.stdout()).not.toContain('Generated admin token');
    expect(tokenOf(dataDir)).toBe(token);
  });

  it('logs are JSON lines on stdout', async () => {
    const dataDir = newDir();
    await runCli(['token', '--data-dir', dataDir]); // so that no token line is printed
    const server = await serve(dataDir);
    await fetch(`${server.url}/health`);
    await fetch(`${server.url}/nope`);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    const logged = lines(server.stdout());
    expect(logged.length).toBeGreaterThanOrEqual(3);
    for (const line of logged) expect(() => JSON.parse(line), line).not.toThrow();
    expect(server.stderr()).toBe('');
  });

  it('SIGTERM → exit 0; started again on the same data dir, the events are still there', async () => {
    const dataDir = newDir();
    const first = await serve(dataDir);
    const token = tokenOf(dataDir);
    expect((await api(first, token, 'POST', '/api/sources', { id: 'keep', name: 'Keep' })).status).toBe(201);
    const posted = await Promise.all([
      post(first, '/collect/order/keep', { n: 1 }),
      post(first, '/collect/order/keep', [{ n: 2 }, { n: 3 }]),
      post(first, '/collect/page-view/keep/sess-restart', { n: 4 }),
    ]);
    for (const p of posted) expect(p.status).toBe(200);
    const idScheme = posted.flatMap((p) => p.body.events as string[]);
    const profileId = posted[2]?.body.profile.id as string;
    expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const second = await serve(dataDir);
    for (const id of idScheme) expect((await api(second, token, 'GET', `/api/events/${id}`)).status).toBe(200);
    const listed = await api(second, token, 'GET', '/api/events?source=keep');
    expect(new Set(listed.body.items.map((e: { id: string }) => e.id))).toEqual(new Set(idScheme));
    expect((await api(second, token, 'GET', '/api/sessions/sess-restart')).body.profile).toEqual({ id: profileId });
    expect((await api(second, token, 'GET', `/api/profiles/${profileId}`)).status).toBe(200);
    expect((await api(second, token, 'GET', '/api/sources/keep')).status).toBe(200);
    // the collector still knows the source after the restart
    expect((await post(second, '/collect/order/keep', { n: 5 })).status).toBe(200);
    expect(await second.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM stops accepting but finishes and commits the request in flight', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir);
    const token = tokenOf(dataDir);
    await api(server, token, 'POST', '/api/sources', { id: 'inflight', name: 'In flight' });
    const body = JSON.stringify({ order: 'in-flight', pad: 'x'.repeat(1000) });
    const { hostname, port } = new URL(server.url);
    // A client that keeps its connection open, as senders and load balancers do.
    const agent = new Agent({ keepAlive: true, timeout: 60_000 });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          agent,
          hostname,
          port,
          method: 'POST',
          path: '/collect/order/inflight',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      // Half the body now; the rest only after the signal.
      req.write(body.slice(0, 500));
      void sleep(300)
        .then(() => {
          process.kill(server.pid, 'SIGTERM');
          return sleep(300);
        })
        .then(async () => {
          // no new connection is accepted while stopping
          await expect(fetch(`${server.url}/health`)).rejects.toThrow();
          req.end(body.slice(500));
        });
    });
    const answered = await response;
    expect(answered.status).toBe(200);
    const eventId = (JSON.parse(answered.text) as { events: string[] }).events[0] as string;
    // The open keep-alive connection does not hold the exit.
    const exit = await Promise.race([server.exited, sleep(3000).then(() => 'still running')]);
    agent.destroy();
    expect(exit).toEqual({ code: 0, signal: null });

    const again = await serve(dataDir);
    const stored = await api(again, token, 'GET', `/api/events/${eventId}`);
    expect(stored.status).toBe(200);
    expect(stored.body.properties.order).toBe('in-flight');
    expect(await again.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('CLI', () => {
  it('intake token prints the admin token of the data dir — the one the server uses', async () => {
    const dataDir = newDir();
    const printed = await runCli(['token', '--data-dir', dataDir]);
    expect(printed.code).toBe(0);
    expect(printed.stderr).toBe('');
    const token = printed.stdout.trim();
    expect(printed.stdout).toBe(`${token}\n`);
    expect(token).toBe(tokenOf(dataDir));
    expect((await runCli(['token'], { INTAKE_DATA_DIR: dataDir })).stdout).toBe(`${token}\n`);

    const server = await serve(dataDir);
    expect(server.stdout()).not.toContain(token);
    expect((await api(server, token, 'GET', '/api/sources')).status).toBe(200);
    expect((await api(server, `${token}x`, 'GET', '/api/sources')).status).toBe(401);
    expect((await runCli(['token', '--data-dir', dataDir])).stdout).toBe(`${token}\n`);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('intake token of a data dir a server generated the token in prints that token', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir);
    const printed = /Generated admin token[^:]*: (\S+)/.exec(server.stdout())?.[1];
    expect(printed).toEqual(expect.any(String));
    expect((await runCli(['token', '--data-dir', dataDir])).stdout).toBe(`${printed}\n`);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('intake source add --name X --id Y prints the source with its webhook URLs', async () => {
    const dataDir = newDir();
    const added = await runCli(['source', 'add', '--name', 'Shop Webhooks', '--id', 'Shop-1', '--channel', 'shop', '--data-dir', dataDir]);
    expect(added.code).toBe(0);
    expect(added.stderr).toBe('');
    expect(JSON.parse(added.stdout)).toEqual({
      id: 'shop-1',
      name: 'Shop Webhooks',
      type: ['webhook'],
      enabled: true,
      channel: 'shop',
      description: '',
      transitional: false,
      config: {},
      tags: [],
      created: expect.any(String),
      updated: expect.any(String),
      urls: ['/collect/{event_type}/shop-1', '/collect/{event_type}/shop-1/{session_id}'],
    });

    const generated = await runCli(['source', 'add', '--name', 'No id', '--type', 'webhook,rest'], { INTAKE_DATA_DIR: dataDir });
    expect(generated.code).toBe(0);
    const source = JSON.parse(generated.stdout);
    expect(source.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(source.type).toEqual(['webhook', 'rest']);

    // created in the configured store: a server on that data dir has it
    const server = await serve(dataDir);
    const stored = await api(server, tokenOf(dataDir), 'GET', '/api/sources/shop-1');
    expect(stored.body).toMatchObject({ id: 'shop-1', name: 'Shop Webhooks', channel: 'shop' });
    expect((await post(server, '/collect/order/shop-1')).status).toBe(200);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('intake source list lists the sources', async () => {
    const dataDir = newDir();
    const empty = await runCli(['source', 'list', '--data-dir', dataDir]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).not.toContain('/collect/');
    await runCli(['source', 'add', '--name', 'Beta source', '--id', 'beta', '--data-dir', dataDir]);
    await runCli(['source', 'add', '--name', 'Alpha source', '--id', 'alpha', '--data-dir', dataDir]);
    const listed = await runCli(['source', 'list'], { INTAKE_DATA_DIR: dataDir });
    expect(listed.code).toBe(0);
    expect(listed.stderr).toBe('');
    const rows = lines(listed.stdout);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^alpha\b/);
    expect(rows[0]).toContain('Alpha source');
    expect(rows[0]).toContain('/collect/{event_type}/alpha');
    expect(rows[1]).toMatch(/^beta\b/);
    expect(rows[1]).toContain('Beta source');
  });

  it.concurrent.each([
    [['frobnicate']],
    [['source', 'remove']],
    [['source', 'add']],
    [['source', 'add', '--name', 'X', '--id', 'has space']],
    [['source', 'add', '--name', 'X', '--type', 'email']],
    [['serve', '--no-such-flag', '1']],
    [['token', 'extra']],
  ])('bad usage → exit 2, one line on stderr: intake %j', async (args) => {
    const dataDir = join(newDir(), 'data');
    const result = await runCli(args, { INTAKE_DATA_DIR: dataDir });
    expect(result.code).toBe(2);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(/^intake: /);
    expect(result.stdout).toBe('');
    expect(existsSync(join(dataDir, 'intake.sqlite'))).toBe(false);
  });

  it('a failed operation → exit 1, one line on stderr: adding an existing source id', async () => {
    const dataDir = newDir();
    expect((await runCli(['source', 'add', '--name', 'A', '--id', 'twice', '--data-dir', dataDir])).code).toBe(0);
    const again = await runCli(['source', 'add', '--name', 'B', '--id', 'TWICE', '--data-dir', dataDir]);
    expect(again.code).toBe(1);
    expect(lines(again.stderr)).toHaveLength(1);
    expect(again.stderr).toContain('twice');
    expect(again.stdout).toBe('');
  });
});

describe('Source changes reach every collector process within one second (collector.md §9)', () => {
  /** Polls until the collector answers `status` for the path, for at most `withinMs`. */
  async function answersWithin(server: Serving, path: string, status: number, withinMs: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      const res = await post(server, path);
      const elapsed = Date.now() - start;
      if (res.status === status) return elapsed;
      if (elapsed > withinMs) throw new Error(`still ${res.status} ${JSON.stringify(res.body)} after ${elapsed} ms`);
      await sleep(50);
    }
  }

  it('a source added by the CLI while the server runs is accepted within one second', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir);
    const before = await post(server, '/collect/order/from-cli');
    expect(before).toEqual({ status: 401, body: { detail: 'Invalid event source `from-cli`.' } });
    const added = await runCli(['source', 'add', '--name', 'From CLI', '--id', 'from-cli', '--data-dir', dataDir]);
    expect(added.code).toBe(0);
    await answersWithin(server, '/collect/order/from-cli', 200, 1000);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('a source disabled via the API is refused on the next request', async () => {
    const dataDir = newDir();
    const server = await serve(dataDir);
    const token = tokenOf(dataDir);
    await api(server, token, 'POST', '/api/sources', { id: 'toggled', name: 'Toggled' });
    expect((await post(server, '/collect/order/toggled')).status).toBe(200);
    expect((await api(server, token, 'PATCH', '/api/sources/toggled', { enabled: false })).status).toBe(200);
    expect(await post(server, '/collect/order/toggled')).toEqual({ status: 401, body: { detail: 'Event source disabled.' } });
    expect((await api(server, token, 'PATCH', '/api/sources/toggled', { enabled: true })).status).toBe(200);
    expect((await post(server, '/collect/order/toggled')).status).toBe(200);
    expect((await api(server, token, 'DELETE', '/api/sources/toggled')).status).toBe(204);
    expect(await post(server, '/collect/order/toggled')).toEqual({
      status: 401,
      body: { detail: 'Invalid event source `toggled`.' },
    });
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('a change made through one server reaches another server on the same store within one second', async () => {
    const dataDir = newDir();
    const [a, b] = await Promise.all([serve(dataDir), serve(dataDir)]);
    const token = tokenOf(dataDir);
    expect((await api(a, token, 'POST', '/api/sources', { id: 'shared', name: 'Shared' })).status).toBe(201);
    await answersWithin(b, '/collect/order/shared', 200, 1000);
    expect((await api(a, token, 'PATCH', '/api/sources/shared', { enabled: false })).status).toBe(200);
    await answersWithin(b, '/collect/order/shared', 401, 1000);
    expect((await post(b, '/collect/order/shared')).body).toEqual({ detail: 'Event source disabled.' });
    expect(await Promise.all([a.stop(), b.stop()])).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });
});
