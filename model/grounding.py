"""Grounded summaries: what a user's summary may say, enforced while it is decoded.

Two rules, both constrained decoding (no post-filter): every token is one of the user's history
tokens or of the summary template's (Grounding.ids); and every run of history words is a verbatim
span of the history (SpanWalker): after "star" the only history word that may follow is what
follows "star" somewhere in the history, so two titles cannot be spliced into a third one. A run
ends at a template token that does not continue it ("," "." "and" ...), and a new run may start
only there. Template tokens are the fallback summary's words, numbers and decades
(model/summaries.py: TEMPLATE, NUMBERS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Grounding:
    """One user's grounding: the ids a summary may use, its history's token sequence (-1 between
    texts) and the template's ids (shared by every user)."""

    ids: np.ndarray  # sorted unique: history and template
    history: np.ndarray  # the history's token ids in order, -1 between session texts
    template: np.ndarray  # sorted unique template ids

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.history.nbytes  # the template array is shared

    @classmethod
    def of(cls, texts_ids: Sequence[Sequence[int]], template: np.ndarray) -> Grounding:
        """From the token ids of each history text and the template's ids."""
        seq = [t for ids in texts_ids for t in (*ids, -1)]
        history = np.asarray(seq, np.int32)
        ids = np.union1d(template, history[history >= 0]).astype(np.int32)
        return cls(ids, history, template)


class SpanWalker:
    """Where one user's summary stands in its history: the positions where the open run of history
    words ends (None: no run open, any history word may start one)."""

    def __init__(self, g: Grounding):
        self.g, self.live = g, None
        self.template = set(g.template.tolist())
        nxt = np.append(g.history[1:], -1)
        self._after = nxt  # the token after each position (-1: the text ends)

    def continuations(self) -> np.ndarray | None:
        """History tokens that continue the open run (None: no run open)."""
        if self.live is None:
            return None
        nxt = self._after[self.live]
        return np.unique(nxt[nxt >= 0])

    def advance(self, token: int) -> None:
        """Move past an emitted token: continue the run, close it (a template token), or open one."""
        if self.live is not None:
            cont = self.live[self._after[self.live] == token]
            if cont.size:
                self.live = cont + 1
                return
        if token in self.template:
            self.live = None
            return
        starts = np.flatnonzero(self.g.history == token)
        self.live = starts if starts.size else None


class GroundedMasks:
    """Per decoding step the (U, vocab) mask of what each user's summary may emit next."""

    def __init__(self, groundings: Sequence[Grounding], vocab: int, eos_id: int, device):
        self.walkers = [SpanWalker(g) for g in groundings]
        self.full = _rows([g.ids for g in groundings], vocab, eos_id, device)
        self.base = _rows([g.template for g in groundings], vocab, eos_id, device)

    def mask(self) -> torch.Tensor:
        out = self.full.clone()
        for u, w in enumerate(self.walkers):
            cont = w.continuations()
            if cont is not None:  # a run is open: the template, EOS or what continues it
                out[u] = self.base[u]
                out[u, torch.as_tensor(cont, dtype=torch.long, device=out.device)] = True
        return out

    def advance(self, tokens: torch.Tensor, done: torch.Tensor) -> None:
        for u, (t, d) in enumerate(zip(tokens.tolist(), done.tolist(), strict=True)):
            if not d:
                self.walkers[u].advance(t)


class FixedMasks:
    """The same mask at every step: per user a set of ids, no span rule (callers that pass ids)."""

    def __init__(self, allowed: Sequence[Sequence[int]], vocab: int, eos_id: int, device):
        self.fixed = _rows(allowed, vocab, eos_id, device)

    def mask(self) -> torch.Tensor:
        return self.fixed

    def advance(self, tokens: torch.Tensor, done: torch.Tensor) -> None:
        return None


def constraint(allowed: Sequence[Sequence[int]] | Sequence[Grounding], vocab: int, eos_id: int,
               device) -> GroundedMasks | FixedMasks:
    """The decoding rule for per-user Groundings (ids and spans) or per-user id sets (ids only)."""
    if isinstance(allowed[0], Grounding):
        return GroundedMasks(allowed, vocab, eos_id, device)
    return FixedMasks(allowed, vocab, eos_id, device)


def _rows(ids: Sequence[Sequence[int]], vocab: int, eos_id: int, device) -> torch.Tensor:
    """(U, vocab) bool: True at each user's ids and at EOS."""
    mask = torch.zeros(len(ids), vocab, dtype=torch.bool, device=device)
    for u, row in enumerate(ids):
        t = torch.as_tensor(np.asarray(sorted(row) if isinstance(row, (set, frozenset)) else row, np.int64))
        mask[u, t[(t >= 0) & (t < vocab)].to(device)] = True
    mask[:, eos_id] = True
    return mask
