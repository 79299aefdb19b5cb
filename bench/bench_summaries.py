"""One question: are a checkpoint's generated summaries readable (EOS, no loops, diverse) and
grounded (distinct per user, naming only titles of the user's history, the last session's genre)?

Generates the summary of N test users (history = train + valid, as at test time) and writes
length, EOS share, share with a repeated 3-gram, distinct-2, the grounding shares
(model/summary_quality.py) and a few examples, for free and for grounded generation (tokens of the
user's history and the summary template only). Usage:
    python bench/bench_summaries.py --checkpoint CKPT --data data/movielens --users 200 \
        --json results/summary_quality.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track

from model.dataset import load_prepared
from model.evaluation.evaluate import split_history
from model.evaluation.summary_quality import TitleFinder, grounding, summary_quality
from model.examples import history_chunks, user_sessions
from model.inference import EmbSumInference
from model.summaries import genres
from model.text import session_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--json", type=Path, default=ROOT / "results/summary_quality.json")
    args = ap.parse_args()
    inf = EmbSumInference.from_checkpoint(args.checkpoint, "cpu")
    data, cfg = load_prepared(args.data), inf.config
    hist = split_history(data, "test")
    users = sorted(u for u in hist if hist[u])[:args.users]
    sessions = {u: history_chunks(user_sessions(hist[u], cfg), cfg) for u in users}
    facts = ([{data.items[e["item_id"]]["title"] for e in hist[u]} for u in users],
             [{g for i in sessions[u][-1] for g in genres(data.items[i])} for u in users],
             TitleFinder(it["title"] for it in data.items.values()))
    out = {"checkpoint": args.checkpoint, "data": args.data, "summary_max_tokens": cfg.summary_max_tokens,
           "no_repeat_ngram": cfg.no_repeat_ngram, "summary_source": cfg.summary_source}
    for grounded in (False, True):
        t0, sums = time.time(), []
        for k in track(range(0, len(users), args.batch), description=f"summaries (grounded={grounded})"):
            texts = [[session_text(data.items[i] for i in s) for s in sessions[u]] for u in users[k:k + args.batch]]
            sums += inf.encode_users(texts, grounded=grounded)[1]
        out["grounded" if grounded else "free"] = {
            "seconds": round(time.time() - t0, 1),
            "quality": summary_quality([s.tokens for s in sums], cfg.summary_max_tokens - 2),
            "grounding": grounding([s.text for s in sums], *facts),
            "examples": [{"user_id": u, "summary": s.text} for u, s in zip(users, sums, strict=True)][:args.examples]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    Console().print_json(data=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
