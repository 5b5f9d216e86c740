// A form for a new job. The API validates; its 422 messages appear next to their fields.

import { api, get, newestOnly, query } from "./api.js";
import { errorBox, h } from "./dom.js";

function field(name, label, control, hint) {
  const id = `field-${name.replace(".", "-")}`;
  control.id = id;
  control.name = name;
  control.setAttribute("aria-describedby", `${id}-error`);
  return h("div", { "data-field": name },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "muted" }, hint) : null,
    h("span", { id: `${id}-error`, class: "field-error", role: "alert" }));
}

const input = (attributes = {}) => h("input", attributes);
const select = (options, selected) => h("select", {},
  options.map((o) => h("option", { value: o, selected: o === selected }, o)));

export function submitPage(view) {
  const featureSets = select([]);
  const formError = h("div", { "aria-live": "assertive" });
  const form = h("form", { class: "submit-form", novalidate: true, onsubmit: submit },
    field("tenant_id", "Tenant", input({ value: "tenant-a", required: true })),
    field("model_type", "Model type", select(["forecast", "anomaly"], "forecast")),
    field("model_name", "Model name", input({ value: "load_forecast", required: true })),
    field("priority", "Priority", select(["urgent", "high", "normal", "low"], "normal")),
    field("config.feature_set", "Feature set", featureSets),
    field("config.target_variable", "Target", input({ value: "load_kw" })),
    field("config.horizon", "Horizon (steps)", input({ placeholder: "24; anomaly: 1", inputmode: "numeric" })),
    field("config.start_date", "Start date", input({ placeholder: "2024-01-01T00:00:00Z" }),
      "ISO 8601; empty: the whole set"),
    field("config.end_date", "End date", input({ placeholder: "2025-01-01T00:00:00Z" })),
    h("fieldset", {}, h("legend", {}, "Hyperparameter search"),
      field("config.enable_hpo", "Search", input({ type: "checkbox" })),
      field("config.n_trials", "Trials", input({ value: "20", inputmode: "numeric" })),
      field("config.n_workers", "Parallel trials", input({ placeholder: "one per cluster CPU" })),
      field("config.timeout_seconds", "Time budget (s)", input({ placeholder: "none" }))),
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Submit job")));
  view.replaceChildren(h("h2", {}, "Submit a training job"), formError, form);

  const tenant = form.elements.tenant_id;
  const tenantError = form.querySelector('[data-field="tenant_id"] .field-error');

  const nextLoad = newestOnly();

  // The sets the job can use: the shared ones and the tenant's own. An admin's key reads
  // those of the tenant typed in; another key only its own, so at first, if the tenant
  // shown is not its own, the key's own sets are offered.
  async function loadSets(tenantId, first = false) {
    const current = nextLoad();
    const chosen = featureSets.value;
    tenantError.textContent = "";
    try {
      const page = await get(`/ai/training/feature-sets${query({ tenant_id: tenantId })}`);
      if (!current()) return;
      featureSets.replaceChildren(...page.feature_sets.map((s) =>
        h("option", { value: s.name, selected: s.name === chosen }, s.name)));
    } catch (error) {
      if (!current()) return;
      if (first && error.status === 403) loadSets(undefined);
      else if (tenantId) tenantError.textContent = error.message;
      else formError.replaceChildren(errorBox(error));
    }
  }
  tenant.addEventListener("change", () => loadSets(tenant.value.trim()));
  loadSets(tenant.value.trim(), true);

  function body() {
    const value = (name) => form.elements[name].value.trim();
    const numberOrText = (name) => {
      const text = value(name);
      if (text === "") return undefined;
      return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text; // the API says what is wrong
    };
    const config = {
      feature_set: value("config.feature_set"),
      target_variable: value("config.target_variable"),
      horizon: numberOrText("config.horizon"),
      start_date: value("config.start_date") || undefined,
      end_date: value("config.end_date") || undefined,
      enable_hpo: form.elements["config.enable_hpo"].checked,
    };
    if (config.enable_hpo) {
      config.n_trials = numberOrText("config.n_trials");
      config.n_workers = numberOrText("config.n_workers");
      config.timeout_seconds = numberOrText("config.timeout_seconds");
    }
    return {
      tenant_id: value("tenant_id"),
      model_type: value("model_type"),
      model_name: value("model_name"),
      priority: value("priority"),
      config,
    };
  }

  async function submit(event) {
    event.preventDefault();
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    formError.replaceChildren();
    try {
      const created = await api("POST", "/ai/training/jobs/start", body());
      window.location.hash = `#/jobs/${created.job_id}`;
    } catch (error) {
      const unplaced = [];
      for (const [path, message] of Object.entries(error.fieldErrors ? error.fieldErrors() : {})) {
        const span = form.querySelector(`[data-field="${path}"] .field-error`);
        if (span) span.textContent = message;
        else unplaced.push(`${path || "request"}: ${message}`);
      }
      if (unplaced.length || !(error.fieldErrors && Object.keys(error.fieldErrors()).length)) {
        formError.replaceChildren(errorBox(unplaced.length ? new Error(unplaced.join("; ")) : error));
      }
    }
  }
  return () => {};
}
