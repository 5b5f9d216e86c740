// Charts drawn by uPlot (vendored in ../vendor). Each chart is a <figure> whose canvas
// carries data-points, the number of points drawn, and data-series-points, that number per
// series (JSON), so tests and people can tell an empty chart from a drawn one.

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

function mark(box, points, perSeries) {
  const canvas = box.querySelector("canvas");
  if (canvas) {
    canvas.dataset.points = String(points);
    canvas.dataset.seriesPoints = JSON.stringify(perSeries);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${box.firstChild.textContent}: ${points} points`);
  }
}

/** Vertical markers at x = marker.x, as elements over the plot (so each has a tooltip, its
 * title, and can be found): placed again whenever the chart is drawn; those outside the x
 * axis are left out. */
function markersPlugin(markers) {
  return {
    hooks: {
      draw: (plot) => {
        let layer = plot.over.querySelector(".markers");
        if (!layer) {
          layer = document.createElement("div");
          layer.className = "markers";
          plot.over.append(layer);
        }
        const { min, max } = plot.scales.x;
        const shown = markers.filter((marker) => marker.x >= min && marker.x <= max);
        layer.replaceChildren(...shown.map((marker) => {
          const line = document.createElement("div");
          line.className = "marker";
          line.style.left = `${plot.valToPos(marker.x, "x")}px`;
          line.style.setProperty("--marker", marker.colour || "#4b5563");
          line.title = marker.label;
          line.dataset.marker = marker.kind || "";
          line.setAttribute("role", "img");
          line.setAttribute("aria-label", marker.label);
          if (marker.glyph) line.textContent = marker.glyph;
          return line;
        }));
      },
    },
  };
}

/** Shaded spans of x (span.from to span.to), as elements under the plot's overlay, each
 * with its label as tooltip and data-span = its kind: placed again whenever it is drawn. */
function spansPlugin(spans) {
  return {
    hooks: {
      draw: (plot) => {
        let layer = plot.over.querySelector(".spans");
        if (!layer) {
          layer = document.createElement("div");
          layer.className = "spans";
          plot.over.prepend(layer);
        }
        const { min, max } = plot.scales.x;
        const shown = spans.filter((span) => span.to >= min && span.from <= max);
        layer.replaceChildren(...shown.map((span) => {
          const box = document.createElement("div");
          const left = plot.valToPos(Math.max(span.from, min), "x");
          const right = plot.valToPos(Math.min(span.to, max), "x");
          box.className = "span";
          box.style.left = `${left}px`;
          box.style.width = `${Math.max(right - left, 2)}px`;
          box.style.setProperty("--span", span.colour || "rgba(185, 28, 28, 0.2)");
          box.title = span.label;
          box.dataset.span = span.kind || "";
          return box;
        }));
      },
    },
  };
}

function width(container) {
  return Math.max(320, Math.min(900, container.clientWidth - 24 || 640));
}

/** Lines over a shared x: series = [{label, values, colour?, width?, points?, dots?}] with
 * values aligned to xs (points: dots without a line; dots: false, a line without dots);
 * options.band = [upper index, lower index] (into series) shades between two lines;
 * options.xRange = [min, max] fixes the x axis; options.markers = [{x, label, colour?,
 * kind?, glyph?}] draws vertical markers whose label is their tooltip; options.spans =
 * [{from, to, label, colour?, kind?}] shades spans of x. */
export function lineChart(container, title, xLabel, xs, series, options = {}) {
  const box = figure(container, title);
  const plotted = series.map((line, index) => ({
    label: line.label,
    stroke: line.colour || COLOURS[index % COLOURS.length],
    width: line.width || 1.5,
    spanGaps: true,
    ...(options.points || line.points ? { paths: () => null, points: { show: true, size: 7 } } : {}),
    ...(line.dots === false ? { points: { show: false } } : {}),
  }));
  const bands = options.band
    ? [{ series: options.band.map((i) => i + 1), fill: "rgba(31, 95, 191, 0.15)" }]
    : [];
  new uPlot(
    {
      width: options.width || width(container),
      height: options.height || 260,
      scales: {
        x: { time: Boolean(options.time), ...(options.xRange ? { range: options.xRange } : {}) },
      },
      axes: [{ label: xLabel }, { label: options.yLabel || "" }],
      series: [{ label: xLabel }, ...plotted],
      bands,
      plugins: [
        ...(options.markers ? [markersPlugin(options.markers)] : []),
        ...(options.spans ? [spansPlugin(options.spans)] : []),
      ],
    },
    [xs, ...series.map((line) => line.values)],
    box,
  );
  const perSeries = Object.fromEntries(series.map((line) =>
    [line.label, line.values.filter((v) => v !== null && v !== undefined).length]));
  mark(box, Object.values(perSeries).reduce((total, n) => total + n, 0), perSeries);
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
