"""`threadrec merge-seeds`: per-seed evaluation JSONs (`threadrec evaluate --seed S`) into one
results JSON with means over seeds, bootstrap intervals over users and paired differences."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streams.cli.train import ModelCommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("merge-seeds", help="merge per-seed evaluation JSONs into one results JSON")
    p.add_argument("runs", nargs="+", type=Path, help="evaluation JSONs of one split, one per seed")
    p.add_argument("--json", dest="json_out", type=Path, required=True, help="results JSON to write")
    p.add_argument("--focus", default="hybrid",
                   help="the model compared with every other one (default hybrid; embsum when absent)")
    p.add_argument("--variant-name", default=None,
                   help="name of a recipe variant (e.g. lambda0): its checkpoint models join as <model>_<name>")
    p.add_argument("--variant-runs", nargs="+", type=Path, default=[],
                   help="the variant's evaluation JSONs, one per seed of the runs above")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.evaluation.seeds import SeedMergeError, claim, merge_seeds, with_variant

    if bool(args.variant_name) != bool(args.variant_runs):
        raise ModelCommandError("--variant-name and --variant-runs go together")
    try:
        runs = [json.loads(f.read_text()) for f in args.runs]
        if args.variant_name:
            runs = with_variant(runs, [json.loads(f.read_text()) for f in args.variant_runs], args.variant_name)
        out = merge_seeds(runs, [str(f) for f in args.runs], args.focus)
    except (OSError, ValueError, SeedMergeError) as e:
        raise ModelCommandError(str(e)) from e
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1))
    for key, d in out.items():
        if key.startswith("diff_"):
            print(f"{key}: {d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] {claim(d)}")
    print(f"seeds {out['seeds']} over {out['users']} users -> {args.json_out}")
    return 0
