// The JSON API, with the API key the user gave kept in this tab's session storage.

const KEY = "training.apiKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map(fieldMessage).join("; ")
        : `request failed (${status})`);
    this.status = status;
    this.detail = detail;
  }

  /** FastAPI's 422 body as {"config.horizon": "message", ...} (the body's fields). */
  fieldErrors() {
    if (!Array.isArray(this.detail)) return {};
    const errors = {};
    for (const item of this.detail) {
      const path = (item.loc || []).filter((part) => part !== "body").join(".");
      errors[path] = errors[path] ? `${errors[path]}; ${item.msg}` : item.msg;
    }
    return errors;
  }
}

/** One of a 422's field errors as "tenant_id: String should match pattern ...". */
function fieldMessage(item) {
  const path = (item.loc || []).filter((part) => part !== "body" && part !== "query").join(".");
  return path ? `${path}: ${item.msg}` : item.msg;
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

export const get = (path) => api("GET", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Numbers a page's loads so that an answer overtaken by a newer load is dropped: answers
 * can arrive out of order (a filter applied while the first load is still in flight).
 * Call it once per page; each load calls the result and, after awaiting, checks that
 * the function it got back still returns true.
 */
export function newestOnly() {
  let issued = 0;
  return () => {
    const ticket = ++issued;
    return () => ticket === issued;
  };
}
