"""Progressive evaluation of online training (Monolith's protocol) through broker, worker and
trainer: does learning ID rows from the stream beat a frozen model?

Protocol (times are event time):
- The held-out period is the last 5% of the prepared data's engagements (`threadrec demo`'s
  split); the checkpoint is trained only on what came before it (the demo's quick checkpoint
  unless --checkpoint), the replayed users are warmed from their earlier history.
- The first --events engagements of the period are replayed through the bundled broker into a
  real `threadrec worker`; every recommendation is judged against the same user's next
  engagement (Recall@10, nDCG@10), per event-day and overall.
- No leakage by construction: the trainer follows the worker's committed offsets, so an
  engagement is learned only after the worker has served it; a recommendation never uses a
  row trained on the engagement it is judged by.
- Variants, same checkpoint, same events, same worker settings:
    frozen   no trainer (the checkpoint's rows);
    online   trainer, sync every --sync-s of event time (default 60 s);
    online_full  the same with the full-softmax loss (`--loss full`, the trainer before the
             sampled loss), for the sampled loss's cost in quality;
    online_every_row  the same publishing every changed row (`--publish-threshold 0`), for the
             publish rule's cost in quality;
    slow     trainer, sync once per event-day;
  and popularity (most engaged before the period, unseen) on the same pairs.
The replay is compressed (--rate engagements/s of wall time, default 10: 18 event-days in about
8 minutes), so sync intervals are event time. The rate is one that worker, broker and trainer
sustain side by side on 2 shared cores: at 20/s the trainer (a full softmax per engagement) got
0.4 of a core and had learned 2,853 of 5,000 engagements when the replay ended, and "online" then
measures a backlog, not a sync interval.
A separate "lag" run (--lag-rate, default 50 engagements/s offered, wall-clock sync every
--lag-sync-s, trainer not following the worker) measures sync lag: trainer publish -> row
applied on the worker (the worker's param_lag_* from record timestamps).

    python bench/bench_online_training.py --events 5000 --json results/online_training.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from model.evaluation.confidence import paired_ratio
from streams.demo.data import held_out, holdout_of
from streams.demo.report import by_bucket
from streams.demo.run import DemoOptions, prepare, run_demo

ROOT = Path(__file__).resolve().parents[1]

DAY_S = 86400.0
VARIANTS = {"frozen": None, "online": "sync", "online_full": "sync", "online_every_row": "sync", "slow": DAY_S,
            "lag": "lag"}
TRAINER_FLAGS = {"online_full": {"loss": "full"}, "online_every_row": {"publish_threshold": 0.0}}


def run_variant(name: str, args, ckpt: Path, console: Console) -> dict:
    """One replay through broker + worker (+ trainer); per-day and overall metrics."""
    sync, lag = VARIANTS[name], VARIANTS[name] == "lag"
    opts = DemoOptions(data=args.data, checkpoint=ckpt, events=args.lag_events if lag else args.events,
                       rate=args.lag_rate if lag else args.rate, live=False, trainer=sync is not None,
                       workdir=args.workdir / name, stall_s=300.0,
                       trainer_sync_s={"sync": args.sync_s, "lag": args.lag_sync_s}.get(sync, sync or 60.0),
                       trainer_sync_clock="wall" if lag else "event", trainer_follow=not lag,
                       trainer_flags=TRAINER_FLAGS.get(name, {}))
    t0 = time.time()
    report = run_demo(opts, console)
    ho = held_out(args.data, holdout_of(args.data), opts.events)
    per_day = by_bucket(report.judged, lambda ts: int((ts - ho.cut_ts) // DAY_S))
    out = {"overall": report.online(), "per_day": {str(d): m for d, m in per_day.items()},
           "param_version_last": report.extra.get("param_version_last"),
           "trainer": report.extra.get("trainer"), "parameters": report.extra.get("parameters"),
           "wall_s": round(time.time() - t0, 1),
           "recommendations": report.recommendations_out, "deadlettered": report.deadlettered,
           "hits": hits(report)}
    console.print(f"[bold]{name}[/]: Recall@10 {out['overall']['recall@10']:.4f} nDCG@10 "
                  f"{out['overall']['ndcg@10']:.4f} ({out['overall']['judged']} judged)")
    return out


def hits(report) -> dict[str, int]:
    """'user|ts|item' of each judged recommendation -> 1 when the next engagement is in its top 10:
    what pairs two variants' judgments for the ratio's interval."""
    return {f"{j.user_id}|{j.ts!r}|{j.item_id}": int(j.rank is not None)
            for j in report.judged if j.next_item is not None}


def paired(a: dict, b: dict) -> dict | None:
    """online/frozen-style Recall@10 ratio with its 95% paired bootstrap interval over the
    judgments both variants made (None when a run kept no per-judgment hits)."""
    common = sorted(set(a.get("hits") or {}) & set(b.get("hits") or {}))
    if not common:
        return None
    iv = paired_ratio([a["hits"][k] for k in common], [b["hits"][k] for k in common])
    return iv.as_dict() | {"verdict": "above" if iv.lo > 1 else "below" if iv.hi < 1 else "on par"}


RATIOS = {"online_over_frozen": ("online", "frozen"), "online_over_slow": ("online", "slow"),
          "online_sampled_over_full": ("online", "online_full"),
          "online_rule_over_every_row": ("online", "online_every_row")}


def ratios(variants: dict) -> dict:
    """Recall@10 of online over frozen, over slow (daily) syncs, over the full softmax's trainer and
    over publishing every row; each with its paired interval when both variants kept their judgments."""
    r = {name: v["overall"]["recall@10"] for name, v in variants.items()}
    out = {}
    for key, (a, b) in RATIOS.items():
        if r.get(b) and a in r:
            out[key] = r[a] / r[b]
            out[f"{key}_interval"] = paired(variants[a], variants[b])
    return out


def popularity(args) -> dict:
    ho = held_out(args.data, holdout_of(args.data), args.events)
    per_day = ho.popularity_by(lambda ts: int((ts - ho.cut_ts) // DAY_S))
    return {"overall": ho.popularity_online(), "per_day": {str(d): m for d, m in per_day.items()},
            "cut_ts": ho.cut_ts, "events": len(ho.replay)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT / "data/movielens")
    p.add_argument("--checkpoint", type=Path, help="hybrid checkpoint trained before the period "
                   "(default: the demo's quick checkpoint)")
    p.add_argument("--events", type=int, default=5000, help="held-out engagements replayed")
    p.add_argument("--rate", type=float, default=10.0, help="offered engagements/s (0: as fast as possible)")
    p.add_argument("--sync-s", type=float, default=60.0, help="online variant's sync interval (event s)")
    p.add_argument("--variants", default="frozen,online,online_full,online_every_row,slow,lag")
    p.add_argument("--lag-rate", type=float, default=50.0, help="offered engagements/s of the lag run")
    p.add_argument("--lag-sync-s", type=float, default=10.0, help="wall-clock sync interval of the lag run")
    p.add_argument("--lag-events", type=int, default=1500, help="engagements replayed in the lag run")
    p.add_argument("--workdir", type=Path, default=ROOT / "runs/online-training")
    p.add_argument("--json", type=Path, default=ROOT / "results/online_training.json")
    args = p.parse_args()
    console = Console()
    data, _, ckpt = prepare(DemoOptions(data=args.data, checkpoint=args.checkpoint, events=args.events), console)
    args.data = data
    result = {"protocol": __doc__.split("\n\n")[0], "checkpoint": str(ckpt), "events": args.events,
              "rate": args.rate, "sync_s": args.sync_s, "popularity": popularity(args), "variants": {}}
    if args.json.exists():  # keep the variants of an earlier run on the same checkpoint and events
        old = json.loads(args.json.read_text())
        if (old.get("checkpoint"), old.get("events")) == (str(ckpt), args.events):
            result["variants"] = old["variants"]
    for name in args.variants.split(","):
        result["variants"][name] = run_variant(name, args, ckpt, console)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result.update(ratios(result["variants"]))
        args.json.write_text(json.dumps(result, indent=1))  # after every variant: a cut run keeps what it has
    console.print(f"written {args.json}")


if __name__ == "__main__":
    main()
