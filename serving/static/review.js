// The review page: label captured utterances (GET /v1/capture?unreviewed=1, the audio from
// /v1/capture/audio/ID, answers to POST /v1/capture/review). docs/capture.md.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "assistant-key"; // sessionStorage, shared with the other pages
const state = { token: new URLSearchParams(location.search).get("token"), intents: {} };

function setStatus(text, kind = "info") {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}

function withToken(path) {
  if (!state.token) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(state.token)}`;
}

async function call(path, options = {}, retried = false) {
  const response = await fetch(withToken(path), { cache: "no-store", ...options });
  if (response.status === 401 && !retried && sessionStorage.getItem(KEY)) {
    const issued = await fetch("/v1/token", {
      method: "POST", headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` } });
    if (issued.ok) {
      state.token = (await issued.json()).token;
      return call(path, options, true);
    }
  }
  if (response.status === 401) {
    $("auth").hidden = false;
    throw new Error("This server needs an API key.");
  }
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `${response.status}`);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null));
  return node;
}

function item(row) {
  const answer = row.understood
    ? `${row.intent} ${JSON.stringify(row.slots)} (${row.confidence.toFixed(2)})`
    : `not understood (${row.reason})`;
  const li = el("li", { "data-capture-id": row.capture_id });
  const audio = el("audio", { controls: "", preload: "none",
                              src: withToken(`/v1/capture/audio/${row.capture_id}`) });
  const said = el("input", { type: "text", "aria-label": "What was said",
                             placeholder: "type what was said" });
  const intent = el("select", { "aria-label": "Intent" });
  intent.append(el("option", { value: "", text: "(pick the intent)" }));
  for (const name of state.intents[row.model] || []) {
    intent.append(el("option", { value: name, text: name }));
  }
  const result = el("span", { class: "hint", role: "status" });
  const act = async (body) => {
    try {
      await call("/v1/capture/review", { method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ capture_id: row.capture_id, ...body }) });
      li.remove();
      setStatus(`${$("items").children.length} left to review.`);
    } catch (e) {
      result.textContent = e.message;
    }
  };
  const button = (text, handler, disabled = false) => {
    const b = el("button", { type: "button", text });
    b.disabled = disabled;
    b.addEventListener("click", handler);
    return b;
  };
  li.append(
    el("div", {}, el("strong", { text: answer }), " · heard: ",
       el("q", { text: row.heard || "–" }), ` · ${row.kept_for} · ${row.model}`),
    audio,
    el("div", {},
       button("Right", () => act({ action: "accept" }), !row.understood),
       said, button("It was this", () => act({ action: "said", text: said.value })),
       intent, button("This intent", () => act({ action: "intent", intent: intent.value })),
       button("Not a command", () => act({ action: "no_command" })),
       button("Discard", () => act({ action: "discard" }))),
    result);
  return li;
}

async function load() {
  try {
    const models = await call("/v1/models");
    for (const m of models.models) state.intents[m.name] = m.intents;
    const data = await call("/v1/capture?unreviewed=1");
    if (!data.capture) {
      setStatus("Capture is off on this server: nothing to review (see docs/capture.md).");
      return;
    }
    $("items").replaceChildren(...data.recent.map(item));
    setStatus(data.recent.length ? `${data.recent.length} to review.` : "Nothing to review.");
  } catch (e) {
    setStatus(e.message, "error");
  }
}

$("auth").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("key").value);
  $("auth").hidden = true;
  load();
});
load();
