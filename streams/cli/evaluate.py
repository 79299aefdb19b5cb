"""`threadrec evaluate`: EmbSum and baselines (popularity, recent popularity, co-occurrence,
content, and the trained ID baselines SASRec and BPR-MF) on impressions + full ranking; JSON + table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.config import INFERENCE_MODES
from streams.cli.train import ModelCommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a checkpoint and the baselines")
    p.add_argument("--data", required=True, help="prepared data directory")
    p.add_argument("--checkpoint", default=None, help="EmbSum checkpoint dir (omit: baselines only)")
    p.add_argument("--json", dest="json_out", default=None, help="write results JSON here")
    p.add_argument("--split", choices=["test", "valid"], default="test")
    p.add_argument("--max-users", type=int, default=None, help="evaluate only the first N users")
    p.add_argument("--device", default=None)
    p.add_argument("--inference", choices=INFERENCE_MODES, default="fp32",
                   help="the checkpoint's numerics (fp32 exact; int8/bf16: see bench/bench_inference.py)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-baselines", action="store_true", help="score the checkpoint only")
    p.add_argument("--no-id-baselines", action="store_true",
                   help="skip the trained ID baselines (SASRec, BPR-MF) for a quick run; the others stay")
    p.add_argument("--sasrec-minutes", type=float, default=15.0,
                   help="wall-clock training budget of the SASRec baseline (early-stopped on valid; 0 skips it)")
    p.add_argument("--bpr-minutes", type=float, default=5.0,
                   help="wall-clock training budget of the BPR-MF baseline (early-stopped on valid; 0 skips it)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the ID baselines trained here (SASRec, BPR-MF), stored in the JSON; give the "
                        "seed the checkpoint was trained with, one JSON per seed for `threadrec merge-seeds`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.errors import ModelError
    from model.evaluation.evaluate import evaluate, print_table

    try:
        result = evaluate(args.data, args.checkpoint, split=args.split, max_users=args.max_users,
                          device=args.device, progress=not args.no_progress,
                          baselines=not args.no_baselines, sasrec_minutes=args.sasrec_minutes,
                          bpr_minutes=args.bpr_minutes, id_baselines=not args.no_id_baselines,
                          mode=args.inference, seed=args.seed)
    except ModelError as e:
        raise ModelCommandError(str(e)) from e
    print_table(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2, default=str))
    return 0
