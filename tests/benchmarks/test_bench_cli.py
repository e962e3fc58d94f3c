"""``assistant bench``: registered by the main CLI, flags mapped onto the suite's config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import build_parser
from assistant.errors import ConfigError
from benchmarks.cli import config_from_args
from benchmarks.suite import FULL, QUICK, SECTIONS, SuiteConfig
from tests.conftest import REPO


def test_help_lists_the_options() -> None:
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "bench", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, check=True)
    for option in ("--quick", "--model", "--out", "--only", "--budget-ms"):
        assert option in done.stdout


def test_flags_become_the_config(tmp_path: Path) -> None:
    args = build_parser().parse_args(["bench", "--quick", "--out", str(tmp_path), "--only",
                                      "components", "accuracy", "--threads", "1"])
    config = config_from_args(args)
    assert config == SuiteConfig(quick=True, out_dir=tmp_path, threads=1,
                                 sections=("components", "accuracy"))
    assert config.sizes == QUICK
    assert config_from_args(build_parser().parse_args(["bench"])).sections == SECTIONS
    assert SuiteConfig().sizes == FULL


def test_bad_configs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sections"):
        SuiteConfig(sections=("nothing",))
    with pytest.raises(ConfigError, match="not a model directory"):
        SuiteConfig(model_dir=tmp_path)


def test_gpu_script_exits_cleanly_without_a_gpu(tmp_path: Path) -> None:
    from benchmarks.gpu import detect

    runtime, why = detect()
    if runtime is not None:
        pytest.skip(f"a GPU is here ({why})")
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert "nothing measured" in done.stderr
    assert not list(tmp_path.iterdir())
