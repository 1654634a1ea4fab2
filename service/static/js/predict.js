// Predict view: one text (or a pair) through one or two models, with words shaded by attention or importance, and
// optionally the leave-one-word-out occlusion reference beside the attention (explain=occlusion).
import { postJson } from "./api.js";
import { fetchModels } from "./catalog.js";
import { $, clearMessage, fmt, h, notify, replace } from "./dom.js";
import { availableSignals, hasOcclusion, shadedSegment, topSpans } from "./shade.js";

const state = { results: [], sources: [] };

export function initPredict() {
  $("#predict-form").addEventListener("submit", onSubmit);
  $("#pair-toggle").addEventListener("change", (e) => {
    $("#pair-box").hidden = !e.target.checked;
  });
  for (const input of document.querySelectorAll("input[name=signal], input[name=unit]")) {
    input.addEventListener("change", renderResults);
  }
}

/** Called when the view is shown: refresh the two model selectors, keeping the current choice. */
export async function showPredict() {
  try {
    const { models, activeId } = await fetchModels();
    fillSelect($("#model-a"), models, `Active model${activeId ? ` (${activeId})` : ""}`);
    fillSelect($("#model-b"), models, "No comparison");
  } catch (err) {
    notify($("#predict-msg"), "error", `Could not list the models: ${err.summary || err.message}`, err.details || []);
  }
}

function fillSelect(select, models, emptyLabel) {
  const current = select.value;
  replace(select, h("option", { value: "" }, emptyLabel),
    models.map((m) => h("option", { value: m.id }, `${m.id}${m.active ? " (active)" : ""} · ${m.method}`)));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

function readInputs() {
  const text = $("#text-a").value;
  const pair = $("#pair-toggle").checked;
  const second = $("#text-b").value;
  if (!text.trim()) throw new Error("Enter a text to classify.");
  if (pair && !second.trim()) throw new Error("Enter the second text of the pair, or untick “Sentence pair”.");
  return pair ? { item: [text, second], sources: [text, second] } : { item: text, sources: [text] };
}

async function onSubmit(event) {
  event.preventDefault();
  const msg = $("#predict-msg");
  let inputs;
  try {
    inputs = readInputs();
  } catch (err) {
    notify(msg, "error", err.message);
    return;
  }
  clearMessage(msg);
  const choices = [$("#model-a").value, $("#model-b").value];
  const compare = choices[1] !== "";
  const button = $("#predict-form button[type=submit]");
  button.disabled = true;
  replace($("#predict-results"), h("p", { class: "muted" }, "Predicting…"));
  try {
    state.results = await Promise.all((compare ? choices : [choices[0]]).map((id) => predictOne(id, inputs.item)));
    state.sources = inputs.sources;
    renderResults();
  } finally {
    button.disabled = false;
  }
}

async function predictOne(modelId, item) {
  const body = { inputs: [item], truncate: $("#truncate").checked, return_tokens: true, return_words: true };
  if (modelId) body.model = modelId;
  if ($("#occlusion-toggle").checked) body.explain = "occlusion";
  try {
    const data = await postJson("predict", body);
    const model = data.model ?? { id: data.model_id, version: data.model_version };
    return { requested: modelId, model, prediction: data.predictions[0] };
  } catch (err) {
    return { requested: modelId, error: err };
  }
}

function renderResults() {
  const container = $("#predict-results");
  const signal = document.querySelector("input[name=signal]:checked").value;
  const unit = document.querySelector("input[name=unit]:checked").value;
  replace(container, state.results.map((r) => resultCard(r, signal, unit)));
  container.classList.toggle("compare", state.results.length > 1);
}

function resultCard(result, signal, unit) {
  const title = result.model ? result.model.id : result.requested || "active model";
  const card = h("article", { class: "card result", "data-model": title, "aria-label": `Prediction of ${title}` });
  card.append(h("h3", {}, title, result.model ? h("small", {}, ` version ${result.model.version}`) : null));
  if (result.error) {
    const area = h("div", { class: "msg" });
    notify(area, "error", result.error.summary || result.error.message, result.error.details || []);
    card.append(area);
    return card;
  }
  const p = result.prediction;
  card.append(labelLine(p), scoreTable(p), textBlock(p, signal, unit));
  return card;
}

function labelLine(p) {
  const line = h("p", { class: "label" }, "Label ", h("strong", { class: "label-value" }, String(p.label)));
  if (typeof p.score === "number") line.append(` · score ${fmt(p.score)}`);
  if (p.truncated) line.append(h("span", { class: "badge warn" }, "truncated"));
  return line;
}

function scoreTable(p) {
  const entries = Object.entries(p.scores || {}).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return null;
  const rows = entries.map(([label, value]) =>
    h("tr", {}, h("th", { scope: "row" }, label),
      h("td", { class: "bar-cell" }, h("span", { class: "bar", style: { width: `${(value * 100).toFixed(1)}%` } })),
      h("td", { class: "num" }, fmt(value))));
  return h("table", { class: "scores" }, h("caption", {}, "Class scores"), h("tbody", {}, rows));
}

function textBlock(p, wanted, unit) {
  const spans = (unit === "tokens" ? p.tokens : p.words) || p.words || p.tokens || [];
  const signals = availableSignals(spans);
  const signal = signals.includes(wanted) ? wanted : signals[0] || null;
  const readout = h("output", { class: "readout", "aria-live": "polite" }, "Hover or focus a word to see its exact values.");
  const inspect = (line) => { readout.textContent = line; };
  const main = shadedTexts(spans, signal, inspect, h("p", { class: "muted note" }, shadingNote(wanted, signal)));
  if (!hasOcclusion(spans)) return h("div", { class: "textblock" }, main, readout);
  const reference = shadedTexts(spans, "occlusion", inspect, h("p", { class: "muted note" },
    "Leave-one-word-out occlusion: the drop of the predicted class's probability when the word is left out (darker = "
    + "larger drop, scaled to the largest; a rise is unshaded), a faithful reference to check the weights against."));
  main.prepend(h("h4", { class: "explainer-title" }, signal ? `SSA ${signal}` : "No SSA signal"));
  reference.prepend(h("h4", { class: "explainer-title" }, "Occlusion (reference)"));
  reference.classList.add("occlusion-block");
  return h("div", { class: "textblock" }, h("div", { class: "explainers" }, main, reference), readout);
}

/** The input's segments shaded by one signal, under `note`, with the highest-valued words listed as text. */
function shadedTexts(spans, signal, inspect, note) {
  const block = h("div", { class: "explainer" }, note);
  state.sources.forEach((source, seg) => {
    if (state.sources.length > 1) block.append(h("h4", {}, seg === 0 ? "Text" : "Second text"));
    block.append(shadedSegment(source, spans.filter((sp) => (sp.segment || 0) === seg), signal, inspect));
  });
  if (signal) block.append(h("p", { class: "top-words" }, `Highest ${signal}: `, topSpans(state.sources, spans, signal).join(", ")));
  return block;
}

function shadingNote(wanted, signal) {
  if (!signal) return "This model has no SSA signal (baseline): words are not shaded.";
  const how = signal === "attention" ? "darker = more attention (scaled to the largest weight)" : "darker = higher importance p(keep)";
  return signal === wanted ? `Shaded by ${signal}: ${how}.` : `This model has no ${wanted}; shaded by ${signal}: ${how}.`;
}
