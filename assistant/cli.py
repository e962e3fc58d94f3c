"""The ``assistant`` command: recognize files, export models, inspect grammars, serve, train.

Each subcommand is a thin shell over the library; configuration comes from flags, then
``ASSISTANT_*`` environment variables, then defaults (:mod:`assistant.config`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__, config
from .errors import AssistantError, ConfigError, MissingDependencyError

logger = logging.getLogger("assistant.cli")

FIRST_PARTY = ("assistant", "training", "serving", "clients", "benchmarks")
COMMAND_EXTRAS = {"serve": "serve", "wyoming": "serve", "capture": "serve", "review": "serve",
                  "mic": "mic", "train": "train",
                  "evaluate": "train", "profile": "train", "bench": "bench"}


def _progress(message: str) -> None:
    print(f"[assistant] {message}", file=sys.stderr, flush=True)


def _error(message: str) -> None:
    print(f"assistant: error: {message}", file=sys.stderr, flush=True)


# -- recognize ----------------------------------------------------------------------------

def _load_recognizer(args: argparse.Namespace) -> Any:
    """The recognizer the flags ask for: a model directory runs with its stored settings,
    overridden by the ones given (flags, ``ASSISTANT_*``) and by nothing else."""
    from .grammar import DEFAULT_CONTEXT
    from .recognizer import Recognizer, RecognizerConfig

    overrides = config.given(RecognizerConfig, args)
    if args.model:
        return Recognizer.from_model_dir(args.model, overrides)
    context = args.context or DEFAULT_CONTEXT
    return Recognizer.from_context(Path(context), RecognizerConfig(**overrides),
                                   progress=_progress)


def _model_name(args: argparse.Namespace) -> str:
    return Path(args.model).name if args.model else Path(args.context or "home.yaml").stem


def cmd_recognize(args: argparse.Namespace) -> int:
    from .audio import read_audio
    from .pipeline import PipelineConfig
    from .recording import recognize_recording
    from .sinks import close_sinks
    from .vad import SileroVad

    try:
        stages = config.build(PipelineConfig, args)
        recognizer = _load_recognizer(args)
        vad = SileroVad()
        recognizer.warm_up()
        sinks = stages.make_sinks()
    except AssistantError as e:
        _error(str(e))
        return 2
    failures = 0
    profile = _profile_of(args, recognizer)
    try:
        for name in args.files:
            try:
                started = time.perf_counter()
                audio = read_audio(name)
                result = recognize_recording(recognizer, vad, audio, gates=stages.make_gates(),
                                             sinks=sinks, model=_model_name(args),
                                             stream_id=name)
                row = {"file": name, **result.to_dict()}
                if profile is not None and profile.encoder is not None and \
                        result.embedding is not None:  # for 'assistant monitor --log'
                    distance, residual = profile.encoder.distances(result.embedding)
                    row["encoder_distance"] = round(distance, 4)
                    row["encoder_residual"] = round(residual, 4)
                row["timing_ms"]["read"] = round(
                    1000 * (time.perf_counter() - started) - result.timing_ms.get("total", 0), 2)
            except AssistantError as e:
                failures += 1
                _error(str(e))
                row = {"file": name, "error": str(e)}
            print(json.dumps(row, ensure_ascii=False), flush=True)
    finally:
        close_sinks(sinks)
    return 1 if failures else 0


def _profile_of(args: argparse.Namespace, recognizer: Any) -> Any:
    """The reference profile beside the grammar or in the model directory, if any."""
    from .grammar import DEFAULT_CONTEXT
    from .profile import find_profile

    kind, path = ("model", args.model) if args.model else ("context",
                                                           args.context or DEFAULT_CONTEXT)
    return find_profile(Path(path), kind, recognizer.config.speech_model,
                        recognizer.config.precision, recognizer.context.sha256)


# -- monitor -------------------------------------------------------------------------------

def cmd_monitor(args: argparse.Namespace) -> int:
    """Drift and quality: from a running server, or offline from a log of answers."""
    if args.log:
        name, state = _offline_monitor(args)
        report = {name: state}
    else:
        import os

        key = args.api_key or os.environ.get("ASSISTANT_API_KEY")
        report = _server_monitor(args.url, key)["models"]
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for name, state in report.items():
            print(format_monitor(name, state))
    drifting = any(state.get("drift", state).get("status") == "drift"
                   for state in report.values())
    return 3 if drifting and args.fail_on_drift else 0


def _offline_monitor(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The log's report, named by the model its answers name (a server's monitor log) or
    "offline" (``assistant recognize`` output, or answers of several models)."""
    from .monitor import MonitorConfig, Observation, replay
    from .profile import ReferenceProfile

    if args.profile:
        path = Path(args.profile)
    elif args.model:
        path = Path(args.model) / "profile.json"
    elif args.context:
        path = Path(args.context).with_name(Path(args.context).stem + ".profile.json")
    else:
        raise ConfigError("offline monitoring needs the reference: --profile FILE, "
                          "--context FILE.yaml or --model DIR")
    profile = ReferenceProfile.load(path)
    observations = []
    models: set[str] = set()
    try:
        lines = Path(args.log).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read {args.log}: {e}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "error" in row and "understood" not in row:
                continue  # a file 'assistant recognize' could not read
            observations.append(Observation.from_json(row))
            if isinstance(row.get("model"), str):
                models.add(row["model"])
        except (ValueError, ConfigError) as e:
            raise ConfigError(f"{args.log}:{number}: {e}") from e
    monitor = replay(profile, observations, MonitorConfig(**config.given(MonitorConfig, args)))
    every = [e.to_json() for e in monitor.events]
    name = next(iter(models)) if len(models) == 1 else "offline"
    return name, {"drift": {**monitor.describe(), "events": every},
                  "answers": len(observations), "models_in_log": sorted(models)}


def _server_monitor(url: str, api_key: str | None) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    base = url.rstrip("/").replace("ws://", "http://").replace("wss://", "https://")
    base = base.removesuffix("/v1/stream")
    request = urllib.request.Request(f"{base}/v1/monitor")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as e:
        with e:
            raise ConfigError(f"{base}/v1/monitor answered {e.code}: "
                              f"{e.read().decode(errors='replace').strip()}") from e
    except (urllib.error.URLError, OSError) as e:
        raise ConfigError(f"cannot reach {base}: {e}") from e


def format_monitor(name: str, state: dict[str, Any]) -> str:
    """A model's monitoring state as a short text report."""
    drift = state.get("drift", {})
    lines = [f"model {name}: {drift.get('status', 'unknown')}"
             + (f" ({', '.join(drift['drifting'])})" if drift.get("drifting") else "")
             + f"; {state.get('answers', 0)} answers"
             + (f", {state['understood']} understood" if "understood" in state else "")]
    if "hint" in drift:
        lines.append(f"  {drift['hint']}")
    signals = drift.get("signals", {})
    if signals:
        lines.append(f"  window {drift['window_utterances']} answers "
                     f"(at least {drift['config']['min_utterances']} to alarm)")
        lines.append(f"  {'signal':<18} {'PSI':>7} {'bar':>6} {'chi2':>8} {'shift z':>8} "
                     f"{'signif.':>8}  alarm  alarms")
        for signal, s in signals.items():
            lines.append(f"  {signal:<18} {s['psi']:>7.3f} {s['threshold']:>6.2f} "
                         f"{s['chi2']:>8.1f} {s.get('shift_z', 0.0):>8.2f} "
                         f"{s.get('significance', 0.0):>8.2f}  {'YES' if s['alarm'] else 'no':<5}  "
                         f"{s['alarms']:>6}")
        if any(signal in PSEUDO_SIGNALS for signal in signals):
            lines.append(f"  ({', '.join(sorted(PSEUDO_SIGNALS & set(signals)))}: the PSI "
                         "column is the significance, 1 at the bar)")
        other = signals.get("other_speech")
        if other and other.get("live") and other.get("reference"):
            lines.append(f"  speech that is no command: about {100 * other['live'][0]:.0f} % "
                         f"of the window, {100 * other['reference'][0]:.0f} % in the reference")
    for event in drift.get("events", [])[-10:]:
        score = "significance" if event["signal"] in PSEUDO_SIGNALS else "PSI"
        lines.append(f"  {'raised ' if event['raised'] else 'cleared'} {event['signal']} at "
                     f"answer {event['utterance']} ({score} {event['psi']:.3f})")
    return "\n".join(lines)


PSEUDO_SIGNALS = frozenset({"joint", "other_speech"})  # scored by significance, not PSI


# -- export / models -----------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from .grammar import DEFAULT_CONTEXT
    from .model_dir import export_model_dir

    if args.model:
        raise ConfigError("export takes --context FILE.yaml (a model directory is exported "
                          "already; copy it)")
    recognizer = _load_recognizer(args)
    grammar = Path(args.context or DEFAULT_CONTEXT)
    metadata = export_model_dir(recognizer, Path(args.out), grammar)
    _progress(f"wrote {args.out}: {metadata['model']} ({metadata['precision']}) for "
              f"{metadata['grammar']['name']} ({len(metadata['files'])} files)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .artifacts import SpeechModelSpec, ensure_speech_model, read_metadata
    from .pretrained import PRETRAINED

    if args.registry is not None:
        return _registry(args)
    if args.action in ("add", "promote", "rollback", "diff"):
        raise ConfigError(f"'assistant models {args.action}' needs --registry DIR")

    if args.action == "build":
        names = args.names or ["tiny.en"]
        precisions = [args.precision] if args.precision else ["int8"]
        for name in names:
            for precision in precisions:
                path = ensure_speech_model(SpeechModelSpec(name, precision), _progress)
                print(path)
        return 0
    if args.action == "verify":
        metadata = read_metadata(Path(args.names[0]), verify=True)
        print(f"{args.names[0]}: {len(metadata['files'])} files match their sha256")
        return 0
    for name in sorted(PRETRAINED):
        for precision in ("int8", "fp32"):
            spec = SpeechModelSpec(name, precision)
            built = (spec.directory() / "metadata.json").is_file()
            print(f"{name:8s} {precision:5s} {'built' if built else 'not built'}  "
                  f"{spec.directory()}")
    return 0


def _registry(args: argparse.Namespace) -> int:
    from . import model_registry as registry

    names, root = args.names, args.registry

    def need(count: int, usage: str) -> None:
        if len(names) != count:
            raise ConfigError(f"usage: assistant models {args.action} {usage} --registry DIR")

    if args.action == "list":
        print(json.dumps(registry.listing(root, names[0] if names else None), indent=1))
    elif args.action == "add":
        need(2, "NAME MODEL_DIR")
        version = registry.add(root, names[0], Path(names[1]), args.parent, args.move)
        print(json.dumps({"name": names[0], "version": version}))
    elif args.action == "promote":
        need(2, "NAME VERSION")
        report = None
        current = registry.promoted(root, names[0])
        if args.gate_data is not None and current is not None:
            report = registry.gate(_labels(args.gate_data),
                                   registry.answers_of(root / names[0] / current),
                                   registry.answers_of(root / names[0] / names[1]),
                                   args.margin,
                                   max_latency_ratio=args.max_latency_ratio)
            print(json.dumps({"gate": report.to_json()}, indent=1))
        entry = registry.promote(root, names[0], names[1], gate_report=report, force=args.force)
        print(json.dumps(entry))
    elif args.action == "rollback":
        need(1, "NAME")
        print(json.dumps(registry.rollback(root, names[0])))
    elif args.action == "diff":
        need(3, "NAME VERSION VERSION")
        print(json.dumps(registry.diff(root, *names), indent=1))
    else:
        raise ConfigError(f"'assistant models {args.action}' does not take --registry")
    return 0


def _labels(data: Path) -> Path:
    return data / "labels.jsonl" if data.is_dir() else data



# -- grammar -------------------------------------------------------------------------------

def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def cmd_grammar(args: argparse.Namespace) -> int:
    from .grammar import (
        compile_word_graph,
        count_sentences,
        load_context,
        parse,
        sample_sentences,
    )

    context = load_context(Path(args.file))
    if args.action == "check":
        graph = compile_word_graph(context)
        print(json.dumps({
            "file": args.file, "valid": True, "intents": list(context.intent_names),
            "sentences": count_sentences(context), "sha256": context.sha256,
            "word_graph": {"nodes": graph.num_nodes, "arcs": graph.num_arcs},
        }, indent=2))
    elif args.action == "sample":
        for annotation in sample_sentences(context, args.n, seed=args.seed):
            print(json.dumps(annotation.to_json(), ensure_ascii=False))
    else:
        texts = args.text
        if not texts:
            if sys.stdin.isatty():
                print("assistant grammar parse: error: give sentences to parse, as arguments "
                      "or one a line on standard input", file=sys.stderr)
                return 2
            texts = [line.strip() for line in sys.stdin if line.strip()]
        for text in texts:
            parsed = parse(context, text)
            print(json.dumps({"text": text, "parse": parsed.to_json() if parsed else None},
                             ensure_ascii=False))
    return 0


# -- parser --------------------------------------------------------------------------------

def _recognizer_options(parser: argparse.ArgumentParser) -> None:
    from .recognizer import RecognizerConfig

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--context", help="grammar YAML (default: the shipped home context)")
    source.add_argument("--model", help="a model directory (assistant export / train)")
    config.add_arguments(parser, RecognizerConfig)


def _pipeline_options(parser: argparse.ArgumentParser) -> None:
    from .pipeline import PipelineConfig

    config.add_arguments(parser, PipelineConfig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"assistant {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("recognize", help="recognize commands in audio files (JSON lines)")
    _recognizer_options(p)
    _pipeline_options(p)
    p.add_argument("files", nargs="+", metavar="FILE.wav")
    p.set_defaults(func=cmd_recognize)

    p = sub.add_parser("export", help="write a self-describing model directory")
    _recognizer_options(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("models", help="list, build or verify speech models; a model "
                       "registry: add, list, promote, rollback, diff (--registry)")
    p.add_argument("action", choices=["list", "build", "verify", "add", "promote", "rollback",
                                      "diff"], nargs="?", default="list")
    p.add_argument("names", nargs="*", help="pretrained names (build), a directory (verify); "
                   "with --registry: NAME MODEL_DIR (add), NAME VERSION (promote), NAME "
                   "(rollback, list), NAME VERSION VERSION (diff)")
    p.add_argument("--precision", choices=["int8", "fp32"])
    p.add_argument("--registry", type=Path, help="a model registry directory "
                   "(docs/registry.md)")
    p.add_argument("--parent", help="add: the version this one was made from (default: the "
                   "promoted one)")
    p.add_argument("--move", action="store_true", help="add: move the directory in instead "
                   "of copying it")
    p.add_argument("--gate-data", type=Path, help="promote: a labelled set (a folder with "
                   "labels.jsonl, e.g. from 'assistant capture export'); refuse a candidate "
                   "worse than the promoted version on it")
    p.add_argument("--margin", type=float, default=0.02, help="promote: how much worse "
                   "(acceptance, overall or per intent) is tolerated")
    p.add_argument("--max-latency-ratio", type=float, default=1.5, help="promote: refuse a "
                   "candidate whose p95 recognition time is over this multiple of the "
                   "promoted one's (0: not judged)")
    p.add_argument("--force", action="store_true", help="promote even when the gate fails")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("grammar", help="check, sample or parse with a grammar")
    p.add_argument("action", choices=["check", "sample", "parse"])
    p.add_argument("file")
    p.add_argument("text", nargs="*", help="sentences to parse (none: one a line on "
                   "standard input)")
    p.add_argument("-n", type=_at_least_one, default=10, help="sentences to sample")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_grammar)

    p = sub.add_parser("monitor", help="quality and drift: from a running server, or "
                       "offline from a log of answers")
    p.add_argument("--url", default="http://127.0.0.1:8765",
                   help="the server (default http://127.0.0.1:8765)")
    p.add_argument("--api-key", default=None, help="the server's API key (env "
                   "ASSISTANT_API_KEY)")
    p.add_argument("--log", help="offline: JSON lines of answers (the server's monitor_log, "
                   "or the output of 'assistant recognize')")
    p.add_argument("--profile", help="offline: the reference profile (.profile.json)")
    p.add_argument("--context", help="offline: the grammar whose NAME.profile.json to use")
    p.add_argument("--model", help="offline: the model directory whose profile.json to use")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 3 when drifting")
    from .monitor import MonitorConfig

    config.add_arguments(p, MonitorConfig, skip=("monitor", "monitor_log"))
    p.set_defaults(func=cmd_monitor)

    for names, module, extra in ((("serve", "wyoming", "capture", "review"), "serving.cli",
                                  "serve"),
                                 (("mic",), "clients.mic", "mic"),
                                 (("train", "evaluate", "profile"), "training.cli", "train"),
                                 (("bench",), "benchmarks.cli", "bench")):
        _add_plugin(sub, names, module, extra)
    return parser


def _add_plugin(sub: Any, names: tuple[str, ...], module: str, extra: str) -> None:
    """Subcommands implemented outside the core package. When an optional dependency is
    missing they still appear, and say which extra to install."""
    import importlib

    try:
        register: Callable[[Any], None] = importlib.import_module(module).register
        register(sub)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] in FIRST_PARTY:
            raise  # our own code is broken: say so
        missing = MissingDependencyError(e.name.split(".")[0], extra, f"'assistant {names[0]}'")
        for name in names:
            p = sub.add_parser(name, help=f"(needs: pip install 'voice-assistant[{extra}]')")
            p.set_defaults(func=_missing(missing))


def _missing(error: AssistantError) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        _error(str(error))
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except AssistantError as e:
        _error(str(e))
        return 2
    except ModuleNotFoundError as e:  # an optional dependency of this subcommand
        if e.name is None or e.name.split(".")[0] in FIRST_PARTY:
            raise
        extra = COMMAND_EXTRAS.get(args.command, "train")
        _error(str(MissingDependencyError(e.name.split(".")[0], extra,
                                          f"'assistant {args.command}'")))
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
