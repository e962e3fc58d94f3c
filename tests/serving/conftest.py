"""A real server on loopback for the serving tests: the App in a thread with its own loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.pipeline import PipelineConfig
from serving.config import LimitsConfig, ModelSource, ServerConfig, Settings

HOME = Path(__file__).resolve().parents[2] / "assistant" / "contexts" / "home.yaml"


class ServerThread:
    """``with ServerThread(settings, vad) as server:`` serves on ``server.url`` meanwhile."""

    def __init__(self, settings: Settings, vad: Any = None):
        from serving.server import App

        self.loop = asyncio.new_event_loop()
        self.app = App(settings, vad=vad)
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server",
                                       daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.call(self.app.start(), timeout_s=120)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.call(self.app.shutdown(), timeout_s=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def call(self, coroutine: Any, timeout_s: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def run(self, function: Callable[[], Any]) -> Any:
        """``function()`` on the server's loop thread (to read its state safely)."""
        async def wrapped() -> Any:
            return function()
        return self.call(wrapped())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.app.port}/v1/stream"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.app.port}"

    def wait_idle(self, timeout_s: float = 10) -> int:
        """Open sessions once the last handlers finished (0 unless something leaked)."""
        deadline = time.monotonic() + timeout_s
        while self.run(lambda: len(self.app.connections)) and time.monotonic() < deadline:
            time.sleep(0.05)
        count: int = self.run(lambda: len(self.app.connections))
        return count

    def task_count(self) -> int:
        return self.run(lambda: len(asyncio.all_tasks(self.loop)))


def make_settings(sources: tuple[ModelSource, ...] | None = None, *,
                  pipeline: PipelineConfig | None = None, recognizer: dict[str, Any] | None = None,
                  **overrides: Any) -> Settings:
    server_fields = {f.name for f in dataclasses.fields(ServerConfig)}
    overrides.setdefault("worker_kind", "thread")  # starts in no time; "process" is tested
    server = ServerConfig(port=0, **{k: v for k, v in overrides.items() if k in server_fields})
    limits = LimitsConfig(**{k: v for k, v in overrides.items() if k not in server_fields})
    return Settings(server, limits, sources or (ModelSource("home", "context", HOME),),
                    recognizer or {}, pipeline or PipelineConfig())


@pytest.fixture(scope="module")
def server(vad: Any) -> Iterator[ServerThread]:
    """A default server shared by a test module (home context, 2 worker processes)."""
    with ServerThread(make_settings(worker_kind="process"), vad) as running:
        yield running
