// A model name's decisions on its champion (issue 37): each job's model promoted or kept
// on its comparison with the champion over the same rows, rollbacks, and promotions that
// stood through their rollback rule's watch, newest first, with both scores, how sure
// the paired test over the days is, the period and the reason; and the latest
// comparison's daily scores, challenger against champion.

import { get, query } from "./api.js";
import { lineChart } from "./charts.js";
import { errorBox, h, number, when } from "./dom.js";

/** Decisions listed (the newest). */
const SHOWN = 20;
const COLOURS = {
  promoted: "#15803d", kept: "#4b5563", rolled_back: "#b91c1c", stood: "#1d4ed8",
};

/** Fill ``section`` with the decisions on ``model``'s name; this version's in bold. */
export async function showPromotions(section, model) {
  const heading = h("h3", {}, "Promotions");
  const name = `${encodeURIComponent(model.tenant_id)}/${encodeURIComponent(model.model_name)}`;
  let page;
  try {
    page = await get(`/ai/models/${name}/promotions${query({ page_size: SHOWN })}`);
  } catch (error) {
    section.replaceChildren(heading, errorBox(error));
    return;
  }
  if (!page.promotions.length) {
    section.replaceChildren(heading, h("p", { class: "muted", "data-testid": "promotions-empty" },
      "No decision on this model's champion yet: a job decides when it sets promote_champion."));
    return;
  }
  const latest = page.promotions.find((p) => (p.evidence.windows || []).length > 1);
  const plot = h("div", { "data-testid": "promotion-days" });
  section.replaceChildren(heading,
    h("p", { class: "muted" }, `${page.total} decision(s), newest first. A job's model `
      + "replaces the champion only if it is better on the rows both forecast (its test "
      + "part after the champion's), by the job's margin and confidence."),
    h("table", { "data-testid": "promotions" },
      h("thead", {}, h("tr", {}, ["Decided", "Decision", "Challenger", "Champion", "Metric",
        "Challenger score", "Champion score", "Confidence", "Days compared", "Reason"]
        .map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, page.promotions.map((p) => row(p, model.model_id)))),
    latest ? plot : "");
  if (latest) dailyChart(plot, latest);
}

function row(p, current) {
  const days = p.window_start
    ? `${p.window_start.slice(0, 10)} to ${p.window_end.slice(0, 10)}`
      + ` (${(p.evidence.paired_test || {}).windows ?? "?"})`
    : "";
  return h("tr", { "data-decision": p.decision },
    h("td", {}, when(p.decided_at)),
    h("td", { style: `color: ${COLOURS[p.decision] || "inherit"}; font-weight: 600` },
      p.decision.replace("_", " ")),
    h("td", {}, version(p.challenger_id, current)),
    h("td", {}, p.champion_id ? version(p.champion_id, current) : "none"),
    h("td", {}, p.metric || ""),
    h("td", { class: "num" }, number(p.challenger_score)),
    h("td", { class: "num" }, number(p.champion_score)),
    h("td", { class: "num" }, number(p.confidence, 3)),
    h("td", {}, days),
    h("td", {}, p.reason));
}

function version(modelId, current) {
  const link = h("a", { href: `#/models/${encodeURIComponent(modelId)}` },
    modelId.split(":").pop());
  return modelId === current ? h("strong", {}, link) : link;
}

/** One point per day compared: the challenger's score and the champion's. */
function dailyChart(container, promotion) {
  const days = promotion.evidence.windows;
  const xs = days.map((d) => Date.parse(`${d.window}T00:00:00Z`) / 1000);
  lineChart(container,
    `${promotion.metric} per day, ${promotion.challenger_id.split(":").pop()} against `
      + `${(promotion.champion_id || "").split(":").pop()}`,
    "day", xs,
    [
      { label: "challenger", values: days.map((d) => d.challenger) },
      { label: "champion", values: days.map((d) => d.champion) },
    ],
    { time: true, height: 220, points: true, yLabel: promotion.metric });
}
