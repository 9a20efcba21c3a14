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
  const claimedIn = new Map<string, number>();
  const replays = new Map<number, StoredResponse | number>();
  const fresh: number[] = [];
  for (const [i, unit] of units.entries()) {
    if (unit.idempotency === null) {
      fresh.push(i);
      continue;
    }
    const scope = `${unit.sourceId}\u0000${unit.idempotency.key}`;
    const earlier = claimedIn.get(scope);
    if (earlier !== undefined) {
      replays.set(i, earlier);
      continue;
    }
    const claim = await store.claim(unit);
    if (claim.claimed) {
      claimedIn.set(scope, i);
      fresh.push(i);
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
