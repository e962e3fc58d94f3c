// Inline SVG charts for the dashboard (dashboard.panels.js), in plain JavaScript: no library,
// nothing downloaded. Each function returns an element; colours and line styles come from CSS
// classes (dashboard.css), and every chart also has its numbers as a table (table below).
const NS = "http://www.w3.org/2000/svg";
const W = 360; // viewBox width; the SVG scales to its box, so text scales with it
const H = 170;
const PAD = { left: 42, right: 8, top: 10, bottom: 24 };

function el(name, attrs = {}, text = undefined) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function root(label, height) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": label,
                          class: "chart", focusable: "false" });
  svg.append(el("title", {}, label));
  return svg;
}

// An axis top with four round steps (1, 2, 2.5 or 5 times a power of ten; whole steps for
// counts).
function niceMax(value, whole = false) {
  if (!(value > 0)) return whole ? 4 : 1;
  const quarter = whole ? Math.max(1, value / 4) : value / 4;
  const power = 10 ** Math.floor(Math.log10(quarter));
  const steps = whole && power === 1 ? [1, 2, 5] : [1, 2, 2.5, 5];
  for (const step of steps) if (step * power >= quarter - 1e-12) return 4 * step * power;
  return 40 * power;
}

function yAxis(svg, max, format, height) {
  const bottom = height - PAD.bottom;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - ((bottom - PAD.top) * i) / 4;
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y,
                            class: i ? "grid" : "axis" }));
    svg.append(el("text", { x: PAD.left - 4, y: y + 3.5, class: "tick", "text-anchor": "end" },
                  format((max * i) / 4)));
  }
}

function xLabels(svg, labels, centre, every, height) {
  labels.forEach((label, i) => {
    if (i % every !== (labels.length - 1) % every) return; // always label the last one
    const x = centre(i);
    const near = W - x < 4 * label.length; // at the right edge: end there, not past it
    svg.append(el("text", { x: near ? W - 1 : x, y: height - PAD.bottom + 15, class: "tick",
                            "text-anchor": near ? "end" : "middle" }, label));
  });
}

// Vertical bars: series [{name, cls, values}] grouped side by side, or stacked. With
// ``edges`` (one fewer than the bars) the axis names the bins' boundaries instead.
function bars({ label, labels, series, format, max, stacked = false, every = 1, edges,
                whole = false }) {
  const svg = root(label, H);
  const totals = labels.map((_, i) => (stacked
    ? series.reduce((sum, s) => sum + (s.values[i] || 0), 0)
    : Math.max(...series.map((s) => s.values[i] || 0))));
  const top = max ?? niceMax(Math.max(0, ...totals), whole);
  yAxis(svg, top, format, H);
  const bottom = H - PAD.bottom;
  const scale = (v) => ((bottom - PAD.top) * Math.min(v, top)) / top;
  const slot = (W - PAD.left - PAD.right) / Math.max(1, labels.length);
  const width = stacked ? slot * 0.7 : (slot * 0.8) / series.length;
  labels.forEach((name, i) => {
    let base = bottom;
    series.forEach((s, k) => {
      const value = s.values[i] || 0;
      const h = scale(value);
      const x = PAD.left + slot * i + (stacked ? slot * 0.15 : slot * 0.1 + width * k);
      const y = stacked ? base - h : bottom - h;
      if (stacked) base -= h;
      if (!h && !s.outline) return;
      const bar = el("rect", { x, y, width: Math.max(1, width - (stacked ? 0 : 1)),
                               height: Math.max(h, s.outline ? 0.5 : 0), class: s.cls });
      bar.append(el("title", {}, `${name}: ${s.name} ${format(value)}`));
      svg.append(bar);
    });
  });
  if (edges) xLabels(svg, edges, (i) => PAD.left + slot * (i + 1), every, H);
  else xLabels(svg, labels, (i) => PAD.left + slot * (i + 0.5), every, H);
  return svg;
}

// Lines over the same x positions as bars; a null value breaks the line.
function lines({ label, labels, series, format, max, every = 1 }) {
  const svg = root(label, H);
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const top = max ?? niceMax(Math.max(0, ...values));
  yAxis(svg, top, format, H);
  const bottom = H - PAD.bottom;
  const slot = (W - PAD.left - PAD.right) / Math.max(1, labels.length);
  const x = (i) => PAD.left + slot * (i + 0.5);
  const y = (v) => bottom - ((bottom - PAD.top) * Math.min(v, top)) / top;
  for (const s of series) {
    let run = [];
    const flush = () => {
      if (run.length > 1) svg.append(el("polyline", { points: run.join(" "), class: s.cls }));
      run = [];
    };
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return flush();
      run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      const dot = el("circle", { cx: x(i), cy: y(v), r: 2.2, class: `${s.cls} dot` });
      dot.append(el("title", {}, `${labels[i]}: ${s.name} ${format(v)}`));
      svg.append(dot);
    });
    flush();
  }
  xLabels(svg, labels, x, every, H);
  return svg;
}

// Horizontal bars, one row per label (names too long for an x axis: intents).
function hbars({ label, labels, series, format, max, whole = false }) {
  const left = 118;
  const row = series.length * 9 + 7;
  const height = PAD.top + row * labels.length + PAD.bottom;
  const svg = root(label, height);
  const all = series.flatMap((s) => s.values);
  const top = max ?? niceMax(Math.max(0, ...all), whole);
  const span = W - left - PAD.right - 34;
  for (let i = 0; i <= 4; i++) {
    const x = left + (span * i) / 4;
    svg.append(el("line", { x1: x, x2: x, y1: PAD.top, y2: height - PAD.bottom,
                            class: i ? "grid" : "axis" }));
    svg.append(el("text", { x, y: height - PAD.bottom + 15, class: "tick",
                            "text-anchor": "middle" }, format((top * i) / 4)));
  }
  labels.forEach((name, i) => {
    const y0 = PAD.top + row * i + 3;
    const short = name.length > 19 ? `${name.slice(0, 18)}…` : name;
    const text = el("text", { x: left - 6, y: y0 + (series.length * 9) / 2 + 3,
                              class: "label", "text-anchor": "end" }, short);
    if (short !== name) text.append(el("title", {}, name));
    svg.append(text);
    series.forEach((s, k) => {
      const value = s.values[i] || 0;
      const width = (span * Math.min(value, top)) / top;
      const bar = el("rect", { x: left, y: y0 + 9 * k, width: Math.max(width, 0.5),
                               height: 7.5, class: s.cls });
      bar.append(el("title", {}, `${name}: ${s.name} ${format(value)}`));
      svg.append(bar);
    });
    const lead = series[0].values[i] || 0;
    svg.append(el("text", { x: left + (span * Math.min(lead, top)) / top + 3, y: y0 + 7,
                            class: "value" }, format(lead)));
  });
  return svg;
}

// A value against its threshold: a short bar with a tick at the threshold.
function gauge({ label, value, threshold, alarm }) {
  const width = 120;
  const svg = el("svg", { viewBox: `0 0 ${width} 14`, role: "img", "aria-label": label,
                          class: "gauge", focusable: "false" });
  svg.append(el("title", {}, label));
  const top = Math.max(2 * threshold, value, 1e-9);
  svg.append(el("rect", { x: 0, y: 3, width, height: 8, class: "track" }));
  svg.append(el("rect", { x: 0, y: 3, width: Math.max(1, (width * value) / top), height: 8,
                          class: alarm ? "over" : value > threshold ? "near" : "under" }));
  const tx = (width * threshold) / top;
  svg.append(el("line", { x1: tx, x2: tx, y1: 0, y2: 14, class: "mark" }));
  return svg;
}

// A legend as HTML: swatches drawn by CSS (the same classes as the marks).
function legend(series) {
  const box = document.createElement("ul");
  box.className = "keys";
  for (const s of series) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch ${s.cls}`;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, s.name);
    box.append(item);
  }
  return box;
}

// The numbers behind a chart, for screen readers and anyone who prefers them. The roles
// are explicit so that the table stays a table where CSS lays it out as cards (phones).
function table(headers, rows) {
  const t = document.createElement("table");
  t.setAttribute("role", "table");
  const thead = t.createTHead();
  thead.setAttribute("role", "rowgroup");
  const head = thead.insertRow();
  head.setAttribute("role", "row");
  for (const h of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.setAttribute("role", "columnheader");
    th.textContent = h;
    head.append(th);
  }
  const body = t.createTBody();
  body.setAttribute("role", "rowgroup");
  for (const cells of rows) {
    const tr = body.insertRow();
    tr.setAttribute("role", "row");
    cells.forEach((cell, i) => {
      const td = document.createElement(i ? "td" : "th");
      if (!i) td.scope = "row";
      td.setAttribute("role", i ? "cell" : "rowheader");
      td.dataset.label = headers[i];
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
      tr.append(td);
    });
  }
  return t;
}


export { bars, gauge, hbars, legend, lines, niceMax, table };
