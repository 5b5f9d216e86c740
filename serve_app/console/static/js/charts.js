// Charts drawn by uPlot (vendored in ../vendor). Each chart is a <figure> whose canvas
// carries data-points, the number of points drawn, so tests and people can tell an empty
// chart from a drawn one.

import uPlot from "../vendor/uPlot.esm.js";

const COLOURS = ["#1f5fbf", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207"];

function figure(container, title) {
  const box = document.createElement("figure");
  box.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  box.append(caption);
  container.append(box);
  return box;
}

function mark(box, points) {
  const canvas = box.querySelector("canvas");
  if (canvas) {
    canvas.dataset.points = String(points);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${box.firstChild.textContent}: ${points} points`);
  }
}

function width(container) {
  return Math.max(320, Math.min(900, container.clientWidth - 24 || 640));
}

/** Lines over a shared x: series = [{label, values, colour?, width?}] with values aligned
 * to xs; options.band = [upper index, lower index] (into series) shades between two lines. */
export function lineChart(container, title, xLabel, xs, series, options = {}) {
  const box = figure(container, title);
  const plotted = series.map((line, index) => ({
    label: line.label,
    stroke: line.colour || COLOURS[index % COLOURS.length],
    width: line.width || 1.5,
    spanGaps: true,
    ...(options.points ? { paths: () => null, points: { show: true, size: 7 } } : {}),
  }));
  const bands = options.band
    ? [{ series: options.band.map((i) => i + 1), fill: "rgba(31, 95, 191, 0.15)" }]
    : [];
  new uPlot(
    {
      width: options.width || width(container),
      height: options.height || 260,
      scales: { x: { time: Boolean(options.time) } },
      axes: [{ label: xLabel }, { label: options.yLabel || "" }],
      series: [{ label: xLabel }, ...plotted],
      bands,
    },
    [xs, ...series.map((line) => line.values)],
    box,
  );
  const drawn = series.reduce(
    (total, line) => total + line.values.filter((v) => v !== null && v !== undefined).length, 0);
  mark(box, drawn);
  return box;
}

/** Points (x, y) without lines, sorted by x as uPlot wants. */
export function scatterChart(container, title, xLabel, yLabel, pairs) {
  const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
  return lineChart(
    container, title, xLabel, sorted.map((p) => p[0]),
    [{ label: yLabel, values: sorted.map((p) => p[1]) }],
    { points: true, yLabel, height: 220, width: 280 },
  );
}
