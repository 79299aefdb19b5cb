"""EmbSumConfig: every knob of the model, its data shaping and its training defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

# Fields that must never be written into a checkpoint (secrets).
_PRIVATE_FIELDS = ("llm_api_key",)


# how inference computes (model/numerics.py); defined here, torch-free, for configs and CLIs
InferenceMode = Literal["auto", "fp32", "int8", "bf16"]
INFERENCE_MODES: tuple[str, ...] = ("auto", "fp32", "int8", "bf16")


@dataclass
class EmbSumConfig:
    """Model + data-shaping configuration; stored in a checkpoint's config.json."""

    # --- backbone ---
    backbone: Literal["minilm", "t5"] = "minilm"  # minilm (offline default) or t5
    encoder_path: str | None = None  # minilm weights dir; None = packaged all-MiniLM-L6-v2
    t5_path: str | None = None  # local T5 dir (t5-small in the paper) for backbone="t5"
    t5_config: dict[str, Any] | None = None  # random-init T5 config (tests); tokenizer = MiniLM's
    attn_implementation: str = "sdpa"  # "eager" for bit-reproducible debugging
    freeze_layers: int = 0  # freeze embeddings + this many lower encoder layers
    # --- EmbSum heads ---
    m: int = 32  # user poly-embedding codes (UPE); SPAR used 16-32
    n: int = 4  # candidate poly-embedding codes (CPE); paper: 4
    # --- loss ---
    r: int = 4  # sampled negatives per positive in NCE (paper: 4 on MIND, 2 on Goodreads)
    lambda_sum: float = 0.05  # weight of the summary cross-entropy L_sum
    # --- text shaping ---
    max_session_tokens: int = 128  # tokens per session text (concatenated items)
    max_item_tokens: int = 64  # tokens per candidate item text
    max_sessions: int = 8  # g: most recent sessions kept per user
    # "sessions" (paper): each session encoded on its own; "one_chunk" (ablation): the kept
    # history concatenated into one text of up to max_sessions * max_session_tokens tokens
    # (at most 512, oldest tokens dropped first), encoded once
    history_mode: Literal["sessions", "one_chunk"] = "sessions"
    max_history: int = 60  # most recent engagements kept per user (SPAR: 60)
    session_gap_s: float = 3600.0  # a gap longer than this opens a new session
    session_max_items: int = 10  # a session holding this many items is closed
    summary_max_tokens: int = 64  # target truncation and generation bound (incl. start/EOS)
    no_repeat_ngram: int = 3  # generation never repeats an n-gram of this size (0: off)
    # summaries use only tokens of the user's own sessions and the summary template's words, so
    # they cannot name a title or genre the user never engaged with
    grounded_summaries: bool = True
    # --- summary source for training targets ---
    summary_source: Literal["fallback", "llm"] = "fallback"  # fallback (deterministic) or llm
    llm_url: str | None = None  # OpenAI-compatible base URL, e.g. http://localhost:8000/v1
    llm_model: str | None = None
    llm_api_key: str | None = None  # never saved; falls back to $THREADREC_LLM_API_KEY
    llm_cache_dir: str | None = None  # on-disk response cache; None = ~/.cache/threadrec/summaries
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, kept in checkpoints

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict without secrets."""
        d = dataclasses.asdict(self)
        for k in _PRIVATE_FIELDS:
            d[k] = None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbSumConfig:
        """Build from a dict, ignoring unknown keys (forward compatibility)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def history_token_limit(self) -> int:
        """Token bound of one encoded history text (a session, or the one chunk)."""
        if self.history_mode == "one_chunk":
            return min(512, self.max_sessions * self.max_session_tokens)
        return self.max_session_tokens

    def replace(self, **changes: Any) -> EmbSumConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def tiny_t5_config() -> dict[str, Any]:
    """A tiny random T5 (for tests and smoke runs); vocab is set from the tokenizer."""
    return {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2,
            "num_heads": 4, "relative_attention_num_buckets": 8, "dropout_rate": 0.0}
