"""User-interest summaries as decoder targets: an OpenAI-compatible LLM client and an offline fallback."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from model.config import EmbSumConfig
from model.errors import SummaryError

logger = logging.getLogger(__name__)

PROMPT = ("Here is a user's engagement history, oldest first:\n{history}\n\n"
          "In about three sentences, summarise this user's interests (topics, genres, styles) "
          "so that a recommender can find new items for them. Answer with the summary only.")


class Summarizer(Protocol):
    source: str

    def summarize(self, items: Sequence[dict[str, Any]],
                  last_session: Sequence[dict[str, Any]] | None = None) -> str: ...


YEAR = re.compile(r"\((\d{4})\)\s*$")
# every word the fallback's sentences add around the facts: grounded generation may use these and
# the user's own history tokens, nothing else (model/embsum.py: EmbSum.generate's `allowed`)
TEMPLATE = ("This user has no history yet. Lately: , and . Last session: . Their taste moved from to . "
            "Mostly as before; is % of their items. Titles from the s, the oldest from . "
            "The first was")
# shares and item counts the sentences state, and the decades ("the 1970s": a decade of the user's
# years need not be one of its titles' years)
NUMBERS = " ".join([str(k) for k in range(1001)] + [f"{y}s" for y in range(1880, 2040, 10)])


def genres(item: dict[str, Any]) -> list[str]:
    """An item's genres: its `genres` list when the data has one, else its '|'-separated category."""
    g = item.get("genres")
    if isinstance(g, list) and g:
        return [str(x).strip() for x in g if str(x).strip()]
    return [c.strip() for c in str(item.get("category") or "").split("|") if c.strip()]


def _names(xs: Sequence[str]) -> str:
    return xs[0] if len(xs) == 1 else f"{', '.join(xs[:-1])} and {xs[-1]}"


def _latest(recent: Sequence[dict[str, Any]]) -> str:
    """The latest title and the latest one of another year: two titles of one year repeat
    "( 1996 )", a 3-gram the decoder may not repeat, so a target with it teaches what generation
    then cannot say (two: with the last session's genres they fit 30 tokens)."""
    titles = [t for t in dict.fromkeys(str(it.get("title") or "").strip() for it in reversed(recent)) if t]
    if not titles:
        return ""

    def year(title: str) -> str | None:
        return m.group(1) if (m := YEAR.search(title)) else None

    other = [t for t in titles[1:] if year(t) is None or year(t) != year(titles[0])]
    return f"Lately: {_names(titles[:1] + other[:1])}."


def _last_session(session: Sequence[dict[str, Any]]) -> str:
    """The genres of the last session, the most frequent first (at most three)."""
    top = [g for g, _ in Counter(g for it in session for g in genres(it)).most_common(3)]
    return f"Last session: {_names(top)}." if top else ""


def _shift(older: Sequence[dict[str, Any]], recent: Sequence[dict[str, Any]]) -> str:
    """The genre the recent items lean to, against the older ones (a shift is said as one)."""
    now = Counter(g for it in recent for g in genres(it))
    if not now:
        return ""
    before = Counter(g for it in older for g in genres(it))
    top_now, top_before = now.most_common(1)[0][0], (before.most_common(1) or [("", 0)])[0][0]
    if top_before and top_before != top_now:
        return f"Their taste moved from {top_before} to {top_now}."
    every = before + now
    share = every[top_now] * 100 // max(len(older) + len(recent), 1)
    return f"Mostly {top_now} as before; {top_now} is {share}% of their {len(older) + len(recent)} items."


def _era(items: Sequence[dict[str, Any]]) -> str:
    """The decade most titles come from, when titles carry a year; else the first title."""
    years = [int(m.group(1)) for it in items if (m := YEAR.search(str(it.get("title") or "")))]
    if len(years) * 2 < len(items):
        first = str(items[0].get("title") or "").strip()
        return f"The first was {first}." if first and len(items) > 3 else ""
    decade = Counter(y // 10 * 10 for y in years).most_common(1)[0][0]
    oldest = min(years)
    return f"Titles from the {decade}s" + (f", the oldest from {oldest}." if oldest < decade else ".")


class FallbackSummarizer:
    """Deterministic summary from facts of the user's own history only: the genres of the last
    session, the latest title and the latest of another year, the genre the recent items lean
    to against the older ones, and the era of the titles (in that order: a target cut to the token budget keeps the first
    two even at 32 tokens; measured by bench/bench_summaries.py --targets)."""

    source = "fallback"

    def summarize(self, items: Sequence[dict[str, Any]],
                  last_session: Sequence[dict[str, Any]] | None = None) -> str:
        """The summary of items (oldest first); last_session: its last session's items (default:
        the last three items)."""
        if not items:
            return "This user has no history yet."
        cut = len(items) - max(3, len(items) // 5)  # the recent fifth (at least 3 items)
        older, recent = items[:max(cut, 0)], items[max(cut, 0):]
        last = _last_session(last_session if last_session else items[-3:])
        return " ".join(s for s in (last, _latest(recent), _shift(older, recent), _era(items)) if s)


class LLMSummarizer:
    """Chat-completions client for any OpenAI-compatible server, with an on-disk cache."""

    source = "llm"

    def __init__(self, url: str, model: str, api_key: str | None = None, cache_dir: str | Path | None = None,
                 retries: int = 4, timeout_s: float = 60.0):
        import httpx  # only the LLM path needs it

        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.retries = model, retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)
        self.cache = Path(cache_dir or Path.home() / ".cache" / "threadrec" / "summaries")
        self.cache.mkdir(parents=True, exist_ok=True)

    def summarize(self, items: Sequence[dict[str, Any]],
                  last_session: Sequence[dict[str, Any]] | None = None) -> str:
        """The endpoint's summary of items (the last session is their tail: the prompt has it)."""
        from model.text import item_text

        prompt = PROMPT.format(history="\n".join(f"- {item_text(it)}" for it in items))
        key = hashlib.sha256(f"{self.model}\n{prompt}".encode()).hexdigest()
        f = self.cache / f"{key}.json"
        if f.exists():
            return json.loads(f.read_text())["summary"]
        text = self._ask(prompt)
        f.write_text(json.dumps({"summary": text, "model": self.model}))
        return text

    def _ask(self, prompt: str) -> str:
        import httpx

        body = {"model": self.model, "temperature": 0.0, "max_tokens": 200,
                "messages": [{"role": "user", "content": prompt}]}
        err = "no attempt"
        for attempt in range(self.retries):
            if attempt:
                time.sleep(min(0.5 * 2**attempt, 8.0))  # exponential backoff
            try:
                resp = self.client.post(self.url, json=body)
            except httpx.HTTPError as e:
                err = f"{type(e).__name__}: {e}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                err = f"HTTP {resp.status_code}"
                continue
            if resp.status_code >= 400:  # bad key or model name: retrying will not help
                raise SummaryError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                return resp.json()["choices"][0]["message"]["content"].strip()
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise SummaryError(f"{self.url}: unexpected answer ({e}): {resp.text[:200]}") from e
        raise SummaryError(f"summary endpoint {self.url} failed after {self.retries} tries: {err}")


def make_summarizer(cfg: EmbSumConfig) -> Summarizer:
    """The configured summary source; "llm" needs llm_url and llm_model."""
    if cfg.summary_source == "fallback":
        return FallbackSummarizer()
    if cfg.summary_source == "llm":
        if not cfg.llm_url or not cfg.llm_model:
            raise SummaryError("summary_source 'llm' needs llm_url and llm_model")
        key = cfg.llm_api_key or os.environ.get("THREADREC_LLM_API_KEY")
        return LLMSummarizer(cfg.llm_url, cfg.llm_model, key, cfg.llm_cache_dir)
    raise SummaryError(f"unknown summary_source {cfg.summary_source!r} (fallback or llm)")
