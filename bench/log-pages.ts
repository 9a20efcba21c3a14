/**
 * What the SQLite writer puts in its log per request: pages of write-ahead log per request for
 * the HTTP scenarios' kinds of request, with random and with time-ordered ids. Each page of log is
 * two system calls now and a page copied by a checkpoint later, and on a new session it is most
 * of the writer's cost (docs/performance.md, findings 12 and 13). Unlike req/s, the figure does
 * not depend on the machine or its neighbours: it changes only when what a batch writes changes.
 *
 * Runs the writer thread's own transaction code (`createCollectWriter`) in this process, on a
 * database with no checkpoint, in batches of a fixed size, and reads the log's growth.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildUnit } from '../src/collect/build-unit.js';
import { asJsonText } from '../src/domain/json-text.js';
import type { IdScheme } from '../src/domain/new-id.js';
import { newSource } from '../src/domain/source.js';
import { webhookConfigOf } from '../src/domain/webhook-config.js';
import { createCollectWriter } from '../src/store/sqlite/collect-writer.js';
import { migrate, openDatabase } from '../src/store/sqlite/schema.js';
import type { CollectUnit } from '../src/store/store.js';
import { HEADERS, PAYLOAD } from './payload.js';
import { SOURCE_ID } from './load.js';

export interface LogPagesResult {
  /** As the HTTP scenario of the same kind is named. */
  scenario: string;
  ids: IdScheme;
  /** Units per transaction. */
  batch: number;
  pagesPerRequest: number;
  /** The same pages by the table or index they belong to (SQLite's dbstat), largest first. */
  byTree: [string, number][];
}

/** Units per transaction: about what the writer's batches held under the HTTP load. */
const BATCH = 8;
/** Known sessions, and profile-less events stored before measuring, so that indexes have depth. */
const KNOWN_SESSIONS = 2000;
const STORED_EVENTS = 20_000;
/** A WAL frame is a 24-byte header and the page; the log file itself starts with 32 bytes. */
const FRAME_HEADER_BYTES = 24;
const WAL_HEADER_BYTES = 32;

const SOURCE = newSource({ name: 'Bench' }, SOURCE_ID, new Date().toISOString());
const REQUEST = {
  method: 'POST',
  path: `/collect/charge-succeeded/${SOURCE_ID}`,
  query: '',
  ip: '127.0.0.1',
  headers: { ...HEADERS, 'content-length': String(PAYLOAD.length) },
};
const PROPERTIES = [asJsonText(PAYLOAD)];

/** The unit the collector builds for the bench's webhook, on a session or profile-less. */
function unit(session: string | null, ids: IdScheme): CollectUnit {
  return buildUnit({
    task: randomUUID(),
    pathType: 'charge-succeeded',
    source: SOURCE,
    config: webhookConfigOf(SOURCE),
    sessionId: session,
    properties: PROPERTIES,
    request: REQUEST,
    now: new Date(),
    hashKey: 'bench',
    idScheme: ids,
    mappingFor: () => [],
    idempotency: null,
  });
}

async function measure(workDir: string, ids: IdScheme, batches: number): Promise<LogPagesResult[]> {
  const dir = mkdtempSync(join(workDir, 'log-pages-'));
  const path = join(dir, 'intake.sqlite');
  const db = openDatabase(path);
  try {
    migrate(db);
    db.pragma('wal_autocheckpoint = 0');
    const frameBytes = (db.pragma('page_size', { simple: true }) as number) + FRAME_HEADER_BYTES;
    const write = createCollectWriter(db);
    const known = (i: number) => `known-${i % KNOWN_SESSIONS}`;
    for (let i = 0; i < KNOWN_SESSIONS; i += BATCH)
      await write(Array.from({ length: BATCH }, (_, j) => unit(known(i + j), ids)));
    for (let i = 0; i < STORED_EVENTS; i += BATCH) await write(Array.from({ length: BATCH }, () => unit(null, ids)));
    let n = 0;
    const kinds: [string, () => CollectUnit][] = [
      ['POST profile-less', () => unit(null, ids)],
      ['POST known session', () => unit(known(Math.floor(Math.random() * KNOWN_SESSIONS)), ids)],
      ['POST new session', () => unit(`new-${n++}`, ids)],
    ];
    const results: LogPagesResult[] = [];
    for (const [scenario, make] of kinds) {
      db.pragma('wal_checkpoint(TRUNCATE)');
      const before = statSync(`${path}-wal`).size;
      for (let b = 0; b < batches; b++) await write(Array.from({ length: BATCH }, make));
      // A log that starts over begins with its 32-byte header.
      const frames = (statSync(`${path}-wal`).size - before - (before === 0 ? WAL_HEADER_BYTES : 0)) / frameBytes;
      const requests = batches * BATCH;
      results.push({
        scenario,
        ids,
        batch: BATCH,
        pagesPerRequest: frames / requests,
        byTree: [...pagesByTree(db, `${path}-wal`, frameBytes)]
          .map(([tree, pages]): [string, number] => [tree, pages / requests])
          .sort((a, b) => b[1] - a[1]),
      });
    }
    return results;
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Counts the frames of the log by the table or index their page belongs to: each frame's header
 * starts with its page number, and dbstat says which b-tree holds each page. Page 1 is the
 * schema's root and the file header (the database's size, rewritten by every commit that grows it).
 */
function pagesByTree(db: ReturnType<typeof openDatabase>, walPath: string, frameBytes: number): Map<string, number> {
  const owner = new Map<number, string>();
  for (const row of db.prepare('SELECT name, pageno FROM dbstat').all() as { name: string; pageno: number }[])
    owner.set(row.pageno, row.name);
  const log = readFileSync(walPath);
  const counts = new Map<string, number>();
  for (let offset = WAL_HEADER_BYTES; offset + frameBytes <= log.length; offset += frameBytes) {
    const tree = owner.get(log.readUInt32BE(offset)) ?? 'free pages';
    counts.set(tree, (counts.get(tree) ?? 0) + 1);
  }
  return counts;
}

/** Every kind of request with both id schemes; `batches` per kind (fewer in a smoke run). */
export async function measureLogPages(workDir: string, batches: number): Promise<LogPagesResult[]> {
  return [...(await measure(workDir, 'random', batches)), ...(await measure(workDir, 'time-ordered', batches))];
}
