interface Waiter<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: requests that arrive while flushes are being written wait and go together in the
 * next one, so there is one transaction (and one fsync) per flush, never one per request. Up to
 * `maxInFlight` flushes are in flight: with two, the next batch is already with the store while
 * the previous one commits, instead of waiting for its answer to come back to this thread
 * (docs/performance.md). Flushes start in submission order; each store keeps a session's events
 * in that order (the SQLite writer applies batches one by one, PostgreSQL takes session locks in
 * turn).
 *
 * A flush that fails on what one of its items holds (`isolate` says which failures those are),
 * not on the store, is tried again item by item (`oneByOne`): one request the store cannot take
 * fails alone, and the others are committed.
 */
export class GroupCommitter<I, O> {
  private queue: Waiter<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly flushBatch: (items: I[]) => Promise<O[]>,
    private readonly maxBatch: number,
    private readonly onFlushed: (size: number, seconds: number) => void = () => undefined,
    private readonly maxInFlight = 1,
    private readonly isolate: (error: unknown) => boolean = () => false,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  drain(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.inFlight >= this.maxInFlight || this.scheduled) return;
    this.scheduled = true;
    // One turn of the event loop lets the requests already read join this flush.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= this.maxInFlight) return;
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return this.inFlight === 0 ? this.notifyIdle() : undefined;
    this.inFlight++;
    const started = process.hrtime.bigint();
    try {
      const outs = await this.flushBatch(batch.map((w) => w.item));
      this.onFlushed(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
      batch.forEach((w, i) => w.resolve(outs[i] as O));
    } catch (error) {
      if (batch.length > 1 && this.isolate(error)) await this.oneByOne(batch);
      else for (const w of batch) w.reject(error);
    } finally {
      this.inFlight--;
    }
    if (this.queue.length > 0) void this.flush();
    else if (this.inFlight === 0) this.notifyIdle();
  }

  /**
   * The items of a flush that failed on one of them, each in a flush of its own, in order. Should
   * the store fail otherwise meanwhile (unavailable), the rest fail with it at once rather than
   * each waiting for the same failure. On PostgreSQL, a flush started after this one may commit
   * before these do: its items then come first in their sessions, as they would had these been
   * answered 503 and sent again.
   */
  private async oneByOne(batch: Waiter<I, O>[]): Promise<void> {
    for (const [i, w] of batch.entries()) {
      const started = process.hrtime.bigint();
      try {
        const [out] = await this.flushBatch([w.item]);
        this.onFlushed(1, Number(process.hrtime.bigint() - started) / 1e9);
        w.resolve(out as O);
      } catch (error) {
        w.reject(error);
        if (!this.isolate(error)) {
          for (const rest of batch.slice(i + 1)) rest.reject(error);
          return;
        }
      }
    }
  }

  private notifyIdle(): void {
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
