"""Which of a user's m UPE codes query the retrieval index: q of them, chosen to cover the rest.

Retrieval merges the codes' neighbours by their best score, so a code that scores what another
looks for about as well as that code does adds little. The UPE codes are attention mixtures of
the same few session and global embeddings (g + 1 of them), so many are near duplicates. The
choice is a facility location: code a covers code b by <A_a, A_b> (how well a scores the
direction b looks in), and greedy selection maximises sum_b max_{a in chosen} <A_a, A_b>
(within 1 - 1/e of the best set for non-negative similarities). On clustered data with codes
mixed from 9 sources, 10 of 32 codes return the all-codes top-10 for every user tried (8: 97%;
tests/streams/engine/test_bounded_retrieval.py). The exact EmbSum score still ranks the union of what
the chosen codes fetch.
"""

from __future__ import annotations

import numpy as np


def select_queries(codes: np.ndarray, q: int) -> np.ndarray:
    """codes (m, d) -> the q (<= m) codes the greedy facility location chooses, in their
    original order; q <= 0 or q >= m: all codes."""
    codes = np.asarray(codes, np.float32)
    m = len(codes)
    if q <= 0 or q >= m:
        return codes
    sim = codes @ codes.T  # (m, m): sim[a, b] = how well code a scores what code b looks for
    chosen: list[int] = []
    cover = np.full(m, -np.inf, np.float32)  # per code b: its best similarity to a chosen code
    for _ in range(q):
        gain = np.maximum(sim, cover[None, :]).sum(axis=1)  # the objective with each code added
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))  # ties: the lowest index
        chosen.append(best)
        cover = np.maximum(cover, sim[best])
    return codes[np.sort(chosen)]
