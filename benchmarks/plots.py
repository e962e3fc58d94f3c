"""PNG plots of the latest runs: latency distribution, accuracy vs SNR, throughput vs streams.

Matplotlib (the ``train`` extra) is imported only here; without it no plot is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_plot(reports: dict[str, dict[str, Any]], path: Path) -> bool:
    """Empirical CDFs of end of speech to result: in-process streaming and each server step."""
    curves: list[tuple[str, list[float]]] = []
    for device, report in reports.items():
        for name, s in (report.get("streaming") or {}).items():
            samples = (s.get("end_of_speech_to_result_ms") or {}).get("samples") \
                if isinstance(s, dict) else None
            if samples:
                curves.append((f"{device}: in-process, {name}", samples))
        for step in (report.get("server") or {}).get("steps", []):
            if step.get("samples_ms"):
                curves.append((f"{device}: server, {step['streams']} streams",
                               step["samples_ms"]))
    if not curves:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for label, samples in curves:
        ax.ecdf(np.asarray(samples), label=f"{label} (n={len(samples)})")
    ax.set_xscale("log")
    ax.set_xlabel("end of speech to result (ms, log scale)")
    ax.set_ylabel("share of utterances")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("Latency distribution", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def accuracy_plot(reports: dict[str, dict[str, Any]], path: Path) -> bool:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    drawn = False
    for device, report in reports.items():
        acc = report.get("accuracy") or {}
        if "engines" not in acc:
            continue
        snrs = acc["snrs_db"]
        for name, engine in acc["engines"].items():
            values = engine["acceptance"]
            ax.plot(snrs, [100 * values[f"{s} dB"] for s in snrs], "o-",
                    label=f"{name}, {device} (clean {100 * values['clean']:.0f} %)")
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.invert_xaxis()
    ax.set_xlabel("SNR (dB, loudest 2048-sample frame; held-out babble)")
    ax.set_ylabel("command acceptance (%)")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("barista-dev: acceptance vs SNR", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def throughput_plot(reports: dict[str, dict[str, Any]], path: Path) -> bool:
    """Server p50/p95 against concurrent streams (CPU), and GPU batching throughput."""
    servers = {d: r["server"] for d, r in reports.items()
               if "steps" in (r.get("server") or {})}
    batching = {d: [b for b in r["batching"] if "error" not in b]
                for d, r in reports.items() if r.get("batching")}
    batching = {d: rows for d, rows in batching.items() if rows}
    if not servers and not batching:
        return False
    plt = _pyplot()
    panels = int(bool(servers)) + int(bool(batching))
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), dpi=100, squeeze=False)
    column = 0
    if servers:
        ax = axes[0][column]
        column += 1
        for device, server in servers.items():
            streams = [s["streams"] for s in server["steps"]]
            for q, style in (("p50", "o--"), ("p95", "o-")):
                ax.plot(streams, [s[q] for s in server["steps"]], style,
                        label=f"{device} {q}")
            ax.axhline(server["budget_p95_ms"], color="red", alpha=0.5, lw=1,
                       label=f"p95 budget {server['budget_p95_ms']:g} ms")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent real-time streams")
        ax.set_ylabel("end of speech to result (ms)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        ax.set_title("Through the server", fontsize=10)
    if batching:
        ax = axes[0][column]
        for device, rows in batching.items():
            keys = sorted({(r.get("runtime", ""), r["model"], r["precision"]) for r in rows})
            for runtime, model, precision in keys:
                chosen = [r for r in rows
                          if (r.get("runtime", ""), r["model"], r["precision"])
                          == (runtime, model, precision)]
                where = "GPU" if "cuda" in runtime else "host CPU"
                ax.plot([r["streams"] for r in chosen], [r["utterances_per_s"] for r in chosen],
                        "o-", label=f"{device} run, {where}: {runtime} {model} {precision}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("streams batched together")
        ax.set_ylabel("utterances/s (encoder + 16 decoder steps)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        ax.set_title("Batching across streams", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_plots(reports: dict[str, dict[str, Any]], out_dir: Path) -> list[Path]:
    """The plots that the reports have data for; none without matplotlib."""
    try:
        _pyplot()
    except ImportError:
        return []
    written = []
    for name, draw in (("latency.png", latency_plot), ("accuracy_vs_snr.png", accuracy_plot),
                       ("throughput.png", throughput_plot)):
        if draw(reports, out_dir / name):
            written.append(out_dir / name)
    return written
