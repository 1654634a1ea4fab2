// Normalises job records from GET /jobs and GET /jobs/{id}, so rendering does not depend on exact field names.

export const ACTIVE_STATES = new Set(["queued", "pending", "running", "started", "cancelling"]);

function first(...values) {
  return values.find((v) => v !== undefined && v !== null);
}

/** The dev metric value of one iteration record ({iteration, dev: {metric: v}, ...} or {dev_metric}). */
export function devValue(record, metric) {
  if (typeof record.dev_metric === "number") return record.dev_metric;
  const dev = record.dev || {};
  if (metric && typeof dev[metric] === "number") return dev[metric];
  const numeric = Object.values(dev).find((v) => typeof v === "number");
  return numeric ?? null;
}

/** Iterations are numbered from 0 everywhere (SSA_METHOD.md: iteration 0 trains on the originals only, weak labels
 * start with iteration 1), as in the CLI, the API and the labels files. */
export const shownIteration = (k) => k;

export function normaliseJob(j) {
  const progressObj = typeof j.progress === "object" && j.progress !== null ? j.progress : {};
  const history = first(Array.isArray(j.iterations) ? j.iterations : undefined, j.metrics, j.history, []);
  const config = j.config || {};
  const metric = first(j.metric, history[0]?.metric, Object.keys(history[0]?.dev || {})[0], "metric");
  return {
    id: first(j.id, j.job_id),
    kind: first(j.kind, "ssa-train"),
    status: first(j.status, "unknown"),
    stage: first(j.stage, progressObj.stage, ""),
    progress: first(typeof j.progress === "number" ? j.progress : undefined, progressObj.fraction, 0),
    iteration: first(j.iteration, progressObj.iteration, null),
    iterations: first(typeof j.iterations === "number" ? j.iterations : undefined, config.iterations, null),
    eta: first(j.eta_s, j.eta_seconds, j.eta, null),
    history: Array.isArray(history) ? history : [],
    metric,
    modelId: first(j.model_id, j.result?.model_id, null),
    deployed: first(j.deployed, null),
    deployNote: first(j.deploy_note, null),
    error: first(j.error, null),
    createdAt: first(j.created_at, j.submitted_at, ""),
    config,
    raw: j,
  };
}

export const isLabelJob = (job) => job.kind === "ssa-label";

export function isActive(job) {
  return ACTIVE_STATES.has(job.status);
}

/** Readable error text from the job's error field (string or {type, message}). */
export function errorText(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  return [error.type, error.message].filter(Boolean).join(": ") || JSON.stringify(error);
}
