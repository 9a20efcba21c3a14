import { randomFillSync, randomUUID } from 'node:crypto';
import { v7 } from 'uuid';

/**
 * How Intake makes the ids of new events, profiles and sessions (INTAKE_IDS, README
 * "Configuration"). Ids derived from a value (hashed `emm-`/`phm-` ids, sticky sessions) and ids
 * a sender gives are not made here.
 * * `random`, the default: a random UUID (version 4), as collector.md §5 and §6 and identity.md
 *   §2 say;
 * * `time-ordered`: a UUID version 7 (RFC 9562): the creation time in milliseconds, then 74
 *   random bits. Still unique and unguessable, but an id sorts after those of earlier
 *   milliseconds, so the stores' indexes on these ids grow at their end instead of changing a page
 *   anywhere in them (docs/performance.md, finding 12).
 */
export type IdScheme = 'random' | 'time-ordered';
export const ID_SCHEMES: readonly IdScheme[] = ['random', 'time-ordered'];

export function newId(scheme: IdScheme): string {
  return scheme === 'time-ordered' ? v7({ random: randomBytes16() }) : randomUUID();
}

// Random bytes drawn in blocks, as randomUUID does: the uuid package's own source asks the
// operating system for 16 bytes per id, which costs more than the rest of the id (2 µs per id
// against 0.4 µs with these blocks).
const BLOCK = 16 * 256;
let block = Buffer.alloc(0);
let used = BLOCK;

function randomBytes16(): Uint8Array {
  if (used + 16 > block.length) {
    block = randomFillSync(Buffer.allocUnsafe(BLOCK));
    used = 0;
  }
  used += 16;
  return block.subarray(used - 16, used);
}
