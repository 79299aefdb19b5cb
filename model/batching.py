"""Tokenising and padding helpers: ragged per-user lists to padded tensors + masks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.nn.utils.rnn import pad_sequence


def tokenize(tokenizer, texts: list[str], max_len: int, device: torch.device,
             keep: str = "start") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and bool mask (B, T); empty texts still get special tokens.

    keep="end" truncates from the left (keeps the most recent part of a long history text).
    """
    with _truncating(tokenizer, keep):
        enc = tokenizer(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    return enc["input_ids"].to(device), enc["attention_mask"].to(device).bool()


def token_ids(tokenizer, texts: list[str], max_len: int, keep: str = "start") -> list[list[int]]:
    """The ids tokenize() gives each text, unpadded: what the encoder reads."""
    with _truncating(tokenizer, keep):
        return tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]


@contextmanager
def _truncating(tokenizer, keep: str) -> Iterator[None]:
    old = tokenizer.truncation_side
    tokenizer.truncation_side = "left" if keep == "end" else "right"
    try:
        yield
    finally:
        tokenizer.truncation_side = old


def pad_ragged(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (L_i, d) -> padded (U, L, d) and bool mask (U, L)."""
    padded = pad_sequence(rows, batch_first=True)  # (U, L, d)
    lens = torch.tensor([r.shape[0] for r in rows], device=padded.device)
    mask = torch.arange(padded.shape[1], device=padded.device)[None, :] < lens[:, None]
    return padded, mask


def unpad_states(states: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """(B, T, d) + (B, T) -> list of (T_i, d) real-token states (right padding)."""
    lens = mask.sum(1).tolist()
    return [states[i, :n] for i, n in enumerate(lens)]


def summary_targets(tokenizer, texts: list[str], max_len: int, start_id: int, eos_id: int,
                    device: torch.device) -> dict[str, torch.Tensor]:
    """Teacher forcing: input [start, y.., EOS], labels [y.., EOS, -100]; eos_pos = EOS index.
    A target longer than the budget keeps its whole leading sentences (fit_sentences)."""
    toks = [fit_sentences(tokenizer, t, max_len - 2) for t in texts]
    return decoder_inputs(toks, start_id, eos_id, device, with_labels=True)


def fit_sentences(tokenizer, text: str, budget: int) -> list[int]:
    """Token ids of the longest run of leading sentences that fits budget; a first sentence that
    alone is too long is cut at the budget. A target cut mid-sentence teaches the decoder to end
    summaries anywhere, and EOS then comes late or never."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return ids
    kept: list[int] = []
    for sentence in _sentences(text):
        more = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        if len(kept) + len(more) > budget:
            break
        kept += more
    return kept or ids[:budget]


def _sentences(text: str) -> list[str]:
    """Sentences with their end punctuation (". ", "! ", "? " boundaries)."""
    import re

    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def decoder_inputs(toks: list[list[int]], start_id: int, eos_id: int, device: torch.device,
                   with_labels: bool = False) -> dict[str, torch.Tensor]:
    """Right-padded decoder ids (U, L), mask, EOS positions (U,) and optional labels."""
    seqs = [torch.tensor([start_id, *t, eos_id]) for t in toks]
    ids = pad_sequence(seqs, batch_first=True, padding_value=0).to(device)  # (U, L)
    lens = torch.tensor([len(s) for s in seqs], device=device)
    mask = torch.arange(ids.shape[1], device=device)[None, :] < lens[:, None]
    out = {"ids": ids, "mask": mask, "eos_pos": lens - 1}
    if with_labels:
        labels = torch.full_like(ids, -100)
        labels[:, :-1] = ids[:, 1:]
        labels[~mask] = -100
        labels[torch.arange(len(seqs)), lens - 1] = -100  # nothing to predict after EOS
        out["labels"] = labels
    return out
