// The page is a client of the public API like curl is: documented routes, the JSON error shape, a token.

const KEY = 'task-manager-token';

/** The token: in memory, and in sessionStorage (it survives a reload, not a closed tab). Never in a URL. */
export const session = {
  token: sessionStorage.getItem(KEY),
  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  },
};

/** An error answer of the API: its code, message and per-field details. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'unknown';
    this.fields = Object.fromEntries((body?.error?.details ?? []).map((detail) => [detail.field, detail.message]));
  }
}

let onUnauthorized = () => {};
/** Called when a request with the token gets a 401: the token is no good any more (logged out elsewhere). */
export const whenUnauthorized = (handler) => {
  onUnauthorized = handler;
};

/** A JSON request; resolves with `{ body, headers }`, or throws ApiError. */
export async function api(method, path, body) {
  const headers = {};
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && session.token && path !== '/login') onUnauthorized();
    throw new ApiError(response.status, parsed);
  }
  return { body: parsed, headers: response.headers };
}

/** The `rel="next"` target of a Link header, or null. */
export const nextPage = (headers) => /<([^>]+)>;\s*rel="next"/.exec(headers.get('link') ?? '')?.[1] ?? null;
