import pg from 'pg';
import { errors, IntakeError } from '../../domain/errors.js';
import { eventToJson } from '../../domain/event.js';
import { asJsonText, type JsonText } from '../../domain/json-text.js';
import { IDENTITY_FIELDS } from '../../domain/hashed-id.js';
import { mappedIdentityIds, type Mapping } from '../../domain/mapping.js';
import type { Profile, ProfileTombstone } from '../../domain/profile.js';
import type { Session } from '../../domain/session.js';
import { newSource, patchSource, type Source, type SourceInput, type SourcePatch } from '../../domain/source.js';
import { GroupCommitter } from '../group-commit.js';
import { planBatch, type BatchLookup, type BatchWrites } from '../plan-batch.js';
import { claimantsOf, keyScope, withIdempotency, type Claim } from '../idempotency.js';
import {
  failedOnContent,
  isUnstorable,
  type CollectOutcome,
  type CollectUnit,
  type EventCursor,
  type EventQuery,
  type Page,
  type QuarantineEntry,
  type QuarantineQuery,
  type QuarantineSummary,
  type Store,
  type StoreLogger,
  type StoredResponse,
} from '../store.js';
import { ensurePartition, migrate, monthOf } from './migrate.js';
import { run, transaction, withClient, type Transaction } from './transaction.js';
import { watchHeldClients } from './watchdog.js';

/** Units per transaction: one multi-row insert per table per flush. */
const MAX_BATCH = 512;
/** A profile by its own id or by any id it answers to (profile_ids). */
const PROFILE_BY_ANY_ID =
  'SELECT doc::text AS doc FROM profiles WHERE id = COALESCE((SELECT profile_id FROM profile_ids WHERE id = $1), $1)';
/** Transactions in flight at once: the next batch is sent while the previous one commits. */
const MAX_IN_FLIGHT = 2;
const SOURCES_CHANNEL = 'intake_sources';
const RECONNECT_MS = 1000;
/**
 * Advisory locks are keyed by a hash of what they guard, with a seed of their own kind: sessions'
 * ids with 0, profiles' ids with 1, and the ids a profile is looked up by with 2.
 */
const SESSION_LOCK_SEED = 0;
const PROFILE_LOCK_SEED = 1;
const LOOKUP_LOCK_SEED = 2;
/** Times a batch that deadlocked is tried again before it answers 503 (finding 33). */
const DEADLOCK_RETRIES = 3;
const DEADLOCK_DETECTED = '40P01';
/** SQLSTATE classes of a value the database refuses: data exception, integrity, program limit. */
const CONTENT_CLASSES = new Set(['22', '23', '54']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A batch's documents travel as one text parameter, one per line, and the server splits them
 * (`documentsOf`). As a `json[]` parameter, pg escapes every quote of every document into an
 * array literal on the event loop, and the server unescapes it again (docs/performance.md). JSON
 * text as Intake writes it is compact: a line break can only be escaped inside a string, never
 * raw, which the check below makes sure of rather than let one document become two.
 */
const documentsOf = (param: string) => `string_to_array(${param}::text, E'\\n')::json[]`;
function documents(texts: string[]): string {
  for (const text of texts) if (text.includes('\n')) throw new Error('a document holds a raw line break');
  return texts.join('\n');
}

/**
 * A statement every batch sends, named after its text: pg then prepares each text once per
 * connection, and the server no longer parses and plans it for every batch (docs/performance.md,
 * finding 11). Only for statements whose text takes a few shapes: each keeps its name for good.
 */
const statementNames = new Map<string, string>();
function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `intake-${statementNames.size + 1}`));
  return { name, text, values };
}

/** Planning session-less events reads nothing; a lookup here would be a bug. */
const NO_LOOKUPS: BatchLookup = {
  session: () => Promise.reject(new Error('a session-less batch looked up a session')),
  profile: () => Promise.reject(new Error('a session-less batch looked up a profile')),
  profileIdOf: () => Promise.reject(new Error('a session-less batch looked up a profile id')),
};

/**
 * One value read once the advisory lock on `key` (of the kind `seed` names) is held: the read's
 * snapshot is taken after the lock, so it holds what the lock's last holder committed. Both go in
 * one round trip, the lock first.
 */
async function readLocked(client: pg.PoolClient, seed: number, key: string, sql: string): Promise<string | null> {
  const [, read] = await Promise.all([
    run(client, prepared(`SELECT pg_advisory_xact_lock(hashtextextended($1, ${seed}))`, [key])),
    run<{ v: string }>(client, prepared(sql, [key])),
  ]);
  return read.rows[0]?.v ?? null;
}

/** A profile's document, read with its lock held. */
const lockedProfile = (client: pg.PoolClient, id: string) =>
  readLocked(client, PROFILE_LOCK_SEED, id, 'SELECT doc::text AS v FROM profiles WHERE id = $1');

/** The session ids a batch's events name, each once. */
function sessionIdsOf(units: readonly CollectUnit[]): string[] {
  return [...new Set(units.flatMap((u) => u.events.flatMap((d) => (d.identity === null ? [] : [d.identity.sessionId]))))];
}

/**
 * The ids a batch may look profiles up by, each once: what its events identify a profile with,
 * and the hashed ids of the identity fields their mappings may set (`mappedIdentityIds`, a
 * superset of what planning looks up).
 */
function lookupIdsOf(units: readonly CollectUnit[]): string[] {
  const ids = new Set<string>();
  for (const unit of units)
    for (const d of unit.events) {
      if (d.identity === null) continue;
      if (d.identity.profile !== null) ids.add(d.identity.profile.lookupId);
      // Most mappings set no identity field: their events' properties are not parsed here.
      if (!d.mapping.some((m) => Object.hasOwn(IDENTITY_FIELDS, m.profile))) continue;
      const event = { type: d.type, properties: JSON.parse(d.properties) as unknown };
      for (const id of mappedIdentityIds(event, d.mapping, unit.hashKey)) ids.add(id);
    }
  return [...ids];
}

/**
 * What the opening read: a batch's sessions and the profiles' documents, by id (`null` for a
 * session not found), and the profile id each looked-up id belongs to (`null`: none).
 */
interface SessionsRead {
  sessionDocs: Map<string, string | null>;
  profileDocs: Map<string, string | null>;
  owners: Map<string, string | null>;
}

/**
 * What a transaction with sessions sends with its BEGIN, in the same round trip (finding 18 in
 * docs/performance.md): the batch's locks, then the reads of its sessions and profiles. Each
 * statement starts after the one before it ended, with a snapshot of its own, so a read sees
 * whatever the holder of a lock it waited for committed.
 *
 * The locks, each kind in key order (finding 33): first the ids the batch looks profiles up by
 * (an e-mail's hashed id, say), so that two batches finding no profile for one customer do not
 * both create one; then its sessions' ids; then the profiles those sessions and those ids belong
 * to. A batch changes a profile only while it holds the profile's lock, so two sessions of one
 * customer cannot overwrite each other's changes, and a pair of profiles found by two batches at
 * once is merged by one of them and found merged by the other. A profile that changed hands
 * between the lock statement's read and its lock (a merge elsewhere) is read later, with its
 * lock (`lockedProfile`): out of order, so two such batches can deadlock, and are tried again.
 */
function openingOf(units: readonly CollectUnit[], now: number): Opening {
  const statements: pg.QueryConfig[] = [];
  const ids = sessionIdsOf(units);
  const lookups = lookupIdsOf(units);
  let profileLocksAt: number | null = null;
  let sessionsAt: number | null = null;
  let ownersAt: number | null = null;
  const lockAll = (seed: number, keys: string[]) =>
    prepared(
      `SELECT pg_advisory_xact_lock(k)
         FROM (SELECT DISTINCT hashtextextended(id, ${seed}) AS k FROM unnest($1::text[]) AS id) AS keys
        ORDER BY k`,
      [keys],
    );
  if (lookups.length > 0) statements.push(lockAll(LOOKUP_LOCK_SEED, lookups));
  if (ids.length > 0) {
    statements.push(lockAll(SESSION_LOCK_SEED, ids));
    profileLocksAt = statements.length;
    const lock = (profiles: string) =>
      `SELECT profile_id, pg_advisory_xact_lock(hashtextextended(profile_id, ${PROFILE_LOCK_SEED}))
         FROM (${profiles}) AS profiles
        ORDER BY hashtextextended(profile_id, ${PROFILE_LOCK_SEED})`;
    statements.push(
      lookups.length === 0
        ? prepared(lock('SELECT DISTINCT profile_id FROM sessions WHERE id = ANY($1::text[]) AND profile_id IS NOT NULL'), [ids])
        : prepared(
            lock(`SELECT profile_id FROM sessions WHERE id = ANY($1::text[]) AND profile_id IS NOT NULL
                  UNION SELECT profile_id FROM profile_ids WHERE id = ANY($2::text[])
                  UNION SELECT id FROM profiles WHERE id = ANY($2::text[])`),
            [ids, lookups],
          ),
    );
    sessionsAt = statements.length;
    statements.push(
      prepared(
        // Each session's profile by its key, not joined: a prepared join was planned as a scan
        // of all the profiles while there were few, and kept (docs/performance.md, finding 31).
        `SELECT s.id, s.doc::text AS doc, s.profile_id,
                (SELECT p.doc::text FROM profiles p WHERE p.id = s.profile_id) AS profile
           FROM sessions s
          WHERE s.id = ANY($1::text[])`,
        [ids],
      ),
    );
    if (lookups.length > 0) {
      ownersAt = statements.length;
      statements.push(
        prepared(
          // The profile each looked-up id belongs to, as `BatchLookup.profileIdOf` finds it (an
          // index row first, else a profile's own id), with its document, read by its key.
          `SELECT i.id AS lookup, i.profile_id, (SELECT p.doc::text FROM profiles p WHERE p.id = i.profile_id) AS doc, true AS indexed
             FROM profile_ids i WHERE i.id = ANY($1::text[])
           UNION ALL
           SELECT id, id, doc::text, false FROM profiles WHERE id = ANY($1::text[])`,
          [lookups],
        ),
      );
    }
  }
  // The batch's idempotency keys, claimed after its locks, as every batch does, and in the keys'
  // order, so two batches claiming the same keys never wait for each other in a circle. ON
  // CONFLICT waits for a concurrent transaction holding a key, then sees its row; an expired key
  // is claimed again. Only the keys claimed come back.
  const claimants = claimantsOf(units);
  let claimsAt: number | null = null;
  if (claimants.length > 0) {
    claimsAt = statements.length;
    statements.push(
      prepared(
        `INSERT INTO idempotency (source_id, key, expires_at, response)
           SELECT source_id, key, expires_at, NULL
             FROM unnest($1::text[], $2::text[], $3::bigint[]) AS claims(source_id, key, expires_at)
            ORDER BY source_id, key
         ON CONFLICT (source_id, key) DO UPDATE SET expires_at = excluded.expires_at, response = NULL
           WHERE idempotency.expires_at <= $4
         RETURNING source_id, key`,
        [
          claimants.map((u) => u.sourceId),
          claimants.map((u) => u.idempotency!.key),
          claimants.map((u) => u.idempotency!.expiresAt),
          now,
        ],
      ),
    );
  }
  return { statements, readsSessions: ids, lookups, profileLocksAt, sessionsAt, ownersAt, claimsAt };
}

/** What a batch's transaction sends with its BEGIN, and where each result is among the replies. */
interface Opening {
  statements: pg.QueryConfig[];
  readsSessions: string[];
  /** The ids the batch looks profiles up by, locked and read. */
  lookups: string[];
  /** The index of the statement that locks the sessions' and looked-up profiles, when it reads sessions. */
  profileLocksAt: number | null;
  /** The index of the sessions' read among the statements, when it reads any. */
  sessionsAt: number | null;
  /** The index of the looked-up profiles' read, when it looks any up. */
  ownersAt: number | null;
  /** The index of the idempotency keys' claim, when the batch has keys. */
  claimsAt: number | null;
}

/**
 * The sessions the opening read, and the profiles it locked and read. A profile a session or an
 * id was moved to between the lock and the read (a merge elsewhere) was not locked: it is left
 * out, and read with its lock when planning asks for it.
 */
function sessionsRead(opening: Opening, opened: pg.QueryResult[]): SessionsRead {
  const sessionDocs = new Map<string, string | null>(opening.readsSessions.map((id) => [id, null]));
  const profileDocs = new Map<string, string | null>();
  const owners = new Map<string, string | null>();
  if (opening.sessionsAt === null || opening.profileLocksAt === null) return { sessionDocs, profileDocs, owners };
  const locked = new Set((opened[opening.profileLocksAt]!.rows as { profile_id: string }[]).map((row) => row.profile_id));
  const rows = opened[opening.sessionsAt]!.rows as { id: string; doc: string; profile_id: string | null; profile: string | null }[];
  for (const row of rows) {
    sessionDocs.set(row.id, row.doc);
    if (row.profile_id !== null && locked.has(row.profile_id)) profileDocs.set(row.profile_id, row.profile);
  }
  if (opening.ownersAt !== null) {
    const rows = opened[opening.ownersAt]!.rows as { lookup: string; profile_id: string; doc: string | null; indexed: boolean }[];
    for (const id of opening.lookups) owners.set(id, null);
    // An index row wins over a profile's own id, as in profileIdOf.
    for (const row of rows) if (row.indexed || owners.get(row.lookup) === null) owners.set(row.lookup, row.profile_id);
    for (const row of rows) if (locked.has(row.profile_id)) profileDocs.set(row.profile_id, row.doc);
  }
  return { sessionDocs, profileDocs, owners };
}

/**
 * The statement that writes a batch's profiles, id index rows, sessions and events: the first
 * three as data-modifying `WITH` clauses of the events' INSERT, so the batch pays one round trip
 * for them, not four. They are different tables, so no clause sees or touches another's rows.
 */
function rowsStatement(writes: Omit<BatchWrites, 'relinks' | 'outcomes'>): pg.QueryConfig {
  const params: unknown[] = [];
  const arg = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const clauses: string[] = [];
  if (writes.profiles.size > 0) {
    const profiles = [...writes.profiles];
    clauses.push(
      `profiles_written AS (INSERT INTO profiles (id, doc)
         SELECT * FROM unnest(${arg(profiles.map(([id]) => id))}::text[],
           ${documentsOf(arg(documents(profiles.map(([, doc]) => JSON.stringify(doc)))))})
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc)`,
    );
  }
  if (writes.profileIds.size > 0) {
    const ids = [...writes.profileIds];
    clauses.push(
      `ids_written AS (INSERT INTO profile_ids (id, profile_id)
         SELECT * FROM unnest(${arg(ids.map(([id]) => id))}::text[], ${arg(ids.map(([, profileId]) => profileId))}::text[])
         ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id
           WHERE profile_ids.profile_id IS DISTINCT FROM excluded.profile_id)`,
    );
  }
  if (writes.sessions.size > 0) {
    const touched = [...writes.sessions.values()];
    clauses.push(
      `sessions_written AS (INSERT INTO sessions (id, profile_id, doc)
         SELECT * FROM unnest(${arg(touched.map((t) => t.id))}::text[], ${arg(touched.map((t) => t.profile?.id ?? null))}::text[],
           ${documentsOf(arg(documents(touched.map((t) => JSON.stringify(t)))))})
         ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id, doc = excluded.doc)`,
    );
  }
  const events = writes.events;
  const insertEvents = `INSERT INTO events (id, inserted_at, type, source_id, session_id, profile_id, doc)
    SELECT * FROM unnest(${arg(events.map((e) => e.event.id))}::uuid[], ${arg(events.map((e) => e.event.time))}::timestamptz[],
      ${arg(events.map((e) => e.event.type))}::text[], ${arg(events.map((e) => e.event.sourceId))}::text[],
      ${arg(events.map((e) => e.event.sessionId))}::text[], ${arg(events.map((e) => e.event.profileId))}::text[],
      ${documentsOf(arg(documents(events.map((e) => eventToJson(e.event)))))})`;
  // One of eight texts, by which of the three clauses are present.
  return prepared(clauses.length > 0 ? `WITH ${clauses.join(', ')} ${insertEvents}` : insertEvents, params);
}

/**
 * The scale-out store: any number of stateless collector processes on one PostgreSQL database.
 * Same contract and documents as the embedded store. Cross-process rules rely on the database:
 * advisory transaction locks on session ids (one new session makes one profile, whichever process
 * sees it first), and NOTIFY for source changes.
 */
export class PostgresStore implements Store {
  private readonly committer: GroupCommitter<CollectUnit, CollectOutcome>;
  private readonly partitions = new Set<string>();
  /** Settles when the batch started last holds its locks; the next one takes its locks after. */
  private lockTurn: Promise<void> = Promise.resolve();
  private readonly stopWatchdog: () => void;

  static async open(
    url: string,
    { poolSize, timeoutMs }: { poolSize: number; timeoutMs: number },
    logger: StoreLogger,
  ): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      // Fail fast while the database is unreachable: the caller answers 503 and the sender retries.
      connectionTimeoutMillis: 3000,
      // A statement that runs longer, waits for locks included, is ended by the database (503);
      // a connection that stops answering altogether, by the watchdog below.
      statement_timeout: timeoutMs,
      // Statements a transaction sends together go out without waiting for each reply
      // (transaction.ts); one awaited at a time behaves as without it.
      pipeline: true,
    });
    // An idle connection dropped by the server must not crash the process; the pool reconnects.
    pool.on('error', (error) => logger.error({ cause: error.message }, 'idle database connection lost'));
    try {
      await migrate(pool);
      const store = new PostgresStore(url, pool, logger, timeoutMs);
      await store.ensureMonth(monthOf(new Date().toISOString()));
      return store;
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  private constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    private readonly logger: StoreLogger,
    timeoutMs: number,
  ) {
    // Every use of a connection is a few statements (a batch's transaction, a read): twice the
    // statement timeout is more than any of them takes while the database answers.
    this.stopWatchdog = watchHeldClients(pool, 2 * timeoutMs, (heldMs) =>
      this.logger.error({ heldMs }, 'database connection stopped answering; closed it'),
    );
    this.committer = new GroupCommitter(
      (units) => this.writeBatch(units),
      MAX_BATCH,
      (size, seconds) => this.logger.committed?.(size, seconds),
      MAX_IN_FLIGHT,
      isUnstorable,
    );
  }

  collect(unit: CollectUnit): Promise<CollectOutcome> {
    return this.committer.submit(unit);
  }

  /** The partitions of every month a batch's events fall in. */
  private async ensureMonths(units: CollectUnit[]): Promise<void> {
    for (const month of new Set(units.map((u) => monthOf(u.time)))) await this.ensureMonth(month);
  }

  private async ensureMonth(month: string): Promise<void> {
    if (this.partitions.has(month)) return;
    await ensurePartition(this.pool, month);
    this.partitions.add(month);
  }

  /** One transaction per flush (or one INSERT, below); a 200 is sent only after it committed. */
  private async writeBatch(units: CollectUnit[]): Promise<CollectOutcome[]> {
    const turn = this.takeLockTurn();
    if (units.every((u) => u.idempotency === null && u.events.every((d) => d.identity === null))) {
      // It takes no locks: it does not wait for its turn, and passes the turn on once the batch
      // before it holds its locks.
      void turn.previous.then(turn.done);
      return this.commitOrRefuse(() => this.insertSessionless(units));
    }
    try {
      return await this.commitOrRefuse(async () => {
        // Waited for before taking a connection: a batch waiting for its turn never holds one
        // that the batch ahead of it needs, even with a pool of one.
        await turn.previous;
        await this.ensureMonths(units);
        const opening = openingOf(units, Date.now());
        for (let retries = 0; ; retries++) {
          try {
            return await transaction(
              this.pool,
              (tx) => {
                // The locks are held once the opening returns.
                turn.done();
                return this.applyBatch(tx, units, opening);
              },
              opening.statements,
            );
          } catch (error) {
            // The database broke a circle of batches waiting for each other's locks by rolling
            // this one back (openingOf says when that can happen): nothing of it was written.
            if ((error as { code?: string }).code !== DEADLOCK_DETECTED || retries === DEADLOCK_RETRIES) throw error;
            this.logger.warn({ cause: (error as Error).message, retry: retries + 1 }, 'batch deadlocked; trying it again');
          }
        }
      });
    } finally {
      turn.done();
    }
  }

  /**
   * Two batches of this process can be in flight at once. They take their locks in the order they
   * were flushed, so a session's events still commit in arrival order: the later batch waits on
   * the session lock the earlier one already holds.
   */
  private takeLockTurn(): { previous: Promise<void>; done: () => void } {
    const previous = this.lockTurn;
    let done!: () => void;
    this.lockTurn = new Promise((resolve) => (done = resolve));
    return { previous, done };
  }

  /**
   * A batch of session-less events without idempotency keys reads nothing and writes only events:
   * one INSERT, which commits on its own, durably, without BEGIN and COMMIT round trips.
   */
  private async insertSessionless(units: CollectUnit[]): Promise<CollectOutcome[]> {
    await this.ensureMonths(units);
    const writes = await planBatch(units, NO_LOOKUPS);
    await run(this.pool, rowsStatement(writes));
    return writes.outcomes;
  }

  /**
   * Runs in the transaction `openingOf` began, which holds the batch's locks, read its sessions
   * and claimed its idempotency keys.
   */
  private async applyBatch(tx: Transaction, units: CollectUnit[], opening: Opening): Promise<CollectOutcome[]> {
    const { client, opened } = tx;
    // The batch's writes and the answers its keys keep, sent with the COMMIT in one round trip.
    const last: pg.QueryConfig[] = [];
    const outcomes = await withIdempotency(
      units,
      {
        claim: async (claimants) => {
          const rows = opening.claimsAt === null ? [] : (opened[opening.claimsAt]!.rows as { source_id: string; key: string }[]);
          const claimed = new Set(rows.map((row) => keyScope(row.source_id, row.key)));
          // A key used before: its first answer, read by its key (a join with the list of keys
          // can be planned as a scan of the whole table); all of them in one more round trip.
          return Promise.all(
            claimants.map(async (u): Promise<Claim> => {
              if (claimed.has(keyScope(u.sourceId, u.idempotency!.key))) return { claimed: true };
              const found = await run<{ response: StoredResponse | null }>(
                client,
                prepared('SELECT response FROM idempotency WHERE source_id = $1 AND key = $2', [u.sourceId, u.idempotency!.key]),
              );
              return { claimed: false, response: found.rows[0]?.response ?? null };
            }),
          );
        },
        // The claimed rows get their answers through their unique key: an UPDATE joined with the
        // list of answers was planned as a scan of the whole table while it was small, and kept
        // that plan as it grew (docs/performance.md, finding 30).
        remember: async (answers) => {
          last.push(
            prepared(
              `INSERT INTO idempotency (source_id, key, expires_at, response)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], ${documentsOf('$4')})
               ON CONFLICT (source_id, key) DO UPDATE SET response = excluded.response`,
              [
                answers.map(({ unit }) => unit.sourceId),
                answers.map(({ unit }) => unit.idempotency!.key),
                answers.map(({ unit }) => unit.idempotency!.expiresAt),
                documents(answers.map(({ response }) => JSON.stringify(response))),
              ],
            ),
          );
        },
      },
      async (fresh) => {
        const planned = await this.planFresh(client, fresh, sessionsRead(opening, opened));
        last.push(...planned.statements);
        return planned.outcomes;
      },
    );
    await tx.commitWith(...last);
    return outcomes;
  }

  /** Plans the fresh units; returns their outcomes and the statements that write them. */
  private async planFresh(
    client: pg.PoolClient,
    units: CollectUnit[],
    { sessionDocs, profileDocs, owners }: SessionsRead,
  ): Promise<{ outcomes: CollectOutcome[]; statements: pg.QueryConfig[] }> {
    const one = async (sql: string, id: string) => (await run<{ v: string }>(client, sql, [id])).rows[0]?.v ?? null;
    // The batch's sessions and their profiles were read up front, with its locks (openingOf), not
    // in two round trips per event (docs/performance.md); anything else planning needs is read
    // when it asks, a profile with its lock.
    const writes = await planBatch(units, {
      session: async (id) => {
        const doc = sessionDocs.has(id)
          ? (sessionDocs.get(id) as string | null)
          : await one('SELECT doc::text AS v FROM sessions WHERE id = $1', id);
        return doc === null ? null : (JSON.parse(doc) as Session);
      },
      profile: async (id) => {
        const doc = profileDocs.has(id) ? (profileDocs.get(id) as string | null) : await lockedProfile(client, id);
        return doc === null ? null : (JSON.parse(doc) as Profile | ProfileTombstone);
      },
      // Every id planning looks up was locked and read by the opening (lookupIdsOf); should one
      // not have been, it is locked before it is read, out of order.
      profileIdOf: async (anyId) =>
        owners.has(anyId)
          ? (owners.get(anyId) as string | null)
          : readLocked(
              client,
              LOOKUP_LOCK_SEED,
              anyId,
              'SELECT COALESCE((SELECT profile_id FROM profile_ids WHERE id = $1), (SELECT id FROM profiles WHERE id = $1)) AS v',
            ),
    });

    const statements = [
      ...writes.relinks.map(
        ({ from, to }): pg.QueryConfig => ({
          text: `UPDATE sessions SET profile_id = $1, doc = jsonb_set(doc::jsonb, '{profile,id}', to_jsonb($1::text))::json
                  WHERE profile_id = $2`,
          values: [to, from],
        }),
      ),
      rowsStatement(writes),
    ];
    return { outcomes: writes.outcomes, statements };
  }

  async getEvent(id: string): Promise<JsonText | null> {
    // The embedded store compares ids as text; a non-UUID simply matches nothing there too.
    if (!UUID.test(id)) return null;
    return this.document('SELECT doc::text AS doc FROM events WHERE id = $1', id);
  }

  async listEvents(query: EventQuery): Promise<Page<JsonText, EventCursor>> {
    if (query.profile === undefined) return this.readEvents(this.pool, query, null);
    // Events keep the profile id they were stored with; a merged profile answers for all of them.
    // Most ids asked for are a profile's own and it merged none, so the profile's read and a
    // read of the events under the id asked for go out together, pipelined on one connection:
    // one round trip instead of two (docs/performance.md, finding 23). Only an alias or a merged
    // profile needs a second read. Each read names its ids as values, so that the planner plans
    // it for them (one statement that found the ids itself was planned for an average profile,
    // and sorted every event of a large one).
    const asked = query.profile;
    const [ids, page] = await this.unavailableOnError('read failed', () =>
      withClient(this.pool, (client) =>
        Promise.all([this.profileEventIds(client, asked), this.readEvents(client, query, [asked])]),
      ),
    );
    return ids.length === 1 && ids[0] === asked ? page : this.readEvents(this.pool, query, ids);
  }

  /** A page of events newest first, of the given profile ids when not null. */
  private async readEvents(
    db: pg.Pool | pg.PoolClient,
    query: EventQuery,
    profileIds: string[] | null,
  ): Promise<Page<JsonText, EventCursor>> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: (n: number) => string, value: unknown) => {
      args.push(value);
      where.push(sql(args.length));
    };
    if (query.source !== undefined) add((n) => `source_id = $${n}`, query.source);
    if (query.type !== undefined) add((n) => `type = $${n}`, query.type);
    if (query.session !== undefined) add((n) => `session_id = $${n}`, query.session);
    if (profileIds !== null) add((n) => `profile_id = $${n}`, profileIds[0]);
    const profileCondition = profileIds === null ? undefined : where[where.length - 1];
    if (query.from !== undefined) add((n) => `inserted_at >= $${n}`, new Date(query.from).toISOString());
    if (query.to !== undefined) add((n) => `inserted_at < $${n}`, new Date(query.to).toISOString());
    if (query.cursor !== undefined) {
      args.push(new Date(query.cursor.time).toISOString(), query.cursor.seq);
      where.push(`(inserted_at, seq) < ($${args.length - 1}, $${args.length})`);
    }
    args.push(query.limit + 1);
    const order = `ORDER BY inserted_at DESC, seq DESC LIMIT $${args.length}`;
    const read = (conditions: string[]) =>
      `SELECT seq, inserted_at, doc FROM events` +
      (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '') +
      ` ${order}`;
    // Each read walks one index in order. A merged profile is one such read per id, the newest of
    // them winning: with `profile_id = ANY(…)` the planner may walk the primary key instead (seen
    // at 1,000,000 events, docs/performance.md).
    const reads = [read(where)];
    for (const id of profileIds?.slice(1) ?? []) {
      args.push(id);
      reads.push(read(where.map((c) => (c === profileCondition ? `profile_id = $${args.length}` : c))));
    }
    const sql =
      `SELECT seq, (extract(epoch FROM inserted_at) * 1000)::bigint AS time, doc::text AS doc` +
      ` FROM (${reads.map((r) => `(${r})`).join(' UNION ALL ')}) AS page ${order}`;
    const rows = await this.unavailableOnError('read failed', async () => {
      const result = await run<{ seq: string; time: string; doc: string }>(db, sql, args);
      return result.rows;
    });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => asJsonText(r.doc)),
      next:
        rows.length > query.limit && last !== undefined ? { time: Number(last.time), seq: Number(last.seq) } : null,
    };
  }

  /** Every profile id the events of this profile may carry: its own and those merged into it. */
  private async profileEventIds(db: pg.PoolClient, anyId: string): Promise<string[]> {
    const found = await run<{ doc: string }>(db, PROFILE_BY_ANY_ID, [anyId]);
    const doc = found.rows[0]?.doc;
    if (doc === undefined) return [anyId];
    const profile = JSON.parse(doc) as Profile;
    return [profile.id, ...(profile.metadata.merged_from ?? [])];
  }

  getSession(id: string): Promise<JsonText | null> {
    return this.document('SELECT doc::text AS doc FROM sessions WHERE id = $1', id);
  }

  getProfile(anyId: string): Promise<JsonText | null> {
    return this.document(PROFILE_BY_ANY_ID, anyId);
  }

  async getSource(id: string): Promise<Source | null> {
    const doc = await this.document('SELECT doc::text AS doc FROM sources WHERE id = $1', id);
    return doc === null ? null : (JSON.parse(doc) as Source);
  }

  async listSources(limit: number, after = ''): Promise<Page<Source, string>> {
    const docs = await this.documents('SELECT doc::text AS doc FROM sources WHERE id > $1 ORDER BY id LIMIT $2', [
      after,
      limit + 1,
    ]);
    const items = docs.slice(0, limit).map((d) => JSON.parse(d) as Source);
    return { items, next: docs.length > limit ? (items[items.length - 1]?.id ?? null) : null };
  }

  async allSources(): Promise<Source[]> {
    return (await this.documents('SELECT doc::text AS doc FROM sources ORDER BY id', [])).map(
      (d) => JSON.parse(d) as Source,
    );
  }

  async createSource(input: SourceInput & { id: string }): Promise<Source> {
    const source = newSource(input, input.id, new Date().toISOString());
    const inserted = await this.sourceTransaction(async (client) => {
      const result = await run(client, 'INSERT INTO sources (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [
        source.id,
        JSON.stringify(source),
      ]);
      return (result.rowCount ?? 0) > 0;
    });
    if (!inserted) throw errors.sourceExists(source.id);
    return source;
  }

  updateSource(id: string, patch: SourcePatch): Promise<Source | null> {
    return this.sourceTransaction(async (client) => {
      const found = await run<{ doc: string }>(client, 'SELECT doc::text AS doc FROM sources WHERE id = $1 FOR UPDATE', [
        id,
      ]);
      const row = found.rows[0];
      if (row === undefined) return null;
      const source = patchSource(JSON.parse(row.doc) as Source, patch, new Date().toISOString());
      await run(client, 'UPDATE sources SET doc = $1 WHERE id = $2', [JSON.stringify(source), id]);
      return source;
    });
  }

  deleteSource(id: string): Promise<boolean> {
    return this.sourceTransaction(async (client) => {
      const result = await run(client, 'DELETE FROM sources WHERE id = $1', [id]);
      return (result.rowCount ?? 0) > 0;
    });
  }

  async sourcesVersion(): Promise<number> {
    return this.unavailableOnError('read failed', async () => {
      const result = await run<{ value: string }>(this.pool, "SELECT value FROM meta WHERE key = 'sources_version'");
      return Number(result.rows[0]?.value ?? 0);
    });
  }

  /**
   * Calls `onChange` when any process changes a source (LISTEN/NOTIFY), and after every reconnect,
   * since a notification may have been missed while disconnected.
   */
  watchSources(onChange: () => void): () => void {
    let client: pg.Client | null = null;
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    const reconnectLater = () => {
      if (stopped || timer !== null) return;
      timer = setTimeout(() => {
        timer = null;
        void listen();
      }, RECONNECT_MS);
      timer.unref();
    };
    const listen = async () => {
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 3000 });
      c.on('error', () => reconnectLater());
      c.on('end', () => reconnectLater());
      c.on('notification', () => onChange());
      try {
        await c.connect();
        await run(c, `LISTEN ${SOURCES_CHANNEL}`);
        if (stopped) return void c.end().catch(() => undefined);
        client = c;
        onChange();
      } catch {
        c.end().catch(() => undefined);
        reconnectLater();
      }
    };
    void listen();
    return () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      client?.end().catch(() => undefined);
    };
  }

  async profileHashKey(candidate: string): Promise<string> {
    return this.unavailableOnError('settings failed', async () => {
      await run(this.pool, 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
        'profile_hash_key',
        candidate,
      ]);
      const result = await run<{ value: string }>(this.pool, 'SELECT value FROM settings WHERE key = $1', [
        'profile_hash_key',
      ]);
      return result.rows[0]!.value;
    });
  }

  async listMappings(): Promise<Mapping[]> {
    return (await this.documents('SELECT doc::text AS doc FROM mappings ORDER BY id', [])).map(
      (d) => JSON.parse(d) as Mapping,
    );
  }

  async getMapping(id: string): Promise<Mapping | null> {
    const doc = await this.document('SELECT doc::text AS doc FROM mappings WHERE id = $1', id);
    return doc === null ? null : (JSON.parse(doc) as Mapping);
  }

  async saveMapping(mapping: Mapping): Promise<void> {
    await this.sourceTransaction(async (client) => {
      await run(
        client,
        'INSERT INTO mappings (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc',
        [mapping.id, JSON.stringify(mapping)],
      );
    });
  }

  deleteMapping(id: string): Promise<boolean> {
    return this.sourceTransaction(async (client) => {
      const result = await run(client, 'DELETE FROM mappings WHERE id = $1', [id]);
      return (result.rowCount ?? 0) > 0;
    });
  }

  async quarantine(entry: QuarantineEntry, maxPerSource: number): Promise<number> {
    const { body, ...doc } = entry;
    return this.unavailableOnError('quarantine failed', () =>
      transaction(this.pool, async ({ client }) => {
        await run(client, 'INSERT INTO quarantine (id, source_id, reason, doc, body) VALUES ($1, $2, $3, $4, $5)', [
          entry.id,
          entry.source,
          entry.reason,
          JSON.stringify(doc),
          body,
        ]);
        const dropped = await run(
          client,
          `DELETE FROM quarantine WHERE seq IN
             (SELECT seq FROM quarantine WHERE source_id = $1 ORDER BY seq DESC OFFSET $2)`,
          [entry.source, maxPerSource],
        );
        return dropped.rowCount ?? 0;
      }),
    );
  }

  async listQuarantine(query: QuarantineQuery): Promise<Page<QuarantineSummary, number>> {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [sql, value] of [
      ['source_id = $', query.source],
      ['reason = $', query.reason],
      ['seq < $', query.cursor],
    ] as const) {
      if (value === undefined) continue;
      args.push(value);
      where.push(`${sql}${args.length}`);
    }
    args.push(query.limit + 1);
    const sql =
      'SELECT seq, doc::text AS doc, octet_length(body) AS size FROM quarantine' +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY seq DESC LIMIT $${args.length}`;
    const rows = await this.unavailableOnError('read failed', async () => {
      return (await run<{ seq: string; doc: string; size: number }>(this.pool, sql, args)).rows;
    });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({ ...(JSON.parse(r.doc) as Omit<QuarantineSummary, 'size'>), size: Number(r.size) })),
      next: rows.length > query.limit && last !== undefined ? Number(last.seq) : null,
    };
  }

  async getQuarantine(id: string): Promise<QuarantineEntry | null> {
    if (!UUID.test(id)) return null;
    const rows = await this.unavailableOnError('read failed', async () => {
      return (await run<{ doc: string; body: Buffer }>(this.pool, 'SELECT doc::text AS doc, body FROM quarantine WHERE id = $1', [id])).rows;
    });
    const row = rows[0];
    return row === undefined ? null : { ...(JSON.parse(row.doc) as Omit<QuarantineEntry, 'body'>), body: row.body };
  }

  async quarantineSize(): Promise<number> {
    return this.unavailableOnError('read failed', async () => {
      return Number((await run<{ n: string }>(this.pool, 'SELECT count(*) AS n FROM quarantine')).rows[0]?.n ?? 0);
    });
  }

  async deleteQuarantine(id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    return this.unavailableOnError('delete failed', async () => {
      return ((await run(this.pool, 'DELETE FROM quarantine WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  async health(): Promise<void> {
    await this.unavailableOnError('health check failed', () => run(this.pool, 'SELECT 1'));
  }

  /**
   * Lets the batches in flight commit, then ends the pool. The watchdog stops only once the pool
   * has ended: the pool waits for every client still held, and one whose reply the network lost
   * (a source poll sent just before) would otherwise hold the stop for good.
   */
  async close(): Promise<void> {
    try {
      await this.committer.drain();
      await this.pool.end();
    } finally {
      this.stopWatchdog();
    }
  }

  /** A source change: the write, the version bump and the NOTIFY commit together. */
  private sourceTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.unavailableOnError('source change failed', () =>
      transaction(this.pool, async ({ client }) => {
        const result = await fn(client);
        await run(client, "UPDATE meta SET value = value + 1 WHERE key = 'sources_version'");
        await run(client, `NOTIFY ${SOURCES_CHANNEL}`);
        return result;
      }),
    );
  }

  private async document(sql: string, id: string): Promise<JsonText | null> {
    const [doc] = await this.documents(sql, [id]);
    return doc === undefined ? null : asJsonText(doc);
  }

  private documents(sql: string, args: unknown[]): Promise<string[]> {
    return this.unavailableOnError('read failed', async () => {
      const result = await run<{ doc: string }>(this.pool, sql, args);
      return result.rows.map((r) => r.doc);
    });
  }

  /**
   * A batch that failed on what a unit holds (a text PostgreSQL cannot hold, a value too large for
   * an index, a fault of Intake's own code on it) is refused as unstorable, and the committer tries
   * its units one by one (group-commit.ts); any other failure is the store being unavailable.
   */
  private async commitOrRefuse<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof IntakeError) throw error;
      if (!failedOnContent(error, (code) => CONTENT_CLASSES.has(code.slice(0, 2)))) {
        this.logger.error({ cause: (error as Error).message }, 'commit failed');
        throw errors.storeUnavailable();
      }
      this.logger.error({ cause: (error as Error).message }, 'commit refused what a request holds');
      throw errors.unstorable();
    }
  }

  /**
   * Database failures reach the caller as "unavailable" (503), with the cause in the log; a value
   * the database refuses to take (a NUL in a text, a time out of its range: a data exception) is
   * the request's, and a 422.
   */
  private async unavailableOnError<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof IntakeError) throw error;
      if ((error as { code?: unknown }).code?.toString().startsWith('22') === true) throw errors.valueNotStorable();
      this.logger.error({ cause: (error as Error).message }, what);
      throw errors.storeUnavailable();
    }
  }
}
