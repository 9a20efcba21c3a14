/**
 * Event type normalisation (collector.md §5): `" Coupon  Received "` is stored as type
 * `coupon-received` with name `Coupon Received`.
 */
export function normalizeEventType(pathType: string): string {
  return pathType.trim().toLowerCase().replace(/\s+/g, '-');
}

/** Words split on `-` and whitespace, each capitalised the way Python's `str.capitalize` does. */
export function eventTypeName(pathType: string): string {
  return pathType
    .trim()
    .split(/[-\s]+/)
    .filter((word) => word.length > 0)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase())
    .join(' ');
}
