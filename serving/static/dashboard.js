// The dashboard (docs/dashboard.md): GET /v1/monitor every few seconds, shown as text, tables
// and inline SVG charts (dashboard.panels.js, dashboard.charts.js). URL parameters: model=NAME,
// refresh=SECONDS (default 5), queue_alert=N (a queue at least this deep is an alert; default
// 8), token=TOKEN.
import {
  $, chi2Critical, clock, count, day, h, percent, plural, renderCharts, renderDrift, renderRecent,
  scoredBySignificance, show, signalName,
} from "./dashboard.panels.js";

const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1, Number(params.get("refresh")) || 5) * 1000;
const QUEUE_ALERT = Math.max(1, Number(params.get("queue_alert")) || 8);
const KEY = "assistant-key"; // sessionStorage, shared with the microphone page (app.js)

const state = {
  token: params.get("token"),
  renewAtMs: Infinity, // when to trade the stored key for a fresh token
  model: params.get("model"),
  data: null, // the last /v1/monitor answer
  lastOkMs: null,
  failingSinceMs: null, // the server has not answered since
  failure: "", // how (for people)
  timer: null,
  updates: 0,
};
window.dashboard = state; // for tests and debugging
window.chi2Critical = chi2Critical; // the tests check it against the server's

class NeedsKey extends Error {}
class RetryLater extends Error {
  constructor(message, retryMs) {
    super(message);
    this.retryMs = retryMs;
  }
}

// -- what people read ----------------------------------------------------------------------

const DRIFT_TEXT = { ok: "No drift", drift: "Drift", warming_up: "Warming up",
                     no_reference: "No reference" };
const SERVER_TEXT = {
  loading: "The server is still loading its models.",
  draining: "The server is shutting down: it takes no new streams.",
  stopped: "The server has stopped.",
};
const SOURCE_TEXT = { // a profile's "source" (how it was made): the keys assistant profile writes
  clips: "Clips", other_share: "Other speech", seed: "Seed", voices: "Voices",
  engines: "TTS engines", noises: "Noises", snr_db: "SNR (dB)", command: "Made by",
  created: "Created", recordings: "Recordings",
};

function setStatus(text, kind = "info") {
  if ($("status").textContent !== text) $("status").textContent = text;
  $("status").dataset.state = kind;
}

// -- credentials and fetching (the microphone page's flow: key -> POST /v1/token) -------------

function retryAfterMs(response) {
  return 1000 * (Number(response.headers.get("Retry-After")) || 60);
}

async function fetchToken() {
  const response = await fetch("/v1/token", {
    method: "POST", headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` } });
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    throw new NeedsKey("The API key was not accepted: check it and try again.");
  }
  if (response.status === 429) {
    throw new RetryLater("Too many wrong keys from this address: wait a minute.",
                         retryAfterMs(response));
  }
  if (!response.ok) throw new Error(`The token request failed (${response.status}).`);
  const data = await response.json();
  state.token = data.token;
  // Renew well before it expires, by this browser's clock (the server's may differ).
  state.renewAtMs = data.token ? Date.now() + 600 * data.ttl_s : Infinity;
}

async function fetchMonitor(retried = false) {
  if (sessionStorage.getItem(KEY) && (!state.token || Date.now() > state.renewAtMs)) {
    await fetchToken();
  }
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  const response = await fetch(`/v1/monitor${query}`, { cache: "no-store" });
  if (response.status === 401) {
    state.token = null; // expired, or the server restarted with a new token secret
    if (sessionStorage.getItem(KEY) && !retried) return fetchMonitor(true);
    throw new NeedsKey("This server needs an API key.");
  }
  if (response.status === 429) {
    throw new RetryLater("Too many failed authentications from this address: waiting.",
                         retryAfterMs(response));
  }
  if (!response.ok) {
    throw new Error(`The server answered ${response.status} ${response.statusText}.`);
  }
  return response.json();
}

async function refresh() {
  clearTimeout(state.timer);
  let delayMs = REFRESH_MS;
  try {
    state.data = await fetchMonitor();
    state.lastOkMs = Date.now();
    state.failingSinceMs = null;
    state.updates += 1;
    $("auth").hidden = true;
    render();
  } catch (e) {
    if (e instanceof NeedsKey) {
      askForKey(e.message); // no polling meanwhile: every refused try counts against us
      return;
    }
    if (e instanceof RetryLater) delayMs = Math.max(delayMs, e.retryMs);
    failed(e);
  }
  state.timer = setTimeout(refresh, delayMs);
}

function askForKey(message) {
  const form = $("auth");
  const appearing = form.hidden;
  form.hidden = false;
  setStatus(message, "error");
  stale();
  if (appearing) $("key").focus();
}

function failed(error) {
  state.failingSinceMs = state.failingSinceMs || Date.now();
  state.failure = error instanceof TypeError // fetch could not connect at all
    ? "Cannot reach the server" : String(error.message || error).replace(/\.$/, "");
  setStatus(`${state.failure} (since ${clock(state.failingSinceMs)}); retrying every `
            + `${REFRESH_MS / 1000} s.`, "error");
  stale();
  renderAlerts();
}

function stale() {
  if (!state.lastOkMs) return;
  document.body.dataset.stale = "true";
  $("updated").textContent = `Figures from ${clock(state.lastOkMs)}.`;
}

// -- the page ----------------------------------------------------------------------------------

function currentModel(data) {
  const names = Object.keys(data.models);
  if (names.includes(state.model)) return state.model;
  return names.includes(data.default) ? data.default : names[0] || null;
}

function render() {
  const data = state.data;
  document.body.dataset.stale = "false";
  $("content").hidden = false;
  const name = currentModel(data);
  renderPicker(data, name);
  const n = Object.keys(data.models).length;
  setStatus(`Connected: ${plural(n, "model")} served; refreshing every ${REFRESH_MS / 1000} s.`,
            "ok");
  $("updated").textContent = `Updated ${clock(state.lastOkMs)}.`;
  renderAlerts();
  renderTiles(data, name ? data.models[name] : null);
  if (!name) return;
  const model = data.models[name];
  renderCard(name, model, data.default);
  renderCharts(model);
  renderDrift(model);
  renderRecent(model);
}

function renderPicker(data, name) {
  const names = Object.keys(data.models);
  $("model-picker").hidden = names.length < 2;
  const labels = names.map((n) => `${n}${n === data.default ? " (default)" : ""}`
    + `${data.models[n].drift.status === "drift" ? " — drift" : ""}`);
  show($("model"), JSON.stringify(labels), () => names.map((n, i) => new Option(labels[i], n)));
  $("model").value = name;
}

function alerts() {
  const list = [];
  if (state.failingSinceMs) {
    list.push(["error", `${state.failure} since ${clock(state.failingSinceMs)}`
      + (state.lastOkMs ? `; the figures below are from ${clock(state.lastOkMs)}.` : ".")]);
  }
  const data = state.data;
  if (!data) return list;
  if (data.state !== "ready") {
    list.push(["error", SERVER_TEXT[data.state] || `The server is ${data.state}.`]);
  }
  if (data.queue_depth >= QUEUE_ALERT) {
    list.push(["warning", `${plural(data.queue_depth, "utterance")} waiting for recognition `
      + `(alert at ${QUEUE_ALERT}): the workers are not keeping up.`]);
  }
  if (data.worker_restarts > 0) {
    list.push(["warning", `Recognition workers restarted ${plural(data.worker_restarts, "time")}`
      + " since the server started."]);
  }
  for (const [name, model] of Object.entries(data.models)) {
    const drift = model.drift;
    if (!(drift.drifting || []).length) continue;
    // Since the earliest of the current alarms (each signal's last raise).
    const raised = drift.drifting.map((signal) => (drift.events || [])
      .filter((e) => e.raised && e.signal === signal).pop()).filter(Boolean)
      .sort((a, b) => a.at - b.at);
    const signals = drift.drifting.map((signal) => {
      const s = drift.signals[signal];
      const score = scoredBySignificance(signal) ? "significance" : "PSI";
      return `${signalName(signal)} (${score} ${s.psi.toFixed(2)} over ${s.threshold.toFixed(2)})`;
    });
    list.push(["error", `Drift on ${name}`
      + (raised.length ? ` since ${clock(raised[0].at * 1000)}` : "")
      + `: ${signals.join(", ")}.`]);
  }
  return list;
}

function renderAlerts() {
  const list = alerts();
  show($("alerts"), JSON.stringify(list), () => (list.length
    ? list.map(([level, text]) => h("li", { class: level },
                                    h("span", { class: "level" },
                                      level === "error" ? "Alert" : "Warning"),
                                    ` ${text}`))
    : h("li", { class: "none" }, "No alerts.")));
}

function renderTiles(data, model) {
  const set = (id, text, status) => {
    $(id).textContent = text;
    if (status !== undefined) $(id).dataset.status = status;
  };
  set("server-state", data.state, data.state);
  set("sessions", count(data.active_sessions));
  set("queue", count(data.queue_depth), data.queue_depth >= QUEUE_ALERT ? "warning" : "ok");
  set("restarts", count(data.worker_restarts), data.worker_restarts > 0 ? "warning" : "ok");
  if (data.monitoring === false) { // --no-monitor: nothing is counted, so nothing to show
    set("answers", "off");
    set("understood", "off");
    set("drift-status", "Monitoring off", "");
    return;
  }
  if (!model) {
    set("answers", "—");
    set("understood", "—");
    set("drift-status", "—", "");
    return;
  }
  set("answers", count(model.answers));
  set("understood", model.answers ? percent(model.understood / model.answers) : "—");
  const drift = model.drift;
  set("drift-status", DRIFT_TEXT[drift.status] || drift.status, drift.status);
}

function fields(pairs) {
  return pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
}

function sourceValue(value) {
  if (Array.isArray(value)) {
    return value.length === 2 && value.every((v) => typeof v === "number")
      ? `${value[0]} to ${value[1]}` : value.join(", ");
  }
  if (value && typeof value === "object") {
    return Object.entries(value).map(([k, v]) => `${k}: ${sourceValue(v)}`).join("; ");
  }
  return String(value);
}

function renderCard(name, model, defaultName) {
  const m = model.model;
  show($("card"), JSON.stringify(m), () => fields([
    ["Name", `${name}${name === defaultName ? " (default)" : ""}`],
    ["Kind", { model: "model directory", context: "grammar (zero-shot)" }[m.kind] || m.kind],
    ["Speech model", m.speech_model],
    ["Precision", m.precision],
    ["Threshold", m.threshold],
    ["Beam size", m.beam_size],
    ["Loaded", m.loaded_at ? `${day(m.loaded_at * 1000)} ${clock(m.loaded_at * 1000)}`
      + (m.generation ? ` (reload ${m.generation})` : "") : null],
  ]));
  const intents = m.intents || [];
  $("intents-summary").textContent = `Intents (${intents.length})`;
  show($("intents"), JSON.stringify(intents), () => intents.map((i) => h("li", {}, i)));
  const drift = model.drift;
  show($("profile"), JSON.stringify([drift.reference, drift.config, drift.hint]), () => {
    if (!drift.reference) {
      return fields([["Profile", drift.hint || "none: drift is not watched"]]);
    }
    const ref = drift.reference;
    const source = ref.source || {};
    const c = drift.config;
    return fields([
      ["Utterances", count(ref.utterances)],
      ["Made for", `${ref.speech_model} ${ref.precision}`],
      ["How", source.data || "not recorded"],
      ...Object.entries(source).filter(([k]) => k !== "data")
        .map(([k, v]) => [SOURCE_TEXT[k] || k.replaceAll("_", " "),
                          k === "other_share" ? percent(v) : sourceValue(v)]),
      ["Window", `the last ${count(c.window_utterances)} utterances, none older than `
        + `${Math.round(c.window_s / 60)} min; alarms need ${count(c.min_utterances)}, `
        + `PSI over ${c.psi_floor} and significance at ${c.alpha}`
        + (c.joint_alpha ? `; all together at ${c.joint_alpha}` : "")],
    ]);
  });
}

// -- controls ----------------------------------------------------------------------------------

$("model").onchange = () => {
  state.model = $("model").value;
  const url = new URL(location.href);
  url.searchParams.set("model", state.model);
  history.replaceState(null, "", url);
  render();
};
$("auth").onsubmit = (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("key").value);
  $("key").value = "";
  state.token = null;
  setStatus("Checking the key…");
  refresh();
};
refresh();
