// Experiments: pick 2–20 and compare their parameters (differences highlighted) and
// their validation curves overlaid.

import { api, get, newestOnly, query } from "./api.js";
import { lineChart } from "./charts.js";
import { errorBox, h, number, pagerControls, statusBadge, when } from "./dom.js";

const MIN = 2;
const MAX = 20;
const PAGE_SIZE = 100;

export function experimentsPage(view, params) {
  const picked = new Set((params.get("ids") || "").split(",").filter(Boolean));
  const list = h("div");
  const pager = h("div", { class: "pager" });
  let pageNumber = 1;
  const result = h("section", { "aria-label": "Comparison", "aria-live": "polite" });
  const compareButton = h("button", { type: "button", class: "primary", onclick: compare },
    "Compare selected");
  const filter = h("input", { id: "experiments-model", placeholder: "model name",
                              onchange: () => { pageNumber = 1; load(); } });
  view.replaceChildren(
    h("h2", {}, "Experiments"),
    h("div", { class: "filters" },
      h("div", {}, h("label", { for: "experiments-model" }, "Model"), filter),
      compareButton, h("span", { class: "muted" }, `Pick ${MIN} to ${MAX}.`)),
    list, pager, result);

  const nextLoad = newestOnly();

  async function load() {
    const current = nextLoad();
    let shown;
    try {
      const page = await get(`/ai/training/experiments${query({
        model_name: filter.value.trim(), page: pageNumber, page_size: PAGE_SIZE })}`);
      shown = table(page.experiments);
      if (current()) {
        pager.replaceChildren(...pagerControls(pageNumber, PAGE_SIZE, page.total, "experiments",
          (number) => { pageNumber = number; load(); }));
      }
    } catch (error) {
      shown = errorBox(error);
    }
    if (current()) list.replaceChildren(shown);
  }

  function table(experiments) {
    return h("table", { "data-testid": "experiments-table" },
      h("thead", {}, h("tr", {}, ["", "Name", "Model", "Status", "Job", "Created", "validation_l1"]
        .map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, experiments.map((e) => h("tr", {},
        h("td", {}, h("input", {
          type: "checkbox", checked: picked.has(e.experiment_id),
          "aria-label": `Select ${e.name} (${e.experiment_id})`,
          onchange: (event) => {
            if (event.target.checked) picked.add(e.experiment_id);
            else picked.delete(e.experiment_id);
          } })),
        h("td", {}, e.name), h("td", {}, e.model_name), h("td", {}, statusBadge(e.status)),
        h("td", {}, e.job_id ? h("a", { href: `#/jobs/${e.job_id}` }, e.job_id.slice(0, 8)) : ""),
        h("td", {}, when(e.created_at)),
        h("td", { class: "num" }, number(e.metrics.validation_l1))))));
  }

  async function compare() {
    if (picked.size < MIN || picked.size > MAX) {
      result.replaceChildren(errorBox(new Error(`Pick ${MIN} to ${MAX} experiments.`)));
      return;
    }
    try {
      const comparison = await api("POST", "/ai/training/experiments/compare",
        { experiment_ids: [...picked] });
      render(comparison);
    } catch (error) {
      result.replaceChildren(errorBox(error));
    }
  }

  function render(comparison) {
    const ids = comparison.experiments.map((e) => e.experiment_id);
    const names = Object.fromEntries(comparison.experiments.map((e) => [e.experiment_id, e.name]));
    const header = h("tr", {}, h("th", { scope: "col" }, "Parameter"),
      ids.map((id) => h("th", { scope: "col" }, names[id])));
    const params = h("table", { "data-testid": "compare-params" },
      h("caption", {}, "Rows that differ are highlighted and marked."),
      h("thead", {}, header),
      h("tbody", {}, comparison.params.map((p) => h("tr", { class: p.differs ? "differs" : "" },
        h("th", { scope: "row" }, p.name, p.differs ? " (differs)" : ""),
        ids.map((id) => h("td", {}, JSON.stringify(p.values[id] ?? null)))))));
    const metrics = h("table", {},
      h("thead", {}, header.cloneNode(true)),
      h("tbody", {}, comparison.metrics.map((m) => h("tr", {},
        h("th", { scope: "row" }, m.name),
        ids.map((id) => h("td", { class: "num" }, number(m.values[id]),
          m.best.includes(id) ? " (best)" : ""))))));
    const curve = h("div", { "data-testid": "compare-curve" });
    result.replaceChildren(h("h3", {}, "Parameters"), params, h("h3", {}, "Final metrics"),
      metrics, h("h3", {}, "Curves"), curve);
    lineChart(curve, comparison.curve.metric, "step", comparison.curve.steps,
      ids.map((id) => ({ label: names[id], values: comparison.curve.values[id] })));
  }

  load();
  return () => {};
}
