"""Plain HTTP on the WebSocket port, through websockets' ``process_request`` hook.

``GET /healthz`` (alive), ``GET /readyz`` (models loaded, not draining), ``GET /metrics``
(Prometheus), ``GET /v1/models``, ``GET /v1/monitor`` (quality and drift per model, JSON),
``POST /v1/token`` (a browser token for an API key),
``POST /v1/reload[?model=NAME]``, the browser page (``GET /``), the dashboard over
``/v1/monitor`` (``GET /dashboard``) and their files (``GET /static/FILE``).
WebSocket upgrades are let through on ``/`` and ``/v1/stream``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import json
import logging
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from assistant.errors import AssistantError

from ..auth import Principal, Refusal, bearer
from ..catalog import UnknownModel
from ..metrics import CONTENT_TYPE as METRICS_TYPE
from ..services import Services
from .body import MAX_BODY_BYTES

logger = logging.getLogger("assistant.serving.http")

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # package data
STORE_TIMEOUT_S = 10.0  # how long a request waits for the capture store before a 503
STREAM_PATHS = frozenset({"/", "/v1/stream"})
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml",
                ".css": "text/css; charset=utf-8"}


def load_static() -> dict[str, tuple[str, str]]:
    """``{"/static/app.js": (content type, text)}`` for the files in ``serving/static``."""
    files: dict[str, tuple[str, str]] = {}
    for entry in sorted(STATIC_DIR.iterdir()):
        if entry.is_file() and entry.suffix in STATIC_TYPES:
            files[f"/static/{entry.name}"] = (STATIC_TYPES[entry.suffix],
                                             entry.read_text("utf-8"))
    return files


def query(request: Request) -> dict[str, str]:
    """The request's query parameters (the first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}


def _respond(connection: ServerConnection, status: int, body: str, content_type: str,
             **headers: str) -> Response:
    response = connection.respond(http.HTTPStatus(status), body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def _json(connection: ServerConnection, status: int, data: Any) -> Response:
    return _respond(connection, status, json.dumps(data, indent=1) + "\n",
                    "application/json")


def _is_upgrade(request: Request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()


class Router:
    """The ``process_request`` hook of the WebSocket listener (:mod:`serving.ws.listener`)."""

    def __init__(self, services: Services):
        self.services = services
        self.static = load_static()
        self.origins = services.settings.server.origins()

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        host = request.headers.get("Host")
        if not self.services.host_allowed(host):
            return _respond(connection, 403, f"this server does not answer for host {host!r}; "
                            "it has no API keys, so it answers only for localhost and IP "
                            "addresses (add names with --allowed-hosts)\n",
                            "text/plain; charset=utf-8")
        if (_is_upgrade(request) or request.method != "GET") and not origin_allowed(
                request.headers.get("Origin"), request.headers.get("Host"), self.origins):
            return _respond(connection, 403, f"origin {request.headers.get('Origin')!r} is not "
                            "allowed; add it with --allowed-origins\n",
                            "text/plain; charset=utf-8")
        if _is_upgrade(request):
            if path in STREAM_PATHS:
                return None  # the WebSocket handshake goes on
            return _respond(connection, 404, f"no WebSocket endpoint at {path}\n",
                            "text/plain; charset=utf-8")
        method = request.method
        if path == "/healthz" and method == "GET":
            return _respond(connection, 200, "ok\n", "text/plain; charset=utf-8")
        if path == "/readyz" and method == "GET":
            state = self.services.state
            broken = self.services.pool.broken
            return _respond(connection, 200 if self.services.ready else 503,
                            f"{state}\n" if broken is None else f"workers down: {broken}\n",
                            "text/plain; charset=utf-8")
        if path == "/metrics" and method == "GET":
            self.services.refresh_gauges()
            await asyncio.to_thread(self.services.refresh_capture_gauges)  # a query
            self.services.quality.refresh()
            self.services.metrics.loop_tasks.set(len(asyncio.all_tasks()))
            return _respond(connection, 200, self.services.metrics.render().decode(),
                            METRICS_TYPE)
        if path == "/v1/models" and method == "GET":
            refused = self._refused(connection, request)
            if refused is not None:
                return refused
            catalog = self.services.catalog
            return _json(connection, 200, {"default": catalog.default_name,
                                           "models": catalog.describe()})
        if path == "/v1/monitor" and method == "GET":
            refused = self._refused(connection, request)
            if refused is not None:
                return refused
            return _json(connection, 200, self.services.monitor())
        if path.startswith("/v1/models/") and path.count("/") in (4, 5):
            return await self._slots(connection, request, path, method)
        if path == "/v1/token" and method == "POST":
            return self._token(connection, request)
        if path == "/v1/feedback" and method == "POST":
            return await self._feedback(connection, request)
        if path == "/v1/capture" and method in ("GET", "DELETE"):
            return await self._capture(connection, request, method)
        if path.startswith("/v1/capture/audio/") and method == "GET":
            return await self._capture_audio(connection, request, path.rsplit("/", 1)[1])
        if path == "/v1/capture/review" and method == "POST":
            return await self._review(connection, request)
        if path == "/v1/reload" and method == "POST":
            return await self._reload(connection, request)
        page = {"/": "/static/index.html", "/index.html": "/static/index.html",
                "/dashboard": "/static/dashboard.html", "/review": "/static/review.html",
                "/favicon.ico": "/static/favicon.svg"}.get(path, path)
        if page in self.static and method == "GET":
            content_type, text = self.static[page]
            return _respond(connection, 200, text, content_type)
        known = {"/healthz", "/readyz", "/metrics", "/v1/models", "/v1/token", "/v1/reload",
                 "/v1/monitor", "/v1/feedback", "/v1/capture", "/v1/capture/review"}
        if path in known or page in self.static:
            return _respond(connection, 405, f"{method} is not allowed on {path}\n",
                            "text/plain; charset=utf-8")
        return _respond(connection, 404, f"nothing at {path}\n", "text/plain; charset=utf-8")

    def _caller(self, connection: ServerConnection, request: Request) -> Principal | Response:
        """Who calls, or the response refusing them."""
        caller = self.services.check_caller(request.headers.get("Authorization"),
                                            query(request).get("token"), _peer(connection))
        return self._refusal(connection, caller) if isinstance(caller, Refusal) else caller

    async def _feedback(self, connection: ServerConnection, request: Request) -> Response:
        """``POST /v1/feedback`` {session_id, utterance_id, correct, intent?, slots?}: was an
        answer right (and if not, what was meant)? Counted once per answer (the first
        feedback); stored with the captured utterance when capture is on, the latest
        feedback winning (docs/capture.md)."""
        caller = self._caller(connection, request)
        if isinstance(caller, Response):
            return caller
        services = self.services
        try:
            body = _body(connection)
            if not isinstance(body, dict):
                raise BodyError(400, "the body must be a JSON object")
            session_id, utterance_id = body.get("session_id"), body.get("utterance_id")
            correct, intent, slots = body.get("correct"), body.get("intent"), body.get("slots")
            if not isinstance(session_id, str) or not isinstance(utterance_id, int) \
                    or isinstance(utterance_id, bool):
                raise BodyError(400, "session_id (text) and utterance_id (an integer) are "
                                     "required")
            if not isinstance(correct, bool):
                raise BodyError(400, "correct (true or false) is required")
            if intent is not None and not isinstance(intent, str):
                raise BodyError(400, "intent must be a name or null (not a command)")
            if slots is not None and not isinstance(slots, dict):
                raise BodyError(400, "slots must be an object")
            model = services.quality.answered.get((session_id, utterance_id))
            if model is None or (services.auth.required
                                 and services.session_key(session_id) != caller.key_id):
                raise BodyError(404, f"no recent answer {utterance_id} in session "
                                     f"{session_id!r} for this caller")
            if intent is not None:
                intents = services.catalog.get(model).intents
                if intent not in intents:
                    raise BodyError(400, f"model {model!r} has no intent {intent!r}")
        except BodyError as e:
            return _json(connection, e.status, {"error": str(e)})
        counted = services.quality.first_feedback((session_id, utterance_id))
        if counted:
            services.metrics.feedback.labels(model, "true" if correct else "false").inc()
        stored = False
        if services.capture is not None:
            try:
                stored = await asyncio.wait_for(asyncio.wrap_future(services.capture.feedback(
                    session_id, utterance_id, correct, intent, slots)), STORE_TIMEOUT_S)
            except (TimeoutError, AssistantError) as e:  # counted above; not stored
                return _json(connection, 503, {"error": f"feedback counted but not stored: "
                                                        f"{e or 'the store is busy'}"})
        return _json(connection, 200, {"counted": counted, "stored": stored,
                                       "capture": services.capture is not None})

    async def _capture(self, connection: ServerConnection, request: Request,
                       method: str) -> Response:
        """``GET /v1/capture``: whether capture is on, its settings, the store's size and the
        latest captured answers (the caller's own when keys are configured);
        ``DELETE /v1/capture?session_id=S[&utterance_id=N] | capture_id=C | key_id=K``."""
        caller = self._caller(connection, request)
        if isinstance(caller, Response):
            return caller
        capture = self.services.capture
        owner = caller.key_id if self.services.auth.required else None
        if capture is None:
            if method == "DELETE":
                return _json(connection, 200, {"deleted": 0, "capture": False})
            return _json(connection, 200, {"capture": False})
        if method == "GET":
            unreviewed = query(request).get("unreviewed") in ("1", "true")
            store = capture.store
            rows = await asyncio.to_thread(
                (lambda: store.unreviewed(owner)[:50]) if unreviewed
                else (lambda: store.rows(50, owner)))
            stats = await asyncio.to_thread(store.stats, owner)
            # The settings a client may see: not the database URL (a password), not other
            # keys' ids.
            shown = {k: v for k, v in dataclasses.asdict(capture.config).items()
                     if k not in ("capture_database", "capture_keys", "capture_dir")}
            return _json(connection, 200, {"capture": True, "config": shown,
                                           "stats": {k: v for k, v in stats.items()
                                                     if k != "directory"},
                                           "recent": rows})
        params = query(request)
        named = [k for k in ("capture_id", "session_id", "key_id") if params.get(k)]
        if not named:
            return _json(connection, 400, {"error": "say what to delete: capture_id, "
                                                    "session_id (and utterance_id) or key_id"})
        try:
            utterance = params.get("utterance_id")
            deleted = await asyncio.wait_for(asyncio.wrap_future(capture.delete(
                capture_id=params.get("capture_id"), session_id=params.get("session_id"),
                utterance_id=None if utterance is None else int(utterance),
                key_id=params.get("key_id"), owner=owner)), STORE_TIMEOUT_S)
        except ValueError as e:  # a bad utterance id
            return _json(connection, 400, {"error": str(e)})
        except (TimeoutError, AssistantError) as e:
            return _json(connection, 503, {"error": f"not deleted yet: "
                                                    f"{e or 'the store is busy'}; try again"})
        return _json(connection, 200, {"deleted": deleted, "capture": True})

    async def _captured(self, connection: ServerConnection, request: Request,
                        capture_id: str) -> tuple[Any, dict[str, Any]] | Response:
        """(the store, the row) of a captured utterance the caller may see, or a refusal."""
        caller = self._caller(connection, request)
        if isinstance(caller, Response):
            return caller
        capture = self.services.capture
        if capture is None:
            return _json(connection, 404, {"error": "capture is off on this server"})
        found = await asyncio.to_thread(capture.store.get, capture_id)
        if found is None or (self.services.auth.required and found["key_id"] != caller.key_id):
            return _json(connection, 404, {"error": f"no captured utterance {capture_id!r}"})
        return capture.store, found

    async def _capture_audio(self, connection: ServerConnection, request: Request,
                             capture_id: str) -> Response:
        """``GET /v1/capture/audio/ID``: a captured utterance's FLAC, for the review page."""
        captured = await self._captured(connection, request, capture_id)
        if isinstance(captured, Response):
            return captured
        store, found = captured
        try:
            data = await asyncio.to_thread((store.directory / found["audio_file"]).read_bytes)
        except OSError:
            return _json(connection, 404, {"error": "its audio is gone"})
        headers = Headers([("Content-Type", "audio/flac"), ("Cache-Control", "no-store"),
                           ("Content-Length", str(len(data)))])
        return Response(200, "OK", headers, data)

    async def _review(self, connection: ServerConnection, request: Request) -> Response:
        """``POST /v1/capture/review`` {capture_id, action: accept | said | intent |
        no_command | discard, text? (said), intent? slots? (intent)}: the review page."""
        try:
            body = _body(connection)
            if not isinstance(body, dict) or not isinstance(body.get("capture_id"), str):
                raise BodyError(400, "a JSON object with capture_id is required")
            captured = await self._captured(connection, request, body["capture_id"])
            if isinstance(captured, Response):
                return captured
            store, found = captured
            key = (found["session_id"], found["utterance_id"])
            action = body.get("action")
            if action == "accept":
                if not found["understood"]:
                    raise BodyError(400, "nothing was understood to accept")
                await asyncio.to_thread(store.feedback, *key, correct=True)
            elif action == "said":
                from assistant.grammar import parse

                text = str(body.get("text") or "")
                parsed = parse(self.services.catalog.context(found["model"]), text)
                if parsed is None:
                    raise BodyError(400, f"{text!r} is not a sentence of the grammar")
                slots = dict(parsed.to_json()["slots"])
                same = (found["understood"] and parsed.intent == found["intent"]
                        and slots == found["slots"])
                await asyncio.to_thread(store.feedback, *key, correct=same,
                                        intent=parsed.intent, slots=slots, text=parsed.text)
            elif action == "intent":
                intent, slots = body.get("intent"), body.get("slots") or {}
                entry = self.services.catalog.get(found["model"])
                if intent not in entry.intents or not isinstance(slots, dict):
                    raise BodyError(400, f"model {found['model']!r} has no intent {intent!r}")
                await asyncio.to_thread(store.feedback, *key, correct=False, intent=intent,
                                        slots=slots)
            elif action == "no_command":
                await asyncio.to_thread(store.feedback, *key, correct=not found["understood"],
                                        intent=None)
            elif action == "discard":
                capture = self.services.capture
                assert capture is not None
                await asyncio.wait_for(asyncio.wrap_future(capture.delete(
                    capture_id=found["capture_id"])), STORE_TIMEOUT_S)
            else:
                raise BodyError(400, "action must be accept, said, intent, no_command or "
                                     "discard")
        except BodyError as e:
            return _json(connection, e.status, {"error": str(e)})
        except UnknownModel as e:
            return _json(connection, 409, {"error": f"its model is no longer served: {e}"})
        except (TimeoutError, AssistantError) as e:
            return _json(connection, 503, {"error": f"not done: {e or 'the store is busy'}"})
        return _json(connection, 200, {"reviewed": found["capture_id"], "action": action})

    def _refused(self, connection: ServerConnection, request: Request) -> Response | None:
        """The response refusing an unauthenticated request, or None to go on."""
        caller = self.services.check_caller(request.headers.get("Authorization"),
                                            query(request).get("token"), _peer(connection))
        return self._refusal(connection, caller) if isinstance(caller, Refusal) else None

    def _refusal(self, connection: ServerConnection, refusal: Refusal) -> Response:
        if refusal.rate_limited:
            retry = max(1, math.ceil(refusal.retry_after_s or 1))
            return _respond(connection, 429, "too many failed authentications from this "
                            f"address; retry after {retry} s\n", "text/plain; charset=utf-8",
                            Retry_After=str(retry))
        return _respond(connection, 401, "an API key is required (Authorization: Bearer KEY)\n",
                        "text/plain; charset=utf-8", WWW_Authenticate="Bearer")

    def _token(self, connection: ServerConnection, request: Request) -> Response:
        auth = self.services.auth
        if not auth.required:
            return _json(connection, 200, {"token": None, "required": False})
        principal = self.services.check_key(_bearer(request), _peer(connection))
        if isinstance(principal, Refusal):
            return self._refusal(connection, principal)
        token, expires = auth.issue_token(principal, time.time())
        return _json(connection, 200, {"token": token, "required": True,
                                       "expires_at": round(expires), "ttl_s": auth.ttl_s})

    async def _reload(self, connection: ServerConnection, request: Request) -> Response:
        refused = self._refused(connection, request)
        if refused is not None:
            return refused
        name = query(request).get("model")
        try:
            reloaded = await asyncio.to_thread(self.services.reload, name)
        except UnknownModel as e:
            return _json(connection, 400, {"error": str(e)})
        except AssistantError as e:
            return _json(connection, 500, {"error": str(e)})
        return _json(connection, 200, {"reloaded": reloaded})


    async def _slots(self, connection: ServerConnection, request: Request, path: str,
                     method: str) -> Response:
        """``GET /v1/models/NAME/slots``: the slot types and values a model runs with;
        ``PUT /v1/models/NAME/slots/TYPE`` with a JSON list of values (or ``{"values":
        [...]}``): replace them, for the next utterance on."""
        parts = path.split("/")  # "", "v1", "models", NAME, "slots"[, TYPE]
        if parts[4] != "slots":
            return _respond(connection, 404, f"nothing at {path}\n", "text/plain; charset=utf-8")
        refused = self._refused(connection, request)
        if refused is not None:
            return refused
        name = unquote(parts[3])
        try:
            if len(parts) == 5 and method == "GET":
                return _json(connection, 200, {"model": self.services.catalog.get(name).name,
                                               "slots": self.services.catalog.slot_values(name)})
            if len(parts) == 6 and method == "PUT":
                values = _values(connection)
                changed = await asyncio.to_thread(self.services.set_slot_values, name,
                                                  unquote(parts[5]), values)
                return _json(connection, 200, changed)
        except UnknownModel as e:
            return _json(connection, 404, {"error": str(e)})
        except BodyError as e:
            return _json(connection, e.status, {"error": str(e)})
        except AssistantError as e:  # GrammarError: the values do not fit the grammar
            return _json(connection, 400, {"error": str(e)})
        return _respond(connection, 405, f"{method} is not allowed on {path} (GET .../slots, "
                        f"PUT .../slots/TYPE)\n", "text/plain; charset=utf-8")


class BodyError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def _body(connection: ServerConnection) -> Any:
    """A request's JSON body (see :mod:`serving.ws.body`)."""
    if getattr(connection, "body_too_large", False):
        raise BodyError(413, f"the body is over {MAX_BODY_BYTES} bytes")
    body = getattr(connection, "request_body", b"")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise BodyError(400, f"the body must be JSON ({str(e)[:80]})") from None


def _values(connection: ServerConnection) -> list[Any]:
    """The slot values in a request's JSON body."""
    try:
        data = _body(connection)
    except BodyError as e:
        if e.status != 400:
            raise
        raise BodyError(400, f"the body must be JSON: a list of values, or "
                             f"{{\"values\": [...]}} ({e})") from None
    if isinstance(data, dict):
        data = data.get("values")
    if not isinstance(data, list):
        raise BodyError(400, "the body must be a JSON list of values, or {\"values\": [...]}")
    return data


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request from a browser page at ``origin`` may open a stream or POST.

    Browsers send ``Origin`` with WebSocket handshakes and POSTs; other clients do not and
    are let through (API keys, when configured, still apply). A page is allowed when it is
    this server's own (its host and port are the ``Host`` it asked for) or listed in
    ``allowed_origins``; this stops any other web site the user visits from using a
    keyless local server through the user's browser.
    """
    if origin is None or "*" in allowed:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed:
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host.strip().lower()


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else "unknown"


def _bearer(request: Request) -> str | None:
    return bearer(request.headers.get("Authorization"))
