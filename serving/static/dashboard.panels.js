// The dashboard's panels (dashboard.js fetches, this draws): the charts, the drift table, the
// recent results, and the words and numbers they are written with.
import * as Charts from "./dashboard.charts.js";

const $ = (id) => document.getElementById(id);
const MINUTES = 30; // what the time charts span
const shown = {}; // what each region shows now, so an unchanged one is left alone

const SIGNALS = { // docs/monitoring.md
  confidence: "confidence",
  outcome: "outcome (understood, or why not)",
  intent: "intent mix",
  audio_dbfs: "audio level",
  snr_db: "speech to background (SNR)",
  utterance_seconds: "utterance length",
  heard_agreement: "heard vs grammar sentence",
  encoder_distance: "encoder distance",
  encoder_residual: "encoder residual",
  out_of_domain_score: "out-of-domain score (intent classifier)",
  joint: "all together (joint test)",
  other_speech: "share of speech that is no command",
};

// Pseudo-signals whose score is a significance (1 = the bar), not a PSI.
const scoredBySignificance = (name) => name === "joint" || name === "other_speech";

const REASON_TEXT = {
  no_speech: "no speech", gated: "dropped by a gate", out_of_domain: "out of domain",
  no_grammar_path: "no sentence of the grammar", below_threshold: "below the threshold",
  number_not_in_grammar: "a number the grammar does not take", cancelled: "cancelled",
};

const pad2 = (n) => String(n).padStart(2, "0");
const clock = (ms) => {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
};
const hhmm = (ms) => clock(ms).slice(0, 5);
const day = (ms) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
};
const percent = (share, digits = 0) => `${(100 * share).toFixed(digits)} %`;
const count = (n) => Math.round(n).toLocaleString("en");
const plural = (n, word) => `${count(n)} ${word}${Math.round(n) === 1 ? "" : "s"}`;
const signalName = (s) => SIGNALS[s] || s;
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// Replace a region's content only when what it shows changed (keeps focus, scroll and
// screen readers quiet between refreshes).
function show(container, key, build) {
  if (shown[container.id] === key) return;
  shown[container.id] = key;
  container.replaceChildren(...[build()].flat().filter(Boolean));
}


// The minute buckets of the last MINUTES minutes (the timeline holds only busy minutes).
function minutes(timeline) {
  const nowS = Math.floor(Date.now() / 60000) * 60;
  const last = timeline.length ? timeline[timeline.length - 1].start : nowS;
  // A server clock far off this browser's: follow the server's.
  const endS = Math.abs(last - nowS) > 3600 ? last : Math.max(last, nowS);
  const byStart = new Map(timeline.map((m) => [m.start, m]));
  const out = [];
  for (let i = MINUTES - 1; i >= 0; i--) {
    const start = endS - 60 * i;
    out.push(byStart.get(start) || { start, answers: 0, understood: 0, latency_p50_ms: null,
                                     latency_p95_ms: null });
  }
  return out;
}

// A chart's figure, redrawn when its numbers (or, for the time charts, the minute) change.
function chart(id, caption, series, svg, headers, rows, minute = null) {
  const figure = $(id);
  figure.querySelector("figcaption").textContent = caption;
  const key = JSON.stringify([caption, series.map((s) => s.name), headers, rows, minute]);
  if (shown[id] === key) return;
  shown[id] = key;
  figure.querySelector(".legend").replaceChildren(Charts.legend(series));
  figure.querySelector(".plot").replaceChildren(svg);
  figure.querySelector(".data").replaceChildren(Charts.table(headers, rows));
}

function renderCharts(model) {
  const span = minutes(model.timeline || []);
  const labels = span.map((m) => hhmm(m.start * 1000));
  const every = 6;
  const answered = { name: "understood", cls: "s-good", values: span.map((m) => m.understood) };
  const missed = { name: "not understood", cls: "s-bad",
                   values: span.map((m) => m.answers - m.understood) };
  chart("chart-traffic", `Answers per minute, last ${MINUTES} min`, [answered, missed],
        Charts.bars({ label: `Answers per minute: ${span.reduce((s, m) => s + m.answers, 0)} `
                      + `in the last ${MINUTES} minutes`, labels, series: [answered, missed],
                      stacked: true, format: (v) => count(v), whole: true, every }),
        ["Minute", "Answers", "Understood"],
        span.filter((m) => m.answers).map((m) => [hhmm(m.start * 1000), count(m.answers),
                                                  count(m.understood)]), labels.at(-1));
  const p50 = { name: "p50", cls: "s-p50", values: span.map((m) => m.latency_p50_ms) };
  const p95 = { name: "p95", cls: "s-p95", values: span.map((m) => m.latency_p95_ms) };
  const ms = (v) => `${Math.round(v)} ms`;
  chart("chart-latency", "Latency, end of speech to result", [p50, p95],
        Charts.lines({ label: "Latency per minute, p50 and p95", labels, series: [p50, p95],
                       format: ms, every }),
        ["Minute", "p50", "p95"],
        span.filter((m) => m.answers).map((m) => [hhmm(m.start * 1000),
          m.latency_p50_ms === null ? "—" : ms(m.latency_p50_ms),
          m.latency_p95_ms === null ? "—" : ms(m.latency_p95_ms)]), labels.at(-1));
  const rate = { name: "understood", cls: "s-rate",
                 values: span.map((m) => (m.answers ? m.understood / m.answers : null)) };
  chart("chart-understood", "Understood rate per minute", [rate],
        Charts.lines({ label: "Share of answers understood per minute", labels, series: [rate],
                       format: (v) => percent(v), max: 1, every }),
        ["Minute", "Understood"],
        span.filter((m) => m.answers).map((m) => [hhmm(m.start * 1000),
                                                  percent(m.understood / m.answers)]),
        labels.at(-1));
  renderConfidence(model);
  renderIntents(model);
}

// "[0.12, 0.45)" -> "0.12–0.45"; "[-inf, 0.12)" -> "< 0.12"; "[0.98, inf)" -> "≥ 0.98".
function binLabel(bin) {
  const match = /^\[(.*), (.*)\)$/.exec(bin);
  if (!match) return bin;
  const [, lo, hi] = match;
  if (lo === "-inf") return `< ${hi}`;
  if (hi === "inf") return `≥ ${lo}`;
  return `${lo}–${hi}`;
}

function liveAndReference(id, caption, signal, labelOf, draw, edges = undefined) {
  const live = { name: `live (${count(signal.samples)} in the window)`, cls: "s-live",
                 values: signal.live };
  const ref = { name: "reference", cls: "s-ref", outline: true, values: signal.reference };
  const labels = signal.bins.map(labelOf);
  chart(id, caption, [live, ref],
        draw({ label: `${caption}: live share against the reference per bin`, labels,
               series: [live, ref], format: (v) => percent(v), edges }),
        ["Bin", "Live", "Reference"],
        labels.map((l, i) => [l, percent(signal.live[i], 1), percent(signal.reference[i], 1)]));
}

function renderConfidence(model) {
  const signal = model.drift.signals && model.drift.signals.confidence;
  if (signal) {
    // The axis names the bins' edges (the reference's quantiles), not each range.
    const edges = signal.bins.slice(0, -1).map((b) => /, (.*)\)$/.exec(b)?.[1] ?? "");
    liveAndReference("chart-confidence", "Confidence, live window vs reference", signal, binLabel,
                     Charts.bars, edges);
    return;
  }
  // No reference: the latest answers alone, in tenths.
  const recent = model.recent || [];
  const values = Array(10).fill(0);
  for (const r of recent) values[Math.min(9, Math.floor(r.confidence * 10))] += 1;
  const labels = values.map((_, i) => `${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`);
  const series = [{ name: `latest ${plural(recent.length, "answer")}`, cls: "s-live", values }];
  chart("chart-confidence", "Confidence of the latest answers (no reference)", series,
        Charts.bars({ label: "Confidence of the latest answers", labels, series,
                      format: (v) => count(v), whole: true, every: 2 }),
        ["Bin", "Answers"], labels.map((l, i) => [l, count(values[i])]));
}

function renderIntents(model) {
  const signal = model.drift.signals && model.drift.signals.intent;
  if (signal && signal.samples) {
    // The 10 largest by live or reference share, largest first.
    const order = signal.bins.map((_, i) => i)
      .sort((a, b) => Math.max(signal.live[b], signal.reference[b])
                      - Math.max(signal.live[a], signal.reference[a])).slice(0, 10);
    const pick = (list) => order.map((i) => list[i]);
    const top = { ...signal, bins: pick(signal.bins), live: pick(signal.live),
                  reference: pick(signal.reference) };
    liveAndReference("chart-intents", "Intent mix of understood answers, live vs reference", top,
                     (b) => b, Charts.hbars);
    return;
  }
  const counts = new Map();
  for (const r of model.recent || []) {
    const name = r.understood ? r.intent : "(not understood)";
    counts.set(name, (counts.get(name) || 0) + 1);
  }
  const rows = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 10);
  const series = [{ name: "latest answers", cls: "s-live", values: rows.map(([, n]) => n) }];
  chart("chart-intents", "Intent mix of the latest answers", series,
        rows.length ? Charts.hbars({ label: "Intent mix of the latest answers",
                                     labels: rows.map(([n]) => n), series,
                                     format: (v) => count(v), whole: true })
          : h("p", { class: "hint" }, "No answers yet."),
        ["Intent", "Answers"], rows.map(([n, c]) => [n, count(c)]));
}

// The chi-squared bar a signal must pass, as assistant/monitor.py chi2_quantile computes it
// (Wilson-Hilferty; the normal quantile by Acklam's approximation).
function normalQuantile(p) {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269,
             -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
             -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
             4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
    / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q)
    / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

function chi2Critical(alpha, dof) {
  const z = -normalQuantile(alpha);
  const k = Math.max(1, dof);
  return Math.max(0, k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3);
}

function signalState(name, s, config) {
  if (s.alarm) return ["alarm", "Alarm"];
  if (name === "intent") return ["info", "Shown only"];
  if (s.samples < config.min_utterances) {
    return ["few", `Too few (${s.samples} of ${config.min_utterances})`];
  }
  if (s.psi > s.threshold) return ["near", "Above the floor, not significant"];
  return ["ok", "OK"];
}

function renderDrift(model) {
  const drift = model.drift;
  const c = drift.config;
  const held = plural(drift.window_utterances, "utterance");
  const summary = {
    ok: () => `No drift: ${held} in the window look like the reference.`,
    drift: () => `Drift on ${drift.drifting.map((s) => signalName(s)).join(", ")}: `
      + `live traffic no longer looks like the reference (${held} in the window).`,
    warming_up: () => `Warming up: ${drift.window_utterances} of the ${c.min_utterances} `
      + "utterances needed before any alarm.",
    no_reference: () => drift.hint || "No reference profile: drift is not watched for this model.",
  }[drift.status];
  $("drift-summary").textContent = summary ? summary() : drift.status;
  $("drift-summary").dataset.status = drift.status;
  const signals = Object.entries(drift.signals || {});
  show($("drift-table"), JSON.stringify(signals), () => {
    if (!signals.length) return h("p", { class: "hint" }, "No signals are watched.");
    return Charts.table(["Signal", "State", "PSI / floor", "Significance (1 = bar)", "Samples",
      "Alarms"],
      signals.map(([name, s]) => {
        const [cls, text] = signalState(name, s, c);
        // The joint test's bar is Hotelling's T² over its signals, the other-speech test's a
        // CUSUM of likelihood ratios, each at its own alpha: their score is the significance.
        const pseudo = scoredBySignificance(name);
        const critical = pseudo ? s.chi2_critical : chi2Critical(c.alpha, s.bins.length - 1);
        const gauge = Charts.gauge({ label: `${pseudo ? "Significance" : "PSI"} `
          + `${s.psi.toFixed(2)} against the ${pseudo ? "bar" : "floor"} `
          + `${s.threshold.toFixed(2)}`, value: s.psi, threshold: s.threshold, alarm: s.alarm });
        return [capital(signalName(name)), h("span", { class: `state ${cls}` }, text),
                h("span", { class: "psi" }, gauge,
                  ` ${s.psi.toFixed(2)} / ${s.threshold.toFixed(2)}`),
                `${(s.significance || 0).toFixed(2)} (${name === "joint" ? "T²"
                  : name === "other_speech" ? `share ${percent(s.live[0] || 0)} against `
                    + `${percent(s.reference[0] || 0)}, CUSUM` : "χ²"} `
                  + `${s.chi2.toFixed(1)} / `
                  + `${critical.toFixed(1)}${!(["outcome", "intent"].includes(name) || pseudo)
                    ? `, shift z ${(s.shift_z || 0).toFixed(1)}` : ""})`,
                count(s.samples), count(s.alarms)];
      }));
  });
  const events = (drift.events || []).slice().reverse();
  show($("events"), JSON.stringify(events), () => (events.length
    ? events.map((e) => h("li", { class: e.raised ? "raised" : "cleared" },
        `${clock(e.at * 1000)} ${signalName(e.signal)} ${e.raised ? "raised" : "cleared"} `
        + `at ${scoredBySignificance(e.signal) ? "significance" : "PSI"} ${e.psi.toFixed(2)} `
        + `(utterance ${e.utterance})`))
    : h("li", { class: "none" }, "None yet.")));
}

function renderRecent(model) {
  const recent = (model.recent || []).slice().reverse();
  show($("recent"), JSON.stringify(recent), () => {
    if (!recent.length) return h("p", { class: "hint" }, "No answers yet.");
    return Charts.table(["Time", "Result", "Slots", "Confidence", "Command", "Latency"],
      recent.map((r) => {
        const slots = Object.entries(r.slots || {}).map(([k, v]) => `${k}=${v}`).join(", ");
        // Not understood: why, never the grammar's nearest sentence as if it had been said.
        const said = r.understood ? r.transcript
          : h("span", { class: "missed" }, REASON_TEXT[r.reason] || r.reason || "not understood");
        return [clock(r.at * 1000),
                h("span", { class: r.understood ? "intent" : "intent missed",
                            "data-intent": r.intent || "" },
                  r.understood ? r.intent : "not understood"),
                slots || "—", r.confidence.toFixed(2), said,
                r.latency_ms === null ? "—" : `${Math.round(r.latency_ms)} ms`];
      }));
  });
}

export {
  $, chi2Critical, clock, count, day, h, percent, plural, renderCharts, renderDrift,
  renderRecent, scoredBySignificance, show, signalName,
};
