"""Bounded load: concurrent clients streaming real recordings at real-time speed (~17 s)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from assistant import protocol as p
from clients.sdk import AsyncClient
from serving.config import ModelSource
from tests.conftest import shared_data
from tests.serving.conftest import ServerThread, make_settings

CLIENTS = 12


def test_every_utterance_gets_its_result(vad: Any) -> None:
    root = shared_data("barista-dev")
    rows = [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]
    settings = make_settings((ModelSource("barista", "context", root / "coffee_maker.yaml"),),
                             worker_kind="process")

    async def one(url: str, index: int) -> tuple[int, int, list[p.Result]]:
        await asyncio.sleep(0.4 * index)  # users do not all start at once
        async with AsyncClient(url) as client:
            events = [e async for e in client.stream_file(root / rows[index]["audio"])]
        ended = sum(isinstance(e, p.SpeechEnded) for e in events)
        return index, ended, [e for e in events if isinstance(e, p.Result)]

    async def everyone(url: str) -> list[tuple[int, int, list[p.Result]]]:
        return await asyncio.gather(*(one(url, i) for i in range(CLIENTS)))

    with ServerThread(settings, vad) as server:
        outcomes = asyncio.run(everyone(server.url))
        assert server.wait_idle() == 0
    correct = 0
    for index, ended, results in outcomes:
        assert ended >= 1 and len(results) == ended, rows[index]["audio"]
        best = max(results, key=lambda r: r.timing.audio_ms)
        correct += best.intent == rows[index]["intent"] and best.understood
        assert all(r.timing.end_of_speech_to_result_ms < 3000 for r in results)
    assert correct >= CLIENTS - 2
