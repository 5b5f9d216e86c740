// The registry: versions with aliases and metrics, lineage to the job, and one version's
// forecast against the actual load over its test period.

import { get, query } from "./api.js";
import { lineChart } from "./charts.js";
import { errorBox, h, number, when } from "./dom.js";

export function modelsPage(view, params) {
  const list = h("div");
  view.replaceChildren(h("h2", {}, "Models"), list);
  get(`/ai/models${query({ model_name: params.get("model_name"), page_size: 100 })}`)
    .then((page) => list.replaceChildren(h("table", { "data-testid": "models-table" },
      h("thead", {}, h("tr", {}, ["Model", "Version", "Aliases", "Type", "MAE", "Job", "Registered"]
        .map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, page.models.map((m) => h("tr", {},
        h("td", {}, h("a", { href: `#/models/${encodeURIComponent(m.model_id)}` },
          `${m.tenant_id}/${m.model_name}`)),
        h("td", {}, m.version),
        h("td", {}, m.aliases.join(", ")),
        h("td", {}, m.model_type),
        h("td", { class: "num" }, number(m.metrics.mae)),
        h("td", {}, h("a", { href: `#/jobs/${m.job_id}` }, m.job_id.slice(0, 8))),
        h("td", {}, when(m.created_at))))))))
    .catch((error) => list.replaceChildren(errorBox(error)));
  return () => {};
}

export function modelPage(view, modelId) {
  const body = h("div");
  view.replaceChildren(h("h2", {}, "Model ", h("code", {}, modelId)), body);
  Promise.all([
    get(`/ai/models/${encodeURIComponent(modelId)}`),
    get(`/ai/models/${encodeURIComponent(modelId)}/test-predictions`),
  ]).then(([model, tested]) => {
    const plot = h("div", { "data-testid": "forecast-vs-actual" });
    body.replaceChildren(
      h("p", {}, `Version ${model.version} of ${model.tenant_id}/${model.model_name}`
        + (model.aliases.length ? ` (aliases: ${model.aliases.join(", ")})` : "")
        + ` · trained by job `, h("a", { href: `#/jobs/${model.job_id}` }, model.job_id)),
      h("div", { class: "grid" },
        h("div", { class: "card" }, h("h3", {}, "Metrics"), h("table", {}, h("tbody", {},
          Object.entries(model.metrics).map(([name, value]) =>
            h("tr", {}, h("td", {}, name), h("td", { class: "num" }, number(value))))))),
        h("div", { class: "card" }, h("h3", {}, "Parameters"),
          h("pre", {}, JSON.stringify(model.params, null, 2)))),
      h("h3", {}, "Forecast against actual, test period"), plot);
    const rows = tested.predictions;
    lineChart(plot, "Test period", "time", rows.map((r) => Date.parse(r.timestamp) / 1000), [
      { label: "actual", values: rows.map((r) => r.actual) },
      { label: "predicted", values: rows.map((r) => r.predicted) },
    ], { time: true, height: 300 });
  }).catch((error) => body.replaceChildren(errorBox(error)));
  return () => {};
}
