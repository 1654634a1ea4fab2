// Per-iteration training records (GET /jobs/{id} "iterations", or metrics.json "iterations") as points and a table.
import { fmt, h } from "./dom.js";
import { devValue, shownIteration } from "./jobmodel.js";

/** Chart points {x: 1-based iteration, y: dev metric} of the records that have a dev value. */
export function metricPoints(records, metric) {
  return records.map((r, i) => ({ x: shownIteration(r.iteration ?? i), y: devValue(r, metric) }))
    .filter((p) => typeof p.y === "number");
}

const probe = (r, key) => r[key] ?? r.probe?.[key] ?? r.label_stats?.[key];

/** A table: iteration, dev metric, losses, kept-copy rate, share of tokens labelled 0, seconds. */
export function iterationTable(records, metric) {
  const cols = [["iteration", (r) => shownIteration(r.iteration)], [`dev ${metric}`, (r) => devValue(r, metric)],
    ["train loss", (r) => r.train_loss], ["token loss", (r) => r.tok_loss], ["kept rate", (r) => probe(r, "kept_rate")],
    ["zero-label share", (r) => probe(r, "zero_label_share")], ["seconds", (r) => r.seconds]];
  return h("div", { class: "table-scroll" }, h("table", { class: "iter-table" },
    h("caption", {}, "Per-iteration metrics"),
    h("thead", {}, h("tr", {}, cols.map(([name]) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, records.map((r) => h("tr", {}, cols.map(([, get]) => h("td", { class: "num" }, fmt(get(r)))))))));
}
