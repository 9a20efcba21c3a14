#!/usr/bin/env node
/**
 * The `intake` command (api.md "CLI"): `serve`, `source add|list`, `token`. Errors are one line on
 * stderr; exit code 1 for a failed operation, 2 for bad usage or an invalid setting.
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { resolveAdminToken } from './admin-token.js';
import { ConfigError, loadConfig, SETTINGS, type Config } from './config.js';
import { IntakeError } from './domain/errors.js';
import { normalizeSourceId, SOURCE_ID_PATTERN, SOURCE_TYPES, sourceUrls, type SourceType } from './domain/source.js';
import { startServer } from './server.js';
import { openStore } from './store/open-store.js';

class UsageError extends Error {}

const USAGE = `Usage:
  intake serve [--port N] [--host H] [--data-dir DIR] [--database-url URL] [--admin-token T]
               [--trust-proxy HOPS|LIST] [--body-limit BYTES] [--log-level LEVEL]
  intake source add --name NAME [--id ID] [--type webhook[,rest,redirect]] [--channel C]
  intake source list
  intake token
Every setting is also an environment variable (see README); a flag wins.`;

const settingFlags = Object.fromEntries(
  Object.values(SETTINGS).map(({ flag }) => [flag, { type: 'string' as const }]),
);

function parse(args: string[], extra: Record<string, { type: 'string' }> = {}) {
  try {
    return parseArgs({ args, options: { ...settingFlags, ...extra }, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function configFrom(values: Record<string, string | boolean | undefined>): Config {
  const flags: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) if (typeof value === 'string') flags[key] = value;
  return loadConfig(process.env, flags);
}

const quietLogger = {
  error: (details: object, message: string) => process.stderr.write(`${message}: ${JSON.stringify(details)}\n`),
  warn: (details: object, message: string) => process.stderr.write(`${message}: ${JSON.stringify(details)}\n`),
};

async function serve(args: string[]): Promise<void> {
  const config = configFrom(parse(args));
  const server = await startServer(config);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`intake: error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function sourceAdd(args: string[]): Promise<void> {
  const values = parse(args, { name: { type: 'string' }, id: { type: 'string' }, type: { type: 'string' }, channel: { type: 'string' } });
  if (values.name === undefined || values.name.trim() === '') throw new UsageError('source add needs --name');
  const id = values.id === undefined ? randomUUID() : normalizeSourceId(values.id);
  if (!new RegExp(SOURCE_ID_PATTERN).test(id)) throw new UsageError('--id must be 1–128 of a-z 0-9 . _ : -');
  const types = (values.type ?? 'webhook').split(',').map((t) => t.trim());
  for (const t of types)
    if (!SOURCE_TYPES.includes(t as SourceType)) throw new UsageError(`--type must be among ${SOURCE_TYPES.join(', ')}`);
  const store = await openStore(configFrom(values), quietLogger);
  try {
    const source = await store.createSource({
      id,
      name: values.name,
      type: types as SourceType[],
      ...(values.channel !== undefined ? { channel: values.channel } : {}),
    });
    process.stdout.write(`${JSON.stringify({ ...source, urls: sourceUrls(source.id) }, null, 2)}\n`);
  } finally {
    await store.close();
  }
}

async function sourceList(args: string[]): Promise<void> {
  const store = await openStore(configFrom(parse(args)), quietLogger);
  try {
    const sources = await store.allSources();
    if (sources.length === 0) process.stdout.write('no sources\n');
    for (const s of sources)
      process.stdout.write(
        `${s.id}\t${s.enabled ? 'enabled' : 'disabled'}\t${s.type.join(',')}\t${s.name}\t${sourceUrls(s.id)[0]}\n`,
      );
  } finally {
    await store.close();
  }
}

async function token(args: string[]): Promise<void> {
  process.stdout.write(`${resolveAdminToken(configFrom(parse(args))).token}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === 'token') return token(rest);
  if (command === 'source') {
    const [sub, ...subArgs] = rest;
    if (sub === 'add') return sourceAdd(subArgs);
    if (sub === 'list') return sourceList(subArgs);
  }
  if (command === undefined || command === 'help' || command === '--help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  throw new UsageError(`unknown command: ${argv.join(' ')}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    // One line, as every error (api.md "CLI"); the usage is one command away.
    process.stderr.write(`intake: ${error.message} (see \`intake help\`)\n`);
    process.exit(2);
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`intake: invalid setting ${error.message}\n`);
    process.exit(2);
  }
  const message = error instanceof IntakeError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`intake: ${message}\n`);
  process.exit(1);
});
