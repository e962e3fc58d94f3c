"""Build a Hugging Face ``WhisperForConditionalGeneration`` from the bundled weights.

Needs the ``train`` extra (torch, transformers); importing this module does not import them,
calling its functions does. Used by fine-tuning and by the parity tests of the ONNX graphs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MissingDependencyError, ModelError
from .tokenizer import SpecialTokens
from .whisper_weights import WhisperDims

if TYPE_CHECKING:
    from transformers import WhisperConfig, WhisperForConditionalGeneration


def _import_transformers() -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as e:
        raise MissingDependencyError(e.name or "transformers", "train", "the PyTorch model") from e
    return transformers


def whisper_config(dims: WhisperDims, special: SpecialTokens) -> WhisperConfig:
    transformers = _import_transformers()
    return transformers.WhisperConfig(
        vocab_size=dims.n_vocab,
        num_mel_bins=dims.n_mels,
        encoder_layers=dims.n_audio_layer,
        encoder_attention_heads=dims.n_audio_head,
        decoder_layers=dims.n_text_layer,
        decoder_attention_heads=dims.n_text_head,
        d_model=dims.n_audio_state,
        encoder_ffn_dim=4 * dims.n_audio_state,
        decoder_ffn_dim=4 * dims.n_text_state,
        max_source_positions=dims.n_audio_ctx,
        max_target_positions=dims.n_text_ctx,
        decoder_start_token_id=special.sot,
        bos_token_id=special.eot,
        eos_token_id=special.eot,
        pad_token_id=special.eot,
        begin_suppress_tokens=[220, special.eot],
        tie_word_embeddings=True,
    )


def build_hf_model(
    dims: WhisperDims, state_dict: dict[str, np.ndarray], special: SpecialTokens
) -> WhisperForConditionalGeneration:
    """A float32 ``WhisperForConditionalGeneration`` in eval mode, loaded strictly."""
    transformers = _import_transformers()
    import torch

    if dims.n_audio_state != dims.n_text_state:
        raise ModelError("encoder and decoder widths differ; not a Whisper checkpoint")
    model = transformers.WhisperForConditionalGeneration(whisper_config(dims, special))
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state_dict.items()}
    tensors["proj_out.weight"] = tensors["model.decoder.embed_tokens.weight"]
    model.load_state_dict(tensors, strict=True)
    model.tie_weights()
    return model.eval()


def state_dict_from_hf(model: WhisperForConditionalGeneration) -> dict[str, np.ndarray]:
    """The model's weights as float32 numpy arrays in the same naming (``proj_out`` dropped)."""
    return {
        k: v.detach().to("cpu").float().numpy()
        for k, v in model.state_dict().items()
        if k != "proj_out.weight"
    }
