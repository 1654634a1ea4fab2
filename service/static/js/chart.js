// A small inline-SVG line chart: one value per iteration, points with exact values in <title>.
import { fmt } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 480;
const H = 220;
const PAD = { left: 66, right: 16, top: 16, bottom: 40 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Y range padded a little, so a flat line is not drawn on the frame. */
function yRange(values) {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = hi - lo > 1e-9 ? (hi - lo) * 0.1 : Math.max(Math.abs(hi) * 0.05, 0.05);
  return [lo - pad, hi + pad];
}

/**
 * Chart `points` ([{x: iteration, y: value}]) with the metric name on the y axis.
 * Returns an <svg> with role="img" and a text summary as its accessible name.
 */
export function lineChart(points, metric) {
  const summary = points.length
    ? `Dev ${metric} per iteration: ${points.map((p) => `iteration ${p.x} ${fmt(p.y)}`).join(", ")}`
    : `No dev ${metric} yet`;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": summary });
  root.append(svg("title", {}, summary));
  if (!points.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, "No iteration has finished yet"));
    return root;
  }
  const xs = points.map((p) => p.x);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = yRange(points.map((p) => p.y));
  const sx = (x) => PAD.left + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  root.append(...axes(sx, sy, [x0, x1], [y0, y1], metric, xs));
  const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
  root.append(svg("path", { d, class: "chart-line" }));
  for (const p of points) {
    const dot = svg("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 5, class: "chart-dot" });
    dot.append(svg("title", {}, `iteration ${p.x}: ${metric} ${fmt(p.y)}`));
    root.append(dot);
  }
  return root;
}

function axes(sx, sy, [x0, x1], [y0, y1], metric, xs) {
  const parts = [
    svg("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: "chart-axis" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: "chart-axis" }),
    svg("text", { x: (W + PAD.left) / 2, y: H - 6, "text-anchor": "middle", class: "chart-label" }, "iteration"),
    svg("text", { x: 12, y: (H - PAD.bottom) / 2, transform: `rotate(-90 12 ${(H - PAD.bottom) / 2})`,
      "text-anchor": "middle", class: "chart-label" }, `dev ${metric}`),
  ];
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    parts.push(svg("line", { x1: PAD.left, y1: sy(y), x2: W - PAD.right, y2: sy(y), class: "chart-grid" }));
    parts.push(svg("text", { x: PAD.left - 6, y: sy(y) + 4, "text-anchor": "end", class: "chart-tick" }, y.toFixed(3)));
  }
  for (const x of [...new Set(xs)].filter((x) => x0 === x1 || Number.isInteger(x))) {
    parts.push(svg("text", { x: sx(x), y: H - PAD.bottom + 16, "text-anchor": "middle", class: "chart-tick" }, String(x)));
  }
  return parts;
}
