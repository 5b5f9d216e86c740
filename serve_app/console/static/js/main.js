// The console's entry: the API key form and a hash router (#/jobs, #/jobs/<id>,
// #/submit, #/experiments, #/models, #/models/<id>). Each page returns a function that
// stops its polling when another page opens.

import { apiKey, setApiKey } from "./api.js";
import { experimentsPage } from "./compare.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { modelPage, modelsPage } from "./models.js";
import { submitPage } from "./submit.js";

const view = document.getElementById("view");
let leave = () => {};

const ROUTES = [
  [/^\/jobs\/([\w:.-]+)$/, (match) => jobPage(view, match[1])],
  [/^\/jobs$/, (_, params) => jobsPage(view, params)],
  [/^\/submit$/, () => submitPage(view)],
  [/^\/experiments$/, (_, params) => experimentsPage(view, params)],
  [/^\/models\/(.+)$/, (match) => modelPage(view, decodeURIComponent(match[1]))],
  [/^\/models$/, (_, params) => modelsPage(view, params)],
];

function route() {
  const [path, search] = (window.location.hash.slice(1) || "/jobs").split("?");
  const params = new URLSearchParams(search || "");
  leave();
  for (const link of document.querySelectorAll("nav a")) {
    const current = path.startsWith(link.getAttribute("href").slice(1));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      leave = page(match, params) || (() => {});
      return;
    }
  }
  window.location.hash = "#/jobs";
}

function showKeyState() {
  document.getElementById("login-state").textContent = apiKey() ? "key in use" : "no key";
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("api-key");
  setApiKey(field.value.trim());
  field.value = "";
  showKeyState();
  route();
});

window.addEventListener("hashchange", route);
showKeyState();
route();
