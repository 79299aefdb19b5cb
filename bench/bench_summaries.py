"""One question: are a checkpoint's generated summaries readable (EOS, no loops, diverse) and
grounded (distinct per user, naming only titles of the user's history, the last session's genre)?

Generates the summary of N test users (history = train + valid, as at test time) and writes
length, EOS share, share with a repeated 3-gram, distinct-2, the grounding shares
(model/summary_quality.py) and a few examples, for free and for grounded generation (tokens of the
user's history and the summary template only). Usage:
    python bench/bench_summaries.py --checkpoint CKPT --data data/movielens --users 200 \
        --json results/summary_quality.json

--targets measures the training targets instead (no checkpoint needed: what the decoder is taught,
cut to the token budget as in training), on the same users and with the same metrics.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track

from model.backbones import load_tokenizer
from model.batching import fit_sentences
from model.config import EmbSumConfig
from model.dataset import load_prepared
from model.evaluation.evaluate import split_history
from model.evaluation.summary_quality import TitleFinder, grounding, summary_quality
from model.examples import history_chunks, user_sessions
from model.inference import EmbSumInference
from model.summaries import FallbackSummarizer, genres
from model.text import session_text

ROOT = Path(__file__).resolve().parents[1]


def target_report(data, cfg: EmbSumConfig, users: list[str], hist: dict, facts: tuple, examples: int) -> dict:
    """The fallback targets of the users' kept sessions, cut to the budget as training cuts them."""
    tok, budget = load_tokenizer(cfg), cfg.summary_max_tokens - 2
    rows, texts = [], []
    for u in users:
        sessions = user_sessions(hist[u], cfg)
        target = FallbackSummarizer().summarize([data.items[i] for s in sessions for i in s],
                                                [data.items[i] for i in sessions[-1]])
        rows.append(fit_sentences(tok, target, budget))
        texts.append(tok.decode(rows[-1], skip_special_tokens=True))
    return {"summary_max_tokens": cfg.summary_max_tokens, "max_sessions": cfg.max_sessions,
            "quality": summary_quality(rows, budget + 1),  # every target ends with EOS in training
            "grounding": grounding(texts, *facts),
            "examples": [{"user_id": u, "summary": t} for u, t in zip(users, texts, strict=True)][:examples]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="the checkpoint whose summaries are measured (not with --targets)")
    ap.add_argument("--targets", action="store_true", help="measure the training targets, not a checkpoint")
    ap.add_argument("--summary-max-tokens", type=int, default=48, help="--targets: the budget (the CPU recipe's)")
    ap.add_argument("--max-sessions", type=int, default=4, help="--targets: sessions kept (the CPU recipe's)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--json", type=Path, default=ROOT / "results/summary_quality.json")
    args = ap.parse_args()
    if not args.targets and not args.checkpoint:
        ap.error("--checkpoint is required unless --targets")
    inf = None if args.targets else EmbSumInference.from_checkpoint(args.checkpoint, "cpu")
    cfg = inf.config if inf else EmbSumConfig(summary_max_tokens=args.summary_max_tokens,
                                              max_sessions=args.max_sessions)
    data = load_prepared(args.data)
    hist = split_history(data, "test")
    users = sorted(u for u in hist if hist[u])[:args.users]
    sessions = {u: history_chunks(user_sessions(hist[u], cfg), cfg) for u in users}
    facts = ([{data.items[e["item_id"]]["title"] for e in hist[u]} for u in users],
             [{g for i in sessions[u][-1] for g in genres(data.items[i])} for u in users],
             TitleFinder(it["title"] for it in data.items.values()))
    if inf is None:
        out = {"data": args.data, "users": len(users), "targets": target_report(data, cfg, users, hist, facts,
                                                                                args.examples)}
        return write(out, args.json)
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
    return write(out, args.json)


def write(out: dict, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    Console().print_json(data=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
