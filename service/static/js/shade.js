// Renders the input text with each word (or token) shaded by a signal: SSA attention or importance, or the
// leave-one-word-out occlusion reference (explain=occlusion).
import { fmt, h } from "./dom.js";

/** Exact values of one span as a readable line (used for the title tooltip and the focus readout). */
export function spanLabel(span, text) {
  const parts = [];
  if (span.attention !== null && span.attention !== undefined) parts.push(`attention ${fmt(span.attention)}`);
  if (span.importance !== null && span.importance !== undefined) parts.push(`importance ${fmt(span.importance)}`);
  if (span.occlusion !== null && span.occlusion !== undefined) parts.push(`occlusion ${fmt(span.occlusion)}`);
  return `“${text}”: ${parts.join(" · ") || "no SSA signal for this model"}`;
}

/** Which SSA signals the spans carry: a subset of ["attention", "importance"]. */
export function availableSignals(spans) {
  return ["attention", "importance"].filter((s) => spans.some((sp) => typeof sp[s] === "number"));
}

/** Whether the spans carry the occlusion reference (the request asked for explain=occlusion). */
export function hasOcclusion(spans) {
  return spans.some((sp) => typeof sp.occlusion === "number");
}

/**
 * Shade strength 0..1: importance is a probability; attention and occlusion are scaled to their largest value in
 * the segment (an occlusion drop below 0, a word whose removal raises the prediction's probability, is unshaded).
 */
function strengths(spans, signal) {
  const values = spans.map((sp) => (typeof sp[signal] === "number" ? Math.max(0, sp[signal]) : 0));
  if (signal === "importance") return values.map((v) => Math.min(1, v));
  const top = Math.max(...values, 1e-12);
  return values.map((v) => v / top);
}

/**
 * Build the shaded text of one segment.
 * @param {string} source   the input string of this segment
 * @param {object[]} spans  spans of this segment with character offsets into `source`
 * @param {string|null} signal  "attention", "importance", "occlusion" or null (no shading)
 * @param {(line: string) => void} onInspect  called with the exact values when a span is hovered or focused
 */
export function shadedSegment(source, spans, signal, onInspect) {
  const sorted = spans.filter((sp) => sp.end > sp.start).sort((a, b) => a.start - b.start);
  const alpha = signal ? strengths(sorted, signal) : sorted.map(() => 0);
  const out = h("p", { class: "shaded" });
  let pos = 0;
  sorted.forEach((sp, i) => {
    if (sp.start < pos) return;
    if (sp.start > pos) out.append(source.slice(pos, sp.start));
    out.append(wordSpan(source.slice(sp.start, sp.end), sp, alpha[i], onInspect));
    pos = sp.end;
  });
  if (pos < source.length) {
    const rest = source.slice(pos);
    out.append(sorted.length && rest.trim() ? h("span", { class: "cut", title: "not seen by the model (truncated)" }, rest) : rest);
  }
  return out;
}

function wordSpan(text, span, strength, onInspect) {
  const label = spanLabel(span, text);
  const el = h("span", { class: "w", tabindex: "0", title: label, "aria-label": label, style: { "--a": strength.toFixed(3) } }, text);
  if (strength >= 0.6) el.classList.add("strong");
  const inspect = () => onInspect(label);
  el.addEventListener("mouseenter", inspect);
  el.addEventListener("focus", inspect);
  return el;
}

/** The `n` spans with the highest value of `signal`, as "word 0.1234" strings (a text alternative to the shading). */
export function topSpans(sources, spans, signal, n = 5) {
  return spans
    .filter((sp) => typeof sp[signal] === "number" && sp.end > sp.start && /[\p{L}\p{N}]/u.test(sp.text || "x"))
    .sort((a, b) => b[signal] - a[signal])
    .slice(0, n)
    .map((sp) => `${(sources[sp.segment || 0] || "").slice(sp.start, sp.end)} ${fmt(sp[signal])}`);
}
