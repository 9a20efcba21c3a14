/**
 * Issue 6's targets, each against the figure of the run that answers it: the throughput ratios to
 * the bare server, the p99 at 32 connections, the server's RSS and the scale scenario's p95. With
 * the default (random) ids, as the contract has them; the time-ordered rows are a setting.
 */
import { BARE_DRIFT_LIMIT, bareDrift, type ScenarioResult } from './load.js';
import type { Report } from './report.js';

export interface TargetCheck {
  target: string;
  /** What was measured, and where. */
  measured: string;
  met: boolean;
}

const RATIOS: [ScenarioResult['store'], string, number][] = [
  ['sqlite', 'POST profile-less', 0.5],
  ['sqlite', 'POST known session', 0.35],
  ['sqlite', 'POST new session', 0.25],
  ['postgres', 'POST profile-less', 0.25],
];
const P99_MS = 10;
const RSS_MB = 250;
const SCALE_P95_MS = 20;

/** A change as a signed percentage: +12%, −23%. */
export const signedPercent = (change: number) => `${change >= 0 ? '+' : '−'}${Math.abs(change * 100).toFixed(0)}%`;

/** Every target the run has figures for; none for parts it did not run. */
export function checkTargets(report: Report): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const drift = bareDrift(report.http);
  const caveat = drift !== null && Math.abs(drift) > BARE_DRIFT_LIMIT ? ` (bare moved ${signedPercent(drift)} during the run)` : '';
  for (const [store, scenario, target] of RATIOS) {
    const r = report.http.find((h) => h.store === store && h.scenario === scenario);
    if (r?.ratio === undefined) continue;
    checks.push({
      target: `${store}: ${scenario} ≥ ${target.toFixed(2)}× bare`,
      measured: `${r.ratio.toFixed(2)}×${caveat}`,
      met: r.ratio >= target,
    });
  }
  for (const store of ['sqlite', 'postgres'] as const) {
    const intake = report.http.filter((h) => h.store === store && !h.scenario.includes('time-ordered'));
    if (intake.length === 0) continue;
    const within = intake.filter((h) => h.p99Ms <= P99_MS);
    const worst = intake.reduce((a, b) => (b.p99Ms > a.p99Ms ? b : a));
    checks.push({
      target: `${store}: p99 ≤ ${P99_MS} ms, every scenario`,
      measured: `${within.length} of ${intake.length} within; highest ${worst.p99Ms} ms (${worst.scenario})`,
      met: within.length === intake.length,
    });
    const rss = intake.reduce((a, b) => (b.peakRssMb > a.peakRssMb ? b : a));
    checks.push({
      target: `${store}: server RSS ≤ ${RSS_MB} MB`,
      measured: `highest ${rss.peakRssMb.toFixed(0)} MB (${rss.scenario})`,
      met: rss.peakRssMb <= RSS_MB,
    });
  }
  for (const s of report.scale) {
    const p95 = s.byProfile.error === undefined ? s.byProfile.p95Ms : Number.NaN;
    checks.push({
      target: `${s.store}: GET /api/events?profile=… p95 ≤ ${SCALE_P95_MS} ms at ${s.events.toLocaleString('en')} events`,
      measured: Number.isNaN(p95) ? 'failed' : `${p95.toFixed(1)} ms`,
      met: p95 <= SCALE_P95_MS,
    });
  }
  return checks;
}
