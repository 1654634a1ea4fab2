// A deliberately small markdown renderer for model cards: headings, paragraphs, lists, tables, **bold**, `code`.
// It builds DOM nodes from text, so nothing in a card is ever interpreted as HTML.
import { h } from "./dom.js";

/** Inline markup: `code` and **bold**; everything else stays text. */
function inline(text) {
  const out = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
  let pos = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > pos) out.push(text.slice(pos, m.index));
    out.push(m[1] !== undefined ? h("code", {}, m[1]) : h("strong", {}, m[2]));
    pos = m.index + m[0].length;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

const cells = (line) => line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
const isRule = (line) => /^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$/.test(line.trim());

function table(lines) {
  const [head, , ...rows] = lines;
  return h("div", { class: "table-scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, cells(head).map((c) => h("th", { scope: "col" }, inline(c))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cells(r).map((c) => h("td", {}, inline(c))))))));
}

/** Split markdown into blocks of consecutive lines of one kind, then render each block. */
export function renderMarkdown(source) {
  const root = h("div", { class: "markdown" });
  const lines = source.replace(/\r\n/g, "\n").split("\n");
  for (let i = 0; i < lines.length;) {
    const line = lines[i];
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (!line.trim()) i += 1;
    else if (heading) {
      root.append(h(`h${Math.min(6, heading[1].length + 3)}`, {}, inline(heading[2])));
      i += 1;
    } else {
      const kind = line.trim().startsWith("|") && isRule(lines[i + 1] || "") ? "table" : /^\s*[-*]\s+/.test(line) ? "list" : "p";
      const block = [];
      while (i < lines.length && lines[i].trim() && blockKind(lines[i], kind)) block.push(lines[i++]);
      root.append(render(kind, block));
    }
  }
  return root;
}

function blockKind(line, kind) {
  if (kind === "table") return line.trim().startsWith("|");
  if (kind === "list") return /^\s*[-*]\s+/.test(line);
  return !/^#{1,6}\s/.test(line) && !/^\s*[-*]\s+/.test(line) && !line.trim().startsWith("|");
}

function render(kind, block) {
  if (kind === "table") return table(block);
  if (kind === "list") return h("ul", {}, block.map((l) => h("li", {}, inline(l.replace(/^\s*[-*]\s+/, "")))));
  return h("p", {}, inline(block.join(" ")));
}
