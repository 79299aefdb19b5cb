"""Online replay on a held-out period: does refreshing user vectors in real time pay off?

Protocol (all times are event time):
- Held-out period: the last --holdout-events engagements of the prepared data (every split:
  train, valid and test rows after the cutoff T). To bound CPU time only each user's first
  --max-per-user held-out engagements are replayed (the rest of the period is dropped). Everything at or before T is the training
  period. A checkpoint trained with `threadrec train --holdout-events N` (same N) never saw an
  engagement of the period; one trained on the whole *train split* (leave-one-out) did see the
  period's train rows, so for it the period is held out from the user states only. The JSON
  says which (checkpoint.period_held_out_from_training) and how many judged events belong to
  each split.
- Warm start: every user active in the held-out period gets its state from all of its
  engagements up to T (sessionised by the engine's rules; one encoder pass per session and
  one summary per user: Engine.refresh_users). The engine's popularity fallback observes the
  training-period engagements too.
- Replay: the held-out engagements in event-time order, through the per-event engine
  (streams.engine.engine.Engine, no Kafka). Before each engagement e of user u the recommendation
  currently shown to u (top-K, excluding everything u engaged with before e) is judged against
  e: Recall@K = hit, nDCG@K = 1/log2(1 + rank). Events of users with no earlier engagement
  at all are not judged (nothing to personalise).
- Policies, same checkpoint, same exclusion, same retrieval + exact rerank:
  realtime  the engine processes every engagement as it arrives (sessions, summary refreshed
            on every engagement, UPE); its recommendation after e_k is the one judged at e_{k+1};
  stale     engagements are only appended to the history; user vectors are recomputed once per
            day of event time (at the first engagement of a new UTC day, for every user with new
            engagements), in one batch;
  frozen    user vectors stay as at the end of the training period (warm start).
  Users with no vectors yet (no history before T) get the engine's popularity fallback under
  stale (until their first daily refresh) and frozen.

    python bench/bench_online_policies.py --data data/movielens --checkpoint checkpoints/ml-cpu \
        --holdout-events 5000 --max-per-user 25 --json results/online_policies.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path

from model.dataset import event_rows, holdout_cutoff, load_prepared
from model.evaluation.metrics import NextEngagement
from model.inference import EmbSumInference
from store import BoundedCache, BruteForceIndex
from streams.engine.config import EngineConfig, RefreshPolicy
from streams.engine.engine import Engine
from streams.engine.state_mapping import BytesStateMapping

ROOT = Path(__file__).resolve().parents[1]

DAY_S = 86400.0
POLICIES = ("realtime", "stale", "frozen")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=ROOT / "data/movielens", help="prepared data directory")
    p.add_argument("--checkpoint", required=True, help="EmbSum checkpoint directory")
    p.add_argument("--holdout-events", type=int, default=5000,
                   help="the last N engagements form the held-out period (cutoff T = time before them)")
    p.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ",".join(POLICIES))
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--candidates", type=int, default=100, help="retrieved per user before the exact rerank")
    p.add_argument("--max-per-user", type=int, default=25,
                   help="replay (and judge) only each user's first N held-out engagements (CPU budget); 0 = all")
    p.add_argument("--batch", type=int, default=0,
                   help="engagements per engine call under realtime (0 = all in one call; the engine batches "
                        "one event per user per round, results equal one-by-one processing)")
    p.add_argument("--device", default=None)
    p.add_argument("--json", dest="json_out", default=ROOT / "results/online_policies.json")
    return p.parse_args(argv)


def _shown(path: Path) -> str:
    """path as the results file records it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def split_of(data) -> dict[tuple, str]:
    out = {}
    for name, rows in (("train", data.train), ("valid", data.valid), ("test", data.test)):
        for e in rows:
            out[(e["user_id"], e["item_id"], float(e["ts"]))] = name
    return out


def make_engine(inf: EmbSumInference, base: Engine | None, cfg: EngineConfig) -> Engine:
    """A fresh engine; items (store + index) are shared with `base` to encode the catalogue once."""
    if base is None:
        return Engine.in_memory(inf, cfg, index=BruteForceIndex(inf.dim))
    return Engine(inf, items=base.items, index=base.index, states=BytesStateMapping({}),
                  token_cache=BoundedCache.in_memory(), config=cfg)


class Judge:
    """Recall@K / nDCG@K of the recommendation shown before each engagement, overall and for
    users with history before the period (warm), with the judged count per split."""

    def __init__(self, k: int):
        self.k, self.all, self.warm = k, NextEngagement(k), NextEngagement(k)
        self.by_split: Counter[str] = Counter()
        self.hits: dict[str, int] = {}  # 'user|ts|item' -> 1 when in the top K: pairs two policies

    def __call__(self, rec: list[str], target: str, split: str, warm: bool, key: str) -> None:
        self.all.add(rec, target)
        self.by_split[split] += 1
        self.hits[key] = int(target in rec[:self.k])
        if warm:
            self.warm.add(rec, target)

    def result(self) -> dict:
        warm = {f"warm_users_{m}": v for m, v in self.warm.result().items()}
        return {**self.all.result(), "judged_by_split": dict(self.by_split), **warm, "hits": self.hits}


def replay(policy: str, inf, base: Engine | None, cfg: EngineConfig, before: dict[str, list[dict]],
           held: list[dict], split: dict, k: int, batch: int, recent: list[dict]) -> tuple[dict, Engine]:
    eng = make_engine(inf, base, cfg)
    t0 = time.time()
    for e in recent:  # the fallback's window starts filled from the training period
        eng.observe(str(e["item_id"]))
    eng.refresh_users(before, observe=False)  # warm start (one batch per 32 users)
    warm_s = time.time() - t0
    judge = Judge(k)
    warm_users = set(before)
    seen: dict[str, set[str]] = {u: {str(e["item_id"]) for e in ev} for u, ev in before.items()}
    t1 = time.time()
    if policy == "realtime":
        shown: dict[str, list[str]] = {u: [i for i, _ in eng.rank_for(u, seen[u])] for u in before}
        step = batch or len(held)
        for s in range(0, len(held), step):
            chunk = held[s:s + step]
            results = eng.process_engagements(chunk)
            for e, r in zip(chunk, results, strict=True):
                u, item = str(e["user_id"]), str(e["item_id"])
                if u in shown:
                    judge(shown[u], item, split.get((u, item, float(e["ts"])), "?"), u in warm_users,
                          f"{u}|{float(e['ts'])!r}|{item}")
                seen.setdefault(u, set()).add(item)
                if r.recommendation is not None:
                    shown[u] = [x["item_id"] for x in r.recommendation["items"]]
                else:
                    shown[u] = [i for i, _ in eng.popular(k, seen[u])]
    else:
        pending: dict[str, list[dict]] = {}
        day = None
        for e in held:
            u, item, ts = str(e["user_id"]), str(e["item_id"]), float(e["ts"])
            d = int(ts // DAY_S)
            if policy == "stale" and day is not None and d != day and pending:
                eng.refresh_users(pending, observe=False)  # once per day: everything so far
                pending = {}
            day = d
            if u in seen:
                rec = [i for i, _ in eng.rank_for(u, seen[u])]
                judge(rec, item, split.get((u, item, ts), "?"), u in warm_users, f"{u}|{ts!r}|{item}")
            seen.setdefault(u, set()).add(item)
            eng.observe(item)  # the fallback counts every engagement in all policies
            if policy == "stale":
                pending.setdefault(u, []).append(e)
            elif u not in before:  # frozen: a new user's history is kept (exclusion), vectors never
                eng.append_history(u, [e], observe=False)
    res = judge.result()
    res.update(warm_start_s=round(warm_s, 1), replay_s=round(time.time() - t1, 1),
               engine_stats={k_: v for k_, v in eng.stats.as_dict().items() if v})
    return res, eng


def main(argv=None) -> int:
    from rich.console import Console
    from rich.table import Table

    args = parse_args(argv)
    data = load_prepared(args.data)
    rows = event_rows(data)
    cutoff = holdout_cutoff(rows, args.holdout_events)
    held_all = [e for e in rows if float(e["ts"]) > cutoff]
    held, per_user = [], Counter()
    for e in held_all:  # each user's first max_per_user held-out engagements, still in event-time order
        if not args.max_per_user or per_user[str(e["user_id"])] < args.max_per_user:
            per_user[str(e["user_id"])] += 1
            held.append(e)
    users = {str(e["user_id"]) for e in held}
    before: dict[str, list[dict]] = {}
    for e in rows:
        if float(e["ts"]) <= cutoff and str(e["user_id"]) in users:
            before.setdefault(str(e["user_id"]), []).append(e)
    recent = [e for e in rows if float(e["ts"]) <= cutoff][-1000:]
    split = split_of(data)

    inf = EmbSumInference.from_checkpoint(args.checkpoint, args.device)
    cfg = EngineConfig.from_model(inf.config, top_k=args.top_k, candidates=args.candidates,
                                  refresh=RefreshPolicy("every_event"), min_engagements=1,
                                  max_history=1_000_000,  # keep the whole history: exclude all seen
                                  ttl_s=float("inf"))
    t0 = time.time()
    base = make_engine(inf, None, cfg)
    base.upsert_items(list(data.items.values()))
    items_s = time.time() - t0

    out = {"protocol": {
        "holdout_events": len(held_all), "replayed_events": len(held), "max_per_user": args.max_per_user,
        "cutoff_ts": cutoff,
        "cutoff_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(cutoff)) if math.isfinite(cutoff) else None,
        "end_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(held[-1]["ts"]))),
        "held_out_days": len({int(float(e["ts"]) // DAY_S) for e in held}),
        "users": len(users), "warm_users": len(before),
        "held_out_by_split": dict(Counter(split.get((str(e["user_id"]), str(e["item_id"]), float(e["ts"])), "?")
                                          for e in held)),
        "judged": "recommendation shown before each held-out engagement vs that engagement (next engagement)",
        "exclusion": "all items the user engaged with before the judged engagement",
        "retrieval": f"index top-{args.candidates} by interest vectors, exact EmbSum rerank, top-{args.top_k}",
        "stale_refresh": "once per UTC day of event time, batched", "k": args.top_k,
        "candidates": args.candidates},
        "data": _shown(Path(args.data)),
        "checkpoint": {"path": args.checkpoint, "metadata_step": inf.metadata.get("step"),
                       "train_cutoff_ts": inf.metadata.get("train_cutoff_ts"),
                       # True when the model never trained on an engagement of the replayed period
                       "period_held_out_from_training": (
                           inf.metadata.get("train_cutoff_ts") is not None
                           and inf.metadata["train_cutoff_ts"] <= cutoff)},
        "items_encode_s": round(items_s, 1), "policies": {}}
    for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
        if policy not in POLICIES:
            raise SystemExit(f"unknown policy {policy!r}")
        res, _ = replay(policy, inf, base, cfg, before, held, split, args.top_k, args.batch, recent)
        out["policies"][policy] = res
        print(f"[online] {policy}: " + json.dumps({k: v for k, v in res.items() if k not in ("engine_stats", "hits")}),
              flush=True)

    table = Table(title=f"online replay: {len(held)} of {len(held_all)} held-out engagements after {out['protocol']['cutoff_utc']}, "
                        f"{len(users)} users ({len(before)} warm)")
    k = args.top_k
    for col in ("policy", f"Recall@{k}", f"nDCG@{k}", "judged", f"warm Recall@{k}", f"warm nDCG@{k}", "replay s"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in out["policies"].items():
        table.add_row(name, f"{r[f'recall@{k}']:.4f}", f"{r[f'ndcg@{k}']:.4f}", str(r["judged"]),
                      f"{r[f'warm_users_recall@{k}']:.4f}", f"{r[f'warm_users_ndcg@{k}']:.4f}", f"{r['replay_s']:.0f}")
    console = Console()
    console.width = max(console.width, 140)
    console.print(table)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
