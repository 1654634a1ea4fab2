// The API client: one fetch wrapper that adds the API key, parses the JSON error body and throws ApiError.

const KEY_STORAGE = "ssa.apiKey";
const BASE = new URL(".", document.baseURI);

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY_STORAGE, value);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** An HTTP error with the API's {"error": {type, message, detail}} body turned into readable lines. */
export class ApiError extends Error {
  constructor(status, type, message, details) {
    super(message);
    this.status = status;
    this.type = type;
    this.details = details;
  }

  /** One line for a status area: "422 · invalid_dataset: the dataset has problems". */
  get summary() {
    const hint = this.status === 401 || this.status === 403 ? " Enter a valid API key at the top of the page." : "";
    return `${this.status || "network"} · ${this.type}: ${this.message}${hint}`;
  }
}

export function url(path, params = {}) {
  const u = new URL(path.replace(/^\//, ""), BASE);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  return u;
}

/** Fetch `path`; returns the Response for 2xx, throws ApiError otherwise. */
export async function request(path, { method = "GET", json, body, params, headers = {} } = {}) {
  const opts = { method, headers: { ...headers } };
  const key = getKey();
  if (key) opts.headers["X-API-Key"] = key;
  if (json !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(json);
  } else if (body !== undefined) opts.body = body;
  let response;
  try {
    response = await fetch(url(path, params), opts);
  } catch (err) {
    throw new ApiError(0, "network_error", `The API could not be reached (${err.message}).`, []);
  }
  if (!response.ok) throw await toError(response);
  return response;
}

export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

export async function postJson(path, json, opts = {}) {
  return (await request(path, { ...opts, method: "POST", json })).json();
}

async function toError(response) {
  const text = await response.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    /* not JSON: fall through to the plain text */
  }
  const err = data && typeof data === "object" ? data.error || data : null;
  if (err && (err.message || err.detail)) {
    const message = err.message || (typeof err.detail === "string" ? err.detail : response.statusText);
    const details = typeof err.detail === "string" && !err.message ? [] : detailLines(err.detail);
    return new ApiError(response.status, err.type || "error", message, details);
  }
  return new ApiError(response.status, "http_error", text.slice(0, 300) || response.statusText || "Request failed", []);
}

/** Turn an error `detail` (string, list of problems, FastAPI validation list, or object) into readable lines. */
export function detailLines(detail) {
  if (detail === null || detail === undefined || detail === "") return [];
  if (typeof detail === "string") return [detail];
  if (Array.isArray(detail)) return detail.slice(0, 20).map(detailItem);
  if (typeof detail === "object") {
    const nested = detail.problems || detail.errors;
    if (Array.isArray(nested)) return detailLines(nested);
    if (detail.message || detail.msg) return [detailItem(detail)];
    return Object.entries(detail).filter(([k]) => k !== "field") // the message already names the field
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`);
  }
  return [String(detail)];
}

function detailItem(item) {
  if (typeof item !== "object" || item === null) return String(item);
  if (item.loc && item.msg) return `${item.loc.filter((p) => p !== "body").join(".")}: ${item.msg}`;
  const where = [];
  if (item.row !== undefined && item.row !== null) where.push(`row ${item.row}`);
  if (item.column) where.push(`column '${item.column}'`);
  if (item.field) where.push(`field '${item.field}'`);
  const msg = item.message || item.msg || JSON.stringify(item);
  return where.length ? `${where.join(", ")}: ${msg}` : msg;
}

/** Download a (possibly key-protected) file by fetching it and saving the blob under its server-given name. */
export async function download(path, fallbackName, params) {
  const response = await request(path, { params });
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1]) : fallbackName;
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return name;
}
