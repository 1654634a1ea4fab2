// The model list, read from GET /models and normalised so the views do not depend on the exact response shape.
import { getJson } from "./api.js";

/** {id, version, method, task, metric, devMetric, createdAt, active, raw} from one model record. */
export function normaliseModel(m, activeId) {
  const id = m.id ?? m.model_id;
  const metrics = m.metrics || {};
  const metric = m.metric ?? metrics.metric ?? "metric";
  const devMetric = m.dev_metric ?? metrics.dev_metric ?? (metrics.dev ? metrics.dev[metric] : undefined);
  return {
    id,
    version: m.version ?? "",
    method: m.method ?? "",
    task: m.task ?? "",
    labels: m.labels ?? [],
    metric,
    devMetric,
    createdAt: m.created_at ?? "",
    active: Boolean(m.active) || (activeId !== undefined && activeId !== null && id === activeId),
    raw: m,
  };
}

/** GET /models → {models, activeId}; accepts a bare list or {models: [...], active: id}. */
export async function fetchModels() {
  const data = await getJson("models");
  const list = Array.isArray(data) ? data : data.models || data.items || [];
  const declared = Array.isArray(data) ? undefined : data.active ?? data.active_model ?? data.active_id;
  const activeId = typeof declared === "object" && declared !== null ? declared.id ?? declared.model_id : declared;
  const models = list.map((m) => normaliseModel(m, activeId));
  return { models, activeId: activeId ?? models.find((m) => m.active)?.id ?? null };
}
