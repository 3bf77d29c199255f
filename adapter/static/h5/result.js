// /h5/results/<id>: one report: each value with its units, reference range and flags, the trend
// of an analyte across the patient's earlier results as a small SVG drawn here (no chart
// library, nothing fetched from elsewhere), and the report file where there is one.
import { api, config, el, failed, notice, t } from "./h5.js";
import { when } from "./results.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const FLAG_KEYS = { H: "flag_high", HH: "flag_very_high", L: "flag_low", LL: "flag_very_low",
  A: "flag_abnormal", AA: "flag_very_abnormal" };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

/** A sparkline of the values (decimal strings; drawn with Number, which is exact enough for a
 * picture and never used for the values shown as text). */
export function trendChart(points, label) {
  const width = 280, height = 72, pad = 10;
  const values = points.map((p) => Number(p.value));
  const low = Math.min(...values), high = Math.max(...values);
  const span = high - low || 1;
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => height - pad - ((v - low) * (height - 2 * pad)) / span;
  const path = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const chart = svg("svg", { class: "trend", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": label, width: "100%", height });
  chart.append(svg("title", {}, label), svg("path", { d: path, fill: "none", class: "line" }));
  points.forEach((p, i) => {
    const dot = svg("circle", { cx: x(i).toFixed(1), cy: y(values[i]).toFixed(1), r: 3.5,
      class: p.abnormal ? "dot abnormal" : "dot" });
    dot.append(svg("title", {}, `${when(p.observed_at)} ${p.value}`));
    chart.append(dot);
  });
  return chart;
}

function flagText(flags) {
  return flags.filter((f) => f !== "N").map((f) => t(FLAG_KEYS[f.toUpperCase()] || "flag_abnormal")).join(" ");
}

function valueCell(o) {
  const value = o.number ? `${o.comparator}${o.number}` : o.value;
  const flag = flagText(o.flags);
  return el("td", { class: o.critical ? "value critical" : o.abnormal ? "value abnormal" : "value" },
    el("span", { class: "number" }, value), o.units ? el("span", { class: "units" }, ` ${o.units}`) : null,
    flag ? el("span", { class: "flag" }, ` ${flag}`) : null);
}

function rows(o) {
  const row = el("tr", { class: o.abnormal ? "abnormal" : "", dataset: { code: o.code } },
    el("th", { scope: "row" }, o.name || o.code), valueCell(o), el("td", { class: "range" }, o.reference_range));
  if (!o.trend.length) return [row];
  const label = t("trend_of", { name: o.name || o.code });
  return [row, el("tr", { class: "trend-row" }, el("td", { colspan: 3 }, trendChart(o.trend, label)))];
}

function render(result) {
  document.title = `${result.title} · ${document.title}`;
  $("r-title").textContent = result.title;
  $("corrected").hidden = !result.corrected;
  $("critical").hidden = !result.critical;
  $("r-patient").textContent = result.patient.name;
  $("r-time").textContent = when(result.observed_at);
  $("r-released").textContent = when(result.released_at);
  $("report").hidden = false;
  const values = result.observations.filter((o) => !o.file && o.value_type !== "ED");
  $("r-values").replaceChildren(...values.flatMap(rows));
  $("values").hidden = !values.length;
  const files = result.observations.filter((o) => o.file || o.file_problem);
  $("files").replaceChildren(...files.map((o) => el("p", { class: "card" },
    o.file ? el("a", { class: "button secondary", href: o.file.url, download: "" },
      t("open_report_file", { name: o.name || result.title }))
      : el("span", { class: "sub" }, t("report_file_missing")))));
}

api("GET", `/results/${encodeURIComponent(config.result_id)}`).then(render).catch((error) => {
  if (error.status === 404) notice(t("result_not_found"), "error");
  else failed(error);
});
