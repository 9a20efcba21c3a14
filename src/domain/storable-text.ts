/** C0, DEL and C1 control characters. */
export const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Half of a surrogate pair: text no UTF-8 can carry (PostgreSQL receives U+FFFD instead). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Whether a text can be an id: kept exactly as it is by both stores, and found again by it. A
 * NUL cannot be in a PostgreSQL text at all, and two different lone surrogates would become the
 * same id there (and each differ from the id JavaScript looks for).
 */
export const isStorableId = (text: string): boolean => !CONTROL.test(text) && !LONE_SURROGATE.test(text);
