/** A small HTTP client for the API tests: JSON in, status + JSON (or text) out. */
export interface ApiResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export async function request<T = any>(
  url: string,
  init: {
    method?: string;
    token?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token) headers['X-Auth-Token'] = init.token;
  let body: string | undefined;
  if (init.rawBody !== undefined) body = init.rawBody;
  else if (init.body !== undefined) body = JSON.stringify(init.body);
  if (body !== undefined && !headers['Content-Type']) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, { method: init.method ?? 'GET', headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export function waitForVolume(
  url: string,
  token: string,
  id: string,
  statuses: readonly string[],
  timeoutMs = 20_000,
): Promise<any> {
  return waitForResource(url, token, 'volume', id, statuses, timeoutMs);
}

/** Polls `<url>/<kind>s/<id>` until its status is one of `statuses` (`deleted`: until it is a 404). */
export async function waitForResource(
  url: string,
  token: string,
  kind: 'volume' | 'snapshot' | 'server',
  id: string,
  statuses: readonly string[],
  timeoutMs = 20_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: ApiResponse | undefined;
  while (Date.now() < deadline) {
    last = await request(`${url}/${kind}s/${id}`, { token });
    if (last.status === 200 && statuses.includes(last.body[kind].status)) return last.body[kind];
    if (statuses.includes('deleted') && last.status === 404) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${kind} ${id} never reached ${statuses.join('|')}: ${JSON.stringify(last?.body)}`);
}

/** A project-scoped token of the built-in identity, by password, and the project's id. */
export async function passwordToken(
  identityUrl: string,
  user: string,
  password: string,
  project: string,
): Promise<{ token: string; projectId: string; status: number }> {
  const res = await request(`${identityUrl}/v3/auth/tokens`, {
    method: 'POST',
    body: {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user, password, domain: { name: 'Default' } } },
        },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    },
  });
  return {
    token: res.headers.get('x-subject-token') ?? '',
    projectId: res.body?.token?.project?.id ?? '',
    status: res.status,
  };
}
