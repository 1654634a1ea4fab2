// Models view: every published model with its dev metric, which one is active, its card, deploy and download.
import { download, getJson, postJson } from "./api.js";
import { fetchModels } from "./catalog.js";
import { lineChart } from "./chart.js";
import { $, fmt, h, notify, replace, when } from "./dom.js";
import { iterationTable, metricPoints } from "./iterations.js";
import { shownIteration } from "./jobmodel.js";
import { renderMarkdown } from "./markdown.js";

export function initModels() {
  $("#models-refresh").addEventListener("click", showModels);
}

export async function showModels() {
  const msg = $("#models-msg");
  try {
    const { models, activeId } = await fetchModels();
    $("#active-model").textContent = activeId ? `Active model: ${activeId}` : "No model is active.";
    replace($("#models-table tbody"), models.length ? models.map((m) => modelRow(m, msg))
      : h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No models yet: start a job in the Jobs view.")));
  } catch (err) {
    notify(msg, "error", err.summary || err.message, err.details || []);
  }
}

function modelRow(m, msg) {
  const button = (label, onclick, extra = {}) => h("button", { type: "button", onclick, ...extra }, label);
  return h("tr", { "data-model": m.id, class: m.active ? "is-active" : "" },
    h("th", { scope: "row", "data-label": "Model" },
      h("span", {}, m.id, m.active ? h("span", { class: "badge ok" }, "active") : null)),
    h("td", { "data-label": "Method" }, m.method || "–"), h("td", { "data-label": "Version" }, m.version || "–"),
    h("td", { class: "num", "data-label": "Dev metric" }, `${m.metric} ${fmt(m.devMetric)}`),
    h("td", { "data-label": "Created" }, when(m.createdAt)),
    h("td", { "data-label": "Actions" }, h("div", { class: "actions" },
      button("Card", () => showCard(m.id), { "aria-controls": "model-card", "aria-label": `Card of ${m.id}` }),
      button("Deploy", (e) => deploy(m.id, e.currentTarget, msg), { disabled: m.active, "aria-label": `Deploy ${m.id}` }),
      button("Download", () => download(`models/${m.id}/download`, `${m.id}.tar.gz`)
        .catch((err) => notify(msg, "error", err.summary || err.message, err.details || [])), { "aria-label": `Download ${m.id}` }))));
}

async function deploy(id, button, msg) {
  button.disabled = true;
  try {
    await postJson(`models/${id}/deploy`, {});
    notify(msg, "ok", `Model ${id} is now active.`);
    await showModels();
  } catch (err) {
    notify(msg, "error", err.summary || err.message, err.details || []);
    button.disabled = false;
  }
}

/** GET /models/{id} and show its facts, its per-iteration chart and its card. */
async function showCard(id) {
  const panel = $("#model-card");
  panel.hidden = false;
  try {
    const m = await getJson(`models/${id}`);
    replace(panel, h("h3", { tabindex: "-1" }, `Model ${id}`), facts(m), explanations(m), robustness(m), history(m),
      card(m));
  } catch (err) {
    const area = h("div", { class: "msg" });
    notify(area, "error", err.summary || err.message, err.details || []);
    replace(panel, area);
  }
  panel.querySelector("h3, .msg").focus?.();
}

const FACTS = [["method", "method"], ["task", "task"], ["labels", "labels"], ["base model", "base_model"],
  ["λ (token loss weight)", "lambda_tok"], ["τ (keep threshold)", "tau"], ["w (CLS share)", "cls_weight"],
  ["max length", "max_length"], ["pair input", "pair"], ["version", "version"], ["created", "created_at"]];

function facts(m) {
  const src = { ...(m.meta || m.ssa || {}), ...m };
  const rows = FACTS.filter(([, key]) => src[key] !== undefined && src[key] !== null).map(([name, key]) =>
    [h("dt", {}, name), h("dd", {}, Array.isArray(src[key]) ? src[key].join(", ") : String(src[key]))]);
  return h("dl", { class: "facts" }, rows.flat());
}

function history(m) {
  const metrics = m.metrics || {};
  const records = metrics.iterations || [];
  if (!records.length) return null;
  const metric = metrics.metric || m.metric || "metric";
  const best = metrics.best_iteration;
  return h("section", { class: "metrics-block" },
    h("h4", {}, `Dev ${metric} per iteration`, typeof best === "number" ? ` (best: iteration ${shownIteration(best)})` : ""),
    h("div", { class: "chart-wrap" }, lineChart(metricPoints(records, metric), metric)), iterationTable(records, metric));
}

const EXPLAIN_FACTS = [
  ["normalised entropy", "entropy", "1.0 = uniform attention"],
  ["top-20 % share", "top20_share", "0.20 = uniform"],
  ["comprehensiveness@20 %", "comprehensiveness_20", "probability drop when the 20 % most-attended wordpieces are deleted"],
  ["sufficiency@20 %", "sufficiency_20", "probability drop when only they are kept (lower is better)"],
  ["random's comprehensiveness@20 %", "random_comprehensiveness_20", "the floor: 20 % random wordpieces deleted"]];

function explanations(m) {
  const scores = (m.metrics || {}).explanations;
  if (!scores) return null;
  const rows = EXPLAIN_FACTS.filter(([, key]) => typeof scores[key] === "number").map(([name, key, hint]) =>
    [h("dt", { title: hint }, name), h("dd", {}, scores[key].toFixed(3))]);
  return h("section", { class: "explain-block" },
    h("h4", {}, `Explanation quality (${scores.sentences} dev sentences)`), h("dl", { class: "explain-facts" }, rows.flat()));
}

const ROBUST_SOURCES = [["offtopic", "off-topic clause"], ["fragments", "words of another class"]];
const pct = (x) => `${(100 * x).toFixed(1)} %`;
const ratio = (x) => (typeof x === "number" ? x.toFixed(2) : "–");

/** metrics.json "robustness": misleading against clean accuracy on the model's dev rows (or why not measured). */
function robustness(m) {
  const report = (m.metrics || {}).robustness;
  if (!report) return null;
  const measured = ROBUST_SOURCES.filter(([key]) => report[key]);
  const head = h("tr", {}, ["inserted", "rows", "clean", "misleading", "flip rate", "clause attention (right / wrong)"]
    .map((name) => h("th", { scope: "col" }, name)));
  const rows = measured.map(([key, name]) => {
    const s = report[key];
    return h("tr", {}, [name, String(s.rows), pct(s.clean_accuracy), pct(s.misleading_accuracy), pct(s.flip_rate),
      `${ratio(s.clause_attention_ratio_right)} / ${ratio(s.clause_attention_ratio_wrong)}`].map((c) => h("td", {}, c)));
  });
  return h("section", { class: "robust-block" }, h("h4", {}, "Robustness to misleading spans"),
    h("p", { class: "muted" }, report.note || ""),
    measured.length ? h("table", { class: "robust-table" }, h("thead", {}, head), h("tbody", {}, rows)) : null);
}

function card(m) {
  const text = m.card ?? m.card_md ?? m.card_markdown ?? null;
  return text ? h("section", { class: "card-md" }, h("h4", {}, "Model card"), renderMarkdown(text))
    : h("p", { class: "muted" }, "The API returned no model card (card.md) for this model.");
}
