import type { CollectOutcome, CollectUnit, StoredResponse } from './store.js';

/** A store's answer to "may this unit use its key?": yes, or what the key's first use answered. */
export type Claim = { claimed: true } | { claimed: false; response: StoredResponse | null };

/**
 * Exactly-once storage of retried deliveries (hardening.md §2), inside a store's transaction:
 * each unit with a key claims it (an atomic insert on a unique key, never read-then-write); only
 * units that claimed theirs are planned and written, and their response is remembered with the
 * key. A retry answers with the first response. A retry in the same batch as its original
 * answers with the original's outcome.
 */
export async function withIdempotency(
  units: readonly CollectUnit[],
  store: {
    claim(unit: CollectUnit): Promise<Claim>;
    remember(unit: CollectUnit, response: StoredResponse): Promise<void>;
  },
  plan: (fresh: CollectUnit[]) => Promise<CollectOutcome[]>,
): Promise<CollectOutcome[]> {
  // The first unit with each key claims it; a later one in the batch is a retry of that one.
  const firstWith = new Map<string, number>();
  const scopes: (string | null)[] = units.map((unit, i) => {
    if (unit.idempotency === null) return null;
    const scope = `${unit.sourceId}\u0000${unit.idempotency.key}`;
    if (!firstWith.has(scope)) firstWith.set(scope, i);
    return scope;
  });
  // All claims at once: on a pipelined PostgreSQL connection they go out in one round trip, and
  // the server still runs them in this order.
  const claims = new Map(
    await Promise.all([...firstWith.values()].map(async (i) => [i, await store.claim(units[i] as CollectUnit)] as const)),
  );
  const replays = new Map<number, StoredResponse | number>();
  const fresh: number[] = [];
  for (const [i, scope] of scopes.entries()) {
    if (scope === null) {
      fresh.push(i);
      continue;
    }
    const first = firstWith.get(scope) as number;
    const claim = claims.get(first) as Claim;
    if (claim.claimed) {
      if (first === i) fresh.push(i);
      else replays.set(i, first);
    } else if (claim.response !== null) replays.set(i, claim.response);
    else throw new Error('idempotency key claimed without a response');
  }

  const planned = await plan(fresh.map((i) => units[i] as CollectUnit));
  const outcomes: CollectOutcome[] = new Array(units.length);
  for (const [k, i] of fresh.entries()) {
    const unit = units[i] as CollectUnit;
    const outcome = planned[k] as CollectOutcome;
    outcomes[i] = outcome;
    if (unit.idempotency !== null)
      await store.remember(unit, { task: unit.task, events: unit.events.map((e) => e.id), ...outcome });
  }
  for (const [i, replay] of replays) {
    const original = typeof replay === 'number' ? (outcomes[replay] as CollectOutcome) : null;
    const first = units[replay as number];
    const response =
      original === null || first === undefined
        ? (replay as StoredResponse)
        : { task: first.task, events: first.events.map((e) => e.id), sessionId: original.sessionId, profileId: original.profileId };
    outcomes[i] = { sessionId: response.sessionId, profileId: response.profileId, replay: response };
  }
  return outcomes;
}
