"""The dataset's JSONL manifests: one line per clip, validated on write and on read.

A dataset directory (written by ``python -m training.prepare``) holds::

    manifest.json            format, data version, config, grammar, counts, file hashes
    train.jsonl  val.jsonl  test_unseen_voices.jsonl     one ClipRecord per line
    audio/<split>/<id>.wav   16 kHz mono 16-bit PCM
    grammar.yaml             the grammar the commands were sampled from
    DATASET.md               the dataset card

A line (:class:`ClipRecord`)::

    {"id": "train-000042", "audio": "audio/train/train-000042.wav",
     "text": "can i get a large latte", "intent": "orderDrink",
     "slots": {"size": "large", "coffeeDrink": "latte"}, "kind": "command",
     "split": "train", "engine": "piper", "voice": "piper:joe@r1.05,n0.520,w0.710,s813",
     "speaker": "piper:joe", "augmentation": {"speed": 1.0, "room": 17, ...,
     "noise_source": "music:macroform-cold_day"}, "duration_s": 3.52,
     "sample_rate_hz": 16000, "sha256": "..."}

``audio`` is relative to the manifest's directory. ``intent`` is null and ``slots`` empty
for every kind but ``command``; ``text`` is "" and ``engine``/``voice``/``speaker`` null for
``non_speech``. ``augmentation`` is :class:`training.augment.AugmentSettings` as JSON plus
``noise_source``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import AssistantError

FORMAT = "voice-assistant-dataset"
FORMAT_VERSION = 1
KINDS = ("command", "out_of_domain", "near_miss", "non_speech")
SPLITS = ("train", "val", "test_unseen_voices")
MANIFEST_FILE = "manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(AssistantError):
    """A manifest line or file breaks the schema; the message names the file and line."""


@dataclass(frozen=True)
class ClipRecord:
    id: str
    audio: str
    text: str
    intent: str | None
    slots: dict[str, Any]
    kind: str
    split: str
    engine: str | None
    voice: str | None
    speaker: str | None
    augmentation: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    sample_rate_hz: int = SAMPLE_RATE_HZ
    sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ClipRecord:
        """Validate one parsed line; raises :class:`ManifestError` naming the problem."""
        check_row(data)
        return cls(**data)


_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "audio": (str,), "text": (str,), "intent": (str, type(None)),
    "slots": (dict,), "kind": (str,), "split": (str,), "engine": (str, type(None)),
    "voice": (str, type(None)), "speaker": (str, type(None)), "augmentation": (dict,),
    "duration_s": (float, int), "sample_rate_hz": (int,), "sha256": (str,),
}


def check_row(data: Any) -> None:
    """Raise :class:`ManifestError` unless ``data`` is a valid manifest line (as parsed)."""
    if not isinstance(data, dict):
        raise ManifestError(f"a manifest line must be an object, got {type(data).__name__}")
    missing = sorted(set(_TYPES) - set(data))
    extra = sorted(set(data) - set(_TYPES))
    if missing or extra:
        raise ManifestError(f"line has missing fields {missing} / unknown fields {extra}")
    for name, types in _TYPES.items():
        if not isinstance(data[name], types) or isinstance(data[name], bool):
            raise ManifestError(f"field {name!r} is {data[name]!r}, expected "
                                f"{' or '.join(t.__name__ for t in types)}")
    kind, where = data["kind"], f"clip {data['id']!r}"
    if kind not in KINDS:
        raise ManifestError(f"{where}: kind {kind!r} is not one of {KINDS}")
    if data["split"] not in SPLITS:
        raise ManifestError(f"{where}: split {data['split']!r} is not one of {SPLITS}")
    if (kind == "command") != (data["intent"] is not None):
        raise ManifestError(f"{where}: kind {kind} with intent {data['intent']!r} "
                            f"(commands have an intent, negatives null)")
    if kind != "command" and data["slots"]:
        raise ManifestError(f"{where}: a {kind} clip has slots {data['slots']}")
    speech = kind != "non_speech"
    if speech and (not data["text"] or data["voice"] is None or data["engine"] is None):
        raise ManifestError(f"{where}: a {kind} clip needs text, engine and voice")
    if not speech and (data["text"] or data["voice"] is not None):
        raise ManifestError(f"{where}: a non_speech clip has text or a voice")
    audio = data["audio"]
    if audio.startswith("/") or ".." in Path(audio).parts or not audio.endswith(".wav"):
        raise ManifestError(f"{where}: audio {audio!r} must be a relative .wav path inside "
                            f"the dataset")
    if not data["duration_s"] > 0:
        raise ManifestError(f"{where}: duration_s {data['duration_s']} is not positive")
    if data["sample_rate_hz"] != SAMPLE_RATE_HZ:
        raise ManifestError(f"{where}: sample_rate_hz {data['sample_rate_hz']} is not "
                            f"{SAMPLE_RATE_HZ}")
    if not _SHA256.match(data["sha256"]):
        raise ManifestError(f"{where}: sha256 {data['sha256']!r} is not 64 hex digits")


def write_manifest(path: Path, records: Iterable[ClipRecord]) -> int:
    """Write ``records`` as JSONL (validated); returns the number of lines."""
    lines = []
    for record in records:
        row = record.to_json()
        check_row(row)
        lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def read_manifest(path: str | Path) -> list[ClipRecord]:
    """Every line of a JSONL manifest, validated; errors name the file and line."""
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ClipRecord.from_json(json.loads(line)))
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{number}: not JSON: {e}") from e
        except ManifestError as e:
            raise ManifestError(f"{path}:{number}: {e}") from e
    return records
