/** The management API, with the admin token the user gave for this tab. */

const TOKEN_KEY = 'intake.adminToken';

/** The token lives in this tab's sessionStorage only: closing the tab forgets it. */
export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Fired when the API refuses the token; the page then asks for it again. */
export const SIGNED_OUT = 'intake:signed-out';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }

  /** The admin token was refused: the page has already asked for it again. */
  get signedOut(): boolean {
    return this.status === 401 && this.detail === 'Unauthorized';
  }
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

/** A call of the management API; the answer's text as it came, and parsed. */
export async function request(
  path: string,
  init: { method?: string; body?: unknown; signal?: AbortSignal; token?: string } = {},
): Promise<{ status: number; text: string }> {
  const token = init.token ?? session.token() ?? '';
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    ...(init.signal !== undefined ? { signal: init.signal } : {}),
  });
  const text = await response.text();
  if (response.ok) return { status: response.status, text };
  throw errorOf(response.status, text, init.token === undefined);
}

/** Builds the error of a refused call; a refused token signs the tab out. */
export function errorOf(status: number, text: string, signOutOn401 = true): ApiError {
  let detail = `The server answered ${status}`;
  try {
    const body = JSON.parse(text) as { detail?: unknown };
    if (typeof body.detail === 'string') detail = body.detail;
  } catch {
    // not our JSON error shape (a proxy's page, say): keep the status line
  }
  // The API's refused token is exactly this 401 (api.md); a replayed webhook's own 401 is not.
  if (status === 401 && detail === 'Unauthorized' && signOutOn401) {
    session.signOut();
    window.dispatchEvent(new CustomEvent(SIGNED_OUT));
  }
  return new ApiError(status, detail);
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return JSON.parse((await request(path, signal !== undefined ? { signal } : {})).text) as T;
}

/** A stored document and its exact text (for the JSON tree, which keeps big numbers as sent). */
export async function getDocument<T>(path: string, signal?: AbortSignal): Promise<{ doc: T; text: string }> {
  const { text } = await request(path, signal !== undefined ? { signal } : {});
  return { doc: JSON.parse(text) as T, text };
}

/** `?a=1&b=2` from the defined values only. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
