"""`threadrec data prepare {movielens,mind,jsonl,csv}`: write a prepared data directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory (prepared format)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed for sampled negatives (default 0)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bad input lines and report counts by reason instead of stopping")


def _custom_parser(sub: argparse._SubParsersAction, fmt: str) -> None:
    p = sub.add_parser(fmt, help=f"your own logs in {fmt.upper()} (items + engagements files)")
    p.add_argument("--items", type=Path, required=True, help=f"items file ({fmt})")
    p.add_argument("--engagements", type=Path, required=True, help=f"engagements file ({fmt})")
    cols = p.add_argument_group("column names")
    for flag, default in [("item-id-col", "item_id"), ("user-id-col", "user_id"), ("ts-col", "ts"),
                          ("kind-col", "kind"), ("title-col", "title"), ("body-col", "body"),
                          ("category-col", "category"), ("item-ts-col", "ts")]:
        cols.add_argument(f"--{flag}", default=default, help=f"(default {default!r})")
    cols.add_argument("--default-kind", default="click",
                      help="kind for engagements without one (default 'click')")
    if fmt == "csv":
        p.add_argument("--delimiter", default=",", help="field separator (default ',')")
    _common(p)
    p.set_defaults(func=run_custom, fmt=fmt)


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="prepare datasets (MovieLens, MIND, your own logs)")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prep = dsub.add_parser("prepare", help="write items/engagements/splits/impressions/meta.json")
    sub = prep.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    ml = sub.add_parser("movielens", help="MovieLens-100K from the installed recbole wheel")
    ml.add_argument("--source", type=Path, default=None,
                    help="directory with ml-100k.inter/.item instead of the recbole wheel")
    _common(ml)
    ml.set_defaults(func=run_movielens)

    mind = sub.add_parser("mind", help="a MIND download (behaviors.tsv + news.tsv)")
    mind.add_argument("--from", dest="source", type=Path, required=True,
                      help="MIND dir: train/+dev/ (or MIND*_train/+MIND*_dev/) or one set")
    mind.add_argument("--valid-fraction", type=float, default=0.1,
                      help="share of impressions (latest by time) used for valid (default 0.1)")
    _common(mind, seed=False)
    mind.set_defaults(func=run_mind)

    for fmt in ("jsonl", "csv"):
        _custom_parser(sub, fmt)

    cold = dsub.add_parser("cold", help="a copy of a prepared directory with a cold-item split")
    cold.add_argument("--from", dest="source", type=Path, required=True, help="prepared data directory")
    cold.add_argument("--out", type=Path, required=True, help="output directory")
    cold.add_argument("--fraction", type=float, default=0.1, help="share of engaged items held out (default 0.1)")
    cold.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    cold.set_defaults(func=run_cold)


def run_cold(args: argparse.Namespace) -> int:
    from streams.data.cold import write_cold_split

    info = write_cold_split(args.source, args.out, args.fraction, args.seed)["cold_split"]
    print(f"cold split -> {args.out}: {info['chosen']} of {info['candidates']} late items held out "
          f"(wanted {info['wanted']}); {info['test_users_with_cold_target']} test users have a cold target")
    return 0


def run_movielens(args: argparse.Namespace) -> int:
    from streams.data.movielens import prepare_movielens

    prepare_movielens(args.out, source=args.source, seed=args.seed, skip_bad=args.skip_bad,
                      echo=print)
    return 0


def run_mind(args: argparse.Namespace) -> int:
    from streams.data.mind import prepare_mind

    prepare_mind(args.source, args.out, skip_bad=args.skip_bad,
                 valid_fraction=args.valid_fraction, echo=print)
    return 0


def run_custom(args: argparse.Namespace) -> int:
    from streams.data.custom import Columns, prepare_custom

    cols = Columns(item_id=args.item_id_col, user_id=args.user_id_col, ts=args.ts_col,
                   kind=args.kind_col, title=args.title_col, body=args.body_col,
                   category=args.category_col, item_ts=args.item_ts_col,
                   default_kind=args.default_kind)
    prepare_custom(args.items, args.engagements, args.out, fmt=args.fmt, cols=cols, seed=args.seed,
                   skip_bad=args.skip_bad, delimiter=getattr(args, "delimiter", ","), echo=print)
    return 0
