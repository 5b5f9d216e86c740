// The registry: versions with aliases and metrics, lineage to the job, and one version's
// forecast (with its outermost quantile band) against the actual load over its test
// period (read page by page; a multi-series model's worst series), its accuracy once
// served (monitoring.js), the decisions on its name's champion (promotions.js), its
// features by importance, and for a multi-series model its worst series; an anomaly
// model's newest detection with its events (detections.js).

import { get, newestOnly, query } from "./api.js";
import { lineChart } from "./charts.js";
import { showDetections } from "./detections.js";
import { errorBox, h, number, pagerControls, when } from "./dom.js";
import { showMonitoring } from "./monitoring.js";
import { showPromotions } from "./promotions.js";

/** The most test-period points one chart draws. */
const CHART_ROWS = 20000;

const PAGE_SIZE = 100;

export function modelsPage(view, params) {
  const list = h("div");
  const pager = h("div", { class: "pager" });
  let pageNumber = 1;
  const filter = h("input", { id: "models-name", placeholder: "model name",
                              value: params.get("model_name") || "",
                              onchange: () => { pageNumber = 1; load(); } });
  view.replaceChildren(h("h2", {}, "Models"),
    h("div", { class: "filters" }, h("div", {}, h("label", { for: "models-name" }, "Model"), filter)),
    list, pager);
  const nextLoad = newestOnly();

  async function load() {
    const current = nextLoad();
    let page;
    try {
      page = await get(`/ai/models${query({
        model_name: filter.value.trim(), page: pageNumber, page_size: PAGE_SIZE })}`);
    } catch (error) {
      if (current()) list.replaceChildren(errorBox(error));
      return;
    }
    if (!current()) return;
    list.replaceChildren(modelsTable(page.models));
    pager.replaceChildren(...pagerControls(pageNumber, PAGE_SIZE, page.total, "versions",
      (number) => { pageNumber = number; load(); }));
  }
  load();
  return () => {};
}

function modelsTable(models) {
  return h("table", { "data-testid": "models-table" },
      h("thead", {}, h("tr", {}, ["Model", "Version", "Aliases", "Type", "MAE", "Job", "Registered"]
        .map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, models.map((m) => h("tr", {},
        h("td", {}, h("a", { href: `#/models/${encodeURIComponent(m.model_id)}` },
          `${m.tenant_id}/${m.model_name}`)),
        h("td", {}, m.version),
        h("td", {}, m.aliases.join(", ")),
        h("td", {}, m.model_type),
        h("td", { class: "num" }, number(m.metrics.mae)),
        h("td", {}, h("a", { href: `#/jobs/${m.job_id}` }, m.job_id.slice(0, 8))),
        h("td", {}, when(m.created_at))))));
}

export function modelPage(view, modelId) {
  const body = h("div");
  view.replaceChildren(h("h2", {}, "Model ", h("code", {}, modelId)), body);
  const path = `/ai/models/${encodeURIComponent(modelId)}`;
  Promise.all([
    get(path),
    get(`${path}/series-metrics${query({ page_size: 20 })}`).catch(() => null),
  ]).then(async ([model, series]) => {
    const worst = series && series.series.length ? series.series[0].series : null;
    const tested = await testPeriod(path, worst);
    const plot = h("div", { "data-testid": "forecast-vs-actual" });
    const monitoring = h("section", { "aria-label": "Monitoring", "data-testid": "monitoring" });
    const decisions = h("section", { "aria-label": "Promotions" });
    const anomaly = model.model_type === "anomaly";
    const detections = h("section", { "aria-label": "Detections", "data-testid": "detections" });
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
      h("h3", {}, "Forecast against actual, test period"
        + (worst ? ` (series ${worst})` : "")
        + (tested.rows.length < tested.total
          ? ` (the first ${tested.rows.length} of ${tested.total} rows)` : "")), plot,
      anomaly ? detections : "",
      monitoring,
      decisions,
      importanceCard(model.feature_importance),
      series ? seriesCard(series) : "");
    forecastChart(plot, tested.rows);
    if (anomaly) showDetections(detections, model);
    showMonitoring(monitoring, path, model)
      .catch((error) => monitoring.replaceChildren(errorBox(error)));
    showPromotions(decisions, model).catch((error) => decisions.replaceChildren(errorBox(error)));
  }).catch((error) => body.replaceChildren(errorBox(error)));
  return () => {};
}

/** The test period's rows (of one series, if named), page by page, up to CHART_ROWS. */
async function testPeriod(path, series) {
  const rows = [];
  for (let page = 1; ; page += 1) {
    const got = await get(`${path}/test-predictions${query({ series, page, page_size: 1000 })}`);
    rows.push(...got.predictions);
    if (!got.predictions.length || rows.length >= Math.min(got.total, CHART_ROWS)) {
      return { rows, total: got.total };
    }
  }
}

/** Actual and predicted, with the band between the outermost quantiles when there are. */
function forecastChart(container, rows) {
  const xs = rows.map((r) => Date.parse(r.timestamp) / 1000);
  const lines = [
    { label: "actual", values: rows.map((r) => r.actual) },
    { label: "predicted", values: rows.map((r) => r.predicted) },
  ];
  const keys = Object.keys((rows[0] && rows[0].quantiles) || {}).sort((a, b) => a - b);
  let band;
  if (keys.length >= 2) {
    const [low, high] = [keys[0], keys[keys.length - 1]];
    const pale = { colour: "rgba(31, 95, 191, 0.45)", width: 0.5 };
    lines.push(
      { label: `P${100 * high}`, values: rows.map((r) => r.quantiles[high]), ...pale },
      { label: `P${100 * low}`, values: rows.map((r) => r.quantiles[low]), ...pale });
    band = [2, 3];
  }
  lineChart(container, "Test period", "time", xs, lines, { time: true, height: 300, band });
}

/** Features by gain, as bars against the largest. */
function importanceCard(importance) {
  const ranked = Object.entries(importance || {}).sort((a, b) => b[1] - a[1]);
  if (!ranked.length) return "";
  const total = ranked.reduce((sum, [, gain]) => sum + gain, 0) || 1;
  const top = ranked[0][1] || 1;
  return h("div", { class: "card" }, h("h3", {}, "Feature importance (gain)"),
    h("table", { "data-testid": "feature-importance" }, h("tbody", {},
      ranked.map(([name, gain]) => h("tr", {},
        h("td", {}, name),
        h("td", { class: "bar-cell" }, h("div", {
          class: "bar", style: `width: ${(100 * gain / top).toFixed(1)}%` })),
        h("td", { class: "num" }, `${(100 * gain / total).toFixed(1)} %`))))));
}

/** The worst-served series of a multi-series model. */
function seriesCard(page) {
  const levels = Object.keys((page.series[0] && page.series[0].coverage) || {});
  return h("div", { class: "card" }, h("h3", {}, `Series, worst first (${page.total} in all)`),
    h("table", { "data-testid": "series-metrics" },
      h("thead", {}, h("tr", {}, ["Series", "Rows", "MAE", "RMSE", "MASE",
        ...levels.map((level) => `Coverage ${level} %`)].map((name) =>
        h("th", { scope: "col" }, name)))),
      h("tbody", {}, page.series.map((s) => h("tr", {},
        h("td", {}, s.series), h("td", { class: "num" }, String(s.rows)),
        h("td", { class: "num" }, number(s.mae)), h("td", { class: "num" }, number(s.rmse)),
        h("td", { class: "num" }, number(s.mase)),
        ...levels.map((level) => h("td", { class: "num" }, number(s.coverage[level]))))))));
}
