"""The Chrome DevTools protocol over its WebSocket (websockets' sync client): what the page
tests (tests/serving) and the dashboard screenshots drive headless Chromium with."""

from __future__ import annotations

import json
from typing import Any


class DevTools:
    """``call`` a method and wait for its reply; the events that arrive meanwhile (console
    messages, exceptions, log entries, once enabled) are kept in ``events``."""

    def __init__(self, ws: Any, timeout_s: float = 30):
        self.ws = ws
        self.timeout_s = timeout_s
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=self.timeout_s))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(message["error"])
                result: dict[str, Any] = message["result"]
                return result
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")
