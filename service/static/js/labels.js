// Weak token labels of one training iteration: sentences with each labelled token marked 1 (kept) or 0 (dropped).
import { h } from "./dom.js";

/** Parse a JSONL body into records; a bad line is reported by its number. */
export function parseJsonl(text) {
  return text.split("\n").filter((line) => line.trim()).map((line, i) => {
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`line ${i + 1} of the labels file is not JSON`);
    }
  });
}

function tokenLabel(token) {
  return token.label ?? token.weak_label ?? token.y;
}

/** One segment of a record: the text, with labelled tokens wrapped in <mark> (1) or <span class="lab0"> (0). */
function labelledSegment(source, tokens) {
  const out = h("p", { class: "labelled" });
  let pos = 0;
  for (const tok of [...tokens].sort((a, b) => a.start - b.start)) {
    const label = tokenLabel(tok);
    if (tok.end <= tok.start || tok.start < pos || (label !== 0 && label !== 1)) continue;
    if (tok.start > pos) out.append(source.slice(pos, tok.start));
    const text = source.slice(tok.start, tok.end);
    const title = `“${text}”: weak label ${label}${label === 1 ? " (needed by the decision)" : " (not needed)"}`;
    out.append(label === 1
      ? h("mark", { class: "lab1", title, "data-label": "1" }, text)
      : h("span", { class: "lab0", title, "data-label": "0" }, text));
    pos = tok.end;
  }
  if (pos < source.length) out.append(source.slice(pos));
  return out;
}

/** A list item for one record: label line, then each segment with its marked tokens. */
export function labelRecord(record) {
  const sources = [record.text ?? "", record.text_pair ?? null].filter((s) => s !== null);
  const tokens = record.tokens || [];
  const item = h("li", { class: "label-record" });
  const meta = [];
  if (record.label !== undefined) meta.push(`label ${record.label}`);
  if (record.row !== undefined) meta.push(`row ${record.row}`);
  else if (record.example_id !== undefined) meta.push(`example ${record.example_id}`);
  const ones = tokens.filter((t) => tokenLabel(t) === 1).length;
  const zeros = tokens.filter((t) => tokenLabel(t) === 0).length;
  meta.push(`${ones} tokens marked 1, ${zeros} marked 0`);
  item.append(h("p", { class: "muted small" }, meta.join(" · ")));
  sources.forEach((source, seg) => {
    item.append(labelledSegment(source, tokens.filter((t) => (t.segment || 0) === seg)));
  });
  return item;
}
