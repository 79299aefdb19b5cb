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
    from model.train import TrainOptions

    p = subparsers.add_parser("train", help="train EmbSum (NCE + lambda * summary loss)")
    p.add_argument("--data", required=True, help="prepared data directory")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    p.add_argument("--no-progress", action="store_true")
    add_flags(p.add_argument_group("model (EmbSumConfig)"), EmbSumConfig, skip=MODEL_SKIP)
    add_flags(p.add_argument_group("optimisation (TrainOptions)"), TrainOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.config import EmbSumConfig
    from model.errors import ModelError
    from model.train import TrainOptions, train

    cfg = EmbSumConfig(**given(args, EmbSumConfig))
    opts = TrainOptions(**given(args, TrainOptions))
    try:
        stats = train(args.data, args.out, cfg, opts, resume=args.resume, progress=not args.no_progress,
                      command="threadrec " + shlex.join(sys.argv[1:]))
    except ModelError as e:
        raise ModelCommandError(str(e)) from e
    last = stats["valid"][-1] if stats["valid"] else {}
    print(json.dumps({"checkpoint": args.out, "steps": stats["step"], "elapsed_s": round(stats["elapsed_s"], 1),
                      "final_loss": stats["losses"][-1] if stats["losses"] else None, "valid": last}))
    return 0
