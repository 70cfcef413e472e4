// HTTP API client: JSON in and out, CSRF header on state-changing requests, errors as ServerError.
import { ServerError } from "./errors.js";

let csrf = "";

export function setCsrf(token) {
  csrf = token || "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new ServerError((data && data.error) || { code: "http_" + res.status, message: res.statusText });
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);

/** Staff login; remembers the CSRF token for later POSTs. */
export async function login(username, password) {
  const out = await post("/api/auth/login", { username, password });
  setCsrf(out.csrf);
  return out.user;
}

/** The current staff login, or null when not logged in. */
export async function me() {
  try {
    const out = await get("/api/auth/me");
    setCsrf(out.csrf);
    return out.user;
  } catch (err) {
    if (err.code === "login_required" || err.code === "unauthenticated" || err.code === "http_401") return null;
    throw err;
  }
}

export async function logout() {
  try { await post("/api/auth/logout"); } finally { setCsrf(""); }
}
