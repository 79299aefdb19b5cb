"""`threadrec train`: train EmbSum on a prepared data directory into a checkpoint directory."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from streams.cli.flags import add_flags, given
from streams.errors import ThreadrecError


class ModelCommandError(ThreadrecError):
    """A model-package error shown to the user as one line."""


MODEL_SKIP = ("t5_config", "extra", "llm_api_key")  # not for a command line (or a secret)


def register(subparsers: argparse._SubParsersAction) -> None:
    from model.config import EmbSumConfig
    from model.training.options import TrainOptions

    p = subparsers.add_parser("train", help="train EmbSum (NCE + lambda * summary loss)")
    p.add_argument("--data", required=True, help="prepared data directory")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    p.add_argument("--no-progress", action="store_true")
    add_flags(p.add_argument_group("model (EmbSumConfig)"), EmbSumConfig, skip=MODEL_SKIP)
    add_flags(p.add_argument_group("optimisation (TrainOptions)"), TrainOptions)
    add_hybrid_flags(p)
    p.set_defaults(func=run)


def add_hybrid_flags(p: argparse.ArgumentParser) -> None:
    """The hybrid's ID half: on by default after the content model, or alone on a given one."""
    from model.ids.options import HybridConfig, SASRecOptions

    g = p.add_argument_group("hybrid ID half (HybridConfig, SASRecOptions as --sasrec-*)")
    g.add_argument("--content-only", action="store_true", help="train EmbSum alone (ablation)")
    g.add_argument("--content-checkpoint", default=None,
                   help="a trained content checkpoint: skip content training, add the ID half, write --out")
    g.add_argument("--retune-prior", action="store_true",
                   help="only re-choose, on valid, where items without an ID row sit (the rowless prior) "
                        "in the hybrid checkpoint at --out; nothing is trained")
    add_flags(g, HybridConfig)
    add_flags(g, SASRecOptions, dest_prefix="sasrec_")


def run(args: argparse.Namespace) -> int:
    from model.config import EmbSumConfig
    from model.errors import ModelError
    from model.training.train import TrainOptions, train

    cfg = EmbSumConfig(**given(args, EmbSumConfig))
    opts = TrainOptions(**given(args, TrainOptions))
    try:
        if args.retune_prior:
            from model.dataset import load_prepared
            from model.training.hybrid_train import retune_prior

            facts = retune_prior(load_prepared(args.data), args.out, progress=not args.no_progress)
            print(json.dumps({"prior": facts}))
            return 0
        if args.content_checkpoint is None:
            stats = train(args.data, args.out, cfg, opts, resume=args.resume, progress=not args.no_progress,
                          command="threadrec " + shlex.join(sys.argv[1:]))
            last = stats["valid"][-1] if stats["valid"] else {}
            print(json.dumps({"checkpoint": args.out, "steps": stats["step"], "elapsed_s": round(stats["elapsed_s"], 1),
                              "final_loss": stats["losses"][-1] if stats["losses"] else None, "valid": last}))
        if not args.content_only:
            print(json.dumps({"hybrid": run_hybrid(args)}))
    except ModelError as e:
        raise ModelCommandError(str(e)) from e
    return 0


def run_hybrid(args: argparse.Namespace) -> dict:
    """Add the ID half to the content checkpoint (--content-checkpoint, else --out's best)."""
    from pathlib import Path

    from model.dataset import load_prepared
    from model.ids.hybrid import HybridConfig
    from model.ids.sasrec import SASRecOptions
    from model.training.hybrid_train import train_hybrid

    content = Path(args.content_checkpoint or args.out)
    if args.content_checkpoint is None and (content / "best" / "model.safetensors").exists():
        content = content / "best"
    out = args.out if args.content_checkpoint else content
    tower = given(args, SASRecOptions, "sasrec_")
    if args.seed is not None:  # --seed seeds the whole run; --sasrec-seed, when given, the tower alone
        tower.setdefault("seed", args.seed)
    facts = train_hybrid(load_prepared(args.data), content, out, HybridConfig(**given(args, HybridConfig)),
                         SASRecOptions(**tower), progress=not args.no_progress)
    return {"checkpoint": str(out), **{k: v for k, v in facts.items() if k != "tower"},
            "tower": {k: v for k, v in facts["tower"].items() if k != "curve"}}
