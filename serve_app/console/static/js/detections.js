// An anomaly model's newest completed detection (POST /ai/models/{id}/detections): the
// window's actual and predicted load with its events shaded red (a tooltip each: severity,
// peak score) and, where the set has a label column, its labelled anomalies shaded amber,
// then the events as a table. A multi-series detection charts one series at a time (its
// rows read alone, `?series=`): the first event's (the first row's when there is none), or
// another with events picked above the chart.

import { get, newestOnly, query } from "./api.js";
import { lineChart } from "./charts.js";
import { errorBox, h, number, shortId, when } from "./dom.js";

/** The most rows (and events) one chart reads, 1000 a page. */
const CHART_ROWS = 20000;
const EVENT = "rgba(185, 28, 28, 0.22)";
const LABEL = "rgba(217, 119, 6, 0.25)";

/** Fill ``section`` with the model's newest completed detection. */
export async function showDetections(section, model) {
  const heading = h("h3", {}, "Anomaly detection");
  section.replaceChildren(heading, h("p", { class: "muted" }, "Loading…"));
  try {
    const found = await get(`/ai/models/detections${query({
      model_id: model.model_id, status: "completed", page_size: 1 })}`);
    const [detection] = found.detections;
    if (!detection) {
      section.replaceChildren(heading, h("p", { "data-testid": "detections-empty" },
        "No detection yet: POST /ai/models/{id}/detections, or trainctl detect."));
      return;
    }
    const path = `/ai/models/detections/${detection.detection_id}`;
    const events = (await pages(`${path}/events`, "events")).items;
    const named = [...new Set(events.map((event) => event.series).filter((s) => s !== null))];
    const plot = h("div", { "data-testid": "detection-chart" });
    const load = newestOnly();  // a series picked while another's rows load wins
    const show = async (series) => {
      const current = load();
      try {
        const rows = (await pages(path, "rows", series)).items;
        if (current()) chart(plot, rows, events.filter((event) => event.series === series));
      } catch (error) {
        if (current()) plot.replaceChildren(errorBox(error));
      }
    };
    const picker = named.length > 1 ? [h("label", {}, "Series ",
      h("select", { "data-testid": "detection-series", onchange: (e) => show(e.target.value) },
        named.map((name) => h("option", { value: name }, name))))] : [];
    section.replaceChildren(heading,
      h("p", {}, `Detection ${shortId(detection.detection_id)} of ${detection.feature_set}, `
        + `${when(detection.start)} to ${when(detection.end)}: ${detection.rows} rows, `
        + `${detection.events} events` + (named.length === 1 ? ` (series ${named[0]})` : "")),
      ...picker, plot, eventsTable(events));
    // Without events, the first row's series (null: a set of a single series).
    const first = named.length ? named[0]
      : ((await get(`${path}${query({ page_size: 1 })}`)).rows[0] || {}).series ?? null;
    await show(first);
  } catch (error) {
    section.replaceChildren(heading, errorBox(error));
  }
}

/** Every item of a paged list (up to CHART_ROWS), 1000 a page; of one ``series`` if named. */
async function pages(path, key, series = null) {
  const items = [];
  for (let page = 1; ; page += 1) {
    const got = await get(`${path}${query({ page, page_size: 1000, series })}`);
    items.push(...got[key]);
    if (!got[key].length || items.length >= Math.min(got.total, CHART_ROWS)) {
      return { items, total: got.total };
    }
  }
}

function chart(container, rows, events) {
  container.replaceChildren();
  const xs = rows.map((r) => Date.parse(r.timestamp) / 1000);
  const spans = events.map((e) => ({
    from: Date.parse(e.start) / 1000, to: Date.parse(e.end) / 1000, colour: EVENT,
    kind: "event", label: `${e.severity} event, peak ${number(e.peak_score, 3)} at ${e.peak_at}`,
  }));
  spans.push(...labelled(rows, xs));
  lineChart(container, "Actual and predicted, events shaded", "time", xs, [
    { label: "actual", values: rows.map((r) => r.actual) },
    { label: "predicted", values: rows.map((r) => r.predicted) },
  ], { time: true, height: 300, spans });
}

/** The runs of rows the set labels anomalous, as spans. */
function labelled(rows, xs) {
  const spans = [];
  rows.forEach((row, i) => {
    if (!row.label) return;
    const last = spans[spans.length - 1];
    if (last && last.end === i - 1) {
      last.to = xs[i];
      last.end = i;
    } else {
      spans.push({ from: xs[i], to: xs[i], end: i, colour: LABEL, kind: "label",
        label: "labelled anomaly" });
    }
  });
  return spans;
}

function eventsTable(events) {
  if (!events.length) return h("p", { class: "muted" }, "No event in this window.");
  return h("table", { "data-testid": "detection-events" },
    h("thead", {}, h("tr", {}, ["Series", "Start", "End", "Peak at", "Peak score", "Severity",
      "Rows"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, events.map((e) => h("tr", {},
      h("td", {}, e.series || "-"), h("td", {}, when(e.start)), h("td", {}, when(e.end)),
      h("td", {}, when(e.peak_at)), h("td", { class: "num" }, number(e.peak_score, 3)),
      h("td", {}, e.severity), h("td", { class: "num" }, String(e.rows))))));
}
