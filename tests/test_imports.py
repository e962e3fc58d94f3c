"""``import assistant`` (and the runtime modules) never import torch or transformers."""

from __future__ import annotations

import subprocess
import sys


def test_runtime_imports_are_light() -> None:
    code = (
        "import sys, assistant, assistant.recognizer, assistant.stream, assistant.cli, "
        "assistant.model_dir, assistant.recording, assistant.hf, assistant.torch_speech\n"
        "assistant.Recognizer\n"
        "assistant.recognizer.RecognizerConfig(device='cuda')  # a name: checked on load\n"
        "heavy = [m for m in ('torch', 'transformers', 'silero_vad') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
