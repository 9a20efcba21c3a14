import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Prometheus metrics of one server (hardening.md §5), every name prefixed `intake_`. One
 * registry per server, so several servers in one process (tests) keep their own counts.
 */
export function createMetrics(quarantineSize: () => Promise<number>) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'intake_' });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    registry,
    requests: counter('intake_requests_total', 'Collector requests by route, source and status', ['route', 'source', 'status']),
    eventsStored: counter('intake_events_stored_total', 'User events stored', ['source']),
    rejected: counter('intake_rejected_total', 'Collector requests refused, by reason', ['reason']),
    idempotentReplays: counter('intake_idempotent_replays_total', 'Retried deliveries answered without storing', ['source']),
    quarantined: counter('intake_quarantined_total', 'Refused requests kept in quarantine', ['source', 'reason']),
    quarantineSize: new Gauge({
      name: 'intake_quarantine_size',
      help: 'Refused requests held in the quarantine (read from the store at each scrape)',
      registers: [registry],
      async collect() {
        this.set(await quarantineSize());
      },
    }),
    eventStreams: new Gauge({
      name: 'intake_event_streams_open',
      help: 'Event streams (GET /api/events/stream) open now',
      registers: [registry],
    }),
    quarantineDropped: counter('intake_quarantine_dropped_total', 'Quarantined requests dropped over the per-source cap', ['source']),
    commitBatchSize: new Histogram({
      name: 'intake_commit_batch_size',
      help: 'Collector requests per group commit',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'intake_commit_seconds',
      help: 'Time to write and commit one group commit',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
