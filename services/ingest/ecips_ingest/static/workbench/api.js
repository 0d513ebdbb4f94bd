// Calls to ingest (same origin) and coordination (its URL from config.json), with the
// department's bearer token. The token lives in sessionStorage only: it is gone when
// the tab closes or the user signs out.

const PREFIX = "ecips.workbench.";
const TOKEN_KEY = `${PREFIX}token`;

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  /** Forget the token and everything remembered in this tab. */
  signOut() {
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
    }
  },
  remember(name, value) {
    sessionStorage.setItem(PREFIX + name, JSON.stringify(value));
  },
  recall(name, fallback) {
    try {
      const stored = sessionStorage.getItem(PREFIX + name);
      return stored === null ? fallback : JSON.parse(stored);
    } catch {
      return fallback;
    }
  },
};

/** A problem document (RFC 9457) from the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || `http_${status}`;
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

let config = { ingest_url: "", coordination_url: "" };

export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (response.ok) config = await response.json();
  return config;
}

export function serviceUrl(service, path) {
  const base = service === "coordination" ? config.coordination_url : config.ingest_url;
  return `${base}${path}`;
}

function unauthorized(error) {
  window.dispatchEvent(new CustomEvent("workbench:unauthorized", { detail: error }));
}

async function problemOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return body;
  } catch {
    // not JSON: fall through
  }
  return { title: response.statusText, detail: `HTTP ${response.status}` };
}

function networkError(service) {
  const name = service === "coordination" ? "协同服务" : "归集服务";
  return new ApiError(0, {
    code: "network_error",
    title: "无法连接",
    detail: `暂时连不上${name}，请检查网络后重试。`,
  });
}

/**
 * fetch a JSON API. options: method, body (sent as JSON), query (object), service
 * ("ingest" | "coordination"), as ("json" | "blob"), token (overrides the session's),
 * quiet401 (do not sign out on 401: the sign-in check itself).
 */
export async function api(path, options = {}) {
  const { method = "GET", body, query, service = "ingest", as = "json" } = options;
  const url = new URL(serviceUrl(service, path), window.location.href);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: as === "json" ? "application/json" : "*/*" };
  const token = options.token || session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw networkError(service);
  }
  if (!response.ok) {
    const error = new ApiError(response.status, await problemOf(response));
    if (response.status === 401 && !options.quiet401) unauthorized(error);
    throw error;
  }
  if (as === "blob") return response.blob();
  return { status: response.status, body: await response.json() };
}

/** Upload a multipart form to ingest, reporting upload progress (0..1). */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", serviceUrl("ingest", path));
    request.setRequestHeader("Authorization", `Bearer ${session.token}`);
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      const body = request.response && typeof request.response === "object" ? request.response : {};
      if (request.status >= 200 && request.status < 300) {
        resolve(body);
        return;
      }
      const error = new ApiError(request.status, body);
      if (request.status === 401) unauthorized(error);
      reject(error);
    });
    request.addEventListener("error", () => reject(networkError("ingest")));
    request.send(form);
  });
}

/** The JWT's claims, for display only: the server verifies every call. */
export function decodeTokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}
