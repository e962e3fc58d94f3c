"""Worker processes hand freed heap memory back to the system after a pause."""

from __future__ import annotations

import os
import time

import pytest

from serving.inference import _MemoryTrimmer, glibc_malloc_trim

pytestmark = pytest.mark.skipif(glibc_malloc_trim() is None, reason="needs glibc's malloc_trim")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _wait_for(condition, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


def test_trims_once_idle_and_hands_memory_back() -> None:
    trimmer = _MemoryTrimmer(idle_s=1.0)
    with trimmer.busy():
        # What a recognition leaves: many small blocks freed, every tenth kept, so the heap
        # cannot shrink from its top and keeps the free pages in between.
        blocks = [bytearray(8192) for _ in range(20_000)]
        kept = blocks[::10]
        del blocks
        held = _rss_mib()
    time.sleep(0.1)
    assert trimmer.trims == 0  # not idle long enough yet
    assert _wait_for(lambda: trimmer.trims == 1)
    assert held - _rss_mib() > 50  # about 140 MiB of the 160 freed go back
    with trimmer.busy():  # a recognition runs past the pause: nothing happens meanwhile
        time.sleep(1.3)
        assert trimmer.trims == 1
    assert _wait_for(lambda: trimmer.trims == 2)
    assert len(kept) == 2000


def test_right_after_each_or_never() -> None:
    now = _MemoryTrimmer(idle_s=0.0)
    never = _MemoryTrimmer(idle_s=-1.0)
    for trimmer in (now, never):
        with trimmer.busy():
            pass
    assert _wait_for(lambda: now.trims == 1, 2.0)
    time.sleep(0.2)
    assert never.trims == 0
