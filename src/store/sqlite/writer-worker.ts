/**
 * The embedded store's writer thread. It owns the only connection that writes events, sessions
 * and profiles, and commits each batch it is sent in one durable transaction, so the main thread
 * (HTTP parsing) never waits on an fsync.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { createCollectWriter } from './collect-writer.js';
import { openDatabase } from './schema.js';
import { failedOnContent, type CollectUnit } from '../store.js';

export type WriterRequest = { id: number; units: CollectUnit[] };
export type WriterReply =
  | { id: number; ok: true; outcomes: Awaited<ReturnType<ReturnType<typeof createCollectWriter>>> }
  /** `content`: the batch failed on what a unit holds, not on the database (store.ts). */
  | { id: number; ok: false; message: string; content: boolean };

/** SQLite's refusals of a value (too big, a constraint, a type), as opposed to the file's failures. */
const CONTENT_CODES = /^SQLITE_(TOOBIG|CONSTRAINT|MISMATCH|RANGE)/;

const port = parentPort;
if (port === null) throw new Error('writer-worker must run as a worker thread');

// Answers go to `replies` and then raise the `answered` flag, which the main thread looks at
// between requests to take an answer at once (sqlite-store.ts, takeWriterReply).
const { path, replies, answered } = workerData as { path: string; replies: MessagePort; answered: Int32Array };
const db = openDatabase(path);
// A checkpoint runs inside the commit that crosses this many WAL pages: it copies them into the
// database file and syncs that. At SQLite's default of 1000 pages (4 MiB) this came every few
// dozen batches; at 64 MiB it is rarer, and a page that many batches wrote (the tail of each
// index) is copied once per checkpoint. A third more new-session throughput (docs/performance.md).
// The checkpoint thread (checkpoint-worker.ts) copies most pages before then; this one finishes
// the job and lets the log start over. Durability is unchanged: every commit still syncs the log
// (synchronous = FULL).
db.pragma('wal_autocheckpoint = 16384');
const applyBatch = createCollectWriter(db);

port.on('message', async (request: WriterRequest | { close: true }) => {
  if ('close' in request) {
    db.close();
    replies.close();
    port.close();
    return;
  }
  let reply: WriterReply;
  try {
    reply = { id: request.id, ok: true, outcomes: await applyBatch(request.units) };
  } catch (error) {
    reply = {
      id: request.id,
      ok: false,
      message: error instanceof Error ? error.message : String(error),
      content: failedOnContent(error, (code) => CONTENT_CODES.test(code)),
    };
  }
  replies.postMessage(reply);
  Atomics.store(answered, 0, 1);
});
