// One job: config, stage timeline, metrics, live log tail, validation curve, and for a
// hyperparameter search the best-so-far curve, trial-vs-parameter scatters and trials.

import { get, query } from "./api.js";
import { lineChart, scatterChart } from "./charts.js";
import {
  PRIORITIES, errorBox, h, number, progressBar, resources, seconds, statusBadge, when,
} from "./dom.js";

const POLL_MS = 2000;
const FINISHED = ["completed", "failed", "cancelled"];
const STAGE_DONE = /^(\w+) finished in ([\d.]+)s$/;

export function jobPage(view, jobId) {
  const summary = h("section", { "aria-label": "Summary" });
  const results = h("section", { "aria-label": "Results" });
  const logs = h("pre", { class: "logs", "data-testid": "log-tail", tabindex: 0 });
  const trialDetails = new Map(); // experiment id -> detail (params never change)
  let shownVersion = "";

  view.replaceChildren(
    h("h2", {}, "Job ", h("code", {}, jobId)), summary, results,
    h("h3", {}, "Log tail"), logs);

  let loading = false;

  // One load at a time: a slow one is not overtaken by the next poll.
  async function refresh() {
    if (loading) return;
    loading = true;
    try {
      await load();
    } finally {
      loading = false;
    }
  }

  async function load() {
    let job;
    let lines;
    try {
      job = await get(`/ai/training/jobs/${jobId}`);
      lines = (await get(`/ai/training/jobs/${jobId}/logs${query({ tail: 200 })}`)).logs;
    } catch (error) {
      summary.replaceChildren(errorBox(error));
      if (error.status === 404) clearInterval(timer); // no such job (or purged): it won't appear
      return;
    }
    summary.replaceChildren(renderSummary(job, lines));
    const following = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
    logs.textContent = lines.map((l) =>
      `${l.timestamp.slice(11, 23)} ${l.level.padEnd(7)} ${l.stage || "-"}: ${l.message}`).join("\n");
    if (following) logs.scrollTop = logs.scrollHeight;
    const version = `${job.status}/${job.progress}/${job.metrics?.trials_completed ?? ""}`;
    if (version !== shownVersion) {
      shownVersion = version;
      await renderResults(results, job, trialDetails).catch((e) => results.replaceChildren(errorBox(e)));
    }
    if (FINISHED.includes(job.status)) clearInterval(timer);
  }

  refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => clearInterval(timer);
}

function renderSummary(job, lines) {
  const stages = lines
    .map((line) => [line, STAGE_DONE.exec(line.message)])
    .filter(([, match]) => match)
    .map(([line, match]) => h("tr", {},
      h("td", {}, match[1]), h("td", { class: "num" }, seconds(Number(match[2]))),
      h("td", {}, when(line.timestamp))));
  const metrics = Object.entries(job.metrics || {})
    .filter(([, value]) => typeof value !== "object")
    .map(([name, value]) => h("tr", {}, h("td", {}, name), h("td", { class: "num" }, number(value))));
  return h("div", {},
    h("p", {}, statusBadge(job.status), " ", progressBar(job.progress, "job progress"),
      ` ${PRIORITIES[job.priority] || job.priority} priority · tenant ${job.tenant_id}`
      + ` · model ${job.model_name} · attempt ${job.attempts}`,
      job.model_id ? h("span", {}, " · registered ",
        h("a", { href: `#/models/${encodeURIComponent(job.model_id)}` }, job.model_id)) : null),
    job.error_message ? h("p", { class: "error" }, job.error_message) : null,
    h("p", { "data-testid": "job-resources" }, `Holds ${resources(job)} while it runs`),
    job.status === "queued"
      ? h("p", {}, `Queue position ${job.queue_position ?? "?"}: ${job.waiting_reason || ""}`)
      : null,
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("h3", {}, "Stage timeline"),
        stages.length
          ? h("table", {}, h("thead", {}, h("tr", {},
              h("th", { scope: "col" }, "Stage"), h("th", { scope: "col" }, "Took"),
              h("th", { scope: "col" }, "Finished"))), h("tbody", {}, stages))
          : h("p", { class: "muted" }, "No stage has finished yet.")),
      h("div", { class: "card" }, h("h3", {}, "Metrics"),
        metrics.length ? h("table", {}, h("tbody", {}, metrics))
          : h("p", { class: "muted" }, "None yet.")),
      h("div", { class: "card" }, h("h3", {}, "Config"),
        h("pre", {}, JSON.stringify(job.config, null, 2)))));
}

async function renderResults(container, job, trialDetails) {
  const experiments = await experimentsOf(job.job_id);
  const trials = experiments
    .filter((e) => e.name.startsWith("trial "))
    .sort((a, b) => trialNumber(a) - trialNumber(b));
  // A requeued search opens a new experiment holding the whole curve: show the newest.
  const searches = experiments.filter((e) => e.name === "search");
  const search = searches[searches.length - 1];
  // Each attempt's training run (not its backtest windows): the last has the curve.
  const runs = experiments.filter((e) => e.name.startsWith(`${job.model_name} attempt `));
  const parts = [];

  const run = runs[runs.length - 1];
  if (run) {
    const points = (await get(`/ai/training/experiments/${run.experiment_id}/metrics`)).points;
    const curves = groupByName(points.filter((p) => p.name.startsWith("validation_")));
    if (curves.size) {
      const box = h("div", { "data-testid": "validation-curve" });
      parts.push(box);
      queueMicrotask(() => plotCurves(box, "Validation curve", "boosting round", curves));
    }
  }
  if (search) {
    const points = (await get(`/ai/training/experiments/${search.experiment_id}/metrics${query({
      name: "best_value" })}`)).points;
    const box = h("div", { "data-testid": "best-value-curve" });
    parts.push(box);
    queueMicrotask(() => plotCurves(box, "Best value so far", "trial", groupByName(points)));
  }
  if (trials.length) {
    for (const trial of trials) {
      if (!trialDetails.has(trial.experiment_id)) {
        trialDetails.set(trial.experiment_id,
          await get(`/ai/training/experiments/${trial.experiment_id}`));
      }
    }
    const rows = trials.map((t) => ({ ...trialDetails.get(t.experiment_id), ...t }));
    const scatters = h("div", { class: "grid", "data-testid": "trial-scatters" });
    parts.push(h("h3", {}, "Trial value against each parameter"), scatters, trialsTable(rows));
    queueMicrotask(() => plotScatters(scatters, rows));
  }
  if (!parts.length) parts.push(h("p", { class: "muted" }, "No curves recorded yet."));
  container.replaceChildren(...parts);
}

/** Every experiment of the job, oldest first, page by page (a search has up to 1,000). */
async function experimentsOf(jobId) {
  const experiments = [];
  for (let page = 1; ; page += 1) {
    const got = await get(`/ai/training/experiments${query({
      job_id: jobId, page, page_size: 100, order_by: "created_at", order: "asc" })}`);
    experiments.push(...got.experiments);
    if (!got.experiments.length || experiments.length >= got.total) return experiments;
  }
}

function trialNumber(experiment) {
  return Number(experiment.name.slice("trial ".length));
}

function trialValue(trial) {
  return trial.metrics.best_validation_l1 ?? trial.metrics.validation_l1 ?? null;
}

function groupByName(points) {
  const curves = new Map();
  for (const point of points) {
    if (!curves.has(point.name)) curves.set(point.name, new Map());
    curves.get(point.name).set(point.step, point.value);
  }
  return curves;
}

function plotCurves(container, title, xLabel, curves) {
  const steps = [...new Set([...curves.values()].flatMap((c) => [...c.keys()]))].sort((a, b) => a - b);
  const series = [...curves].map(([name, values]) => ({
    label: name, values: steps.map((s) => values.get(s) ?? null) }));
  lineChart(container, title, xLabel, steps, series);
}

function plotScatters(container, trials) {
  const scored = trials.filter((t) => trialValue(t) !== null);
  const names = [...new Set(scored.flatMap((t) => Object.keys(t.params || {})))].sort();
  for (const name of names) {
    const pairs = scored
      .filter((t) => typeof t.params[name] === "number")
      .map((t) => [t.params[name], trialValue(t)]);
    if (pairs.length) scatterChart(container, name, name, "validation MAE", pairs);
  }
}

function trialsTable(trials) {
  const names = [...new Set(trials.flatMap((t) => Object.keys(t.params || {})))].sort();
  return h("table", { "data-testid": "trials-table" },
    h("caption", {}, "Trials; pruned and failed trials are marked in the Status column."),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Trial"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Validation MAE"), names.map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, trials.map((t) => h("tr", { "data-trial-status": t.status },
      h("td", {}, t.name.replace("trial ", "#")),
      h("td", {}, statusBadge(t.status)),
      h("td", { class: "num" }, number(trialValue(t))),
      names.map((n) => h("td", { class: "num" }, number(t.params?.[n])))))));
}
