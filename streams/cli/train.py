"""`threadrec train`: train EmbSum on a prepared data directory into a checkpoint directory."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from streams.errors import ThreadrecError


class ModelCommandError(ThreadrecError):
    """A model-package error shown to the user as one line."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train EmbSum (NCE + lambda * summary loss)")
    p.add_argument("--data", required=True, help="prepared data directory")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--eval-every", type=int, default=200, help="validate + checkpoint every N steps")
    p.add_argument("--eval-users", type=int, default=200)
    p.add_argument("--max-sessions", type=int, default=8, help="g: sessions kept per user")
    p.add_argument("--max-session-tokens", type=int, default=128)
    p.add_argument("--max-item-tokens", type=int, default=64)
    p.add_argument("--summary-max-tokens", type=int, default=64)
    p.add_argument("--freeze-layers", type=int, default=0, help="freeze embeddings + N lower encoder layers")
    p.add_argument("--lambda-sum", type=float, default=0.05)
    p.add_argument("--m", type=int, default=32, help="user codes (UPE)")
    p.add_argument("--n", type=int, default=4, help="item codes (CPE)")
    p.add_argument("--r", type=int, default=4, help="negatives per positive")
    p.add_argument("--backbone", choices=["minilm", "t5"], default="minilm")
    p.add_argument("--t5-path", default=None, help="local T5 directory (backbone t5)")
    p.add_argument("--summary-source", choices=["fallback", "llm"], default="fallback")
    p.add_argument("--llm-url", default=None)
    p.add_argument("--llm-model", default=None)
    p.add_argument("--resume", action="store_true", help="continue from --out")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-clock budget incl. validation: stop cleanly, validate and save before it ends")
    p.add_argument("--history-mode", choices=["sessions", "one_chunk"], default="sessions",
                   help="encode sessions separately (paper) or the whole history as one chunk (ablation)")
    p.add_argument("--select-metric", default="auc",
                   help="valid metric that picks OUT/best (auc, mrr, ndcg@10, full_ndcg@10, ...)")
    p.add_argument("--head-lr-mult", type=float, default=10.0, help="lr multiplier of the EmbSum heads")
    p.add_argument("--warmup", type=float, default=0.1, help="warm-up fraction of the schedule")
    p.add_argument("--sample-by", choices=["example", "user"], default="example",
                   help="draw batches uniformly over examples, or over users (as evaluation weighs them)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="training autocast: auto = bf16 on CUDA and on CPUs with native bf16, else fp32")
    p.add_argument("--holdout-events", type=int, default=0,
                   help="train only before the data's last N engagements (the online replay's held-out period)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.config import EmbSumConfig
    from model.errors import ModelError
    from model.train import TrainOptions, train

    cfg = EmbSumConfig(backbone=args.backbone, t5_path=args.t5_path, m=args.m, n=args.n, r=args.r,
                       lambda_sum=args.lambda_sum, max_sessions=args.max_sessions,
                       max_session_tokens=args.max_session_tokens, max_item_tokens=args.max_item_tokens,
                       summary_max_tokens=args.summary_max_tokens, freeze_layers=args.freeze_layers,
                       summary_source=args.summary_source, llm_url=args.llm_url, llm_model=args.llm_model,
                       history_mode=args.history_mode)
    opts = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every,
                        eval_users=args.eval_users, seed=args.seed, device=args.device,
                        max_minutes=args.max_minutes, select_metric=args.select_metric,
                        head_lr_mult=args.head_lr_mult, warmup=args.warmup, sample_by=args.sample_by,
                        precision=args.precision, holdout_events=args.holdout_events)
    try:
        stats = train(args.data, args.out, cfg, opts, resume=args.resume, progress=not args.no_progress,
                      command="threadrec " + shlex.join(sys.argv[1:]))
    except ModelError as e:
        raise ModelCommandError(str(e)) from e
    last = stats["valid"][-1] if stats["valid"] else {}
    print(json.dumps({"checkpoint": args.out, "steps": stats["step"], "elapsed_s": round(stats["elapsed_s"], 1),
                      "final_loss": stats["losses"][-1] if stats["losses"] else None, "valid": last}))
    return 0
