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
COMMAND_EXTRAS = {"serve": "serve", "wyoming": "serve", "mic": "mic", "train": "train",
                  "evaluate": "train", "bench": "bench"}


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
    try:
        for name in args.files:
            try:
                started = time.perf_counter()
                audio = read_audio(name)
                result = recognize_recording(recognizer, vad, audio, gates=stages.make_gates(),
                                             sinks=sinks, model=_model_name(args),
                                             stream_id=name)
                row = {"file": name, **result.to_dict()}
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


# -- grammar -------------------------------------------------------------------------------

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
        for text in args.text:
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

    p = sub.add_parser("models", help="list, build or verify speech models")
    p.add_argument("action", choices=["list", "build", "verify"], nargs="?", default="list")
    p.add_argument("names", nargs="*", help="pretrained names (build) or a directory (verify)")
    p.add_argument("--precision", choices=["int8", "fp32"])
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("grammar", help="check, sample or parse with a grammar")
    p.add_argument("action", choices=["check", "sample", "parse"])
    p.add_argument("file")
    p.add_argument("text", nargs="*", help="sentences to parse")
    p.add_argument("-n", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_grammar)

    for names, module, extra in ((("serve", "wyoming"), "serving.cli", "serve"),
                                 (("mic",), "clients.mic", "mic"),
                                 (("train", "evaluate"), "training.cli", "train"),
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
