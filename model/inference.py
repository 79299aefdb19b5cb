"""Numpy-in/numpy-out EmbSum inference for the streaming path (batching, no grad, autocast).

Retrieval: an item's retrieval vector is the mean of its n CPE codes and a user's interest
vectors are its m UPE codes. Then <a_i, mean_j b_j> = mean_j K_ij, the average of row i of
the score matrix K = A B^T; the exact EmbSum score is a softmax-weighted average of the same
K entries, so max_i over the interest queries (PinnerSage-style) approximates it from above
the mean, and the exact score reranks the retrieved candidates.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.backbones import build_backbone, load_tokenizer
from model.batching import pad_ragged, token_ids, tokenize, unpad_states
from model.config import EmbSumConfig
from model.device import pick_device
from model.embsum import EmbSum
from model.grounding import Grounding
from model.numerics import autocast, prepare, resolve_mode
from model.summaries import NUMBERS, TEMPLATE

logger = logging.getLogger(__name__)


@dataclass
class ItemEncoding:
    """cpe: (N, n, d) CPE codes; retrieval: (N, d) vectors to index (mean of the codes)."""

    cpe: np.ndarray
    retrieval: np.ndarray


@dataclass
class SessionEncoding:
    """embedding: (d,) first-token state; token_states: (T, d) real tokens only."""

    embedding: np.ndarray
    token_states: np.ndarray


@dataclass
class Summary:
    """Generated summary text, the global embedding (d,) at its EOS, and its token ids (EOS stripped)."""

    text: str
    embedding: np.ndarray
    tokens: list[int] = field(default_factory=list)


def _keep(cfg: EmbSumConfig) -> str:
    """Session texts keep their start (as always); a one-chunk history keeps its recent end."""
    return "end" if cfg.history_mode == "one_chunk" else "start"


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32, copy=False)


def weights_identity(model: EmbSum) -> bytes:
    """16-byte BLAKE2b of the config and every weight (names, dtypes, shapes, values): equal only
    for the same checkpoint, so vectors from two models are never taken for one space."""
    h = hashlib.blake2b(digest_size=16, person=b"embsum-weights")
    h.update(json.dumps(model.cfg.to_dict(), sort_keys=True, default=str).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


class EmbSumInference:
    """EmbSum behind numpy arrays: encode items/sessions, summarise, user codes, score."""

    batch_size: int = 32

    def __init__(self, model: EmbSum, tokenizer, device: torch.device, metadata: dict | None = None,
                 mode: str = "fp32"):
        self.mode = resolve_mode(mode, device)  # model/numerics.py: fp32 is exact, auto is fastest
        # before prepare(): the identity is the checkpoint's, whatever numerics this process runs
        self.identity: bytes = weights_identity(model)
        self.model = prepare(model.to(device).eval(), self.mode)
        self.tokenizer, self.device = tokenizer, device
        self.config: EmbSumConfig = model.cfg
        self.dim: int = model.dim
        self.metadata = metadata or {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | None = None, mode: str = "fp32") -> EmbSumInference:
        """Load a checkpoint directory written by model.checkpoint.save_checkpoint."""
        from model.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, device=device)
        return cls(ckpt.model, ckpt.tokenizer, ckpt.device, ckpt.metadata, mode)

    @classmethod
    def pretrained(cls, config: EmbSumConfig | None = None, device=None, mode: str = "fp32") -> EmbSumInference:
        """Untrained heads on the pretrained backbone (packaged MiniLM by default)."""
        cfg = config or EmbSumConfig()
        torch.manual_seed(0)  # untrained heads still reproducible across processes
        tok = load_tokenizer(cfg)
        return cls(EmbSum(cfg, build_backbone(cfg, tok)), tok, pick_device(device), mode=mode)

    @torch.no_grad()
    def encode_items(self, texts: list[str]) -> ItemEncoding:
        """Item texts -> CPE codes (N, n, d) and retrieval vectors (N, d)."""
        out = []
        for i in range(0, len(texts), self.batch_size):
            ids, mask = tokenize(self.tokenizer, texts[i:i + self.batch_size], self.config.max_item_tokens, self.device)
            with autocast(self.device, self.mode):
                out.append(_np(self.model.item_codes(ids, mask)))
        cpe = np.concatenate(out) if out else np.zeros((0, self.config.n, self.dim), np.float32)
        return ItemEncoding(cpe=cpe, retrieval=cpe.mean(axis=1))

    @torch.no_grad()
    def encode_sessions(self, texts: list[str]) -> list[SessionEncoding]:
        """Session texts (any users) -> one SessionEncoding each; sessions are independent."""
        limit, keep = self.config.history_token_limit(), _keep(self.config)
        res: list[SessionEncoding | None] = [None] * len(texts)
        for chunk in self._by_length(texts, limit):
            ids, mask = tokenize(self.tokenizer, [texts[j] for j in chunk], limit, self.device, keep=keep)
            with autocast(self.device, self.mode):
                emb, states = self.model.encode_sessions(ids, mask)
            for j, e, s in zip(chunk, emb, unpad_states(states, mask), strict=True):
                res[j] = SessionEncoding(embedding=_np(e), token_states=_np(s))
        return res

    def session_input_keys(self, texts: list[str]) -> list[int]:
        """A 64-bit key of each session's encoder input (its ids after truncation): sessions with
        equal keys have equal encodings, e.g. one that grew past the token limit."""
        ids = token_ids(self.tokenizer, texts, self.config.history_token_limit(), _keep(self.config))
        return [int.from_bytes(hashlib.blake2b(np.asarray(i, np.int64).tobytes(), digest_size=8).digest(), "little")
                for i in ids]

    def _by_length(self, texts: list[str], limit: int) -> list[list[int]]:
        """Indices of texts in batches of similar token length: padding is work thrown away."""
        if len(texts) <= self.batch_size:
            return [list(range(len(texts)))] if texts else []
        lens = [len(t) for t in self.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]
        order = sorted(range(len(texts)), key=lens.__getitem__)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    @torch.no_grad()
    def summarize(self, users: list[list[SessionEncoding]],
                  allowed: Sequence[Grounding] | Sequence[Sequence[int]] | None = None) -> list[Summary]:
        """Per user: greedy summary over the cached token states of its sessions (allowed: per
        user its Grounding, as from grounding_ids, or the only token ids it may use)."""
        res: list[Summary] = []
        for i in range(0, len(users), self.batch_size):
            rows = [torch.from_numpy(np.concatenate([s.token_states for s in u])).to(self.device)
                    for u in users[i:i + self.batch_size]]
            enc, enc_mask = pad_ragged(rows)  # (U, L, d)
            ok = None if allowed is None else allowed[i:i + self.batch_size]
            with autocast(self.device, self.mode):
                toks, glob = self.model.generate(enc, enc_mask, allowed=ok)
            texts = self.tokenizer.batch_decode(toks, skip_special_tokens=True)
            res += [Summary(text=t, embedding=_np(g), tokens=k) for t, g, k in zip(texts, glob, toks, strict=True)]
        return res

    @torch.no_grad()
    def user_codes(self, session_embeddings: list[np.ndarray], global_embeddings: np.ndarray) -> np.ndarray:
        """List of (g_u, d) and (U, d) -> UPE codes A (U, m, d)."""
        rows = [torch.from_numpy(np.asarray(s, np.float32)).to(self.device) for s in session_embeddings]
        emb, mask = pad_ragged(rows)
        glob = torch.from_numpy(np.asarray(global_embeddings, np.float32)).to(self.device)
        return _np(self.model.user_codes(emb, mask, glob))

    def interest_vectors(self, user_codes: np.ndarray) -> np.ndarray:
        """(U, m, d) -> query vectors (U, m, d); inner product with ItemEncoding.retrieval."""
        return np.ascontiguousarray(user_codes, dtype=np.float32)

    @torch.no_grad()
    def score(self, user_codes: np.ndarray, item_cpe: np.ndarray) -> np.ndarray:
        """(U, m, d) x (U, C, n, d) or shared (C, n, d) -> exact EmbSum scores (U, C)."""
        a = torch.from_numpy(np.asarray(user_codes, np.float32)).to(self.device)
        b = torch.from_numpy(np.asarray(item_cpe, np.float32)).to(self.device)
        return _np(self.model.score(a, b))

    @torch.no_grad()
    def score_candidates(self, user_codes: np.ndarray, table: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Exact scores of each user's candidates, given as rows of one table: (U, m, d) x (C, n, d)
        with index (U, W) -> (U, W). Item keys are user-independent, so each is computed once."""
        a = torch.from_numpy(np.asarray(user_codes, np.float32)).to(self.device)
        b = torch.from_numpy(np.asarray(table, np.float32)).to(self.device)
        idx = torch.from_numpy(np.asarray(index, np.int64)).to(self.device)
        keys = self.model.scorer.item_keys(b)
        # gathered in slices of users: (U, W, n, d) at once is ~40 MB per round, and freed peaks
        # stay in the process (the worker's RSS grew by them under overload)
        out = [self.model.scorer(a[u:u + 16], b[idx[u:u + 16]], keys[idx[u:u + 16]])
               for u in range(0, len(a), 16)]
        return _np(torch.cat(out)) if out else np.zeros(index.shape, np.float32)

    def grounding_ids(self, histories: list[list[str]]) -> list[Grounding]:
        """Per user what a grounded summary may say: tokens of its sessions and the template, each
        run of history words a span of its sessions (model/grounding.py)."""
        if getattr(self, "_template_ids", None) is None:
            pieces = self.tokenizer([TEMPLATE, *NUMBERS.split()], add_special_tokens=False)["input_ids"]
            self._template_ids = np.asarray(sorted(set().union(*pieces)), np.int32)
        return [Grounding.of(self.tokenizer(h, add_special_tokens=False)["input_ids"] if h else [],
                             self._template_ids) for h in histories]

    def allowed_for(self, histories: list[list[str]]) -> list[Grounding] | None:
        """grounding_ids when the checkpoint's config grounds summaries, else None (free)."""
        return self.grounding_ids(histories) if self.config.grounded_summaries else None

    def encode_users(self, histories: list[list[str]], grounded: bool | None = None) -> tuple[np.ndarray, list[Summary]]:
        """Convenience: per user a list of session texts -> (UPE codes (U, m, d), summaries);
        grounded (default: the config's grounded_summaries): summaries use only tokens of the
        user's sessions and the summary template."""
        flat = self.encode_sessions([t for h in histories for t in h])
        users, k = [], 0
        for h in histories:
            users.append(flat[k:k + len(h)])
            k += len(h)
        grounded = self.config.grounded_summaries if grounded is None else grounded
        sums = self.summarize(users, self.grounding_ids(histories) if grounded else None)
        codes = self.user_codes([np.stack([s.embedding for s in u]) for u in users],
                                np.stack([s.embedding for s in sums]))
        return codes, sums
