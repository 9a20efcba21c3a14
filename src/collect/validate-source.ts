import { errors } from '../domain/errors.js';
import { normalizeSourceId, type Source } from '../domain/source.js';

/**
 * The source checks of collector.md §4, in their order. The id is already trimmed, so `%20@x`
 * is refused as internal (fix: Tracardi checked before trimming).
 */
export function validateSource(rawId: string, lookup: (id: string) => Source | undefined): Source {
  if (rawId.startsWith('@')) throw errors.internalSource();
  const id = normalizeSourceId(rawId);
  const source = lookup(id);
  if (source === undefined) throw errors.unknownSource(id);
  if (!source.enabled) throw errors.sourceDisabled();
  if (!source.type.includes('webhook')) throw errors.sourceNotWebhook(source.id, source.type);
  return source;
}
