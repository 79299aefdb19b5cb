"""Model work of one engine round (a batch of tasks, see engine._rounds): encode, summarise, UPE, rank.

Everything kept is rounded to float16 at once and only the rounded values are used later,
so a cache hit, a recompute and a value read back from the state store agree bit for bit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from model.grounding import Grounding
from model.inference import EmbSumInference, SessionEncoding
from model.query_codes import select_queries
from model.text import ITEM_SEP
from store import BoundedCache, ItemStore, VectorIndex
from streams.engine.config import EngineConfig
from streams.engine.id_half import IdHalf
from streams.engine.summary_lane import SummaryJob, SummaryLane
from streams.engine.types import EngineStats, Task, UserWork

logger = logging.getLogger(__name__)


def f16(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).astype(np.float16)


def cache_key(key: int) -> str:
    return f"s{key:016x}"


@dataclass
class ModelRounds:
    """The model work of one round over the engine's model, stores and index (the engine and
    bulk refresh share it, so a refreshed state equals the one reached event by event)."""

    model: EmbSumInference
    items: ItemStore
    index: VectorIndex
    token_cache: BoundedCache
    config: EngineConfig
    stats: EngineStats
    id_half: IdHalf | None = None  # a hybrid checkpoint's ID term; None = content only
    lane: SummaryLane | None = None  # summaries off the recommendation path; None = in the round

    def session_texts(self, sessions: list[list[str]]) -> list[str]:
        """Encoder input per session; items removed from the catalogue contribute nothing."""
        with self.stats.timed("store"):
            out = []
            for ids in sessions:
                records = [self.items.get(i) for i in ids]
                out.append(ITEM_SEP.join(r.text for r in records if r is not None))
            return out


    def __post_init__(self) -> None:
        # encoder input key -> (a session key whose token states the cache holds, its embedding):
        # a session that grew past the token limit reads what its shorter self already encoded
        self.by_input: LRUCache[int, tuple[int, np.ndarray]] = LRUCache(self.config.encodings_kept)

    def encode_changed(self, tasks: list[Task], works: list[UserWork]) -> dict[int, np.ndarray]:
        """Encode every session of the round that its user has no embedding for (once per key, and
        once per encoder input: an input encoded before is reused)."""
        todo: dict[int, list[str]] = {}
        for t, w in zip(tasks, works, strict=True):
            for key, ids in zip(t.keys, t.sessions, strict=True):
                if key not in w.embeddings:
                    todo.setdefault(key, ids)
        if not todo:
            return {}
        texts = self.session_texts(list(todo.values()))
        with self.stats.timed("model"):
            inputs = self.model.session_input_keys(texts)
        fresh, embs = self._reuse(dict(zip(todo, inputs, strict=True)))
        new = {key: (text, inp) for key, text, inp in zip(todo, texts, inputs, strict=True) if key not in embs}
        unique = {inp: text for text, inp in new.values()}  # equal inputs in one round: encoded once
        if unique:
            with self.stats.timed("model"):
                encoded = dict(zip(unique, self.model.encode_sessions(list(unique.values())), strict=True))
            self.stats.sessions_encoded += len(encoded)
            for key, (_, inp) in new.items():
                fresh[key], embs[key] = f16(encoded[inp].token_states), f16(encoded[inp].embedding)
                if self.by_input.maxsize:
                    self.by_input[inp] = (key, embs[key])
            with self.stats.timed("store"):
                for key in new:
                    self.token_cache.put(cache_key(key), fresh[key])
        self.stats.sessions_reused += len(todo) - len(unique)
        for t, w in zip(tasks, works, strict=True):
            for key in t.keys:
                w.embeddings.setdefault(key, embs.get(key))
        return fresh

    def _reuse(self, inputs: dict[int, int]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """(token states, embeddings) of the sessions whose encoder input was encoded before; the
        states are copied under the new key (absent when the cache has let them go)."""
        fresh, embs = {}, {}
        with self.stats.timed("store"):
            for key, inp in inputs.items():
                hit = self.by_input.get(inp)
                if hit is None:
                    continue
                embs[key] = hit[1]
                states = self.token_cache.get(cache_key(hit[0]))
                if states is not None:
                    fresh[key] = states
                    self.token_cache.put(cache_key(key), states)
        return fresh, embs


    def token_states(self, keys_by_task: list[tuple[list[int], list[str]]], fresh: dict[int, np.ndarray],
                     recompute: bool = True) -> dict[int, np.ndarray]:
        """Token states for every listed session (keys with their texts): this round's, the
        cache's, else recomputed here (recompute=False: left out, for the summary lane to encode)."""
        found = dict(fresh)
        missing: dict[int, str] = {}
        with self.stats.timed("store"):
            for keys, texts in keys_by_task:
                for key, text in zip(keys, texts, strict=True):
                    if key in found or key in missing:
                        continue
                    cached = self.token_cache.get(cache_key(key))
                    if cached is None:
                        missing[key] = text
                    else:
                        found[key] = cached
        if missing and recompute:
            with self.stats.timed("model"):
                encoded = self.model.encode_sessions(list(missing.values()))
            self.stats.sessions_recomputed += len(encoded)
            for key, enc in zip(missing, encoded, strict=True):
                found[key] = f16(enc.token_states)
                self.token_cache.put(cache_key(key), found[key])
        return found


    def refresh_summaries(self, tasks: list[Task], works: list[UserWork],
                          fresh: dict[int, np.ndarray]) -> None:
        """Regenerate summary text + global embedding for the tasks whose policy says so; in lane
        mode queue them instead (the round ranks with the last global embedding)."""
        chosen = [(t, w) for t, w in zip(tasks, works, strict=True) if t.refresh]
        if not chosen:
            return
        texts = [self.session_texts(t.sessions) for t, _ in chosen]
        states = self.token_states([(t.keys, x) for (t, _), x in zip(chosen, texts, strict=True)], fresh,
                                   recompute=self.lane is None)
        allowed = self.model.allowed_for(texts)
        if self.lane is not None:
            self._queue(chosen, texts, states, allowed)
            return
        users = [[SessionEncoding(w.embeddings[k].astype(np.float32), states[k].astype(np.float32))
                  for k in t.keys] for t, w in chosen]
        with self.stats.timed("model"):
            summaries = self.model.summarize(users, allowed)
        self.stats.summaries += len(summaries)
        for (t, w), s in zip(chosen, summaries, strict=True):
            w.state.global_embedding = f16(s.embedding)
            w.state.summary = s.text
            w.state.summary_events, w.state.summary_ts = t.total, t.ts

    def _queue(self, chosen: list[tuple[Task, UserWork]], texts: list[list[str]],
               states: dict[int, np.ndarray], allowed: list[Grounding] | None) -> None:
        """Lane mode: one job per user, as kept (float16: half the bytes while they wait); a
        session the token cache no longer holds goes as its text, encoded by the lane, not here."""
        for n, ((t, w), x) in enumerate(zip(chosen, texts, strict=True)):
            sessions = [SessionEncoding(w.embeddings[k], states[k]) if k in states else text
                        for k, text in zip(t.keys, x, strict=True)]
            self.lane.submit(SummaryJob(t.user_id, t.total, t.ts, sessions, None if allowed is None else allowed[n]))


    def user_codes(self, tasks: list[Task], works: list[UserWork]) -> list[np.ndarray]:
        """UPE (m, d) per task from its sessions' embeddings and the user's global embedding."""
        sess = [np.stack([w.embeddings[k] for k in t.keys]) for t, w in zip(tasks, works, strict=True)]
        return self.codes_of(sess, [w.state.global_embedding for w in works])

    def codes_of(self, sessions: list[np.ndarray], globs: list[np.ndarray]) -> list[np.ndarray]:
        """UPE (m, d) float32 per user from its session embeddings (g, d) and global embedding,
        rounded through float16 as every kept vector is. Not stored: one poly-attention over
        g + 1 vectors, cheaper than reading m x d codes back (docs/architecture.md)."""
        # a user whose first summary is still in the lane has no global embedding yet: zeros
        glob = np.stack([g.astype(np.float32) if len(g) else np.zeros(self.model.dim, np.float32)
                         for g in globs])
        with self.stats.timed("model"):
            codes = self.model.user_codes([s.astype(np.float32) for s in sessions], glob)
        return [f16(c).astype(np.float32) for c in codes]


    def rank(self, tasks: list[Task], codes: list[np.ndarray]) -> list[list[tuple[str, float]]]:
        """Retrieve with q of the interest vectors (and the ID term for a hybrid), each fetch
        bounded, drop seen items, rerank the union with the exact score."""
        cfg = self.config
        queries = [select_queries(self.model.interest_vectors(c[None])[0], cfg.query_codes) for c in codes]
        with self.stats.timed("index"), self.stats.timed("retrieval"):
            hits = self.index.search_many(queries, cfg.candidates, [t.seen for t in tasks], bound=cfg.fetch)
        cands = [[i for i, _ in h] for h in hits]
        users = self._id_candidates(tasks, cands)
        width = max((len(c) for c in cands), default=0)
        if width == 0:
            return [[] for _ in tasks]
        # users of a round share most candidates: each distinct item is read and keyed once
        rows = {i: k for k, i in enumerate(dict.fromkeys(i for ids in cands for i in ids))}
        index = np.zeros((len(tasks), width), np.int64)  # padding columns point at row 0, ignored
        for u, ids in enumerate(cands):
            index[u, : len(ids)] = [rows[i] for i in ids]
        with self.stats.timed("store"):
            table = np.stack([self.items.get(i).cpe for i in rows]).astype(np.float32)
        with self.stats.timed("model"):
            scores = self.model.score_candidates(np.stack(codes), table, index)  # (U, width)
            if users is not None:
                for u, term in enumerate(self.id_half.terms(users, cands)):
                    scores[u, : len(term)] += term
        return [self._top(ids, scores[u, : len(ids)]) for u, ids in enumerate(cands)]

    def _id_candidates(self, tasks: list[Task], cands: list[list[str]]) -> np.ndarray | None:
        """Hybrid only: add each user's best ID-term items (in the catalogue) to cands, in place;
        returns the users' tower vectors h_u."""
        if self.id_half is None:
            return None
        with self.stats.timed("model"):
            users = self.id_half.user_vectors([[i for s in t.sessions for i in s] for t in tasks])
            extra = self.id_half.retrieve(users, self.config.candidates, [t.seen for t in tasks],
                                          bound=self.config.fetch)
        with self.stats.timed("store"):
            for c, e in zip(cands, extra, strict=True):
                have = set(c)
                c.extend(i for i in e if i not in have and self.items.get(i) is not None)
        return users

    def _top(self, ids: list[str], s: np.ndarray) -> list[tuple[str, float]]:
        order = np.argsort(-s, kind="stable")[: self.config.top_k]
        return [(ids[j], float(s[j])) for j in order]
