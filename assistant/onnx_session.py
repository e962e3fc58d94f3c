"""How the assistant opens onnxruntime sessions (one place for every model it runs)."""

from __future__ import annotations

from typing import Any


def session_options(threads: int, memory_arena: bool = True) -> Any:
    """onnxruntime options for the assistant's sessions.

    Thread spinning is off: by default each session's threads busy-wait after every run, and
    with several sessions per utterance (encoder, decoder, VAD, classifier) on a laptop's few
    cores the spinning ones starve the working ones. Measured on 2 cores, tiny.en INT8 over 40
    barista-dev utterances: median recognition 74 ms with spinning, 46 ms without.

    ``memory_arena=False`` lets go of activation buffers after each run instead of keeping
    the largest ever needed: for the speech model about 9 MB less per process at the same
    speed (40 barista-dev utterances twice, tiny.en INT8: median 47.4 / 48.0 ms without the
    arena, 47.5 / 52.8 ms with it).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = memory_arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
