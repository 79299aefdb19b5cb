"""User-interest summaries as decoder targets: an OpenAI-compatible LLM client and an offline fallback."""

from __future__ import annotations

import hashlib
import json
import logging
import os
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

    def summarize(self, items: Sequence[dict[str, Any]]) -> str: ...


class FallbackSummarizer:
    """Deterministic ~3-sentence summary: dominant categories and representative titles."""

    source = "fallback"

    def summarize(self, items: Sequence[dict[str, Any]]) -> str:
        if not items:
            return "This user has no history yet."
        cats = Counter(c.strip() for it in items for c in str(it.get("category") or "").split("|") if c.strip())
        top = [c for c, _ in cats.most_common(3)]
        titles = [str(it.get("title") or "").strip() for it in reversed(items)]
        reps = list(dict.fromkeys(t for t in titles if t))[:3]
        first = (f"The user mostly engages with {', '.join(top[:-1])} and {top[-1]}." if len(top) > 1
                 else f"The user mostly engages with {top[0]}." if top else "The user has varied interests.")
        second = f"Recent favourites include {', '.join(reps)}." if reps else "No titles are known."
        share = f"{cats[top[0]] * 100 // max(len(items), 1)}%" if top else "none"
        third = f"About {share} of the {len(items)} items are {top[0] if top else 'uncategorised'}."
        return " ".join([first, second, third])


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

    def summarize(self, items: Sequence[dict[str, Any]]) -> str:
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
