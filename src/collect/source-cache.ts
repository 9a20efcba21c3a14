import { EVENT_TYPE_CATALOGUE } from '../domain/event-type-catalogue.js';
import type { Mapping, MappingItem } from '../domain/mapping.js';
import type { Source } from '../domain/source.js';
import type { Store } from '../store/store.js';

export interface SourceCacheLogger {
  warn(details: object, message: string): void;
}

const CATALOGUE_BY_TYPE = new Map(EVENT_TYPE_CATALOGUE.map((e) => [e.type, e.mapping]));

/** How often the cache asks the store whether any process changed a source. */
export const SOURCE_REFRESH_MS = 250;

/**
 * The sources the collector checks each request against, and the custom mappings it applies,
 * held in memory. A change made through
 * this process's API is applied at once (`reload`); one made by another process (the CLI, another
 * collector) arrives by the store's push where it has one (PostgreSQL NOTIFY), and by polling the
 * store's sources version in any case, well within a second.
 */
export class SourceCache {
  private sources = new Map<string, Source>();
  private mappingsByType = new Map<string, Mapping[]>();
  private version = -1;
  private timer: NodeJS.Timeout | null = null;
  private unwatch: (() => void) | null = null;
  private loading: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly logger: SourceCacheLogger,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    const reportFailure = (error: unknown) => this.logger.warn({ cause: String(error) }, 'source refresh failed');
    this.unwatch = this.store.watchSources(() => void this.reload().catch(reportFailure));
    this.timer = setInterval(() => {
      this.refresh().catch(reportFailure);
    }, SOURCE_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.unwatch?.();
    this.unwatch = null;
  }

  get(id: string): Source | undefined {
    return this.sources.get(id);
  }

  /** The mapping items for an event type from a source: the catalogue's, then enabled custom ones. */
  mappingFor(type: string, sourceId: string): MappingItem[] {
    const builtIn = CATALOGUE_BY_TYPE.get(type) ?? [];
    const custom = (this.mappingsByType.get(type) ?? []).filter((m) => m.source === null || m.source === sourceId);
    return custom.length === 0 ? builtIn : [...builtIn, ...custom.flatMap((m) => m.items)];
  }

  /** Reloads when the store's version moved since the last load. */
  refresh(): Promise<void> {
    return this.oneAtATime(async () => {
      const version = await this.store.sourcesVersion();
      if (version !== this.version) await this.load(version);
    });
  }

  /** Reloads now, e.g. right after this process changed a source. */
  reload(): Promise<void> {
    return this.oneAtATime(async () => this.load(await this.store.sourcesVersion()));
  }

  /**
   * Loads run one after another: a poll that read the sources just before a change must not
   * finish after, and overwrite, the reload that the change itself asked for.
   */
  private oneAtATime(load: () => Promise<void>): Promise<void> {
    const next = this.loading.then(load, load);
    this.loading = next.catch(() => undefined);
    return next;
  }

  private async load(version: number): Promise<void> {
    const [all, mappings] = await Promise.all([this.store.allSources(), this.store.listMappings()]);
    this.sources = new Map(all.map((s) => [s.id, s]));
    const byType = new Map<string, Mapping[]>();
    for (const m of mappings) if (m.enabled) byType.set(m.event_type, [...(byType.get(m.event_type) ?? []), m]);
    this.mappingsByType = byType;
    this.version = version;
  }
}
