"""`threadrec data prepare {movielens,mind,goodreads,jsonl,csv}`: write a prepared data directory;
`threadrec data cold`: a cold-item split of a prepared one; `threadrec data synth`: a seeded
production-like synthetic feed in the same format."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def _fraction(text: str) -> float:
    """argparse type: a share in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def _positive(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1")
    return value


def _common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory (prepared format)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed for sampled negatives (default 0)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bad input lines and report counts by reason instead of stopping")
    p.add_argument("--cold-items", type=_fraction, default=0.0, metavar="FRACTION",
                   help="hold this share of engaged items out of training, drawn among items first "
                        "engaged in the last 30%% of the timeline (meta.json cold_items; default 0 = off)")
    p.add_argument("--cold-seed", type=int, default=0, help="seed of the cold-item draw (default 0)")


def _cold(args: argparse.Namespace) -> dict:
    return {"cold_items": args.cold_items, "cold_seed": args.cold_seed}


def _goodreads_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("goodreads", help="UCSD Goodreads interactions + books (JSON Lines, plain or .gz)")
    p.add_argument("--interactions", type=Path, required=True,
                   help="goodreads_interactions_<genre>.json(.gz) or goodreads_interactions_dedup.json(.gz)")
    p.add_argument("--books", type=Path, required=True, help="goodreads_books(_<genre>).json(.gz)")
    p.add_argument("--like-rating", type=int, default=4, help="read with rating >= this is a like (default 4)")
    p.add_argument("--shelved", choices=("skip", "view"), default="skip",
                   help="shelved-but-not-read rows: skip them (default) or keep them as views")
    p.add_argument("--min-user-engagements", type=_positive, default=5,
                   help="k-core: users keep at least this many engagements (default 5)")
    p.add_argument("--min-item-engagements", type=_positive, default=5,
                   help="k-core: books keep at least this many engagements (default 5)")
    p.add_argument("--max-users", type=_positive, default=None,
                   help="keep a seeded sample of this many users, before the k-core (default all)")
    p.add_argument("--description-chars", type=_positive, default=600,
                   help="description kept as item body, cut at a sentence or word (default 600)")
    _common(p)
    p.set_defaults(func=run_goodreads)


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


def _synth_parser(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("synth", help="a seeded production-like synthetic feed (Zipf popularity "
                                      "with churn, sessions, generated text), prepared format")
    p.add_argument("--items", type=_positive, default=10_000, help="catalogue size (default 10000)")
    p.add_argument("--users", type=_positive, default=1_000, help="users (default 1000)")
    p.add_argument("--events-per-user", type=float, default=20.0,
                   help="mean engagements per user, lognormal across users (default 20)")
    p.add_argument("--tail", type=_fraction, default=0.05,
                   help="last share of the time span held out as test (default 0.05)")
    p.add_argument("--valid", type=_fraction, default=0.05,
                   help="share of the span before the tail held out as valid (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output directory (prepared format)")
    p.set_defaults(func=run_synth)


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="prepare datasets (MovieLens, MIND, Goodreads, your own logs)")
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

    _goodreads_parser(sub)

    for fmt in ("jsonl", "csv"):
        _custom_parser(sub, fmt)

    cold = dsub.add_parser("cold", help="a copy of a prepared directory with a cold-item split")
    cold.add_argument("--from", dest="source", type=Path, required=True, help="prepared data directory")
    cold.add_argument("--out", type=Path, required=True, help="output directory")
    cold.add_argument("--fraction", type=float, default=0.1, help="share of engaged items held out (default 0.1)")
    cold.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    cold.set_defaults(func=run_cold)
    _synth_parser(dsub)


def run_cold(args: argparse.Namespace) -> int:
    from streams.data.cold import cold_summary, write_cold_split

    info = write_cold_split(args.source, args.out, args.fraction, args.seed)["cold_split"]
    print(f"cold split -> {args.out}: {cold_summary(info)}")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from streams.data.production_feed import FeedConfig, write_feed

    write_feed(FeedConfig(items=args.items, users=args.users, events_per_user=args.events_per_user,
                          tail=args.tail, valid=args.valid, seed=args.seed), args.out, echo=print)
    return 0


def run_movielens(args: argparse.Namespace) -> int:
    from streams.data.movielens import prepare_movielens

    prepare_movielens(args.out, source=args.source, seed=args.seed, skip_bad=args.skip_bad,
                      echo=print, **_cold(args))
    return 0


def run_mind(args: argparse.Namespace) -> int:
    from streams.data.mind import prepare_mind

    prepare_mind(args.source, args.out, skip_bad=args.skip_bad,
                 valid_fraction=args.valid_fraction, echo=print, **_cold(args))
    return 0


def run_custom(args: argparse.Namespace) -> int:
    from streams.data.custom import Columns, prepare_custom

    cols = Columns(item_id=args.item_id_col, user_id=args.user_id_col, ts=args.ts_col,
                   kind=args.kind_col, title=args.title_col, body=args.body_col,
                   category=args.category_col, item_ts=args.item_ts_col,
                   default_kind=args.default_kind)
    prepare_custom(args.items, args.engagements, args.out, fmt=args.fmt, cols=cols, seed=args.seed,
                   skip_bad=args.skip_bad, delimiter=getattr(args, "delimiter", ","), echo=print,
                   **_cold(args))
    return 0


def run_goodreads(args: argparse.Namespace) -> int:
    from streams.data.goodreads import GoodreadsOptions, prepare_goodreads

    opts = GoodreadsOptions(args.interactions, args.books, seed=args.seed, like_rating=args.like_rating,
                            shelved=args.shelved, min_user_engagements=args.min_user_engagements,
                            min_item_engagements=args.min_item_engagements, max_users=args.max_users,
                            description_chars=args.description_chars)
    prepare_goodreads(opts, args.out, skip_bad=args.skip_bad, echo=print, **_cold(args))
    return 0
