"""What a dataset contains: distributions over its clips, and the dataset card (DATASET.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from .manifest import SPLITS, ClipRecord

SNR_BANDS_DB = ((0, 10), (10, 20), (20, 30))
DURATION_BANDS_S = ((0, 2), (2, 4), (4, 6), (6, 10), (10, 1000))


def snr_band(record: ClipRecord) -> str:
    snr = record.augmentation.get("snr_db")
    if snr is None:
        return "no noise" if record.kind != "non_speech" else "non-speech"
    for low, high in SNR_BANDS_DB:
        if low <= snr < high or (high == SNR_BANDS_DB[-1][1] and snr == high):
            return f"{low}-{high} dB"
    return "other"


def duration_band(record: ClipRecord) -> str:
    for low, high in DURATION_BANDS_S:
        if low <= record.duration_s < high:
            return f"{low}-{high} s" if high < 1000 else f">= {low} s"
    return "other"


def _count(values: Iterable[Any]) -> dict[str, int]:
    return dict(sorted(Counter(str(v) for v in values).items()))


def distributions(records: list[ClipRecord]) -> dict[str, dict[str, int]]:
    """Clip counts by split, kind, intent, slot value, engine, speaker, noise, channel, SNR
    band and duration band."""
    commands = [r for r in records if r.kind == "command"]
    speech = [r for r in records if r.engine is not None]
    return {
        "split": _count(r.split for r in records),
        "kind": _count(f"{r.split}/{r.kind}" for r in records),
        "intent": _count(r.intent for r in commands),
        "slot_value": _count(f"{k}={v}" for r in commands for k, v in r.slots.items()),
        "engine": _count(f"{r.split}/{r.engine}" for r in speech),
        "speaker": _count(f"{r.split}/{r.speaker}" for r in speech),
        "noise": _count((r.augmentation.get("noise_source") or "none").split(":")[0]
                        for r in records),
        "channel": _count(r.augmentation.get("channel", "none") for r in records),
        "room": _count("room" if r.augmentation.get("room") is not None else "dry"
                       for r in speech),
        "snr_band": _count(snr_band(r) for r in records),
        "duration": _count(duration_band(r) for r in records),
    }


def _table(title: str, counts: dict[str, int], limit: int = 40) -> str:
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [f"### {title}", "", "| value | clips |", "| --- | ---: |"]
    lines += [f"| `{k}` | {v} |" for k, v in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"| ... {len(rows) - limit} more | {sum(v for _, v in rows[limit:])} |")
    return "\n".join(lines) + "\n"


def dataset_card(info: dict[str, Any], dist: dict[str, dict[str, int]]) -> str:
    """The DATASET.md text for a manifest.json ``info`` and its distributions."""
    config = info["config"]
    splits = info["splits"]
    size = ", ".join(f"{s}: {splits[s]['clips']} clips ({splits[s]['duration_s'] / 60:.1f} min)"
                     for s in SPLITS)
    voices = info["voices"]
    noise_sources = "\n".join(f"- {s}" for s in info["noise_sources"])
    dropped = ", ".join(f"{k}: {v}" for k, v in info["dropped"].items()) or "none"
    engines = ", ".join(f"{k} {v}" for k, v in info["engine_versions"].items())
    return f"""# Dataset card: {info['grammar']['file']}

Synthesized speech for fine-tuning the recognizer on one grammar. **No real recording** was
used to make, tune or fit anything in it. Data version `{info['data_version'][:16]}`
(config + grammar sha256 + code), made by `python -m training.prepare` with seed
{config['seed']}.

## Contents

- Grammar: `{info['grammar']['file']}` (sha256 `{info['grammar']['sha256'][:16]}...`),
  intents: {', '.join(info['grammar']['intents'])}.
- Sizes: {size}. Audio: 16 kHz mono 16-bit WAV under `audio/<split>/`.
- Kinds: `command` (grammar sentences, sampled to cover every intent and slot value evenly),
  `out_of_domain` (other domains, short words, templated everyday sentences; each checked not
  to parse), `near_miss` (a grammar sentence one word away, checked not to parse),
  `non_speech` (coloured noise, hum, fan, music, babble, near-silence).
- Dropped by validation: {dropped}.

## Splits

- `train`: training voices. `val`: training voices, but no (sentence, base voice) pair
  that is in `train`.
- `test_unseen_voices`: only voices never heard in train or val, including an engine variant
  training never uses (festival's HTS voice): {', '.join(voices['test_unseen_voices'])}.

Training voices ({len(voices['train'])} base voices, each clip at a random rate, espeak pitch
and Piper sampling noise; {config['variation']['conversion_probability']:.0%} of the clips of
other engines than espeak-ng pitch/formant-shifted into female-, child-like or deeper speakers):
{', '.join(voices['train'])}.

## Sources

- TTS: {engines}.
- Rooms: {config['rooms']['rooms']} pyroomacoustics shoebox rooms, RT60
  {config['rooms']['min_rt60_s']}-{config['rooms']['max_rt60_s']} s, talker
  {config['rooms']['min_distance_m']}-{config['rooms']['max_distance_m']} m from the mic.
- Noises (the only ones used; the benchmark's held-out noise file is **not** among them):
{noise_sources}

## Augmentation

Speed {config['augment']['min_speed']}-{config['augment']['max_speed']} (p
{config['augment']['p_speed']}), room (p {config['augment']['p_room']}), silence
{config['augment']['min_lead_s']}-{config['augment']['max_lead_s']} s before and after, noise
at {config['augment']['min_snr_db']}-{config['augment']['max_snr_db']} dB SNR on the loudest
2048-sample frame (p {config['augment']['p_noise']}), clipping (p {config['augment']['p_clip']}),
level {config['augment']['min_level_dbfs']}..{config['augment']['max_level_dbfs']} dBFS, channel
(telephone band, Opus, MP3). Every clip's settings are in its manifest line.

## Known limits

- Synthetic voices only: prosody, disfluencies and accents are narrower than real speakers'.
  Kokoro's voices are Japanese style vectors speaking English (accented); most other voices
  are US/UK male, widened by pitch/formant conversion (which adds some phase-vocoder
  artefacts).
- One Piper voice (`joe`), so Piper is in training only.
- Music is 8 kHz source material (nothing above 4 kHz); babble is TTS, not real crowds.
- Rooms are empty shoeboxes (no furniture, no directivity); reflection order is capped.

## Distributions

{''.join(_table(k.replace('_', ' '), v) + chr(10) for k, v in dist.items())}"""
