// The API client: base URL from config.json, tokens in memory and sessionStorage (never
// localStorage), one refresh on a 401, and errors that carry the API's `detail`.

const SESSION_KEY = "ordo.session";

let apiBase = "";
let session = readSession();
const listeners = new Set();

// Every API error is JSON with a readable `detail`; a validation error also lists `errors`,
// each with the field's `loc` and a `msg`.
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    super(describe(detail) || `Request failed (${status})`);
    this.status = status;
    this.detail = detail;
    this.errors = Array.isArray(body && body.errors)
      ? body.errors
      : Array.isArray(detail)
        ? detail
        : [];
  }

  // Messages by field name: {price: "Input should be greater than or equal to 0"}.
  fieldErrors() {
    const fields = {};
    for (const issue of this.errors) {
      const loc = Array.isArray(issue.loc) ? issue.loc.filter((part) => part !== "body") : [];
      const name = loc.length ? String(loc[0]) : "";
      if (name && !fields[name]) fields[name] = issue.msg || "Invalid value";
    }
    return fields;
  }
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((issue) => {
        const loc = (issue.loc || []).filter((part) => part !== "body").join(".");
        return loc ? `${loc}: ${issue.msg}` : issue.msg;
      })
      .join("; ");
  }
  return "";
}

function readSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return stored && stored.access_token ? stored : null;
  } catch {
    return null;
  }
}

function saveSession(next) {
  session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
  for (const listener of listeners) listener(session);
}

export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  const config = await response.json();
  apiBase = String(config.apiBase || "").replace(/\/+$/, "");
}

export const currentUser = () => (session ? session.user : null);
export const isAdmin = () => Boolean(session && session.user && session.user.role === "admin");
export const onSessionChange = (listener) => listeners.add(listener);

async function send(method, path, body, token) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(apiBase + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  return { status: response.status, ok: response.ok, data };
}

let refreshing = null;

// One refresh at a time, shared by every request that got a 401 meanwhile. Only a 401 from
// the refresh ends the session, as in the CLI.
function refresh() {
  if (!refreshing) {
    const refreshToken = session && session.refresh_token;
    refreshing = (async () => {
      if (!refreshToken) return false;
      const answer = await send("POST", "/auth/refresh", { refresh_token: refreshToken });
      if (answer.status === 401) return false;
      // Busy or unreachable (429, 5xx): the tokens may still be good, so keep the session.
      if (!answer.ok) throw new ApiError(answer.status, answer.data);
      saveSession({ ...session, ...answer.data });
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export async function request(method, path, body) {
  let answer = await send(method, path, body, session && session.access_token);
  if (answer.status === 401 && session) {
    if (await refresh()) {
      answer = await send(method, path, body, session.access_token);
    }
    if (answer.status === 401) saveSession(null);
  }
  if (!answer.ok) throw new ApiError(answer.status, answer.data);
  return answer.data;
}

export const get = (path, query) => request("GET", path + queryString(query));
export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

export function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "" && value !== false) {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export async function signIn(username, password) {
  const tokens = await send("POST", "/auth/login/json", { username, password });
  if (!tokens.ok) throw new ApiError(tokens.status, tokens.data);
  const me = await send("GET", "/auth/me", undefined, tokens.data.access_token);
  if (!me.ok) throw new ApiError(me.status, me.data);
  saveSession({ ...tokens.data, user: me.data });
}

export async function register(email, username, password) {
  const created = await send("POST", "/auth/register", { email, username, password });
  if (!created.ok) throw new ApiError(created.status, created.data);
  await signIn(username, password);
}

// Calls the logout route where the API has one (a 404 means it has none), then forgets.
export async function signOut() {
  const current = session;
  saveSession(null);
  if (!current) return;
  try {
    await send(
      "POST",
      "/auth/logout",
      { refresh_token: current.refresh_token },
      current.access_token,
    );
  } catch {
    // Offline: the tokens are forgotten here either way, and expire on their own.
  }
}

// A cursor-paged listing: load(true) starts over, load(false) appends the next page. Only the
// newest call's answer is applied: an older one (a filter changed meanwhile) resolves to null.
export function cursorPages(fetchPage) {
  let items = [];
  let cursor = null;
  let calls = 0;
  return {
    async load(reset) {
      const ticket = ++calls;
      const page = await fetchPage(reset ? null : cursor);
      if (ticket !== calls) return null;
      items = (reset ? [] : items).concat(page.items);
      cursor = page.next_cursor;
      return { items, more: Boolean(cursor) };
    },
    items: () => items,
    update(changed, key) {
      items = items.map((item) => (item[key] === changed[key] ? changed : item));
    },
  };
}
