// api is the UI's only way to the server: the REST API under /api (and
// /auth for login). It returns parsed JSON (or text with opts.text) and
// throws ApiError on any non-2xx answer or network failure.
export class ApiError extends Error {
  constructor(status, message, body, headers) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0 when the server could not be reached
    this.body = body;
    this.headers = headers || new Headers();
  }
}

// loginPath is where an expired session goes, remembering the page.
export function loginPath() {
  return '/login?next=' + encodeURIComponent(location.pathname + location.search);
}

// api(method, path, body, opts): opts.text → response text; opts.signal →
// AbortSignal; opts.query → object appended as a query string (empty
// values skipped); opts.noRedirect → a 401 does not leave the page.
export async function api(method, path, body, opts = {}) {
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v === undefined || v === null || v === '') continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x)); else q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const init = { method, credentials: 'same-origin', headers: { accept: opts.text ? 'text/plain, */*' : 'application/json' }, signal: opts.signal };
  if (body !== undefined && body !== null) {
    if (typeof body === 'string') {
      init.body = body;
      init.headers['content-type'] = 'text/plain; charset=utf-8';
    } else {
      init.body = JSON.stringify(body);
      init.headers['content-type'] = 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `${method} ${path}: ${e.message}`, null);
  }
  const ctype = res.headers.get('content-type') || '';
  const raw = await res.text();
  let parsed = raw;
  if (ctype.includes('json') && raw) {
    try { parsed = JSON.parse(raw); } catch { parsed = raw; }
  }
  if (!res.ok) {
    const msg = (parsed && typeof parsed === 'object' && (typeof parsed.error === 'string' ? parsed.error : parsed.error?.message)) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && path.startsWith('/api/') && !path.startsWith('/api/session') && !opts.noRedirect) {
      location.assign(loginPath());
    }
    throw new ApiError(res.status, msg, parsed, res.headers);
  }
  if (opts.text) return raw;
  return ctype.includes('json') ? parsed : raw;
}
