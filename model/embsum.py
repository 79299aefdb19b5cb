"""The EmbSum model: session encoder, summary decoder, UPE/CPE poly-attention, scorer, loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from model.backbones import Backbone
from model.batching import decoder_inputs, pad_ragged
from model.config import EmbSumConfig
from model.grounding import Grounding, constraint
from model.poly_attention import PolyAttention, PolyScorer


class EmbSum(nn.Module):
    """Backbone + UPE (m codes) + CPE (n codes) + poly scorer."""

    def __init__(self, cfg: EmbSumConfig, backbone: Backbone):
        super().__init__()
        self.cfg, self.backbone = cfg, backbone
        d = backbone.dim
        self.upe = PolyAttention(d, cfg.m)
        self.cpe = PolyAttention(d, cfg.n)
        self.scorer = PolyScorer(d)

    @property
    def dim(self) -> int:
        return self.backbone.dim

    def encode_sessions(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sessions (S, T) -> first-token embeddings (S, d) and token states (S, T, d)."""
        states = self.backbone.encode(ids, mask)  # (S, T, d)
        return states[:, 0], states

    def item_codes(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Items (N, T) -> CPE codes B (N, n, d) over masked encoder token states."""
        return self.cpe(self.backbone.encode(ids, mask), mask)

    def decoder_states(self, dec: dict[str, torch.Tensor], enc: torch.Tensor,
                       enc_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder hidden (U, L, d) and global embedding = hidden at EOS (U, d)."""
        hidden = self.backbone.decode(dec["ids"], dec["mask"], enc, enc_mask)  # (U, L, d)
        glob = hidden[torch.arange(hidden.shape[0], device=hidden.device), dec["eos_pos"]]
        return hidden, glob

    def user_codes(self, sess_emb: torch.Tensor, sess_mask: torch.Tensor,
                   glob: torch.Tensor) -> torch.Tensor:
        """UPE over Z = [sessions (U, G, d); global (U, d)] -> A (U, m, d)."""
        z = torch.cat([sess_emb, glob[:, None, :].to(sess_emb.dtype)], dim=1)  # (U, G+1, d)
        ones = torch.ones_like(sess_mask[:, :1])
        return self.upe(z, torch.cat([sess_mask, ones], dim=1))

    def score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """A (U, m, d) x B (U, C, n, d) or (C, n, d) -> (U, C)."""
        return self.scorer(a, b)

    @torch.no_grad()
    def generate(self, enc: torch.Tensor, enc_mask: torch.Tensor, use_cache: bool = True,
                 allowed: Sequence[Sequence[int]] | Sequence[Grounding] | None = None
                 ) -> tuple[list[list[int]], torch.Tensor]:
        """Greedy summary tokens per user (bounded) and the global embedding at their EOS.

        use_cache=True decodes one token per step against a key/value cache (same tokens as
        re-running the decoder over the whole prefix, which use_cache=False does). allowed: per user
        the only token ids its summary may use, or its Grounding (those ids, and every run of
        history words a span of its history: model/grounding.py); EOS is always allowed.
        """
        bb, u = self.backbone, enc.shape[0]
        ids = torch.full((u, 1), bb.start_id, dtype=torch.long, device=enc.device)
        done = torch.zeros(u, dtype=torch.bool, device=enc.device)
        cache, rule = None, None
        for _ in range(self.cfg.summary_max_tokens - 2):
            if use_cache:
                last, cache = bb.decode_step(ids[:, -1:] if cache is not None else ids, enc, enc_mask, cache)
            else:
                last = bb.decode(ids, torch.ones_like(ids, dtype=torch.bool), enc, enc_mask)
            logits = bb.lm_logits(last[:, -1])  # (U, V)
            if allowed is not None:
                rule = rule or constraint(allowed, logits.shape[1], bb.eos_id, logits.device)
                logits = logits.masked_fill(~rule.mask(), float("-inf"))
            if self.cfg.no_repeat_ngram > 0:
                ban_repeated_ngrams(logits, ids[:, 1:], self.cfg.no_repeat_ngram)
            nxt = logits.argmax(-1)  # (U,)
            nxt = torch.where(done, torch.full_like(nxt, bb.eos_id), nxt)
            if rule is not None:
                rule.advance(nxt, done)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == bb.eos_id
            if bool(done.all()):
                break
        toks = []
        for row in ids[:, 1:].tolist():
            toks.append(row[: row.index(bb.eos_id)] if bb.eos_id in row else row)
        # one more pass over [start, y.., EOS] exactly as in training gives the global embedding
        dec = decoder_inputs(toks, bb.start_id, bb.eos_id, enc.device)
        return toks, self.decoder_states(dec, enc, enc_mask)[1]

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Training step: NCE over [pos, negs] + lambda * L_sum. See model/training/train.py for batch."""
        sess_emb, states = self.encode_sessions(batch["sess_ids"], batch["sess_mask"])
        owner = batch["sess_owner"]  # (S,) user index of each session
        u = batch["cand_ids"].shape[0]
        per_user_tokens, per_user_emb = [], []
        for i in range(u):
            idx = (owner == i).nonzero().squeeze(1)
            per_user_tokens.append(torch.cat([states[j][batch["sess_mask"][j]] for j in idx.tolist()]))
            per_user_emb.append(sess_emb[idx])
        enc, enc_mask = pad_ragged(per_user_tokens)  # (U, L, d)
        hidden, glob = self.decoder_states(batch["dec"], enc, enc_mask)
        logits = self.backbone.lm_logits(hidden)  # (U, L, V)
        l_sum = F.cross_entropy(logits.float().flatten(0, 1), batch["dec"]["labels"].flatten(), ignore_index=-100)
        emb, emb_mask = pad_ragged(per_user_emb)  # (U, G, d)
        a = self.user_codes(emb, emb_mask, glob)  # (U, m, d)
        c = batch["cand_ids"].shape[1]
        b = self.item_codes(batch["cand_ids"].flatten(0, 1), batch["cand_mask"].flatten(0, 1))
        scores = self.score(a, b.view(u, c, *b.shape[1:]))  # (U, 1+r); column 0 = positive
        l_nce = F.cross_entropy(scores, torch.zeros(u, dtype=torch.long, device=scores.device))
        loss = l_nce + self.cfg.lambda_sum * l_sum
        return {"loss": loss, "nce": l_nce.detach(), "sum": l_sum.detach(), "scores": scores.detach()}


def ban_repeated_ngrams(logits: torch.Tensor, generated: torch.Tensor, n: int) -> None:
    """In place: -inf for every token that would repeat an n-gram already in its row (the
    no_repeat_ngram_size rule of common decoders), so greedy summaries cannot loop."""
    if generated.shape[1] < n - 1 or n < 1:
        return
    rows = generated.tolist()
    for u, row in enumerate(rows):
        prefix = tuple(row[len(row) - (n - 1):]) if n > 1 else ()
        banned = {row[i + n - 1] for i in range(len(row) - n + 1)
                  if tuple(row[i:i + n - 1]) == prefix}
        if banned:
            logits[u, list(banned)] = float("-inf")
