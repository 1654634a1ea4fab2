// Small DOM helpers: every element is built with textContent, never innerHTML, so no data is ever parsed as markup.

/** Create an element: h("button", {class: "x", onclick: fn}, "text", childNode, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) setAttr(el, key, value);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function setAttr(el, key, value) {
  if (value === null || value === undefined || value === false) return;
  if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
  else if (key === "style" && typeof value === "object") {
    for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), v);
  }
  else if (value === true) el.setAttribute(key, "");
  else el.setAttribute(key, String(value));
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : String(child));
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Format a number for display: 4 significant decimals, or "–" when missing. */
export function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

/** A time as "2026-11-27 19:21:32": from epoch seconds or an ISO string. */
export function when(value) {
  if (value === null || value === undefined || value === "") return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** "1m 05s" from seconds; "–" when unknown. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Show a message in a status area; kind is "error", "ok" or "info". Errors are announced assertively. */
export function notify(area, kind, message, details = []) {
  area.setAttribute("role", kind === "error" ? "alert" : "status");
  area.classList.remove("msg-error", "msg-ok", "msg-info");
  area.classList.add("msg", `msg-${kind}`);
  replace(area, h("p", {}, message), details.length ? h("ul", {}, details.map((d) => h("li", {}, d))) : null);
  area.hidden = false;
}

export function clearMessage(area) {
  area.hidden = true;
  area.replaceChildren();
}
