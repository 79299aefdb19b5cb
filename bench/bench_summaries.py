"""One question: are a checkpoint's generated summaries readable (EOS, no loops, diverse)?

Generates the summary of N test users (history = train + valid, as at test time) and writes
length, EOS share, share with a repeated 3-gram, distinct-2 and a few examples. Usage:
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
from model.evaluation.summary_quality import summary_quality
from model.examples import history_chunks, user_sessions
from model.inference import EmbSumInference
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
    t0, sums = time.time(), []
    for k in track(range(0, len(users), args.batch), description="summaries"):
        texts = [[session_text(data.items[i] for i in s) for s in history_chunks(user_sessions(hist[u], cfg), cfg)]
                 for u in users[k:k + args.batch]]
        sums += inf.encode_users(texts)[1]
    out = {"checkpoint": args.checkpoint, "data": args.data, "summary_max_tokens": cfg.summary_max_tokens,
           "no_repeat_ngram": cfg.no_repeat_ngram, "seconds": round(time.time() - t0, 1),
           "quality": summary_quality([s.tokens for s in sums], cfg.summary_max_tokens - 2),
           "examples": [{"user_id": u, "summary": s.text} for u, s in zip(users, sums, strict=True)][:args.examples]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    Console().print_json(data=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
