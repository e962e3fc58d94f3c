"""Benchmark results on disk: one JSON per run, and ``results.md`` over the latest runs.

``assistant bench`` (CPU) and ``benchmarks/gpu.py`` write the same format
(``"format": "voice-assistant-bench"``) into the same folder, as
``bench-<device>-<UTC time>.json``; ``results.md`` is rebuilt from the latest run of each
device found there, so CPU and GPU figures appear side by side when both exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMAT = "voice-assistant-bench"


def run_name(report: dict[str, Any]) -> str:
    stamp = report["started"].replace(":", "").replace("-", "").replace("+0000", "Z")
    quick = "-quick" if report.get("quick") else ""
    return f"bench-{report['device']}{quick}-{stamp}"


def write_json(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{run_name(report)}.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return path


def save_json(report: dict[str, Any], path: Path) -> Path:
    """One script's report at ``path`` (``--out`` of the standalone benchmark scripts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def load_reports(out_dir: Path) -> list[dict[str, Any]]:
    """Every results file in ``out_dir``, oldest first (by start time)."""
    reports = []
    for path in sorted(out_dir.glob("bench-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == FORMAT:
            data["_file"] = path.name
            reports.append(data)
    return sorted(reports, key=lambda r: str(r.get("started", "")))


def latest_by_device(reports: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest report of each device ("cpu", "cuda"), CPU first."""
    latest: dict[str, dict[str, Any]] = {}
    for report in reports:
        latest[report["device"]] = report
    return dict(sorted(latest.items(), key=lambda item: item[0] != "cpu"))


# -- markdown ----------------------------------------------------------------------------------

def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _times(value: Any) -> str:
    return "–" if value is None else f"{value}x"


def _points(value: Any) -> str:
    return "–" if value is None else f"{value:+} pts"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _machine_line(report: dict[str, Any]) -> str:
    m = report.get("machine", {})
    gpus = ", ".join(g["name"] for g in m.get("gpus", []))
    git = m.get("git") or {}
    commit = (git.get("commit") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    mode = "quick" if report.get("quick") else "full"
    return (f"- **{report['device']}** ({mode} run, {report.get('started')}, "
            f"{report.get('wall_s', '?')} s): {m.get('cpu')}, {m.get('usable_cores')} usable "
            f"cores, {m.get('memory_gib')} GiB{', GPU ' + gpus if gpus else ''}; "
            f"{m.get('os')}; Python {m.get('python')}; {versions}; commit {commit}; "
            f"file `{report.get('_file', '')}`")


def accuracy_section(report: dict[str, Any]) -> list[str]:
    acc = report.get("accuracy") or {}
    if "engines" not in acc:
        return [f"Accuracy: {acc.get('skipped') or acc.get('error') or 'not run'}", ""]
    snrs = acc["snrs_db"]
    sets = [f"barista-dev: {acc['utterances']} recordings"]
    if acc.get("digits") or acc.get("out_of_grammar"):
        sets.append(f"rejection: {acc['digits']} spoken digits, {acc['out_of_grammar']} "
                    "out-of-grammar sentences (TTS)")
    if snrs:
        sets.append(f"noisy: mean of {', '.join(str(s) for s in snrs)} dB SNR, held-out babble")
    lines = [f"### Accuracy and latency: ours vs baselines ({report['device']})", "",
             "; ".join(sets) + ".", ""]
    rows = []
    for name, e in acc["engines"].items():
        a, ms = e["acceptance"], e["recognize_ms"]
        rows.append([name, _pct(a["clean"]), _pct(a.get("mean_noisy")),
                     _pct(e["digits_rejection"]), _pct(e["out_of_grammar_rejection"]),
                     f"{_ms(ms.get('median'))} / {_ms(ms.get('p95'))}"])
    lines += _table(["engine", "acceptance (clean)", "acceptance (noisy)", "digits rejected",
                     "out-of-grammar rejected", "ms per utterance, median / p95"], rows)
    rows = [[name] + [_pct(e["acceptance"].get(c)) for c in ["clean"] + [f"{s} dB"
                                                                          for s in snrs]]
            for name, e in acc["engines"].items()]
    lines += ["Acceptance vs SNR:", ""]
    lines += _table(["engine", "clean"] + [f"{s} dB" for s in snrs], rows)
    comparison = report.get("comparison") or {}
    if comparison:
        rows = [[name, _times(c["acceptance_clean_ratio"]), _times(c["acceptance_noisy_ratio"]),
                 _points(c["digits_rejection_points"]),
                 _points(c["out_of_grammar_rejection_points"]), _times(c["speedup_median"])]
                for name, c in comparison.items()]
        lines += ["Ours (zero-shot) against each baseline:", ""]
        lines += _table(["baseline", "acceptance ratio (clean)", "acceptance ratio (noisy)",
                         "digits rejection", "out-of-grammar rejection",
                         "ours faster by (median)"], rows)
    return lines


def latency_section(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    streaming = report.get("streaming") or {}
    rows = []
    for name, s in streaming.items():
        if not isinstance(s, dict) or "end_of_speech_to_result_ms" not in s:
            continue
        lat = s["end_of_speech_to_result_ms"]
        rows.append([name, str(s["utterances"]), _ms(lat.get("median")), _ms(lat.get("p95")),
                     _ms(lat.get("p99")), _pct(s.get("streamed_acceptance"))])
    if rows:
        lines += [f"### End of speech to result, in-process streaming ({report['device']})", ""]
        lines += _table(["model", "utterances", "p50 ms", "p95 ms", "p99 ms",
                         "streamed acceptance"], rows)
    server = report.get("server") or {}
    if "steps" in server:
        lines += [f"### Through the server ({report['device']}, {server['workers']} "
                  f"{server['worker_kind']} workers, p95 budget {server['budget_p95_ms']:g} ms)",
                  ""]
        rows = [[str(s["streams"]), _ms(s["p50"]), _ms(s["p95"]), _ms(s["p99"]),
                 f"{s['utterances_per_s']}", f"{s['server_cpu_cores']}", str(s["lost"]),
                 "yes" if s["within_budget"] else "no"] for s in server["steps"]]
        lines += _table(["concurrent streams", "p50 ms", "p95 ms", "p99 ms", "utterances/s",
                         "server CPU (cores)", "lost", "within budget"], rows)
        bound = "≥ " if server.get("reached_last_step") else ""
        lines += [f"Most concurrent real-time streams within the budget: "
                  f"**{bound}{server['max_streams_within_budget']}**; server peak RSS "
                  f"{server['server_peak_rss_mib']} MiB over {server['server_processes']} "
                  f"processes.", ""]
    elif server:
        lines += [f"Server: {server.get('skipped') or server.get('error')}", ""]
    return lines


COMPONENT_ORDER = ("features", "vad_frame", "encoder", "decoder_step", "classifier", "recognize")


def components_section(reports: dict[str, dict[str, Any]]) -> list[str]:
    """One row per workload (component, model, audio length), one column per device,
    runtime and precision measured: CPU and GPU side by side."""
    cells: dict[tuple[str, str, float], dict[tuple[str, str, str], float]] = {}
    columns: dict[tuple[str, str, str], None] = {}
    for device, report in reports.items():
        for row in report.get("components") or []:
            column = (device, row.get("runtime") or "", row.get("precision") or "")
            columns.setdefault(column)
            key = (row["component"], row.get("model") or "", float(row.get("audio_s") or 0.0))
            cells.setdefault(key, {})[column] = row["median_ms"]
    if not cells:
        return []

    def order(key: tuple[str, str, float]) -> tuple[int, str, float]:
        component = COMPONENT_ORDER.index(key[0]) if key[0] in COMPONENT_ORDER else 99
        return component, key[1], key[2]

    header = ["component", "model", "audio s"] + [
        " ".join(part for part in column if part) for column in columns]
    rows = [[component, model, f"{audio_s:g}" if audio_s else ""]
            + [_ms(cells[(component, model, audio_s)].get(column)) for column in columns]
            for component, model, audio_s in sorted(cells, key=order)]
    return ["### Components (median ms per call; device, runtime, precision per column)", "",
            *_table(header, rows)]


def gpu_batching_section(report: dict[str, Any]) -> list[str]:
    batching = report.get("batching")
    if not batching:
        return []
    rows = [[str(b["streams"]), b["model"], b.get("runtime", ""), b["precision"],
             _ms(b["encoder_ms"]), _ms(b["decoder_step_ms"]), f"{b['utterances_per_s']:.0f}"]
            for b in batching if "error" not in b]
    header = ["streams in a batch", "model", "runtime", "precision", "encoder ms (5 s each)",
              "decoder step ms", "utterances/s"]
    failed = [f"- {b['runtime']}, {b['streams']} streams: {b['error']}"
              for b in batching if "error" in b]
    differ = [f"- {b['runtime']}, {b['streams']} streams: replay differs from eager"
              for b in batching if b.get("matches_eager") is False]
    return [f"### Batching across streams ({report['device']})", "", *_table(header, rows),
            *(["", *failed, *differ] if failed or differ else [])]


def markdown(reports: dict[str, dict[str, Any]]) -> str:
    """``results.md`` for the latest report of each device."""
    lines = ["# Benchmark results", "",
             "Written by `assistant bench` (CPU) and `python benchmarks/gpu.py` (GPU); "
             "regenerate with either. Machines:", ""]
    lines += [_machine_line(r) for r in reports.values()] + [""]
    for report in reports.values():
        lines += accuracy_section(report)
        lines += latency_section(report)
        lines += gpu_batching_section(report)
    lines += components_section(reports)
    sizes = next((r["model_sizes_mib"] for r in reports.values() if r.get("model_sizes_mib")),
                 None)
    if sizes:
        lines += ["### Models on disk", ""]
        lines += _table(["model", "MiB"], [[k, f"{v:g}"] for k, v in sizes.items()])
    for report in reports.values():
        if report.get("sections_s"):
            parts = ", ".join(f"{k} {v:g} s" for k, v in report["sections_s"].items())
            lines += [f"Run time ({report['device']}): {report.get('wall_s')} s ({parts}).", ""]
    methods: dict[str, str] = {}
    for report in reports.values():
        methods.update(report.get("method") or {})
    if methods:
        lines += ["### How each figure was measured", ""]
        lines += [f"- **{k}**: {v}" for k, v in methods.items()] + [""]
    return "\n".join(lines)


def write_results(out_dir: Path) -> Path:
    """Rebuild ``results.md`` and the plots from the latest runs in ``out_dir``."""
    from .plots import write_plots

    latest = latest_by_device(load_reports(out_dir))
    path = out_dir / "results.md"
    text = markdown(latest)
    plots = write_plots(latest, out_dir)
    if plots:
        text += "\n### Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n"
    path.write_text(text)
    return path
