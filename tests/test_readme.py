"""The README's first examples work verbatim on a clone, with only the files it ships."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _block(after: str, language: str = "") -> str:
    start = README.index(f"```{language}\n", README.index(after))
    return README[start + len(language) + 4 : README.index("```", start + 3)]


def test_the_headline_command_prints_what_the_readme_shows() -> None:
    block = _block("# voice-assistant")
    command, shown = block.split("\n", 1)
    assert command.startswith("$ assistant recognize")
    args = shlex.split(command.removeprefix("$ assistant "))
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    for key in ("file", "understood", "intent", "slots", "transcript"):
        assert re.search(rf'"{key}": {re.escape(json.dumps(row[key]))}[,}}]', shown), key
    # INT8 kernels differ a little between CPUs: the confidence shown is this machine's.
    match = re.search(r'"confidence": ([0-9.]+)', shown)
    assert match and abs(float(match.group(1)) - row["confidence"]) < 0.02


def test_the_python_example_runs() -> None:
    proc = subprocess.run([sys.executable, "-c", _block("## Python", "python")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "'intent': 'orderDrink'" in proc.stdout
    assert "UtteranceResult" in proc.stdout and "intent='orderDrink'" in proc.stdout
