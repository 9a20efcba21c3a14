/**
 * The embedded store's checkpoint thread. A checkpoint copies the pages that commits appended to
 * the write-ahead log back into the database file. Done by the writer thread, inside the commit
 * that crosses the threshold, it held up every request of that batch and the next for tens of
 * milliseconds (docs/performance.md). Here, on a connection of its own, a passive checkpoint
 * runs a few times a second beside the writer: it never blocks a commit, and the writer's own
 * checkpoint (writer-worker.ts) only has the few pages left over to copy.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './schema.js';

const INTERVAL_MS = 100;

const port = parentPort;
if (port === null) throw new Error('checkpoint-worker must run as a worker thread');

const db = openDatabase((workerData as { path: string }).path);
db.pragma('wal_autocheckpoint = 0');

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy, or the disk failing: the writer's own checkpoint still runs, and its commits report.
  }
}, INTERVAL_MS);

port.on('message', () => {
  clearInterval(timer);
  db.close();
  port.close();
});
