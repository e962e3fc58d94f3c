"""The intent classifier: attention pooling over encoder states, then a small MLP.

Classes are the grammar's intents plus ``OUT_OF_DOMAIN`` (last). It reads the encoder states
the recognizer computes anyway, so it costs well under a millisecond at run time and gives the
intent before decoding (partial results, an out-of-domain gate, a confidence feature). Its
weights are exported as numpy arrays for :func:`assistant.onnx_graph.build_classifier`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OUT_OF_DOMAIN = "<out-of-domain>"


class IntentClassifier(nn.Module):
    def __init__(self, d_model: int, n_classes: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attention = nn.Linear(d_model, 1)
        self.fc1 = nn.Linear(d_model, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [batch, classes] from encoder states [batch, positions, d]; mask 1 = valid."""
        x = self.norm(states)
        scores = self.attention(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e9)
        weights = torch.softmax(scores, dim=-1)
        pooled = torch.einsum("bp,bpd->bd", weights, x)
        return self.fc2(self.dropout(torch.relu(self.fc1(self.dropout(pooled)))))

    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().float().numpy() for k, v in self.state_dict().items()}
