"""A model registry: versioned model directories per name, one of them promoted.

    REGISTRY/NAME/v1/ v2/ ...     model directories (assistant export / assistant train)
    REGISTRY/NAME/current -> v2   what is served (a relative symlink, flipped atomically)
    REGISTRY/NAME/registry.json   each version's lineage, and every promotion and rollback

``assistant serve --model NAME=REGISTRY/NAME/current`` serves the promoted version; the server
notices when ``current`` points elsewhere and reloads that model without dropping a session
(:meth:`serving.services.Services.watch_models`). ``assistant models add | list | promote |
rollback | diff --registry REGISTRY`` are the commands (:func:`add`, :func:`promote`, ...).

A version's lineage is read from its ``metadata.json`` when it is added: the parent version,
grammar hash, speech model and precision, training data and recordings versions (a trained
model's ``training`` record), its evaluation summary, and when and by what it was built.
Promotion may be gated (:func:`gate`): the candidate and the promoted version recognize a
labelled set (e.g. ``assistant capture export``), per intent; a candidate worse than the
promoted one overall or on any intent by more than a margin, or slower at the 95th
percentile by more than a ratio, is refused unless forced.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import METADATA_FILE, read_metadata
from .errors import ConfigError

CURRENT = "current"
RECORD = "registry.json"
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class GateReport:
    """Candidate against the promoted version on one labelled set."""

    data: str
    utterances: int
    overall: tuple[float, float]  # (promoted, candidate) acceptance
    slices: Mapping[str, tuple[float, float, int]]  # intent -> (promoted, candidate, count)
    margin: float
    worse: tuple[str, ...]  # "overall", the intents worse by more than the margin, "latency"
    p95_ms: tuple[float, float] = (0.0, 0.0)  # (promoted, candidate) recognition time
    max_latency_ratio: float = 0.0  # candidate p95 / promoted p95 allowed (0: not judged)

    @property
    def passed(self) -> bool:
        return not self.worse

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "utterances": self.utterances,
                "overall": {"promoted": self.overall[0], "candidate": self.overall[1]},
                "slices": {k: {"promoted": a, "candidate": b, "utterances": n}
                           for k, (a, b, n) in self.slices.items()},
                "margin": self.margin, "worse": list(self.worse), "passed": self.passed,
                "p95_ms": {"promoted": self.p95_ms[0], "candidate": self.p95_ms[1]},
                "max_latency_ratio": self.max_latency_ratio}


def _folder(registry: Path, name: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name or ""):
        raise ConfigError(f"model name {name!r} must be letters, digits, '-', '_' or '.' "
                          "(not first)")
    return Path(registry) / name


def _record(folder: Path) -> dict[str, Any]:
    path = folder / RECORD
    if not path.is_file():
        return {"versions": {}, "history": []}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from e


def _save(folder: Path, record: Mapping[str, Any]) -> None:
    temporary = folder / (RECORD + ".tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, folder / RECORD)


def versions(registry: Path, name: str) -> list[str]:
    folder = _folder(registry, name)
    found = [p.name for p in folder.iterdir() if p.is_dir() and not p.is_symlink()
             and _VERSION.match(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda v: int(v[1:]))


def promoted(registry: Path, name: str) -> str | None:
    link = _folder(registry, name) / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def lineage(model_dir: Path, parent: str | None) -> dict[str, Any]:
    """What a model directory says about where it came from."""
    metadata = read_metadata(model_dir)
    training = metadata.get("training") or {}
    evaluation = model_dir / "evaluation" / "report.json"
    summary = None
    if evaluation.is_file():
        try:
            summary = json.loads(evaluation.read_text(encoding="utf-8")).get("overall")
        except ValueError:
            summary = None
    return {
        "parent": parent,
        "kind": metadata.get("kind", "zero-shot"),
        "speech_model": metadata.get("model"), "precision": metadata.get("precision"),
        "grammar_sha256": metadata.get("grammar", {}).get("sha256"),
        "intents": len(metadata.get("grammar", {}).get("intents", [])),
        "threshold": metadata.get("recognizer", {}).get("threshold"),
        "data_version": training.get("data_version") or training.get("data_sha256"),
        "recordings": training.get("recordings"),
        "evaluation": summary,
        "built": metadata.get("created") or metadata.get("versions", {}).get("created"),
        "built_by": metadata.get("versions", {}).get("assistant") or "assistant",
    }


def add(registry: Path, name: str, model_dir: Path, parent: str | None = None,
        move: bool = False) -> str:
    """Copy (or move) a model directory in as the next version; returns its name (v1, ...)."""
    model_dir = Path(model_dir)
    if not (model_dir / METADATA_FILE).is_file():
        raise ConfigError(f"{model_dir} is not a model directory (no {METADATA_FILE})")
    folder = _folder(registry, name)
    folder.mkdir(parents=True, exist_ok=True)
    existing = versions(registry, name)
    if parent is not None and parent not in existing:
        raise ConfigError(f"{name}: no version {parent!r} (have {existing})")
    version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
    info = lineage(model_dir, parent if parent is not None else promoted(registry, name))
    target = folder / version
    if move:
        shutil.move(str(model_dir), target)
    else:
        shutil.copytree(model_dir, target)
    record = _record(folder)
    record["versions"][version] = {**info, "added": _now(), "source": str(model_dir)}
    _save(folder, record)
    return version


def promote(registry: Path, name: str, version: str, *, gate_report: GateReport | None = None,
            force: bool = False, action: str = "promote") -> dict[str, Any]:
    """Point ``current`` at ``version`` (atomically); refused when ``gate_report`` failed
    unless ``force``. Returns the history entry."""
    folder = _folder(registry, name)
    if version not in versions(registry, name):
        raise ConfigError(f"{name}: no version {version!r} (have {versions(registry, name)})")
    if gate_report is not None and not gate_report.passed and not force:
        raise ConfigError(f"{name} {version} is worse than the promoted version on "
                          f"{', '.join(gate_report.worse)} (margin {gate_report.margin}); "
                          "add --force to promote it anyway")
    before = promoted(registry, name)
    temporary = folder / f".{CURRENT}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(version, temporary)
    os.replace(temporary, folder / CURRENT)  # atomic: readers see the old or the new
    entry = {"at": _now(), "action": action, "from": before, "to": version,
             "forced": bool(force and gate_report is not None and not gate_report.passed),
             "gate": None if gate_report is None else gate_report.to_json()}
    record = _record(folder)
    record["history"].append(entry)
    _save(folder, record)
    return entry


def rollback(registry: Path, name: str) -> dict[str, Any]:
    """Promote the version that was promoted before the current one: the history replayed
    as a stack (a promotion pushes, a rollback pops), so rolling back twice goes back two
    promotions."""
    folder = _folder(registry, name)
    stack: list[str] = []
    for entry in _record(folder)["history"]:
        if entry["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(entry["to"])
    if len(stack) < 2:
        raise ConfigError(f"{name}: nothing to roll back to (promoted "
                          f"{promoted(registry, name)!r} has no predecessor)")
    return promote(registry, name, stack[-2], force=True, action="rollback")


def listing(registry: Path, name: str | None = None) -> dict[str, Any]:
    names = [name] if name else sorted(p.name for p in Path(registry).iterdir() if p.is_dir())
    out = {}
    for n in names:
        record = _record(_folder(registry, n))
        out[n] = {"promoted": promoted(registry, n), "versions": record["versions"],
                  "history": record["history"]}
    return out


def diff(registry: Path, name: str, a: str, b: str) -> dict[str, Any]:
    """The lineage fields that differ between two versions, and their metadata's."""
    record = _record(_folder(registry, name))["versions"]
    for v in (a, b):
        if v not in record:
            raise ConfigError(f"{name}: no version {v!r}")
    folder = _folder(registry, name)
    meta_a, meta_b = (read_metadata(folder / v) for v in (a, b))
    keys = sorted(set(record[a]) | set(record[b]))
    return {"lineage": {k: [record[a].get(k), record[b].get(k)] for k in keys
                        if record[a].get(k) != record[b].get(k) and k not in ("added", "source")},
            "recognizer": {k: [meta_a.get("recognizer", {}).get(k),
                               meta_b.get("recognizer", {}).get(k)]
                           for k in sorted(set(meta_a.get("recognizer", {}))
                                           | set(meta_b.get("recognizer", {})))
                           if meta_a.get("recognizer", {}).get(k)
                           != meta_b.get("recognizer", {}).get(k)}}


Answerer = Callable[[Path], tuple[bool, str | None, dict[str, Any]]]


def answers_of(model_dir: Path) -> Answerer:
    """A model directory's answer (understood, intent, slots) to a recording, cut as
    ``assistant recognize`` cuts it: what :func:`gate` compares."""
    from .audio import read_audio
    from .recognizer import Recognizer
    from .recording import recognize_recording
    from .vad import SileroVad

    recognizer = Recognizer.from_model_dir(model_dir)
    recognizer.warm_up()  # the gate times recognitions: not the first call's set-up
    vad = SileroVad()

    def run(path: Path) -> tuple[bool, str | None, dict[str, Any]]:
        result = recognize_recording(recognizer, vad, read_audio(path))
        return result.understood, result.intent, result.to_dict().get("slots") or {}

    return run


def sign_test_p(lost: int, gained: int) -> float:
    """One-sided exact sign test on paired outcomes: the chance of losing at least ``lost``
    of the ``lost + gained`` recordings where the two models differ, were neither better."""
    n = lost + gained
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(lost, n + 1)) / 2 ** n


def gate(labels_file: Path, recognize_promoted: Answerer, recognize_candidate: Answerer,
         margin: float = 0.02, min_slice: int = 5, max_latency_ratio: float = 0.0,
         significance: float = 0.05) -> GateReport:
    """Both models on every labelled recording: acceptance (assistant.evaluation's
    definition) overall and per intent ("(none)": speech that is no command); intents with
    fewer than ``min_slice`` recordings count in the overall figure only. A figure is worse
    when it dropped by more than ``margin`` *and* the drop is not chance: on the recordings
    where the two models differ, the candidate lost more than an exact sign test allows at
    ``significance`` (on 20 recordings one lost command is 5 points: more than any sensible
    margin, and no evidence). With ``max_latency_ratio``, a candidate whose 95th-percentile
    recognition time (the whole recording, as ``assistant recognize`` runs it) is over that
    multiple of the promoted one's is refused too."""
    from .evaluation import command_accepted, read_labels

    labels = read_labels(labels_file)
    if not labels:
        raise ConfigError(f"{labels_file} lists no recordings")
    tallies: dict[str, list[int]] = {}  # right (promoted, candidate), count, lost, gained
    times: tuple[list[float], list[float]] = ([], [])
    for label in labels:
        started = time.perf_counter()
        answer_a = recognize_promoted(label.audio)
        middle = time.perf_counter()
        answer_b = recognize_candidate(label.audio)
        times[0].append(1000 * (middle - started))
        times[1].append(1000 * (time.perf_counter() - middle))
        a = command_accepted(label, *answer_a)
        b = command_accepted(label, *answer_b)
        for key in ("overall", label.intent or "(none)"):
            tally = tallies.setdefault(key, [0, 0, 0, 0, 0])
            tally[0] += a
            tally[1] += b
            tally[2] += 1
            tally[3] += a and not b
            tally[4] += b and not a

    def worse_on(t: list[int]) -> bool:
        dropped = t[1] / t[2] < t[0] / t[2] - margin
        return dropped and sign_test_p(t[3], t[4]) < significance

    total = tallies.pop("overall")
    n = len(labels)
    overall = (round(total[0] / n, 4), round(total[1] / n, 4))
    slices = {k: (round(t[0] / t[2], 4), round(t[1] / t[2], 4), t[2])
              for k, t in sorted(tallies.items())}
    worse = (["overall"] if worse_on(total) else []) + [
        k for k, t in sorted(tallies.items()) if t[2] >= min_slice and worse_on(t)]
    p95 = tuple(round(sorted(t)[max(0, math.ceil(0.95 * len(t)) - 1)], 1) for t in times)
    if max_latency_ratio > 0 and p95[1] > max_latency_ratio * p95[0]:
        worse.append("latency")
    return GateReport(str(labels_file), n, overall, slices, margin, tuple(worse),
                      (p95[0], p95[1]), max_latency_ratio)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
