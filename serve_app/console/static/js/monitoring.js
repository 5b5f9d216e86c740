// A model's monitoring (issue 37): its live MAE per forecast date, one point per scored
// forecast, against its test MAE and the band chance allows (from the latest drift
// check), with the champion's promotion decisions and the model name's training jobs of
// the charted period as vertical markers; beside it the drift status with the numbers
// behind it, the target's and covariates' shift, and the live interval coverage.

import { get, query } from "./api.js";
import { lineChart } from "./charts.js";
import { errorBox, h, number, shortId, statusBadge, when } from "./dom.js";

/** The most scored forecasts one chart draws (the API's largest page). */
const EVALUATIONS = 500;
/** Jobs and decisions are read 100 at a time (the APIs' largest page), newest first, back
 * to the charted period's start or at most this many pages. */
const PAGE = 100;
const MAX_PAGES = 10;
const HOUR = 3600;

const DECISIONS = {
  promoted: { colour: "#15803d", glyph: "P" },
  kept: { colour: "#4b5563", glyph: "K" },
  rolled_back: { colour: "#b91c1c", glyph: "R" },
  stood: { colour: "#1d4ed8", glyph: "S" },
};
const JOB = { colour: "#7c3aed", glyph: "J" };

/** Fill ``section`` with the model's monitoring; ``path`` is the model's API path. */
export async function showMonitoring(section, path, model) {
  const heading = h("h3", {}, "Monitoring");
  section.replaceChildren(heading, h("p", { class: "muted" }, "Loading…"));
  let monitoring;
  try {
    monitoring = await get(`${path}/monitoring${query({ page_size: EVALUATIONS })}`);
  } catch (error) {
    section.replaceChildren(heading, errorBox(error));
    return;
  }
  if (!monitoring.evaluations.length) {
    section.replaceChildren(heading, h("p", { "data-testid": "monitoring-empty" },
      "No forecast of this model has actuals yet", testSummary(monitoring.test)));
    return;
  }
  const oldestFirst = [...monitoring.evaluations].reverse();
  const xs = oldestFirst.map((e) => Date.parse(e.origin) / 1000);
  const period = padded(xs[0], xs[xs.length - 1]);
  const notes = [];
  const [jobs, decisions] = await Promise.all([
    trainingJobs(model, period).catch((error) => {
      notes.push(`Training jobs could not be read: ${error.message}`);
      return [];
    }),
    promotions(model, period).catch((error) => {
      // 404: no decision API (or none visible) — the chart goes without those markers.
      if (error.status !== 404) notes.push(`Promotion decisions could not be read: ${error.message}`);
      return [];
    }),
  ]);
  const markers = [...decisions, ...jobs].sort((a, b) => a.x - b.x);

  const plot = h("div", { "data-testid": "monitoring-chart" });
  section.replaceChildren(heading,
    monitoring.evaluations.length < monitoring.total
      ? h("p", { class: "muted" },
        `The latest ${monitoring.evaluations.length} of ${monitoring.total} scored forecasts.`)
      : "",
    h("div", { class: "monitoring" },
      h("div", {}, plot, eventList(markers, period), notes.map((n) => h("p", { class: "muted" }, n))),
      statusCard(monitoring)));
  accuracyChart(plot, monitoring, oldestFirst, xs, period, markers);
}

/** The charted period: the forecast dates, half a day (or a twentieth) either side. */
function padded(first, last) {
  const pad = Math.max(12 * HOUR, (last - first) / 20);
  return [first - pad, last + pad];
}

function accuracyChart(container, monitoring, evaluations, xs, period, markers) {
  const accuracy = monitoring.status && monitoring.status.accuracy;
  // The test MAE the status compares with (the test windows' mean); else the model's.
  const testMae = accuracy ? accuracy.test_mae : monitoring.test.mae;
  const at = [period[0], ...xs, period[1]];
  const constant = (value) => at.map(() => (value === undefined ? null : value));
  const lines = [
    { label: "live MAE", values: [null, ...evaluations.map((e) => e.metrics.mae), null],
      colour: "#c2410c", points: true },
    { label: "test MAE", values: constant(testMae), colour: "#1f5fbf", width: 2, dots: false },
  ];
  let band;
  if (accuracy) {
    const pale = { colour: "rgba(31, 95, 191, 0.35)", width: 0.5, dots: false };
    lines.push(
      { label: "band high", values: constant(accuracy.band[1]), ...pale },
      { label: "band low", values: constant(accuracy.band[0]), ...pale });
    band = [2, 3];
  }
  const box = lineChart(container, "Live MAE per forecast date", "forecast date", at, lines,
    { time: true, height: 300, band, xRange: period, markers, yLabel: "MAE" });
  if (testMae !== undefined) box.dataset.testMae = String(testMae);
}

/** The model name's training jobs created in the period, as markers. */
async function trainingJobs(model, period) {
  const jobs = await newestBack(period, "created_at", async (page) => (await get(
    `/ai/training/jobs${query({
      tenant_id: model.tenant_id, model_name: model.model_name, page, page_size: PAGE })}`)).jobs);
  return jobs.map((job) => ({
    x: Date.parse(job.created_at) / 1000,
    kind: "job",
    ...JOB,
    label: `Training job ${shortId(job.job_id)} (${job.status}) created ${when(job.created_at)}`
      + (job.model_id === model.model_id ? ": trained this version"
        : job.model_id ? `: trained version ${version(job.model_id)}` : ""),
  }));
}

/** The decisions on the model name's champion alias in the period, as markers. */
async function promotions(model, period) {
  const base = `/ai/models/${encodeURIComponent(model.tenant_id)}/`
    + `${encodeURIComponent(model.model_name)}/promotions`;
  const decided = await newestBack(period, "decided_at",
    async (page) => (await get(`${base}${query({ page, page_size: PAGE })}`)).promotions);
  return decided.map((d) => ({
    x: Date.parse(d.decided_at) / 1000,
    kind: d.decision,
    ...(DECISIONS[d.decision] || JOB),
    label: `Champion ${decisionText(d)} (${when(d.decided_at)})${d.reason ? `: ${d.reason}` : ""}`,
  }));
}

function decisionText(d) {
  const challenger = version(d.challenger_id);
  const champion = d.champion_id ? version(d.champion_id) : null;
  if (d.decision === "promoted") return `promoted ${challenger}${champion ? ` over ${champion}` : ""}`;
  if (d.decision === "kept") return `kept ${champion || "as it was"} over ${challenger}`;
  if (d.decision === "rolled_back") return `rolled back ${challenger}${champion ? ` to ${champion}` : ""}`;
  if (d.decision === "stood") return `${challenger}'s promotion stood${champion ? ` over ${champion}` : ""}`;
  return `${d.decision} ${challenger}`;
}

/** Items (newest first, ``key`` their time) page by page until one is older than the
 * period; those inside it. */
async function newestBack(period, key, readPage) {
  const inside = [];
  for (let page = 1; page <= MAX_PAGES; page += 1) {
    const items = await readPage(page);
    for (const item of items) {
      const x = Date.parse(item[key]) / 1000;
      if (x >= period[0] && x <= period[1]) inside.push(item);
    }
    const last = items[items.length - 1];
    if (items.length < PAGE || Date.parse(last[key]) / 1000 < period[0]) break;
  }
  return inside;
}

function version(modelId) {
  return modelId.split(":").pop();
}

function eventList(markers, period) {
  const span = `${when(period[0] * 1000)} – ${when(period[1] * 1000)}`;
  if (!markers.length) {
    return h("p", { class: "muted", "data-testid": "monitoring-events" },
      `No training job or champion decision between ${span}.`);
  }
  return h("div", {},
    h("p", { class: "muted" }, `Marked: training jobs (J) and champion decisions (P promoted, `
      + `K kept, R rolled back, S stood) between ${span}.`),
    h("ul", { class: "events", "data-testid": "monitoring-events" },
      markers.map((m) => h("li", { style: `--marker: ${m.colour}`, "data-marker": m.kind },
        m.label))));
}

function testSummary(test) {
  const parts = [["MAE", test.mae], ["coverage_80", test.coverage_80]]
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name} ${number(value)}`);
  return parts.length ? ` (its test ${parts.join(", ")}).` : ".";
}

function fixed(value, digits = 2) {
  return value === null || value === undefined ? "—" : value.toFixed(digits);
}

function row(name, ...cells) {
  return h("tr", {}, h("th", { scope: "row" }, name), cells.map((cell) =>
    h("td", { class: typeof cell === "string" ? "num" : "" }, cell)));
}

/** The latest drift check: the status, the accuracy figures behind it, the shifts. */
function statusCard(monitoring) {
  if (!monitoring.status) {
    return h("div", { class: "card", "data-testid": "monitoring-status" }, h("p", { class: "muted" },
      "Not judged yet: no forecast has actuals for 90 % of its rows."));
  }
  const health = monitoring.status;
  const accuracy = health.accuracy;
  const recent = monitoring.evaluations.slice(0, accuracy ? accuracy.windows : 1);
  const covered = recent.map((e) => e.metrics.coverage_80).filter((v) => v !== undefined);
  const liveCoverage = covered.length ? covered.reduce((a, b) => a + b, 0) / covered.length : null;
  const shifts = [
    ...(health.target ? [["target", health.target]] : []),
    ...Object.entries(health.covariates).sort(([a], [b]) => a.localeCompare(b)),
  ];
  const coverage = row("coverage_80 (live / test)",
    `${liveCoverage === null ? "—" : number(liveCoverage)} / ${number(monitoring.test.coverage_80) || "—"}`);
  coverage.dataset.testid = "coverage-check";
  return h("div", { class: "card", "data-testid": "monitoring-status" },
    h("p", {}, "Status ", statusBadge(health.status),
      accuracy ? `: live MAE ${fixed(accuracy.ratio)} × the test MAE` : ""),
    accuracy
      ? h("table", { "data-testid": "accuracy-check" },
        h("caption", {}, `Accuracy over the latest ${accuracy.windows} scored forecast`
          + `${accuracy.windows === 1 ? "" : "s"} (status: ${accuracy.status})`),
        h("tbody", {},
          row("live MAE", number(accuracy.live_mae)),
          row("test MAE", number(accuracy.test_mae)),
          row("ratio (live / test)", fixed(accuracy.ratio)),
          row("z (standard errors above)", fixed(accuracy.z)),
          row("band if nothing changed", `${number(accuracy.band[0])} – ${number(accuracy.band[1])}`),
          row("windows (live / test)", `${accuracy.windows} / ${accuracy.test_windows}`),
          coverage))
      : h("div", {},
        h("p", { class: "muted" }, "No accuracy check yet (the test part has no forecast windows)."),
        h("table", {}, h("tbody", {}, coverage))),
    shifts.length
      ? h("table", { "data-testid": "shift-checks" },
        h("caption", {}, "Shift against the training rows (PSI)"),
        h("thead", {}, h("tr", {}, ["Column", "PSI", "Rows", "Status"].map((name) =>
          h("th", { scope: "col" }, name)))),
        h("tbody", {}, shifts.map(([name, shift]) => h("tr", { "data-column": name },
          h("td", {}, name), h("td", { class: "num" }, fixed(shift.psi, 3)),
          h("td", { class: "num" }, String(shift.rows)), h("td", {}, statusBadge(shift.status))))))
      : h("p", { class: "muted" }, "Too few recent values for a shift check."));
}
