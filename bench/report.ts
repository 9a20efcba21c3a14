import { BARE_DRIFT_LIMIT, bareDrift, type Load, type ScenarioResult } from './load.js';
import type { LogPagesResult } from './log-pages.js';
import type { Machine } from './machine.js';
import type { ScaleResult } from './scale.js';
import { checkTargets, signedPercent } from './targets.js';

export interface Report {
  date: string;
  quick: boolean;
  load: Load;
  machine: Machine;
  http: ScenarioResult[];
  /** Pages of SQLite log per request (log-pages.ts); empty in runs before it was measured. */
  logPages: LogPagesResult[];
  scale: ScaleResult[];
  /** Parts of the run that failed, and why; their figures are missing. */
  failed: string[];
}

const fixed = (n: number, digits = 0) => n.toFixed(digits);
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

function httpRows(report: Report): string[][] {
  return [
    ['store', 'scenario', 'req/s', 'p50 ms', 'p99 ms', 'ratio to bare', 'server RSS MB', 'server CPU %', 'CPU µs/req', 'errors'],
    ...report.http.map((r) => [
      r.store,
      r.scenario,
      fixed(r.requestsPerSecond),
      fixed(r.p50Ms, 1),
      fixed(r.p99Ms, 1),
      `${fixed(r.ratio ?? 1, 2)}×`,
      fixed(r.peakRssMb),
      fixed(r.cpuPercent),
      // CPU time of the server per request: CPU % of one core, over requests per second.
      fixed((r.cpuPercent * 10_000) / r.requestsPerSecond),
      String(r.errors + r.non2xx),
    ]),
  ];
}

function logPageRows(report: Report): string[][] {
  return [
    ['scenario', 'ids', 'requests per transaction', 'pages of log per request', 'largest shares'],
    ...report.logPages.map((w) => [
      w.scenario,
      w.ids,
      String(w.batch),
      fixed(w.pagesPerRequest, 2),
      w.byTree
        .slice(0, 5)
        .map(([tree, pages]) => `${tree} ${fixed(pages, 2)}`)
        .join(', '),
    ]),
  ];
}

function scaleRows(report: Report): string[][] {
  return [
    ['store', 'events', 'profiles', 'load s', 'on disk', 'bytes/event', 'query', 'p50 ms', 'p95 ms', 'p99 ms', 'rows'],
    ...report.scale.flatMap((s) =>
      (
        [
          ['?profile=…', s.byProfile],
          ['?type=…&from=…', s.byTypeFrom],
        ] as const
      ).map(([query, l]) => [
        s.store,
        String(s.events),
        String(s.profiles),
        fixed(s.loadSeconds),
        mb(s.bytesOnDisk),
        fixed(s.bytesPerEvent),
        query,
        ...(l.error !== undefined
          ? ['failed', 'failed', 'failed', '–']
          : [fixed(l.p50Ms, 1), fixed(l.p95Ms, 1), fixed(l.p99Ms, 1), fixed(l.meanItems)]),
      ]),
    ),
  ];
}

function targetRows(report: Report): string[][] {
  return [['target', 'measured', 'met'], ...checkTargets(report).map((c) => [c.target, c.measured, c.met ? 'yes' : 'no'])];
}

function aligned(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).join('\n');
}

function markdownTable(rows: string[][]): string {
  const [head, ...body] = rows;
  return [head!, head!.map(() => '---'), ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function loadLine(report: Report): string {
  const { connections, warmupSeconds, seconds } = report.load;
  return `${connections} connections, ${warmupSeconds} s warm-up, ${seconds} s measured per scenario`;
}

/** What the bare server's second run says about the ratios; empty for a run with one. */
function driftLine(report: Report): string {
  const drift = bareDrift(report.http);
  if (drift === null) return '';
  const line = `The bare server ran first and again after Intake's scenarios: ${signedPercent(drift)} between the two; every ratio is to their mean.`;
  return Math.abs(drift) > BARE_DRIFT_LIMIT
    ? `${line} More than ${BARE_DRIFT_LIMIT * 100}%: the machine's speed changed during the run, so its ratios are uncertain by about as much.`
    : line;
}

/** What the terminal shows at the end of a run. */
export function toTable(report: Report): string {
  const parts = [];
  if (report.http.length > 0)
    parts.push([`HTTP (${loadLine(report)})`, aligned(httpRows(report)), driftLine(report)].filter(Boolean).join('\n'));
  if (report.logPages.length > 0) parts.push(`SQLite log per request\n${aligned(logPageRows(report))}`);
  if (report.scale.length > 0) parts.push(`Scale\n${aligned(scaleRows(report))}`);
  if (checkTargets(report).length > 0)
    parts.push(`Targets (issue 6${report.quick ? '; a quick run: figures meaningless' : ''})\n${aligned(targetRows(report))}`);
  if (report.failed.length > 0) parts.push(`Failed\n${report.failed.join('\n')}`);
  return `\n${parts.join('\n\n')}\n`;
}

/** The same figures as committed in bench/results/, with the machine they came from. */
export function toMarkdown(report: Report): string {
  const m = report.machine;
  const lines = [
    `# Intake benchmark, ${report.date.slice(0, 10)}${report.quick ? ' (quick: smoke run, figures meaningless)' : ''}`,
    '',
    `Machine: ${m.cores} cores (${m.cpu}), ${m.memoryGb} GB, ${m.os}, Linux ${m.kernel}; data on ${m.disk}.`,
    `Node ${m.node}, SQLite ${m.sqlite}${m.postgres !== null ? `, PostgreSQL ${m.postgres}` : ''}. ` +
      'Load generator (autocannon) on the same machine.',
    '',
  ];
  if (report.http.length > 0)
    lines.push(`## HTTP`, '', `${loadLine(report)}.`, '', markdownTable(httpRows(report)), '');
  if (driftLine(report)) lines.push(driftLine(report), '');
  if (report.logPages.length > 0)
    lines.push(
      '## SQLite log per request',
      '',
      'Pages (4 KiB) of write-ahead log the writer thread wrote per request, through its own transaction code, ' +
        'on a database holding 20,000 events and 2,000 sessions. Independent of the machine.',
      '',
      markdownTable(logPageRows(report)),
      '',
    );
  if (report.scale.length > 0) {
    lines.push('## Scale', '', markdownTable(scaleRows(report)), '');
    for (const s of report.scale) {
      lines.push(`Bytes on disk by table and index (${s.store}):`, '');
      const rows = Object.entries(s.breakdown).map(([name, bytes]) => [name, mb(bytes), fixed(bytes / s.events)]);
      lines.push(markdownTable([['table or index', 'size', 'bytes/event'], ...rows]), '');
    }
  }
  if (checkTargets(report).length > 0)
    lines.push(
      '## Targets',
      '',
      "Issue 6's targets against this run's figures, with the default (random) ids. " +
        'The ratios and latencies depend on the machine (docs/performance.md, "The machine and its noise").',
      '',
      markdownTable(targetRows(report)),
      '',
    );
  const errors = [...report.failed, ...report.scale.flatMap((s) => [s.byProfile.error, s.byTypeFrom.error])].filter(
    (e): e is string => e !== undefined,
  );
  if (errors.length > 0) lines.push('## Failures', '', ...errors.map((e) => `* ${e.split('\n').join(' / ')}`), '');
  return `${lines.join('\n')}`;
}
