"""The whole benchmark run behind ``assistant bench``: one JSON, plots and ``results.md``.

Sections (each timed; ``sections`` picks some):

* ``components``: each piece of the recognizer on fixed inputs (:mod:`benchmarks.components`);
* ``streaming``: end of speech to result in-process, recordings streamed in 20 ms chunks
  (:func:`benchmarks.latency.stream_latency`);
* ``server``: the most concurrent real-time streams within a p95 budget through the real
  server, with its CPU and peak memory (:mod:`benchmarks.throughput`);
* ``accuracy``: command acceptance clean and in held-out babble (:func:`benchmarks.noisy.run`)
  and rejection of spoken digits and out-of-grammar sentences
  (:func:`benchmarks.accuracy.rejection`), for ours (zero-shot, and fine-tuned with
  ``model_dir``) and the baselines in the same run: PocketSphinx with the grammar as JSGF
  (:mod:`benchmarks.sphinx`) and free Whisper transcription matched to the grammar
  (:mod:`benchmarks.free_transcript`).

``quick`` subsamples every set (evenly spaced), measures fewer SNRs and fewer server steps;
the sizes of both modes are in :data:`QUICK` and :data:`FULL` and stored in the results.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

from .datasets import DATA, barista_grammar, barista_labels, have_data, synthesized_oog

logger = logging.getLogger("benchmarks.suite")

SECTIONS = ("components", "streaming", "server", "accuracy")
FORMAT = "voice-assistant-bench"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Sizes:
    """How much of each set a run uses (None: all of it)."""

    barista: int | None
    digits: int | None
    out_of_grammar: int | None
    snrs_db: tuple[int, ...]
    server_steps: tuple[int, ...]
    files_per_client: int
    component_min_time_s: float


QUICK = Sizes(barista=16, digits=24, out_of_grammar=8, snrs_db=(18, 6),
              server_steps=(1, 4, 8), files_per_client=1, component_min_time_s=0.3)
FULL = Sizes(barista=None, digits=None, out_of_grammar=None,
             snrs_db=(24, 21, 18, 15, 12, 9, 6), server_steps=(1, 2, 4, 8, 16, 32, 64),
             files_per_client=2, component_min_time_s=1.0)


@dataclass(frozen=True)
class SuiteConfig:
    quick: bool = False
    model_dir: Path | None = None  # a fine-tuned model directory, measured beside zero-shot
    out_dir: Path = Path("runs/bench")
    data: Path = DATA
    threads: int | None = None  # onnxruntime/torch intra-op threads (default min(4, cores))
    seed: int = 7  # noise placement
    budget_p95_ms: float = 300.0  # server: end-of-speech-to-result p95 budget
    sections: tuple[str, ...] = SECTIONS
    baselines: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.sections) - set(SECTIONS)
        if unknown or not self.sections:
            raise ConfigError(f"sections must be some of {SECTIONS}, got {self.sections}")
        if self.model_dir is not None and not (self.model_dir / "metadata.json").is_file():
            raise ConfigError(f"{self.model_dir} is not a model directory (no metadata.json)")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")

    @property
    def sizes(self) -> Sizes:
        return QUICK if self.quick else FULL


METHOD = {
    "components": "Wall clock of one call on fixed inputs after 2 warm-up calls, repeated "
                  "until at least 5 runs and the minimum time; median and p95. Encoder "
                  "windows of N s of audio; decoder step: 5 rows (4 beams + free decode), 16 "
                  "cached tokens, 5 s window; recognize: a real barista command (speech "
                  "2.4 s) cut or extended with its own recording to N s.",
    "streaming": "In-process RecognizerSession fed 20 ms chunks as fast as processed; clock "
                 "from the chunk on which the endpointer declares end of speech (after its "
                 "400 ms trailing-silence wait, not included) to the result.",
    "server": "Real `assistant serve` subprocess (worker processes = cores); N clients on "
              "the same machine stream barista-dev recordings at real-time speed in 100 ms "
              "frames, starting within 2 s; latency is the server's own end-of-speech-to-"
              "result (as in `streaming`, plus queueing and transport); CPU from /proc "
              "(server + workers), peak RSS = sum of VmHWM. N steps up until p95 exceeds "
              "the budget or an utterance is lost.",
    "accuracy": "Acceptance: intent and every labelled slot exactly right on barista-dev, "
                "clean and mixed with held-out six-talker babble at loudest-frame SNR. "
                "Rejection: spoken digits (digits-dev) and out-of-grammar sentences "
                "(4 TTS voices) must come back not understood. Latency: per utterance after "
                "the VAD cut, clean barista-dev. Every engine reads the same VAD cut.",
}


@dataclass
class _Run:
    config: SuiteConfig
    progress: Callable[[str], None]
    report: dict[str, Any] = field(default_factory=dict)
    sections_s: dict[str, float] = field(default_factory=dict)

    def section(self, name: str, fn: Callable[[], Any]) -> None:
        if name not in self.config.sections:
            return
        self.progress(f"== {name}")
        started = time.monotonic()
        try:
            self.report[name] = fn()
        except Exception as e:  # one section failing must not lose the others
            logger.exception("section %s failed", name)
            self.report[name] = {"error": f"{type(e).__name__}: {e}"}
        self.sections_s[name] = round(time.monotonic() - started, 1)
        gc.collect()


def run_suite(config: SuiteConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the sections of ``config``; the report written by :mod:`benchmarks.report`."""
    from .machine import describe

    started = time.monotonic()
    run = _Run(config, progress)
    run.report.update({
        "format": FORMAT, "version": FORMAT_VERSION, "device": "cpu", "quick": config.quick,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "config": {k: (str(v) if isinstance(v, Path) else v)
                   for k, v in dataclasses.asdict(config).items()},
        "sizes": dataclasses.asdict(config.sizes), "method": METHOD,
    })
    run.report["model_sizes_mib"] = model_sizes(config.model_dir)
    run.section("components", lambda: components(config, progress))
    run.section("streaming", lambda: streaming(config))
    run.section("server", lambda: server(config, progress))
    run.section("accuracy", lambda: accuracy(config, progress))
    if isinstance(run.report.get("accuracy"), dict) and "engines" in run.report["accuracy"]:
        run.report["comparison"] = compare(run.report["accuracy"])
    run.report["sections_s"] = run.sections_s
    run.report["wall_s"] = round(time.monotonic() - started, 1)
    return run.report


# -- sections --------------------------------------------------------------------------------

def model_sizes(model_dir: Path | None) -> dict[str, float]:
    """MiB on disk of each model a user deploys (only those already built or given)."""
    from assistant.artifacts import SpeechModelSpec
    from assistant.vad import default_model_path

    sizes: dict[str, float] = {}
    for name in ("tiny.en", "base"):
        for precision in ("int8", "fp32"):
            directory = SpeechModelSpec(name, precision).directory()
            if (directory / "metadata.json").is_file():
                sizes[f"{name} {precision}"] = _mib(directory)
    if model_dir is not None:
        sizes[f"fine-tuned ({model_dir.name})"] = _mib(model_dir)
    sizes["silero VAD"] = _mib(default_model_path())
    try:
        from pocketsphinx import get_model_path

        sizes["pocketsphinx en-us"] = _mib(Path(get_model_path()) / "en-us")
    except ImportError:
        pass
    return sizes


def _mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(f.stat().st_size for f in files) / 1024**2, 1)


def components(config: SuiteConfig, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    from .components import Workbench, cases, command_recording, time_call, torch_available

    bench = Workbench(command_recording(config.data), config.threads, config.model_dir)
    rows = []
    try:
        for case in cases(quick=config.quick, torch=torch_available()):
            fn = bench.build(case)
            stats = time_call(fn, min_time_s=config.sizes.component_min_time_s)
            rows.append({"id": case.id, **dataclasses.asdict(case), **stats})
            progress(f"{case.id:45s} median {stats['median_ms']:9.2f} ms")
    finally:
        bench.close()
    return rows


def _zero_shot(config: SuiteConfig) -> Any:
    from assistant.recognizer import Recognizer, RecognizerConfig

    grammar = barista_grammar(config.data) if have_data(config.data) else _home()
    recognizer = Recognizer.from_context(grammar, RecognizerConfig(threads=config.threads))
    recognizer.warm_up()
    return recognizer


def _home() -> Path:
    return Path(__file__).resolve().parent.parent / "assistant" / "contexts" / "home.yaml"


def streaming(config: SuiteConfig) -> dict[str, Any]:
    from assistant.recognizer import Recognizer, RecognizerConfig
    from assistant.vad import SileroVad

    from .latency import stream_latency

    if not have_data(config.data):
        return {"skipped": f"no evaluation data at {config.data}"}
    labels = barista_labels(config.data, config.sizes.barista)
    out = {"zero-shot": stream_latency(_zero_shot(config), SileroVad(), labels)}
    if config.model_dir is not None:
        tuned = Recognizer.from_model_dir(config.model_dir, RecognizerConfig(
            threads=config.threads))
        tuned.warm_up()
        out["fine-tuned"] = stream_latency(tuned, SileroVad(), labels)
    return out


def server(config: SuiteConfig, progress: Callable[[str], None]) -> dict[str, Any]:
    from .load import audio_files
    from .throughput import ThroughputConfig, step_streams

    sizes = config.sizes
    throughput = ThroughputConfig(steps=sizes.server_steps, budget_p95_ms=config.budget_p95_ms,
                                  files_per_client=sizes.files_per_client)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        files, grammar, source = audio_files(Path(tmp))
        result = step_streams(throughput, files, grammar, progress=progress)
    return {"audio_source": source, **result}


def accuracy(config: SuiteConfig, progress: Callable[[str], None]) -> dict[str, Any]:
    from assistant.grammar import load_context
    from assistant.recognizer import Recognizer, RecognizerConfig
    from assistant.vad import SileroVad

    from .accuracy import digit_clips, rejection
    from .noisy import run as noisy_run

    if not have_data(config.data):
        return {"skipped": f"no evaluation data at {config.data}"}
    sizes = config.sizes
    ours = _zero_shot(config)
    engines: dict[str, Any] = {"ours (zero-shot)": ours}
    if config.model_dir is not None:
        tuned = Recognizer.from_model_dir(config.model_dir, RecognizerConfig(
            threads=config.threads))
        tuned.warm_up()
        engines["ours (fine-tuned)"] = tuned
    notes: dict[str, Any] = {}
    if config.baselines:
        engines.update(baselines(load_context(barista_grammar(config.data)), ours.model,
                                 notes))
    labels = barista_labels(config.data, sizes.barista)
    noisy = noisy_run(engines, config.data, sizes.snrs_db, config.seed, labels)
    digits = digit_clips(config.data, sizes.digits)
    oog = synthesized_oog(limit=sizes.out_of_grammar)
    vad = SileroVad()
    out: dict[str, Any] = {"snrs_db": list(sizes.snrs_db), "utterances": len(labels),
                           "digits": len(digits), "out_of_grammar": len(oog),
                           "noise": noisy["noise"], "baseline_notes": notes, "engines": {}}
    for name, engine in engines.items():
        digits_report = rejection(engine, vad, digits)
        oog_report = rejection(engine, vad, oog, key="sentence")
        progress(f"{name:>20s}: digits rejected {digits_report['rate']:.1%}, "
                 f"out-of-grammar rejected {oog_report['rate']:.1%}")
        out["engines"][name] = {
            "acceptance": noisy["acceptance"][name],
            "recognize_ms": noisy["recognize_ms"][name],
            "digits_rejection": digits_report["rate"],
            "out_of_grammar_rejection": oog_report["rate"],
            "out_of_grammar_false_accepts": [f["sentence"]
                                             for f in oog_report["false_accepts"]],
            "rejection_recognize_ms": digits_report["recognize_ms"],
        }
    return out


def baselines(context: Any, model: Any, notes: dict[str, Any]) -> dict[str, Any]:
    """The engines a user would otherwise run, built for ``context`` (skipped with a reason
    when their package is missing)."""
    from .free_transcript import FreeTranscriber, TextMatchEngine

    engines: dict[str, Any] = {}
    try:
        from .sphinx import PocketSphinxEngine

        sphinx = PocketSphinxEngine(context)
        engines["pocketsphinx (JSGF)"] = sphinx
        notes["pocketsphinx (JSGF)"] = sphinx.describe()
    except ImportError as e:
        notes["pocketsphinx (JSGF)"] = {"skipped": str(e)}
    transcriber = FreeTranscriber(model)
    engines["whisper free + parse"] = TextMatchEngine(transcriber, context)
    engines["whisper free + fuzzy"] = TextMatchEngine(transcriber, context, fuzzy=True)
    notes["whisper free"] = {"model": model.describe(), "decoding": "greedy, unconstrained",
                             "fuzzy": "whole transcript or its first sentence: nearest grammar "
                                      "sentence within 20 % word edits"}
    return engines


def compare(accuracy_report: dict[str, Any]) -> dict[str, Any]:
    """Ours (zero-shot) against each baseline: acceptance ratios and how much faster."""
    engines = accuracy_report["engines"]
    ours = engines.get("ours (zero-shot)")
    if ours is None:
        return {}
    out = {}
    for name, other in engines.items():
        if name.startswith("ours"):
            continue
        out[name] = {
            "acceptance_clean_ratio": _ratio(ours["acceptance"]["clean"],
                                             other["acceptance"]["clean"]),
            "acceptance_noisy_ratio": _ratio(ours["acceptance"].get("mean_noisy"),
                                             other["acceptance"].get("mean_noisy")),
            "digits_rejection_points": _points(ours["digits_rejection"],
                                               other["digits_rejection"]),
            "out_of_grammar_rejection_points": _points(ours["out_of_grammar_rejection"],
                                                       other["out_of_grammar_rejection"]),
            "speedup_median": _ratio(other["recognize_ms"].get("median"),
                                     ours["recognize_ms"].get("median")),
        }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def _points(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return round(100 * (a - b), 1)
