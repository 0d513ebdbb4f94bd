// A horizontal (stacked) bar chart drawn as inline SVG: no library. The same figures
// are always in a table next to it, so the chart is a picture of the table.

import { h, svg, uniqueId } from "./dom.js";

const WIDTH = 720;
const LABEL_WIDTH = 210;
const ROW_HEIGHT = 26;
const BAR_HEIGHT = 16;
const TOP = 10;
const VALUE_ROOM = 70;

const TICKS = 4;

/** A round, whole tick step so that TICKS steps cover the value. */
function tickStep(value) {
  const raw = Math.max(value, 1) / TICKS;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const factor of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    const step = factor * power;
    if (step >= raw && Number.isInteger(step)) return step;
  }
  return Math.ceil(raw);
}

function shorten(text, max) {
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : text;
}

/**
 * rows: [{label, values: [number per series]}]; series: [{name, className}].
 * Returns a <figure> with the SVG (role img, titled and described) and a legend.
 */
export function barChart({ title, description, rows, series, unit = "" }) {
  const titleId = uniqueId("chart-title");
  const descId = uniqueId("chart-desc");
  const totals = rows.map((row) => row.values.reduce((sum, v) => sum + v, 0));
  const step = tickStep(Math.max(0, ...totals));
  const max = step * TICKS;
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_ROOM;
  const height = TOP * 2 + rows.length * ROW_HEIGHT + 18;
  const scale = (value) => (value / max) * plotWidth;
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: "100%",
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
    className: "chart",
    preserveAspectRatio: "xMinYMin meet",
  }, svg("title", { id: titleId }, title), svg("desc", { id: descId }, description));

  for (let tick = 0; tick <= TICKS; tick += 1) {
    const x = LABEL_WIDTH + (plotWidth * tick) / TICKS;
    chart.append(
      svg("line", { x1: x, x2: x, y1: TOP, y2: height - 18, className: "chart-grid" }),
      svg("text", { x, y: height - 4, className: "chart-axis", "text-anchor": "middle" }, String(step * tick)),
    );
  }
  rows.forEach((row, index) => {
    const y = TOP + index * ROW_HEIGHT;
    const label = svg("text", {
      x: LABEL_WIDTH - 8, y: y + BAR_HEIGHT - 3, className: "chart-label", "text-anchor": "end",
    }, shorten(row.label, 14));
    label.append(svg("title", {}, row.label));
    chart.append(label);
    let x = LABEL_WIDTH;
    row.values.forEach((value, part) => {
      if (value <= 0) return;
      const width = Math.max(1, scale(value));
      chart.append(svg("rect", {
        x, y, width, height: BAR_HEIGHT, className: series[part].className,
      }, svg("title", {}, `${row.label} · ${series[part].name}：${value}${unit}`)));
      x += width;
    });
    chart.append(svg("text", { x: x + 6, y: y + BAR_HEIGHT - 3, className: "chart-value" }, `${totals[index]}${unit}`));
  });

  const legend = h("ul", { className: "chart-legend", "aria-hidden": "true" },
    series.map((item) => h("li", {}, h("span", { className: `swatch ${item.className}` }), item.name)));
  return h("figure", { className: "chart-figure" }, chart, series.length > 1 ? legend : null, h("figcaption", {}, title));
}
