// The detail panel of one job: progress, dev-metric chart, iteration table, actions, weak labels and log; for a label
// job: progress, its model, and its results in every format the API offers.
import { download, getJson, postJson, request } from "./api.js";
import { lineChart } from "./chart.js";
import { duration, h, notify, replace } from "./dom.js";
import { iterationTable, metricPoints } from "./iterations.js";
import { errorText, isActive, isLabelJob, shownIteration } from "./jobmodel.js";
import { labelRecord, parseJsonl } from "./labels.js";
import { labelFormats } from "./schema.js";

const LABEL_PAGE = 25;

/** Render `job` into `panel`; `onChange` is called after an action changed the job (cancel, deploy). */
export function renderJob(panel, job, onChange) {
  if (isLabelJob(job)) return renderLabelJob(panel, job, onChange);
  const msg = panel.querySelector(".job-msg") || h("div", { class: "msg job-msg", hidden: true });
  const labels = panel.querySelector(".labels-box") || labelsBox(job);
  const log = panel.querySelector(".log-box") || logBox(job);
  replace(panel,
    h("h3", { id: "job-title", tabindex: "-1" }, `Job ${job.id} `, h("span", { class: `badge status-${job.status}` }, job.status)),
    progressBlock(job), job.error ? h("p", { class: "msg msg-error", role: "alert" }, errorText(job.error)) : null,
    deployLine(job), actions(job, msg, onChange), msg, metricsBlock(job), labels, log);
  syncIterations(labels, job);
}

function renderLabelJob(panel, job, onChange) {
  const msg = panel.querySelector(".job-msg") || h("div", { class: "msg job-msg", hidden: true });
  const results = panel.querySelector(".results-box") || resultsBox(job, msg);
  results.hidden = job.status !== "succeeded";
  const log = panel.querySelector(".log-box") || logBox(job);
  const cancel = isActive(job)
    ? h("div", { class: "actions" }, h("button", { type: "button", onclick: (e) => act(e.currentTarget, msg,
      () => postJson(`jobs/${job.id}/cancel`, {}).then(() => "Cancellation requested."), onChange) }, "Cancel job"))
    : null;
  replace(panel,
    h("h3", { id: "job-title", tabindex: "-1" }, `Job ${job.id} `, h("span", { class: `badge status-${job.status}` }, job.status)),
    h("p", { class: "muted" }, `Label job · model ${job.modelId ?? "–"}`),
    progressBlock(job), job.error ? h("p", { class: "msg msg-error", role: "alert" }, errorText(job.error)) : null,
    cancel, msg, results, log);
}

/** Download buttons for the label job's records, one per format GET /jobs/{id}/labels offers. */
function resultsBox(job, msg) {
  const row = h("div", { class: "row actions" });
  const box = h("section", { class: "results-box", "aria-labelledby": "results-h" },
    h("h4", { id: "results-h" }, "Results"),
    h("p", { class: "muted" }, "One record per input row, in input order."), row);
  labelFormats().then((formats) => {
    for (const format of formats) {
      const name = `${job.id}-labels.${format === "jsonl" ? "jsonl" : format === "parquet" ? "parquet" : `${format}.json`}`;
      row.append(h("button", { type: "button", "data-format": format, onclick: (e) => act(e.currentTarget, msg,
        () => download(`jobs/${job.id}/labels`, name, { format }).then((n) => `Downloaded ${n}.`), () => {}) },
      `Download ${format}`));
    }
  });
  return box;
}

function progressBlock(job) {
  const pct = Math.round(Math.min(1, Math.max(0, job.progress)) * 100);
  const k = shownIteration(job.iteration);
  const shards = job.raw.total_steps ? `shard ${job.raw.step ?? 0} of ${job.raw.total_steps}` : "";
  const iter = isLabelJob(job) ? shards
    : job.iteration !== null && job.iteration !== undefined ? `iteration ${k}${job.iterations ? ` of ${job.iterations}` : ""}` : "";
  const parts = [job.stage && `stage ${job.stage}`, iter, `${pct}%`, isActive(job) && `ETA ${duration(job.eta)}`];
  return h("div", { class: "progress-block" },
    h("progress", { max: "100", value: String(pct), "aria-label": "Job progress" }, `${pct}%`),
    h("p", { class: "progress-text", "aria-live": "polite" }, parts.filter(Boolean).join(" · ")));
}

function actions(job, msg, onChange) {
  const bar = h("div", { class: "actions" });
  const run = (label, fn) => h("button", { type: "button", onclick: (e) => act(e.currentTarget, msg, fn, onChange) }, label);
  if (isActive(job)) bar.append(run("Cancel job", () => postJson(`jobs/${job.id}/cancel`, {}).then(() => "Cancellation requested.")));
  if (job.modelId && job.status === "succeeded") {
    bar.append(run(`Deploy model ${job.modelId}`, () =>
      postJson(`models/${job.modelId}/deploy`, {}).then(() => `Model ${job.modelId} is now active.`)));
    bar.append(run("Download model", () => download(`models/${job.modelId}/download`, `${job.modelId}.tar.gz`)
      .then((name) => `Downloaded ${name}.`)));
  }
  bar.append(run("Download log", () => download(`jobs/${job.id}/log`, `${job.id}-log.txt`).then((n) => `Downloaded ${n}.`)));
  return bar;
}

async function act(button, msg, fn, onChange) {
  button.disabled = true;
  try {
    notify(msg, "ok", await fn());
    onChange();
  } catch (err) {
    notify(msg, "error", err.summary || err.message, err.details || []);
  } finally {
    button.disabled = false;
  }
}

function metricsBlock(job) {
  return h("div", { class: "metrics-block" },
    h("h4", {}, `Dev ${job.metric} per iteration`),
    h("div", { class: "chart-wrap" }, lineChart(metricPoints(job.history, job.metric), job.metric)),
    job.history.length ? iterationTable(job.history, job.metric) : null);
}

function deployLine(job) {
  if (job.deployed === null && !job.deployNote) return null;
  const text = job.deployNote ? `Deployment: ${job.deployNote}.`
    : job.deployed ? `Model ${job.modelId} was deployed when the job finished.` : "The model was not deployed.";
  return h("p", { class: job.deployed ? "msg msg-ok" : "msg msg-info" }, text);
}

function labelsBox(job) {
  const select = h("select", { id: "labels-iteration", "aria-label": "Iteration" });
  const list = h("ol", { class: "label-list" });
  const msg = h("div", { class: "msg", hidden: true });
  const more = h("button", { type: "button", hidden: true }, "Show more");
  const state = { records: [], shown: 0 };
  const showPage = () => {
    list.append(...state.records.slice(state.shown, state.shown + LABEL_PAGE).map(labelRecord));
    state.shown = Math.min(state.records.length, state.shown + LABEL_PAGE);
    more.hidden = state.shown >= state.records.length;
  };
  more.addEventListener("click", showPage);
  const load = async () => {
    replace(list);
    try {
      const text = await (await request(`jobs/${job.id}/labels`, { params: { iteration: select.value } })).text();
      Object.assign(state, { records: parseJsonl(text), shown: 0 });
      notify(msg, "info", `Iteration ${shownIteration(Number(select.value))}: ${state.records.length} labelled sentences.`);
      showPage();
    } catch (err) {
      notify(msg, "error", err.summary || err.message, err.details || []);
    }
  };
  const get = () => download(`jobs/${job.id}/labels`, `${job.id}-labels-iter${shownIteration(Number(select.value))}.jsonl`, { iteration: select.value })
    .catch((err) => notify(msg, "error", err.summary || err.message, err.details || []));
  return h("section", { class: "labels-box", "aria-labelledby": "labels-h" },
    h("h4", { id: "labels-h" }, "Weak token labels"),
    h("p", { class: "muted small" }, "Tokens marked ", h("mark", { class: "lab1" }, "1"), " are needed by the decision; tokens marked ",
      h("span", { class: "lab0" }, "0"), " are not (struck through)."),
    h("div", { class: "row" }, h("label", { for: "labels-iteration" }, "Iteration "), select,
      h("button", { type: "button", class: "show-labels", onclick: load }, "Show labels"),
      h("button", { type: "button", onclick: get }, "Download labels")),
    msg, list, more);
}

/** Offer the iterations whose labels exist: those with a finished record (labels are written before training). */
function syncIterations(box, job) {
  const select = box.querySelector("select");
  const done = job.history.map((r, i) => r.iteration ?? i).filter((k) => k >= 1);
  const current = job.iteration >= 1 && isActive(job) && ["training", "evaluating", "evaluated"].includes(job.stage)
    ? [job.iteration] : [];
  const iterations = [...new Set([...done, ...current])].sort((a, b) => a - b);
  const wanted = iterations.map(String);
  if ([...select.options].map((o) => o.value).join() === wanted.join()) return;
  const keep = select.value;
  replace(select, iterations.map((k) => h("option", { value: String(k) }, String(shownIteration(k)))));
  if (wanted.includes(keep)) select.value = keep;
  box.querySelector(".show-labels").disabled = !iterations.length;
}

function logBox(job) {
  const pre = h("pre", { class: "log", tabindex: "0", hidden: true });
  const button = h("button", { type: "button" }, "Show log");
  button.addEventListener("click", async () => {
    try {
      pre.textContent = (await (await request(`jobs/${job.id}/log`)).text()) || "(empty log)";
    } catch (err) {
      pre.textContent = err.summary || err.message;
    }
    pre.hidden = false;
    button.textContent = "Refresh log";
  });
  return h("section", { class: "log-box" }, h("h4", {}, "Log"), button, pre);
}

export async function fetchJob(id) {
  return getJson(`jobs/${id}`);
}
