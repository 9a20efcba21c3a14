import type { CollectOutcome, CollectUnit, StoredResponse } from './store.js';

/** A store's answer to "may this unit use its key?": yes, or what the key's first use answered. */
export type Claim = { claimed: true } | { claimed: false; response: StoredResponse | null };

/** A key where it is unique: keys are scoped to their source. */
export const keyScope = (sourceId: string, key: string): string => `${sourceId}\u0000${key}`;

/** A unit's key where it is unique, or null without a key. */
const scopeOf = (unit: CollectUnit): string | null =>
  unit.idempotency === null ? null : keyScope(unit.sourceId, unit.idempotency.key);

/** The index of the first unit with each key, in batch order. */
function claimantIndices(units: readonly CollectUnit[]): Map<string, number> {
  const first = new Map<string, number>();
  for (const [i, unit] of units.entries()) {
    const scope = scopeOf(unit);
    if (scope !== null && !first.has(scope)) first.set(scope, i);
  }
  return first;
}

/**
 * The units of a batch that claim a key: the first unit with each key, in batch order. A later
 * unit with the same key is a retry of that one. Every key among them is different.
 */
export function claimantsOf(units: readonly CollectUnit[]): CollectUnit[] {
  return [...claimantIndices(units).values()].map((i) => units[i] as CollectUnit);
}

/**
 * Exactly-once storage of retried deliveries (hardening.md §2), inside a store's transaction:
 * each key is claimed (an atomic insert on a unique key, never read-then-write); only units that
 * claimed theirs are planned and written, and their response is remembered with the key. A retry
 * answers with the first response. A retry in the same batch as its original answers with the
 * original's outcome. The store gets a batch's claims at once and its answers at once, so that it
 * can send each as one statement.
 */
export async function withIdempotency(
  units: readonly CollectUnit[],
  store: {
    /** Claims the keys of `claimantsOf(units)`, in that order: one answer each. */
    claim(claimants: CollectUnit[]): Promise<Claim[]>;
    /** Keeps each response with the key of its unit. */
    remember(answers: { unit: CollectUnit; response: StoredResponse }[]): Promise<void>;
  },
  plan: (fresh: CollectUnit[]) => Promise<CollectOutcome[]>,
): Promise<CollectOutcome[]> {
  const firstWith = claimantIndices(units);
  const claimants = [...firstWith.values()].map((i) => units[i] as CollectUnit);
  const claims = claimants.length === 0 ? [] : await store.claim(claimants);
  if (claims.length !== claimants.length) throw new Error(`${claims.length} answers to ${claimants.length} claims`);
  const claimOf = new Map([...firstWith.keys()].map((scope, k) => [scope, claims[k] as Claim]));
  const replays = new Map<number, StoredResponse | number>();
  const fresh: number[] = [];
  for (const [i, unit] of units.entries()) {
    const scope = scopeOf(unit);
    if (scope === null) {
      fresh.push(i);
      continue;
    }
    const first = firstWith.get(scope) as number;
    const claim = claimOf.get(scope) as Claim;
    if (claim.claimed) {
      if (first === i) fresh.push(i);
      else replays.set(i, first);
    } else if (claim.response !== null) replays.set(i, claim.response);
    else throw new Error('idempotency key claimed without a response');
  }

  const planned = await plan(fresh.map((i) => units[i] as CollectUnit));
  const outcomes: CollectOutcome[] = new Array(units.length);
  const answers: { unit: CollectUnit; response: StoredResponse }[] = [];
  for (const [k, i] of fresh.entries()) {
    const unit = units[i] as CollectUnit;
    const outcome = planned[k] as CollectOutcome;
    outcomes[i] = outcome;
    if (unit.idempotency !== null) answers.push({ unit, response: { task: unit.task, events: unit.events.map((e) => e.id), ...outcome } });
  }
  if (answers.length > 0) await store.remember(answers);
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
