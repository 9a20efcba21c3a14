interface Waiter<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: requests that arrive while a flush is being written wait and go together in the
 * next one, so there is one transaction (and one fsync) per flush, never one per request.
 *
 * `maxInFlight` flushes may be outstanding at once. With 1 (PostgreSQL, whose flushes run on
 * separate connections), a session's events stay in arrival order because flushes never overlap.
 * A store whose flushes go to one FIFO writer (SQLite's writer thread) can take 2: the next batch
 * then waits at the writer while the current one commits, so the writer never sits idle waiting
 * for this thread, and this thread never sits idle waiting for an fsync. The writer still applies
 * them one after the other, in order.
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
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.inFlight++;
    const started = process.hrtime.bigint();
    try {
      const outs = await this.flushBatch(batch.map((w) => w.item));
      this.onFlushed(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
      batch.forEach((w, i) => w.resolve(outs[i] as O));
    } catch (error) {
      for (const w of batch) w.reject(error);
    } finally {
      this.inFlight--;
    }
    // What queued during this flush goes at once: it has waited a whole flush already.
    if (this.queue.length > 0) void this.flush();
    else if (this.inFlight === 0) this.notifyIdle();
  }

  private notifyIdle(): void {
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
