/**
 * Where Fastify's logger writes: stdout, once per turn of the event loop rather than once per
 * line. Every request logs two lines, and under load one blocking write() per line cost about a
 * tenth of the main thread (docs/performance.md). Lines still buffered when the process exits are
 * written on 'exit'; a SIGKILL can lose the lines of the current turn, never more.
 */
class BufferedStdout {
  private pending: string[] = [];
  private scheduled = false;
  private hooked = false;

  write(line: string): void {
    this.pending.push(line);
    if (!this.hooked) {
      this.hooked = true;
      process.once('exit', () => this.flush());
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    // Synchronous for files and pipes on Linux, so nothing is held in memory behind a slow reader.
    process.stdout.write(text);
  }
}

/** One for the process: every server built in it (the tests build many) shares stdout. */
export const logStream = new BufferedStdout();
