// Jobs view: upload a dataset and start an SSA training job or a label job, list jobs, follow one live by polling.
import { getJson, request } from "./api.js";
import { $, clearMessage, h, notify, replace, when } from "./dom.js";
import { fetchJob, renderJob } from "./jobdetail.js";
import { isActive, normaliseJob } from "./jobmodel.js";
import { showDefaults } from "./schema.js";

const POLL_MS = 1000;
const NUMBER_FIELDS = ["iterations", "lambda_tok", "tau", "cls_weight", "learning_rate", "batch_size", "max_length", "seed",
  "dev_fraction"];
const TEXT_FIELDS = ["method", "label_mode", "base_model", "deploy", "text_column", "text_pair_column", "label_column",
  "task", "metric", "model_id"];
const LABEL_NUMBER_FIELDS = ["probes_per_row", "batch_size", "shard_rows"];
const LABEL_TEXT_FIELDS = ["model_id", "text_column", "text_pair_column", "label_column"];
const poll = { jobId: null, timer: null, visible: false };

export function initJobs() {
  $("#job-form").addEventListener("submit", onSubmit);
  $("#label-form").addEventListener("submit", onLabelSubmit);
  $("#jobs-refresh").addEventListener("click", refreshList);
  showDefaults($("#job-form"), "TrainJobSpec");
  showDefaults($("#label-form"), "LabelJobSpec");
}

export function showJobs() {
  poll.visible = true;
  refreshList();
  refreshModelChoices();
  if (poll.jobId) follow(poll.jobId);
}

/** The label form's model list: the stored models, the active one first ("the active model" sends no id). */
async function refreshModelChoices() {
  const select = $("#label-model");
  try {
    const data = await getJson("models");
    const chosen = select.value;
    replace(select, h("option", { value: "" }, data.active ? `the active model (${data.active})` : "the active model"),
      ...(data.models || []).map((m) => h("option", { value: m.model_id }, `${m.model_id} (${m.method})`)));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
  } catch {
    /* the list stays as it was; submitting still works with the active model */
  }
}

export function hideJobs() {
  poll.visible = false;
  clearTimeout(poll.timer);
}

/** The config JSON from the form: only the fields the user filled in, numbers as numbers. */
export function readConfig(form, numbers = NUMBER_FIELDS, texts = TEXT_FIELDS) {
  const config = {};
  for (const name of numbers) {
    const raw = form.elements[name].value.trim();
    if (raw === "") continue;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got “${raw}”.`);
    config[name] = value;
  }
  for (const name of texts) if (form.elements[name].value.trim()) config[name] = form.elements[name].value.trim();
  return config;
}

/** Submit a job form: `formBody(form)` builds the multipart body (throwing a readable Error for a missing file). */
function submitter(path, what, formBody) {
  return async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const msg = form.querySelector(".msg");
    const button = form.querySelector("button[type=submit]");
    try {
      const body = formBody(form);
      button.disabled = true;
      clearMessage(msg);
      const created = await (await request(path, { method: "POST", body })).json();
      const id = created.job_id ?? created.id;
      notify(msg, "ok", `${what} ${id} queued.`);
      await refreshList();
      follow(id);
    } catch (err) {
      notify(msg, "error", err.summary || err.message, err.details || []);
    } finally {
      button.disabled = false;
    }
  };
}

const onSubmit = submitter("jobs/ssa-train", "Job", (form) => {
  if (!form.elements.train.files.length) throw new Error("Choose a training file (JSONL, CSV, TSV or Parquet).");
  const body = new FormData();
  body.append("train", form.elements.train.files[0]);
  if (form.elements.dev.files.length) body.append("dev", form.elements.dev.files[0]);
  body.append("config", JSON.stringify(readConfig(form)));
  return body;
});

const onLabelSubmit = submitter("jobs/ssa-label", "Label job", (form) => {
  if (!form.elements.data.files.length) throw new Error("Choose a file of rows to label (JSONL, CSV, TSV or Parquet).");
  const body = new FormData();
  body.append("data", form.elements.data.files[0]);
  body.append("config", JSON.stringify(readConfig(form, LABEL_NUMBER_FIELDS, LABEL_TEXT_FIELDS)));
  return body;
});

export async function refreshList() {
  const body = $("#jobs-table tbody");
  try {
    const data = await getJson("jobs");
    const jobs = (Array.isArray(data) ? data : data.jobs || data.items || []).map(normaliseJob);
    replace(body, jobs.length ? jobs.map(jobRow) : h("tr", {}, h("td", { colspan: "5", class: "muted" }, "No jobs yet.")));
  } catch (err) {
    replace(body, h("tr", {}, h("td", { colspan: "5", class: "msg-error" }, err.summary || err.message)));
  }
}

function jobRow(job) {
  return h("tr", { "data-job": job.id },
    h("td", { "data-label": "Job" }, h("button", { type: "button", class: "link", title: job.id, "aria-label": `Open job ${job.id}`,
      onclick: () => follow(job.id) }, shortId(job.id))),
    h("td", { "data-label": "Status" }, h("span", { class: `badge status-${job.status}` }, job.status)),
    h("td", { "data-label": "Stage" }, job.stage || "–"),
    h("td", { class: "num", "data-label": "Progress" }, `${Math.round(job.progress * 100)}%`),
    h("td", { "data-label": "Created" }, when(job.createdAt)));
}

/** Long generated ids are shown by their first 12 characters (the full id is in the title). */
const shortId = (id) => (id.length > 14 ? `${id.slice(0, 12)}…` : id);

/** Show job `id` in the detail panel and poll it while it is queued or running. */
export function follow(id) {
  const panel = $("#job-detail");
  if (poll.jobId !== id) replace(panel);
  poll.jobId = id;
  panel.hidden = false;
  clearTimeout(poll.timer);
  tick(id, panel, true);
}

async function tick(id, panel, first) {
  if (poll.jobId !== id) return;
  try {
    const job = normaliseJob(await fetchJob(id));
    if (poll.jobId !== id) return;
    const wasActive = panel.dataset.active === "true";
    renderJob(panel, job, () => follow(id));
    panel.dataset.active = String(isActive(job));
    panel.dataset.status = job.status;
    if (first) panel.querySelector("h3").focus?.();
    if (wasActive && !isActive(job)) refreshList();
    if (isActive(job) && poll.visible) poll.timer = setTimeout(() => tick(id, panel, false), POLL_MS);
  } catch (err) {
    const area = h("div", { class: "msg" });
    notify(area, "error", err.summary || err.message, err.details || []);
    replace(panel, area);
  }
}
