// The jobs page: filters, a live table (polled every 2 s), cancel and retry, pages.

import { api, get, newestOnly, query } from "./api.js";
import {
  PRIORITIES, STATUSES, errorBox, h, headline, pagerControls, progressBar, resources, seconds,
  shortId, statusBadge,
} from "./dom.js";

/** The cluster's CPUs: reserved by running work, alive now, and the most it can grow to. */
function renderStats(stats) {
  return h("p", { class: "muted", "data-testid": "cluster-cpus" },
    `CPUs reserved ${stats.cpus_reserved} of ${stats.cluster_cpus} (${stats.utilization_percent}%)`
    + `, up to ${stats.max_capacity} as the cluster grows · ${stats.active_jobs} running`
    + ` · ${stats.queued_jobs} queued`
    + (stats.max_concurrent_jobs ? ` · at most ${stats.max_concurrent_jobs} jobs at once` : ""));
}

const PAGE_SIZE = 20;
const POLL_MS = 2000;

export function jobsPage(view, params) {
  const state = {
    status: params.get("status") || "",
    tenant_id: params.get("tenant_id") || "",
    model_name: params.get("model_name") || "",
    page: Number(params.get("page") || 1),
  };
  const table = h("div", { "aria-live": "polite" });
  const pager = h("div", { class: "pager" });
  const cluster = h("div", {});
  const notice = h("div", {}); // an action's error: the polls leave it in place

  const filters = h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    h("div", {}, h("label", { for: "filter-status" }, "Status"),
      h("select", { id: "filter-status", onchange: (e) => update({ status: e.target.value }) },
        h("option", { value: "" }, "any"),
        STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)))),
    h("div", {}, h("label", { for: "filter-tenant" }, "Tenant"),
      h("input", { id: "filter-tenant", value: state.tenant_id,
                   onchange: (e) => update({ tenant_id: e.target.value.trim() }) })),
    h("div", {}, h("label", { for: "filter-model" }, "Model"),
      h("input", { id: "filter-model", value: state.model_name,
                   onchange: (e) => update({ model_name: e.target.value.trim() }) })));

  view.replaceChildren(h("h2", {}, "Jobs"), cluster, filters, notice, table, pager);

  function update(changes) {
    Object.assign(state, changes, { page: changes.page || 1 });
    refresh();
  }

  async function act(job, action) {
    const verb = action === "cancel" ? "Cancel" : "Retry";
    if (!window.confirm(`${verb} job ${job.job_id}?`)) return;
    notice.replaceChildren();
    try {
      if (action === "cancel") await api("DELETE", `/ai/training/jobs/${job.job_id}`);
      else await api("POST", `/ai/training/jobs/${job.job_id}/retry`);
    } catch (error) {
      notice.replaceChildren(errorBox(error));
      return;
    }
    refresh();
  }

  const nextRefresh = newestOnly();
  let loading = 0;

  async function refresh() {
    const current = nextRefresh();
    loading += 1;
    let page;
    let stats;
    try {
      [page, stats] = await Promise.all([
        get(`/ai/training/jobs${query({
          status: state.status, tenant_id: state.tenant_id, model_name: state.model_name,
          page: state.page, page_size: PAGE_SIZE,
        })}`),
        get("/ai/training/stats"),
      ]);
    } catch (error) {
      if (current()) table.replaceChildren(errorBox(error));
      return;
    } finally {
      loading -= 1;
    }
    if (!current()) return;
    cluster.replaceChildren(renderStats(stats));
    table.replaceChildren(renderTable(page.jobs, act));
    pager.replaceChildren(...pagerControls(
      state.page, PAGE_SIZE, page.total, "jobs", (number) => update({ page: number })));
  }

  refresh();
  // A slow answer is not overtaken by the next poll, only by a changed filter or page.
  const timer = setInterval(() => loading || refresh(), POLL_MS);
  return () => clearInterval(timer);
}

function renderTable(jobs, act) {
  return h("table", { "data-testid": "jobs-table" },
    h("caption", {}, "Newest first; updates every 2 seconds."),
    h("thead", {}, h("tr", {},
      ["Job", "Status", "Priority", "Tenant", "Model", "Feature set", "CPUs", "Progress",
       "Queue", "Duration", "Metric", "Actions"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, jobs.map((job) => h("tr", { "data-job-id": job.job_id },
      h("td", {}, h("a", { href: `#/jobs/${job.job_id}` }, shortId(job.job_id))),
      h("td", {}, statusBadge(job.status)),
      h("td", {}, PRIORITIES[job.priority] || job.priority),
      h("td", {}, job.tenant_id),
      h("td", {}, job.model_name),
      h("td", {}, job.feature_set),
      h("td", { class: "num", title: resources(job) }, job.resources ? job.resources.cpus : ""),
      h("td", {}, progressBar(job.progress, `progress of ${job.job_id}`)),
      h("td", {}, job.status === "queued"
        ? `#${job.queue_position ?? "?"} ${job.waiting_reason || ""}` : ""),
      h("td", { class: "num" }, seconds(job.duration_seconds)),
      h("td", {}, headline(job.metrics)),
      h("td", {},
        ["queued", "running"].includes(job.status)
          && h("button", { type: "button", onclick: () => act(job, "cancel"),
                           "aria-label": `Cancel job ${job.job_id}` }, "Cancel"),
        ["failed", "cancelled"].includes(job.status)
          && h("button", { type: "button", onclick: () => act(job, "retry"),
                           "aria-label": `Retry job ${job.job_id}` }, "Retry"))))));
}
