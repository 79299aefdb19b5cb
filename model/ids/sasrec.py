"""The SASRec network (Kang & McAuley 2018): the hybrid's ID tower (its item embeddings are the
ID rows, its last hidden state the user's ID vector). Its training on a split and the SASRec
baseline ranker are in sasrec_baseline.py."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from model.ids.options import SASRecOptions as SASRecOptions  # its home is options.py (no torch)

logger = logging.getLogger(__name__)


class SASRec(nn.Module):
    """Causal self-attention over item embeddings; row 0 is padding, item k is row k + 1."""

    def __init__(self, item_ids: Sequence[str], opts: SASRecOptions):
        super().__init__()
        self.item_ids, self.opts = list(item_ids), opts
        self.index = {i: k + 1 for k, i in enumerate(self.item_ids)}
        self.items = nn.Embedding(len(self.item_ids) + 1, opts.dim, padding_idx=0)
        self.positions = nn.Embedding(opts.max_len, opts.dim)
        layer = nn.TransformerEncoderLayer(opts.dim, opts.heads, opts.dim, opts.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, opts.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(opts.dim)
        self.drop = nn.Dropout(opts.dropout)
        self.facts: dict[str, Any] = {}
        # small rows: logits h.e start near zero (N(0, 1) rows give a first loss of ~50, not ln N)
        for emb in (self.items, self.positions):
            nn.init.normal_(emb.weight, std=opts.dim**-0.5)
        with torch.no_grad():
            self.items.weight[0] = 0.0

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Left-padded (B, L) row indices -> hidden states (B, L, d); padded positions are zeros."""
        return self.forward_rows(self.items(seq), seq > 0)

    def forward_rows(self, rows: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Left-padded input rows (B, L, d) and their mask (B, L) -> hidden states (B, L, d); the
        online path feeds rows from the ID memory here instead of this module's own table."""
        length = rows.shape[1]
        keep = real.unsqueeze(-1).float()
        x = rows * self.opts.dim**0.5 + self.positions.weight[-length:]
        x = self.drop(x) * keep  # the original's timeline mask: padding stays zero
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=rows.device)
        return self.norm(self.encoder(x, mask=causal, is_causal=True)) * keep

    def forward_last(self, rows: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """forward_rows(rows, real)[:, -1] (B, d) for histories whose last position is real, at
        the cost of the longest history, not of max_len. Left padding is zeros at every layer's
        input, so its positions all hold one state and every real query sees the p padding keys
        as one key with a log(p) bias: the padding before the longest history folds into one slot.
        The last block runs its query at the last position only. Equal up to float rounding."""
        longest = int(real.sum(dim=1).max())
        folded = rows.shape[1] - longest
        length = rows.shape[1] if folded <= 1 else longest + 1
        rows, real = rows[:, -length:], real[:, -length:]
        keep = real.unsqueeze(-1).float()
        x = self.drop(rows * self.opts.dim**0.5 + self.positions.weight[-length:]) * keep
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=rows.device)
        if folded > 1:
            mask[1:, 0] = math.log(folded)  # slot 0 stands for `folded` equal padding keys
        *inner, last = self.encoder.layers
        for layer in inner:
            x = layer(x, src_mask=mask)
        n = last.norm1(x)  # the last block (norm_first): attention and feed-forward of one query
        y = x[:, -1:] + last.dropout1(last.self_attn(n[:, -1:], n, n, attn_mask=mask[-1:], need_weights=False)[0])
        y = y + last._ff_block(last.norm2(y))
        return self.norm(y[:, 0]) * keep[:, -1]

    def encode(self, sequences: Sequence[Sequence[str]]) -> torch.Tensor:
        """Item-id sequences (oldest first) -> left-padded row indices (B, max_len); items
        without a row are dropped (they carry no ID signal)."""
        rows = [[self.index[i] for i in s if i in self.index][-self.opts.max_len:] for s in sequences]
        out = torch.zeros(len(rows), self.opts.max_len, dtype=torch.long)
        for b, r in enumerate(rows):
            if r:
                out[b, -len(r):] = torch.tensor(r)
        return out

    @torch.no_grad()
    def user_vectors(self, sequences: Sequence[Sequence[str]], batch: int = 512) -> np.ndarray:
        """The hidden state after each user's last item (U, d)."""
        self.eval()
        parts = [self(self.encode(sequences[k:k + batch]))[:, -1] for k in range(0, len(sequences), batch)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, self.opts.dim), np.float32)

    @torch.no_grad()
    def user_vectors_of_rows(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The hidden state after each user's last row (U, d), from (L_u, d) rows, oldest first."""
        self.eval()
        if not histories:
            return np.zeros((0, self.opts.dim), np.float32)
        x, real = pad_rows(histories, self.opts.max_len, self.opts.dim)
        return self.forward_rows(x, real)[:, -1].numpy()

    def item_rows(self, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows (N, d), present (N,)): the trained embedding of each item, zeros without a row."""
        table = self.items.weight.detach().numpy()
        present = np.array([self.index.get(i, 0) > 0 for i in item_ids])
        rows = np.stack([table[self.index.get(i, 0)] for i in item_ids])  # what the logits use
        rows[~present] = 0.0
        return rows.astype(np.float32), present

    def options_dict(self) -> dict[str, Any]:
        """Options and the row order, for hybrid.json."""
        return {"options": dataclasses.asdict(self.opts), "item_ids": self.item_ids}


def pad_rows(histories: Sequence[np.ndarray], max_len: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (L_u, d) per user -> left-padded (U, max_len, d) and the real-position mask, keeping
    each user's last max_len rows (the layout encode() gives index sequences)."""
    x = torch.zeros(len(histories), max_len, dim)
    real = torch.zeros(len(histories), max_len, dtype=torch.bool)
    for b, h in enumerate(histories):
        h = np.asarray(h, np.float32)[-max_len:]
        if len(h):
            x[b, -len(h):], real[b, -len(h):] = torch.from_numpy(h), True
    return x, real


def logits(model: SASRec, hidden: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., N + 1) scores over every row; the padding row can never win."""
    out = hidden @ model.items.weight.T
    out[..., 0] = float("-inf")
    return out


def load_tower(tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> SASRec:
    """The ID tower of a hybrid checkpoint (hybrid.safetensors "tower.*" + hybrid.json "tower")."""
    model = SASRec(doc["item_ids"], SASRecOptions(**doc["options"]))
    model.load_state_dict({k[len("tower."):]: v for k, v in tensors.items() if k.startswith("tower.")})
    return model.eval()
