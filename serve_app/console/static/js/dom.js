// Small helpers to build the DOM and format values; text always goes in as text.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const PRIORITIES = { 2: "urgent", 1: "high", 0: "normal", "-1": "low" };
export const STATUSES = ["queued", "running", "completed", "failed", "cancelled"];

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status }, status);
}

export function progressBar(fraction, label) {
  const percent = Math.round((fraction || 0) * 100);
  return h("span", {},
    h("progress", { max: 100, value: percent, "aria-label": label }),
    ` ${percent}%`);
}

export function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value % 60)} s`;
}

export function number(value, digits = 4) {
  if (value === null || value === undefined) return "";
  return typeof value === "number" ? Number(value.toPrecision(digits)).toString() : String(value);
}

export function when(value) {
  return value ? new Date(value).toLocaleString() : "";
}

export function shortId(id) {
  return id.length > 12 ? id.slice(0, 8) : id;
}

/** The metric a job is known by: its test MAE, else the best search value so far. */
export function headline(metrics) {
  if (!metrics) return "";
  if (metrics.mae !== undefined) return `MAE ${number(metrics.mae)}`;
  if (metrics.best_value !== undefined) return `best ${number(metrics.best_value)}`;
  return "";
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

/** What a job holds while it runs: its CPUs, bundles and trial slots. */
export function resources(job) {
  const held = job.resources;
  if (!held) return "";
  const bundles = held.bundles.map((b) => b.CPU).join(" + ");
  const slots = held.trial_slots ? ` + ${held.trial_slots} trial slot${held.trial_slots > 1 ? "s" : ""}` : "";
  const now = job.held_cpus !== null && job.held_cpus !== undefined && job.held_cpus !== held.cpus
    ? `; holds ${job.held_cpus} now` : "";
  return `${held.cpus} CPU${held.cpus > 1 ? "s" : ""} (${bundles}${slots}, ${held.strategy})${now}`;
}


/** Previous / Next over a list's pages; ``go(page)`` shows another. */
export function pagerControls(page, pageSize, total, what, go) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  return [
    h("button", { type: "button", disabled: page <= 1, onclick: () => go(page - 1) }, "Previous"),
    h("span", {}, `Page ${page} of ${pages} (${total} ${what})`),
    h("button", { type: "button", disabled: page >= pages, onclick: () => go(page + 1) }, "Next"),
  ];
}
