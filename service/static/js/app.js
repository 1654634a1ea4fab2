// Entry point: hash routing between the three views and the API-key box (kept in sessionStorage only).
import { getKey, setKey } from "./api.js";
import { $, notify } from "./dom.js";
import { hideJobs, initJobs, showJobs } from "./jobs.js";
import { initModels, showModels } from "./models.js";
import { initPredict, showPredict } from "./predict.js";

const VIEWS = { predict: showPredict, jobs: showJobs, models: showModels };

let current = null;

/** Show the view named by the hash; other hashes (such as the skip link's #main) keep the current view. */
function route() {
  const wanted = location.hash.slice(1);
  const name = wanted in VIEWS ? wanted : current || "predict";
  if (name === current && !(wanted in VIEWS)) return;
  current = name;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name !== "jobs") hideJobs();
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · SSA console`;
  VIEWS[name]();
}

function initKey() {
  const form = $("#key-form");
  const input = $("#api-key");
  const status = $("#key-status");
  const show = () => {
    status.textContent = getKey() ? "Key set for this tab." : "No key: write actions will be refused.";
  };
  input.value = getKey();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setKey(input.value.trim());
    show();
  });
  $("#key-clear").addEventListener("click", () => {
    setKey("");
    input.value = "";
    show();
  });
  show();
}

function start() {
  initKey();
  initPredict();
  initJobs();
  initModels();
  window.addEventListener("hashchange", route);
  window.addEventListener("unhandledrejection", (e) => notify($("#global-msg"), "error", String(e.reason?.message || e.reason)));
  route();
}

start();
