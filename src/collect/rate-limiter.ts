/**
 * Per-source token buckets (hardening.md §3): `burst` requests at once, refilled at `perSecond`.
 * Held in this process: with N collector processes behind a balancer, a source gets up to N
 * times its rate in all.
 */
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();

  /** Takes a token; returns 0 if granted, else the seconds until one is available. */
  take(key: string, limit: { perSecond: number; burst: number }, now = Date.now()): number {
    const bucket = this.buckets.get(key) ?? { tokens: limit.burst, at: now };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.perSecond));
  }
}
