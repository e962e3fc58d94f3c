// The browser client: microphone -> AudioWorklet (16 kHz int16) -> WebSocket (docs/protocol.md).
// URL parameters: autostart=1 (start at once), mode=vad|push_to_talk, model=NAME, token=TOKEN,
// endpointing=fixed|grammar (default: the server's setting).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = {
  ws: null, audio: null, talking: false, token: params.get("token"), running: false,
  held: [],        // push-to-talk audio captured while (re)connecting, sent once ready
  keepalive: null, // timer: keeps an idle push-to-talk session open
  lastSentMs: 0,
  releasedWhileConnecting: false, // finalize the held audio once ready
  pressInterrupted: false,  // the connection dropped during this press: its audio is lost
  models: [],
  sessionId: null, intents: [], // from the session's ready event
  answered: null,                // the last result's utterance id (feedback names it)
};
const HELD_CHUNKS_MAX = 100; // 10 s of 100 ms chunks
const RETRYABLE = [1001, 1006, 1011, 1013, 4030, 4031];
window.assistantEvents = []; // every server event, for tests and debugging
window.assistantSent = [];   // every text message sent, for tests and debugging

function setStatus(text, kind = "info") {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  return `${scheme}://${location.host}/v1/stream${query}`;
}

function send(ws, message) {
  window.assistantSent.push(message.type);
  ws.send(JSON.stringify(message));
}

// -- what people read ----------------------------------------------------------------------

const CLOSE_TEXT = {
  1001: "The server is restarting", 1006: "The connection was lost",
  1009: "A piece of audio was too large for the server",
  1011: "The server had a problem", 1013: "The server is still starting",
  4000: "The server refused the session", 4002: "The server cannot use this audio",
  4029: "Too many requests", 4030: "The server is busy",
  4031: "Nothing was sent for a while",
};

const ERROR_TEXT = {
  bad_message: "The page sent something the server did not understand.",
  unknown_model: "That model is not served here: pick another one.",
  bad_audio_format: "The server cannot use this audio format.",
  frame_too_large: "A piece of audio was too large for the server.",
  rate_limited: "Too many requests: wait a moment.",
  server_full: "The server is busy right now.",
  not_ready: "The server is still loading its models.",
  shutting_down: "The server is restarting.",
  internal: "The server could not recognize that one: please say it again.",
};

function microphoneError(error) {
  switch (error && error.name) {
    case "NotAllowedError": case "SecurityError":
      return "Microphone access was denied. Allow it in the browser's site settings, then press Start.";
    case "NotFoundError": case "OverconstrainedError":
      return "No microphone was found. Connect one, then press Start.";
    case "NotReadableError": case "AbortError":
      return "The microphone is busy in another program. Close it there, then press Start.";
    default:
      return String((error && error.message) || error);
  }
}

function showExamples() {
  const chosen = $("model").value;
  const model = state.models.find((m) => (chosen ? m.name === chosen : m.default));
  const list = $("examples");
  list.textContent = "";
  for (const text of (model && model.examples) || []) {
    const item = document.createElement("li");
    item.textContent = `“${text}”`;
    list.append(item);
  }
  $("try").hidden = !list.children.length;
}

// -- models and credentials ----------------------------------------------------------------

async function loadModels() {
  const headers = state.token ? {} : keyHeader();
  const response = await fetch(`/v1/models${state.token ? `?token=${state.token}` : ""}`,
                               { headers });
  if (!response.ok) return;
  const data = await response.json();
  state.models = data.models;
  const select = $("model");
  select.length = 1;
  for (const m of data.models) {
    select.add(new Option(`${m.name}${m.default ? " (default)" : ""}`, m.name));
  }
  if (params.get("model")) select.value = params.get("model");
  showExamples();
}

function keyHeader() {
  const key = sessionStorage.getItem("assistant-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function fetchToken() {
  const response = await fetch("/v1/token", { method: "POST", headers: keyHeader() });
  if (response.status === 401) throw new Error("The API key was not accepted.");
  if (response.status === 429) throw new Error("Too many wrong keys: wait a minute, then try again.");
  if (!response.ok) throw new Error(`The token request failed (${response.status}).`);
  const data = await response.json();
  state.token = data.token;
}

// -- the microphone --------------------------------------------------------------------------

async function startAudio() {
  if (state.audio) return state.audio;
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    throw new Error("This browser cannot use the microphone here: open the page over https or on localhost.");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
               autoGainControl: true },
    });
  } catch (e) {
    throw new Error(microphoneError(e));
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/audio-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm16-downsampler",
                                    { processorOptions: { targetRate: 16000, chunkMs: 100 } });
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  node.port.onmessage = ({ data }) => onChunk(data);
  await context.resume();
  state.audio = { stream, context, node };
  return state.audio;
}

function stopAudio() {
  if (!state.audio) return;
  state.audio.stream.getTracks().forEach((t) => t.stop());
  state.audio.context.close();
  state.audio = null;
}

function onChunk({ pcm, rms }) {
  const dbfs = 20 * Math.log10(rms + 1e-10);
  $("level").style.width = `${Math.max(0, Math.min(100, ((dbfs + 60) / 60) * 100))}%`;
  if (!state.running) return;
  if (mode() === "push_to_talk" && !state.talking) return; // nobody holds the button
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !ws.ready) {
    // (Re)connecting: keep what is said while the button is held, send it once ready (not
    // the rest of a press the drop cut in two: its beginning went down with the connection).
    if (mode() === "push_to_talk" && !state.pressInterrupted
        && state.held.length < HELD_CHUNKS_MAX) state.held.push(pcm);
    return;
  }
  ws.send(pcm);
  state.lastSentMs = performance.now();
}

// -- the connection ------------------------------------------------------------------------

function connect() {
  const ws = new WebSocket(streamUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    send(ws, {
      type: "start", protocol_version: 1, sample_rate_hz: 16000, mode: mode(),
      model: $("model").value || null, partials: $("partials").checked, client: "browser",
      endpointing: params.get("endpointing") || null,
    });
  };
  ws.onmessage = ({ data }) => onEvent(ws, JSON.parse(data));
  ws.onclose = (event) => onClose(ws, event);
}

function disconnect(drop) {
  // drop: forget the speech in progress (Stop, a settings change) instead of recognizing it.
  stopKeepalive();
  const ws = state.ws;
  state.ws = null;
  if (!ws) return;
  if (ws.readyState === WebSocket.OPEN) {
    if (drop) send(ws, { type: "cancel" });
    send(ws, { type: "stop" });
  }
  setTimeout(() => ws.close(), 3000);
}

function startKeepalive(ws, idleTimeoutS) {
  stopKeepalive();
  const everyMs = Math.max(200, (idleTimeoutS * 1000) / 3);
  state.keepalive = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN && performance.now() - state.lastSentMs > everyMs) {
      send(ws, { type: "keepalive" });
    }
  }, everyMs);
}

function stopKeepalive() {
  if (state.keepalive) clearInterval(state.keepalive);
  state.keepalive = null;
}

function onEvent(ws, event) {
  window.assistantEvents.push(event);
  if (ws !== state.ws) return; // a connection being closed (Stop, a settings change)
  switch (event.type) {
    case "ready":
      ws.ready = true;
      state.sessionId = event.session_id;
      state.intents = event.intents || [];
      startKeepalive(ws, event.limits.idle_timeout_s);
      $("talk").disabled = mode() !== "push_to_talk";
      setStatus(mode() === "push_to_talk"
        ? `Connected to ${event.model}: hold the button (or the space bar) while you speak.`
        : `Listening (${event.model}): just speak.`);
      for (const pcm of state.held.splice(0)) ws.send(pcm);
      if (state.releasedWhileConnecting && !state.talking) {
        state.releasedWhileConnecting = false;
        send(ws, { type: "finalize" }); // released while connecting: end what was held
      }
      break;
    case "speech_started":
      showPartial("…");
      break;
    case "partial":
      showPartial(event.transcript);
      break;
    case "result":
      showResult(event);
      break;
    case "error":
      setStatus(`${ERROR_TEXT[event.code] || event.message} (${event.code})`, "error");
      break;
  }
}

function showPartial(text) {
  $("partial").textContent = text ? `Hearing: ${text}` : "";
}

function showResult(r) {
  showPartial("");
  const box = $("result");
  $("intent").textContent = r.understood ? r.intent : "Not understood";
  const slots = Object.entries(r.slots).map(([k, v]) => `${k}=${v}`).join(", ");
  $("slots").textContent = slots || "—";
  $("confidence").textContent = r.confidence.toFixed(2);
  // Understood: the command recognized. Not understood: what the model heard, never the
  // grammar's closest sentence (which looks like a command that was not given).
  $("transcript-label").textContent = r.understood ? "Command" : "Heard";
  $("transcript").textContent = (r.understood ? r.transcript : r.heard) || "(nothing)";
  $("latency").textContent = `${Math.round(r.timing.end_of_speech_to_result_ms)} ms`;
  box.dataset.intent = r.understood ? r.intent : "";
  box.dataset.understood = String(r.understood);
  box.dataset.slots = JSON.stringify(r.slots);
  box.classList.toggle("rejected", !r.understood);
  const item = document.createElement("li");
  item.textContent = r.understood
    ? `${r.intent} ${slots} (${r.confidence.toFixed(2)})`
    : `not understood: heard “${r.heard || ""}”`;
  item.className = r.understood ? "" : "rejected";
  $("history").prepend(item);
  offerFeedback(r);
}

// -- feedback: "that was wrong / it was: ..." (POST /v1/feedback) ----------------------------

function offerFeedback(r) {
  state.answered = r.utterance_id;
  $("feedback").hidden = false;
  $("fb-right").hidden = !r.understood; // "right" about a miss teaches nothing
  $("fb-right").disabled = $("fb-wrong").disabled = false;
  $("fb-correction").hidden = true;
  $("fb-status").textContent = "";
  const select = $("fb-intent");
  select.length = 0;
  select.add(new Option("(not a command)", ""));
  for (const name of state.intents) select.add(new Option(name, name));
}

async function sendFeedback(correct, intent) {
  if (state.sessionId === null || state.answered === null) return;
  $("fb-right").disabled = $("fb-wrong").disabled = true;
  $("fb-correction").hidden = true;
  const body = { session_id: state.sessionId, utterance_id: state.answered, correct };
  if (!correct) body.intent = intent || null;
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  try {
    const response = await fetch(`/v1/feedback${query}`, {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", ...(state.token ? {} : keyHeader()) },
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `feedback failed (${response.status})`);
    $("fb-status").textContent = data.stored
      ? "Thanks: kept for review."
      : "Thanks: counted (this server keeps no audio).";
  } catch (e) {
    $("fb-status").textContent = `Not sent: ${e.message || e}`;
    $("fb-right").disabled = $("fb-wrong").disabled = false;
  }
}

$("fb-right").addEventListener("click", () => sendFeedback(true));
$("fb-wrong").addEventListener("click", () => {
  $("fb-correction").hidden = false;
  $("fb-intent").focus();
});
$("fb-send").addEventListener("click", () => sendFeedback(false, $("fb-intent").value));

async function onClose(ws, event) {
  if (state.ws !== ws) return;
  state.ws = null;
  stopKeepalive();
  if (state.talking && ws.ready) state.pressInterrupted = true;
  $("talk").disabled = true;
  if (!state.running) return;
  if (event.code === 4001) {
    state.token = null;
    if (sessionStorage.getItem("assistant-key")) {
      try {
        await fetchToken();
        return connect();
      } catch (e) {
        sessionStorage.removeItem("assistant-key");
      }
    }
    $("auth").hidden = false;
    setStatus("This server needs an API key.", "error");
    return;
  }
  const what = CLOSE_TEXT[event.code] || `The connection closed (${event.code})`;
  const detail = event.reason && ![1001, 1006].includes(event.code) ? `: ${event.reason}` : "";
  if (RETRYABLE.includes(event.code)) {
    const delayMs = event.code === 4031 ? 0 : 2000;
    if (event.code !== 4031) setStatus(`${what}; reconnecting…`, "info");
    setTimeout(() => state.running && !state.ws && connect(), delayMs);
  } else {
    setStatus(`${what}${detail}.`, "error");
    stop(false);
  }
}

// -- controls --------------------------------------------------------------------------------

async function start() {
  try {
    state.running = true;
    $("start").textContent = "Stop";
    setStatus("Starting the microphone…");
    await startAudio();
    connect();
  } catch (e) {
    stop(false);
    setStatus(String(e.message || e), "error");
  }
}

function stop(announce = true) {
  state.running = false;
  talk(false, false);
  state.held = [];
  state.releasedWhileConnecting = false;
  $("start").textContent = "Start";
  $("talk").disabled = true;
  disconnect(true); // Stop means stop: a half-said command is dropped, not executed
  stopAudio();
  $("level").style.width = "0";
  showPartial("");
  if (announce) setStatus("Stopped. Press Start to listen again.", "idle");
}

function talk(on, finalize = true) {
  if (on && (mode() !== "push_to_talk" || !state.running)) return;
  if (on === state.talking) return;
  state.talking = on; // also while disconnected: a release during an outage must count
  $("talk").classList.toggle("active", on);
  $("talk").setAttribute("aria-pressed", String(on));
  if (on) {
    state.pressInterrupted = false;
    return;
  }
  if (state.pressInterrupted) {
    state.pressInterrupted = false;
    state.held = [];
    setStatus("The connection dropped while you were talking: please say it again.", "error");
    return;
  }
  if (!finalize) return;
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN && ws.ready) send(ws, { type: "finalize" });
  else if (state.held.length) state.releasedWhileConnecting = true;
}

function reconnectForSettings() {
  showExamples();
  if (!state.running) return;
  talk(false, false);
  disconnect(true);
  connect();
}

$("start").onclick = () => (state.running ? stop() : start());
$("talk").onpointerdown = () => talk(true);
$("talk").onpointerup = $("talk").onpointerleave = () => talk(false);
$("talk").onkeydown = (e) => {
  if ((e.key === "Enter" || e.key === " ") && !e.repeat) { e.preventDefault(); talk(true); }
};
$("talk").onkeyup = (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); talk(false); }
};
// The space bar talks only when nothing else has the focus (buttons and fields keep it).
document.addEventListener("keydown", (e) => {
  if (e.code === "Space" && !e.repeat && document.activeElement === document.body
      && mode() === "push_to_talk" && state.running) {
    e.preventDefault();
    talk(true);
  }
});
document.addEventListener("keyup", (e) => {
  if (e.code === "Space" && document.activeElement === document.body) talk(false);
});
window.addEventListener("blur", () => talk(false)); // a key released elsewhere never comes
document.querySelectorAll('input[name="mode"]').forEach((input) => {
  input.onchange = reconnectForSettings;
});
$("model").onchange = reconnectForSettings;
$("partials").onchange = reconnectForSettings;
$("auth").onsubmit = async (e) => {
  e.preventDefault();
  sessionStorage.setItem("assistant-key", $("key").value);
  try {
    await fetchToken();
    $("auth").hidden = true;
    loadModels();
    if (state.running) connect(); else start();
  } catch (err) {
    setStatus(String(err.message || err), "error");
  }
};

if (params.get("mode") === "push_to_talk") {
  document.querySelector('input[value="push_to_talk"]').checked = true;
}
loadModels().catch(() => {});
if (params.get("autostart") === "1") start();
