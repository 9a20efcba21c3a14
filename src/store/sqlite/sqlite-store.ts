import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { errors } from '../../domain/errors.js';
import { asJsonText, type JsonText } from '../../domain/json-text.js';
import type { Mapping } from '../../domain/mapping.js';
import type { Profile } from '../../domain/profile.js';
import { newSource, patchSource, type Source, type SourceInput, type SourcePatch } from '../../domain/source.js';
import { GroupCommitter } from '../group-commit.js';
import { isUnstorable } from '../store.js';
import type {
  CollectOutcome,
  CollectUnit,
  EventCursor,
  EventQuery,
  Page,
  QuarantineEntry,
  QuarantineQuery,
  QuarantineSummary,
  Store,
  StoreLogger,
} from '../store.js';
import { migrate, openDatabase } from './schema.js';
import type { WriterReply, WriterRequest } from './writer-worker.js';

/**
 * Starts one of this folder's workers (writer-worker, checkpoint-worker) in a thread. Built, it is
 * plain JavaScript; under the test runner the sources are TypeScript, so the thread first
 * registers tsx (a dev dependency) to load them.
 */
function startThread(name: string, path: string, extra: { replies?: MessagePort; answered?: Int32Array } = {}): Worker {
  const url = new URL(import.meta.url.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, import.meta.url);
  const workerData = { path, ...extra };
  const transferList = extra.replies !== undefined ? [extra.replies] : [];
  if (url.pathname.endsWith('.js')) return new Worker(url, { workerData, transferList });
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData, transferList });
}

/** Units per transaction; large enough to amortise the fsync, small enough to bound latency. */
const MAX_BATCH = 512;

/**
 * The embedded store: one SQLite file in the data dir. Collector writes go to a writer thread in
 * groups (group-commit.ts); reads and the rare source changes use this thread's own connection,
 * which WAL lets run beside the writer.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly committer: GroupCommitter<CollectUnit, CollectOutcome>;
  private worker: Worker | null = null;
  private checkpointer: Worker | null = null;
  private inflight: { resolve: (o: CollectOutcome[]) => void; reject: (e: unknown) => void } | null = null;
  /** The writer's answers, on a channel of their own so that they can be taken synchronously. */
  private replies: MessagePort | null = null;
  /** Set to 1 by the writer after it posts an answer: a look costs nothing per request. */
  private readonly answered = new Int32Array(new SharedArrayBuffer(4));
  private nextBatchId = 1;
  private readonly statements;
  private readonly listStatements = new Map<string, Database.Statement>();

  static open(dataDir: string, logger: StoreLogger): SqliteStore {
    mkdirSync(dataDir, { recursive: true });
    return new SqliteStore(join(dataDir, 'intake.sqlite'), logger);
  }

  private constructor(
    private readonly path: string,
    private readonly logger: StoreLogger,
  ) {
    this.db = openDatabase(path);
    // Checkpoints are the writer thread's (writer-worker.ts); one here would stop the event loop.
    this.db.pragma('wal_autocheckpoint = 0');
    migrate(this.db);
    this.committer = new GroupCommitter(
      (units) => this.writeBatch(units),
      MAX_BATCH,
      (size, seconds) => this.logger.committed?.(size, seconds),
      1,
      isUnstorable,
    );
    this.statements = {
      event: this.db.prepare<[string], string>('SELECT doc FROM events WHERE id = ?').pluck(),
      session: this.db.prepare<[string], string>('SELECT doc FROM sessions WHERE id = ?').pluck(),
      profile: this.db
        .prepare<{ id: string }, string>(
          'SELECT doc FROM profiles WHERE id = COALESCE((SELECT profile_id FROM profile_ids WHERE id = @id), @id)',
        )
        .pluck(),
      source: this.db.prepare<[string], string>('SELECT doc FROM sources WHERE id = ?').pluck(),
      sourcesAfter: this.db
        .prepare<[string, number], string>('SELECT doc FROM sources WHERE id > ? ORDER BY id LIMIT ?')
        .pluck(),
      allSources: this.db.prepare<[], string>('SELECT doc FROM sources ORDER BY id').pluck(),
      insertSource: this.db.prepare('INSERT INTO sources (id, doc) VALUES (?, ?) ON CONFLICT (id) DO NOTHING'),
      updateSource: this.db.prepare('UPDATE sources SET doc = ? WHERE id = ?'),
      deleteSource: this.db.prepare('DELETE FROM sources WHERE id = ?'),
      bumpSources: this.db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'sources_version'"),
      sourcesVersion: this.db.prepare<[], number>("SELECT value FROM meta WHERE key = 'sources_version'").pluck(),
      ping: this.db.prepare('SELECT 1'),
      insertSetting: this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
      setting: this.db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck(),
      mappings: this.db.prepare<[], string>('SELECT doc FROM mappings ORDER BY id').pluck(),
      mapping: this.db.prepare<[string], string>('SELECT doc FROM mappings WHERE id = ?').pluck(),
      saveMapping: this.db.prepare(
        'INSERT INTO mappings (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc',
      ),
      deleteMapping: this.db.prepare('DELETE FROM mappings WHERE id = ?'),
      insertQuarantine: this.db.prepare('INSERT INTO quarantine (id, source_id, reason, doc, body) VALUES (?, ?, ?, ?, ?)'),
      trimQuarantine: this.db.prepare(
        `DELETE FROM quarantine WHERE source_id = ? AND seq IN
           (SELECT seq FROM quarantine WHERE source_id = ? ORDER BY seq DESC LIMIT -1 OFFSET ?)`,
      ),
      quarantined: this.db.prepare<[string], { doc: string; body: Buffer }>('SELECT doc, body FROM quarantine WHERE id = ?'),
      deleteQuarantine: this.db.prepare('DELETE FROM quarantine WHERE id = ?'),
    };
  }

  collect(unit: CollectUnit): Promise<CollectOutcome> {
    const outcome = this.committer.submit(unit);
    this.takeWriterReply();
    return outcome;
  }

  /**
   * Takes the writer's answer now if it has committed, instead of when the event loop reaches
   * its message: under load that is after every request already read in this turn, and the
   * writer waited that long for its next batch (docs/performance.md, finding 14). The answer's
   * message stays the fallback when no request comes.
   */
  private takeWriterReply(): void {
    if (this.replies === null || Atomics.load(this.answered, 0) === 0) return;
    Atomics.store(this.answered, 0, 0);
    this.takeReplies(this.replies);
  }

  /** Every answer waiting on `port`, in the order the writer sent them. */
  private takeReplies(port: MessagePort): void {
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) this.onReply(m.message as WriterReply);
  }

  private onReply(reply: WriterReply): void {
    const inflight = this.inflight;
    this.inflight = null;
    if (reply.ok) inflight?.resolve(reply.outcomes);
    else if (reply.content) {
      this.logger.error({ cause: reply.message }, 'commit refused what a request holds');
      inflight?.reject(errors.unstorable());
    } else {
      this.logger.error({ cause: reply.message }, 'commit failed');
      inflight?.reject(errors.storeUnavailable());
    }
  }

  private writeBatch(units: CollectUnit[]): Promise<CollectOutcome[]> {
    return new Promise((resolve, reject) => {
      this.inflight = { resolve, reject };
      const request: WriterRequest = { id: this.nextBatchId++, units };
      this.writer().postMessage(request);
    });
  }

  private writer(): Worker {
    if (this.worker !== null) return this.worker;
    const { port1, port2 } = new MessageChannel();
    const worker = startThread('writer-worker', this.path, { replies: port2, answered: this.answered });
    this.checkpointer ??= this.startCheckpointer();
    this.replies?.close();
    this.replies = port1;
    port1.on('message', (reply: WriterReply) => this.onReply(reply));
    // The worker keeps the process alive while it runs; the port need not.
    port1.unref();
    const lost = (cause: unknown) => {
      // 'error' and then 'exit' both come; by the second, a new thread may hold the next batch.
      if (this.worker !== worker) return;
      this.worker = null;
      // An answer posted before the thread stopped still counts: that batch is committed.
      this.takeReplies(port1);
      if (this.replies === port1) this.replies = null;
      port1.close();
      if (this.inflight !== null) {
        this.logger.error({ cause: String(cause) }, 'writer thread stopped');
        this.inflight.reject(errors.storeUnavailable());
        this.inflight = null;
      }
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(`exit ${code}`));
    this.worker = worker;
    return worker;
  }

  /** The checkpoint thread (checkpoint-worker.ts); if it ever fails, the writer's own checkpoints still run. */
  private startCheckpointer(): Worker {
    const checkpointer = startThread('checkpoint-worker', this.path);
    checkpointer.on('error', (cause) => this.logger.error({ cause: String(cause) }, 'checkpoint thread stopped'));
    checkpointer.on('exit', () => {
      if (this.checkpointer === checkpointer) this.checkpointer = null;
    });
    return checkpointer;
  }

  async getEvent(id: string): Promise<JsonText | null> {
    const doc = this.read(() => this.statements.event.get(id));
    return doc === undefined ? null : asJsonText(doc);
  }

  async listEvents(query: EventQuery): Promise<Page<JsonText, EventCursor>> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const filters = [
      ['source_id', query.source],
      ['type', query.type],
      ['session_id', query.session],
    ] as const;
    for (const [column, value] of filters) {
      if (value !== undefined) {
        where.push(`${column} = ?`);
        args.push(value);
      }
    }
    if (query.profile !== undefined) {
      // Events keep the profile id they were stored with; a merged profile answers for all of them.
      const ids = this.profileEventIds(query.profile);
      where.push(`profile_id IN (${ids.map(() => '?').join(', ')})`);
      args.push(...ids);
    }
    if (query.from !== undefined) {
      where.push('inserted_at >= ?');
      args.push(query.from);
    }
    if (query.to !== undefined) {
      where.push('inserted_at < ?');
      args.push(query.to);
    }
    if (query.cursor !== undefined) {
      where.push('(inserted_at, seq) < (?, ?)');
      args.push(query.cursor.time, query.cursor.seq);
    }
    const sql =
      `SELECT seq, inserted_at AS time, doc FROM events` +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY inserted_at DESC, seq DESC LIMIT ?`;
    let statement = this.listStatements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    const rows = this.read(
      () => statement.all(...args, query.limit + 1) as { seq: number; time: number; doc: string }[],
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => asJsonText(r.doc)),
      next: rows.length > query.limit && last !== undefined ? { time: last.time, seq: last.seq } : null,
    };
  }

  /** Every profile id the events of this profile may carry: its own and those merged into it. */
  private profileEventIds(anyId: string): string[] {
    const doc = this.read(() => this.statements.profile.get({ id: anyId }));
    if (doc === undefined) return [anyId];
    const profile = JSON.parse(doc) as Profile;
    return [profile.id, ...(profile.metadata.merged_from ?? [])];
  }

  async getSession(id: string): Promise<JsonText | null> {
    const doc = this.read(() => this.statements.session.get(id));
    return doc === undefined ? null : asJsonText(doc);
  }

  async getProfile(anyId: string): Promise<JsonText | null> {
    const doc = this.read(() => this.statements.profile.get({ id: anyId }));
    return doc === undefined ? null : asJsonText(doc);
  }

  async getSource(id: string): Promise<Source | null> {
    const doc = this.read(() => this.statements.source.get(id));
    return doc === undefined ? null : (JSON.parse(doc) as Source);
  }

  async listSources(limit: number, after = ''): Promise<Page<Source, string>> {
    const docs = this.read(() => this.statements.sourcesAfter.all(after, limit + 1));
    const items = docs.slice(0, limit).map((d) => JSON.parse(d) as Source);
    return { items, next: docs.length > limit ? (items[items.length - 1]?.id ?? null) : null };
  }

  async allSources(): Promise<Source[]> {
    return this.read(() => this.statements.allSources.all()).map((d) => JSON.parse(d) as Source);
  }

  async createSource(input: SourceInput & { id: string }): Promise<Source> {
    const source = newSource(input, input.id, new Date().toISOString());
    const inserted = this.write(() => {
      const { changes } = this.statements.insertSource.run(source.id, JSON.stringify(source));
      if (changes > 0) this.statements.bumpSources.run();
      return changes > 0;
    });
    if (!inserted) throw errors.sourceExists(source.id);
    return source;
  }

  async updateSource(id: string, patch: SourcePatch): Promise<Source | null> {
    return this.write(() => {
      const doc = this.statements.source.get(id);
      if (doc === undefined) return null;
      const source = patchSource(JSON.parse(doc) as Source, patch, new Date().toISOString());
      this.statements.updateSource.run(JSON.stringify(source), id);
      this.statements.bumpSources.run();
      return source;
    });
  }

  async deleteSource(id: string): Promise<boolean> {
    return this.write(() => {
      const { changes } = this.statements.deleteSource.run(id);
      if (changes > 0) this.statements.bumpSources.run();
      return changes > 0;
    });
  }

  /** Other processes' changes are found by the source cache's polling of `sourcesVersion`. */
  watchSources(): () => void {
    return () => undefined;
  }

  async sourcesVersion(): Promise<number> {
    return this.read(() => this.statements.sourcesVersion.get() ?? 0);
  }

  async profileHashKey(candidate: string): Promise<string> {
    return this.write(() => {
      this.statements.insertSetting.run('profile_hash_key', candidate);
      return this.statements.setting.get('profile_hash_key') as string;
    });
  }

  async listMappings(): Promise<Mapping[]> {
    return this.read(() => this.statements.mappings.all()).map((d) => JSON.parse(d) as Mapping);
  }

  async getMapping(id: string): Promise<Mapping | null> {
    const doc = this.read(() => this.statements.mapping.get(id));
    return doc === undefined ? null : (JSON.parse(doc) as Mapping);
  }

  async saveMapping(mapping: Mapping): Promise<void> {
    this.write(() => {
      this.statements.saveMapping.run(mapping.id, JSON.stringify(mapping));
      this.statements.bumpSources.run();
    });
  }

  async deleteMapping(id: string): Promise<boolean> {
    return this.write(() => {
      const { changes } = this.statements.deleteMapping.run(id);
      if (changes > 0) this.statements.bumpSources.run();
      return changes > 0;
    });
  }

  async quarantine(entry: QuarantineEntry, maxPerSource: number): Promise<number> {
    const { body, ...doc } = entry;
    return this.write(() => {
      this.statements.insertQuarantine.run(entry.id, entry.source, entry.reason, JSON.stringify(doc), body);
      return this.statements.trimQuarantine.run(entry.source, entry.source, maxPerSource).changes;
    });
  }

  async listQuarantine(query: QuarantineQuery): Promise<Page<QuarantineSummary, number>> {
    const filters = [
      ['source_id = ?', query.source],
      ['reason = ?', query.reason],
      ['seq < ?', query.cursor],
    ] as const;
    const used = filters.filter(([, value]) => value !== undefined);
    const where = used.map(([sql]) => sql);
    const args = used.map(([, value]) => value as string | number);
    const sql =
      'SELECT seq, doc, length(body) AS size FROM quarantine' +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY seq DESC LIMIT ?';
    const rows = this.read(
      () => this.db.prepare(sql).all(...args, query.limit + 1) as { seq: number; doc: string; size: number }[],
    );
    const page = rows.slice(0, query.limit);
    return {
      items: page.map((r) => ({ ...(JSON.parse(r.doc) as Omit<QuarantineSummary, 'size'>), size: r.size })),
      next: rows.length > query.limit ? (page[page.length - 1]?.seq ?? null) : null,
    };
  }

  async getQuarantine(id: string): Promise<QuarantineEntry | null> {
    const row = this.read(() => this.statements.quarantined.get(id));
    return row === undefined ? null : { ...(JSON.parse(row.doc) as Omit<QuarantineEntry, 'body'>), body: row.body };
  }

  async quarantineSize(): Promise<number> {
    return this.read(() => this.db.prepare<[], number>('SELECT count(*) FROM quarantine').pluck().get() ?? 0);
  }

  async deleteQuarantine(id: string): Promise<boolean> {
    return this.write(() => this.statements.deleteQuarantine.run(id).changes > 0);
  }

  async health(): Promise<void> {
    this.read(() => this.statements.ping.get());
  }

  async close(): Promise<void> {
    await this.committer.drain();
    const threads = [this.worker, this.checkpointer];
    this.worker = null;
    this.checkpointer = null;
    // The writer first: its last commit is in before the checkpoint thread lets go.
    for (const thread of threads) {
      if (thread === null) continue;
      const exited = new Promise((resolve) => thread.once('exit', resolve));
      thread.postMessage({ close: true });
      await exited;
    }
    this.replies?.close();
    this.replies = null;
    this.db.close();
  }

  /** Runs a read; a failing database is "unavailable" to the caller, with the cause in the log. */
  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      this.logger.error({ cause: String(error) }, 'read failed');
      throw errors.storeUnavailable();
    }
  }

  private write<T>(fn: () => T): T {
    return this.read(() => this.db.transaction(fn).immediate());
  }
}
