import autocannon, { type Request } from 'autocannon';
import { HEADERS, PAYLOAD, QUERY } from './payload.js';
import type { ServerProcess, Usage } from './server-process.js';

/** How hard and how long each scenario is driven; the same for every scenario of a run. */
export interface Load {
  connections: number;
  /** Seconds of load whose results are thrown away (JIT, caches, the first sessions). */
  warmupSeconds: number;
  seconds: number;
}

export interface ScenarioResult extends Usage {
  store: 'bare' | 'fastify' | 'sqlite' | 'postgres';
  scenario: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** Requests per second over the bare server's in the same run (the mean of its two runs). */
  ratio?: number;
}

/** One kind of request, and how to prepare the server for it. */
export interface Scenario {
  name: string;
  requests: (runId: string) => Request[];
  /** Done once before the warm-up, e.g. opening the sessions a scenario then finds known. */
  prepare?: (server: ServerProcess, runId: string) => Promise<void>;
}

export const SOURCE_ID = 'bench';
/**
 * A Stripe source that identifies each charge's customer by the receipt e-mail (identity.md §2):
 * each event finds or creates the customer's profile, on the customer's sticky session.
 */
export const IDENTIFYING_SOURCE = {
  id: 'bench-stripe',
  name: 'Bench Stripe',
  config: { generate_profile: true, identify_profile_by: 'email', replace_profile_id: 'data.object.receipt_email' },
};
const post = (path: string): Request => ({ method: 'POST', path, headers: HEADERS, body: PAYLOAD });

export const BARE: Scenario = { name: 'bare node:http POST', requests: () => [post('/')] };
/**
 * The bare server once more after Intake's scenarios: a neighbour on the machine can slow or speed
 * it up within a run, and the two figures say by how much (every ratio is to their mean).
 */
export const BARE_AGAIN: Scenario = { ...BARE, name: 'bare node:http POST, again after Intake' };

/** A change of the bare server's rate within a run beyond which its ratios are not to be trusted. */
export const BARE_DRIFT_LIMIT = 0.1;

/**
 * How much the bare server's rate changed between its two runs (0.1 is 10% faster at the end), or
 * null for a run that measured it once (reports written before the second run was added).
 */
export function bareDrift(http: ScenarioResult[]): number | null {
  const rate = (name: string) => http.find((r) => r.store === 'bare' && r.scenario === name)?.requestsPerSecond;
  const [first, again] = [rate(BARE.name), rate(BARE_AGAIN.name)];
  return first === undefined || again === undefined ? null : again / first - 1;
}

/** The same request to the framework alone (bench/fastify-server.mjs), an empty collector route. */
export const FRAMEWORK: Scenario = {
  name: 'Fastify empty route POST',
  requests: () => [post(`/collect/charge-succeeded/${SOURCE_ID}`)],
};

/** Customers the identifying scenario cycles through: the first round creates their profiles. */
const CUSTOMERS = 3000;

/** Sessions the known-session scenario cycles through, all opened before it is measured. */
const KNOWN_SESSIONS = 1000;
const knownSession = (runId: string, i: number) => `known-${runId}-${i}`;

export const INTAKE_SCENARIOS: Scenario[] = [
  { name: 'POST profile-less', requests: () => [post(`/collect/charge-succeeded/${SOURCE_ID}`)] },
  {
    name: 'POST known session',
    requests: (runId) =>
      Array.from({ length: KNOWN_SESSIONS }, (_, i) =>
        post(`/collect/charge-succeeded/${SOURCE_ID}/${knownSession(runId, i)}`),
      ),
    async prepare(server, runId) {
      for (let i = 0; i < KNOWN_SESSIONS; i += 50) {
        const batch = Array.from({ length: 50 }, (_, j) =>
          fetch(`${server.url}/collect/page-view/${SOURCE_ID}/${knownSession(runId, i + j)}`, {
            method: 'POST',
            headers: HEADERS,
            body: PAYLOAD,
          }).then((r) => {
            if (r.status !== 200) throw new Error(`opening a session answered ${r.status}`);
            return r.arrayBuffer();
          }),
        );
        await Promise.all(batch);
      }
    },
  },
  {
    name: 'GET pixel with query',
    requests: () => [{ method: 'GET', path: `/collect/page-view/${SOURCE_ID}?${QUERY}`, headers: HEADERS }],
  },
  {
    // As GitHub, Shopify and Standard Webhooks senders post: each delivery names itself, so Intake
    // claims its id as an idempotency key (hardening.md §2) in the same transaction as the event.
    name: 'POST with a delivery id',
    requests: (runId) => {
      let n = 0;
      const request = post(`/collect/charge-succeeded/${SOURCE_ID}`);
      return [{ ...request, setupRequest: (r) => ({ ...r, headers: { ...HEADERS, 'webhook-id': `msg_${runId}_${n++}` } }) }];
    },
  },
  {
    // Each charge names one of the customers by e-mail; the payload's own address is replaced so
    // that the body keeps its size. No target: what identification costs, and how batches about
    // different customers run together.
    name: 'POST identifying a customer',
    requests: (runId) => {
      let n = 0;
      const request = post(`/collect/charge-succeeded/${IDENTIFYING_SOURCE.id}`);
      return [
        {
          ...request,
          setupRequest: (r) => ({ ...r, body: PAYLOAD.replace('jane.doe@example.com', `c${n++ % CUSTOMERS}-${runId}@example.com`) }),
        },
      ];
    },
  },
  {
    name: 'POST new session',
    requests: (runId) => {
      let n = 0;
      const base = `/collect/charge-succeeded/${SOURCE_ID}/new-${runId}-`;
      return [{ ...post(''), setupRequest: (request) => ({ ...request, path: `${base}${n++}` }) }];
    },
  },
];

/**
 * Drives one scenario: prepare, warm up, then measure under the same load as every other.
 * `observe`, if given, is called as the measurement starts, and what it returns as it ends.
 */
export async function runScenario(
  server: ServerProcess,
  store: ScenarioResult['store'],
  scenario: Scenario,
  load: Load,
  runId: string,
  observe?: () => () => void,
): Promise<ScenarioResult> {
  await scenario.prepare?.(server, runId);
  // One list for the warm-up and the measurement, so that a scenario making up a new session per
  // request goes on counting: the measurement must not meet the warm-up's sessions again.
  const requests = scenario.requests(runId);
  const drive = (seconds: number) =>
    autocannon({
      url: server.url,
      connections: load.connections,
      duration: seconds,
      timeout: 10,
      requests,
    });
  if (load.warmupSeconds > 0) await drive(load.warmupSeconds);
  const stop = server.sample();
  const observed = observe?.();
  const result = await drive(load.seconds);
  observed?.();
  const usage = stop();
  return {
    store,
    scenario: scenario.name,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result['2xx'] + result.non2xx,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    ...usage,
  };
}
