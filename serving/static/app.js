// The browser client: microphone -> AudioWorklet (16 kHz int16) -> WebSocket (docs/protocol.md).
// URL parameters: autostart=1 (start at once), mode=vad|push_to_talk, model=NAME, token=TOKEN.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { ws: null, audio: null, talking: false, token: params.get("token"), running: false };
window.assistantEvents = []; // every server event, for tests and debugging

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

async function loadModels() {
  const headers = state.token ? {} : keyHeader();
  const response = await fetch(`/v1/models${state.token ? `?token=${state.token}` : ""}`,
                               { headers });
  if (!response.ok) return;
  const data = await response.json();
  const select = $("model");
  select.length = 1;
  for (const m of data.models) {
    const option = new Option(`${m.name}${m.default ? " (default)" : ""}`, m.name);
    select.add(option);
  }
  if (params.get("model")) select.value = params.get("model");
}

function keyHeader() {
  const key = sessionStorage.getItem("assistant-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function fetchToken() {
  const response = await fetch("/v1/token", { method: "POST", headers: keyHeader() });
  if (response.status === 401) throw new Error("the API key was not accepted");
  if (!response.ok) throw new Error(`token request failed (${response.status})`);
  const data = await response.json();
  state.token = data.token;
}

async function startAudio() {
  if (state.audio) return state.audio;
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    throw new Error("this browser has no microphone access here (use https or localhost)");
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
             autoGainControl: true },
  });
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
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !ws.ready) return;
  if (mode() === "push_to_talk" && !state.talking) return;
  ws.send(pcm);
}

function connect() {
  const ws = new WebSocket(streamUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({
      type: "start", protocol_version: 1, sample_rate_hz: 16000, mode: mode(),
      model: $("model").value || null, partials: $("partials").checked, client: "browser",
    }));
  };
  ws.onmessage = ({ data }) => onEvent(ws, JSON.parse(data));
  ws.onclose = (event) => onClose(ws, event);
}

function onEvent(ws, event) {
  window.assistantEvents.push(event);
  switch (event.type) {
    case "ready":
      ws.ready = true;
      $("talk").disabled = mode() !== "push_to_talk";
      setStatus(mode() === "push_to_talk"
        ? `Connected to ${event.model}: hold the button (or space) while you speak.`
        : `Listening (${event.model}): just speak.`);
      break;
    case "speech_started":
      $("partial").textContent = "…";
      break;
    case "partial":
      $("partial").textContent = event.transcript;
      break;
    case "result":
      showResult(event);
      break;
    case "error":
      setStatus(`${event.code}: ${event.message}`, "error");
      break;
  }
}

function showResult(r) {
  $("partial").textContent = "";
  $("intent").textContent = r.understood ? r.intent : "(not understood)";
  const slots = Object.entries(r.slots).map(([k, v]) => `${k}=${v}`).join(", ");
  $("slots").textContent = slots || "—";
  $("confidence").textContent = r.confidence.toFixed(2);
  $("transcript").textContent = r.transcript || r.heard || "—";
  $("latency").textContent = `${Math.round(r.timing.end_of_speech_to_result_ms)} ms`;
  const box = $("result");
  box.dataset.intent = r.understood ? r.intent : "";
  box.dataset.understood = String(r.understood);
  box.dataset.slots = JSON.stringify(r.slots);
  const item = document.createElement("li");
  item.textContent = `${$("intent").textContent} ${slots} (${r.confidence.toFixed(2)})`;
  $("history").prepend(item);
}

async function onClose(ws, event) {
  if (state.ws !== ws) return;
  state.ws = null;
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
  const retry = [1001, 1006, 1011, 1013, 4030, 4031].includes(event.code);
  setStatus(`Disconnected (${event.code}${event.reason ? `: ${event.reason}` : ""})` +
            (retry ? ", reconnecting…" : "."), retry ? "info" : "error");
  if (retry) setTimeout(() => state.running && connect(), 2000);
  else stop();
}

async function start() {
  try {
    state.running = true;
    $("start").textContent = "Stop";
    setStatus("Starting the microphone…");
    await startAudio();
    connect();
  } catch (e) {
    setStatus(String(e.message || e), "error");
    stop();
  }
}

function stop() {
  state.running = false;
  $("start").textContent = "Start";
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
    setTimeout(() => ws.close(), 3000);
  }
  stopAudio();
  $("level").style.width = "0";
}

function talk(on) {
  if (mode() !== "push_to_talk" || !state.ws || on === state.talking) return;
  state.talking = on;
  $("talk").classList.toggle("active", on);
  if (!on && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "finalize" }));
  }
}

$("start").onclick = () => (state.running ? stop() : start());
$("talk").onpointerdown = () => talk(true);
$("talk").onpointerup = $("talk").onpointerleave = () => talk(false);
document.addEventListener("keydown", (e) => {
  if (e.code === "Space" && !e.repeat && e.target.tagName !== "INPUT") { e.preventDefault(); talk(true); }
});
document.addEventListener("keyup", (e) => { if (e.code === "Space") talk(false); });
document.querySelectorAll('input[name="mode"]').forEach((input) => {
  input.onchange = () => { if (state.ws) { state.ws.close(); connect(); } };
});
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
