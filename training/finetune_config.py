"""Fine-tuning settings (no torch import: ``assistant train --help`` works without it)."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import ConfigError


@dataclass(frozen=True)
class FinetuneConfig:
    speech_model: str = "tiny.en"
    epochs: int = 3
    batch_size: int = 16
    lr_decoder: float = 3e-5
    lr_encoder: float = 1e-5
    lr_head: float = 1e-3
    train_encoder_layers: int = 2  # top encoder layers that learn; the rest stay frozen
    weight_decay: float = 0.01
    warmup_steps: int = 20
    classifier_weight: float = 0.5
    patience: int = 2  # epochs without validation improvement before stopping
    head_epochs: int = 30  # then the classifier alone, on the final encoder states
    max_steps: int = 0  # 0: no limit (a cap for quick runs and CI)
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch CPU threads; 0: all cores

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be cpu or cuda, got {self.device!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if self.train_encoder_layers < 0:
            raise ConfigError("train_encoder_layers must be >= 0")
