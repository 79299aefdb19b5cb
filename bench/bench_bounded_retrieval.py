"""One question: what does bounded retrieval (q of the m UPE codes, a bounded fetch) change in
what the engine recommends on MovieLens-100K, against the all-codes exact retrieval?

Offline, in one process, through the real engine (streams/engine): the demo's held-out split
(the last 5% of engagements; the replayed users warmed from their earlier history), a checkpoint
trained only before it (the demo's quick one unless --checkpoint; with its ID half when it has
one), the first --events held-out engagements processed in batches. Every variant starts from
the same warm states, the same item store and index. The oracle is every code with an
unbounded fetch (k + seen items). Summaries refresh on session close, as the worker's default. Per variant: the top-10 overlap with the oracle's
recommendation of the same event, the candidate count, online Recall@10 / nDCG@10 (each
recommendation judged by the same user's next engagement, as the demo does), query vectors per
engagement and the engine's index milliseconds per event (shared machine: indicative only).
The offline evaluation (model/evaluation/evaluate.py) ranks the full catalogue with the exact score and
does not use the index, so its Recall@10 cannot change with these bounds.

    python bench/bench_bounded_retrieval.py --checkpoint DIR --json bench/results/bounded_retrieval.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from model.evaluation.metrics import NextEngagement
from model.inference import EmbSumInference
from store import BoundedCache, FetchBound, IndexConfig
from store.faiss_index import FaissIndex
from streams.demo.data import held_out, holdout_of
from streams.demo.warm import warm_states
from streams.engine.config import EngineConfig, RefreshPolicy
from streams.engine.engine import Engine
from streams.engine.id_half import IdHalf
from streams.engine.state_mapping import BytesStateMapping

UNBOUNDED = FetchBound(factor=1 << 30, limit=1 << 30)  # fetch = k + seen items: exact
ORACLE = "all codes, exact"


def variants(qs: list[int]) -> dict[str, dict[str, Any]]:
    """name -> EngineConfig overrides; "all codes, exact" is the oracle."""
    out: dict[str, dict[str, Any]] = {ORACLE: dict(query_codes=0, fetch=UNBOUNDED),
                                      "all codes, bounded fetch": dict(query_codes=0)}
    for q in qs:
        out[f"q={q}, bounded fetch"] = dict(query_codes=q)
    return out


def replay(base: Engine, cfg: EngineConfig, warm: dict[str, bytes], events: list[dict],
           batch: int) -> tuple[list[list[str]], float]:
    """(top items per event, index seconds) of one variant from the warm states; the item
    store, index and ID half are the base engine's (read only while serving)."""
    eng = Engine(base.model, items=base.items, index=base.index, states=BytesStateMapping(dict(warm)),
                 token_cache=BoundedCache.in_memory(), config=cfg, id_half=base.id_half)
    tops: list[list[str]] = []
    for start in range(0, len(events), batch):
        for r in eng.process_engagements(events[start:start + batch]):
            rec = r.recommendation
            tops.append([x["item_id"] for x in rec["items"]] if rec else [])
    return tops, eng.stats.index_s


def judge(events: list[dict], tops: list[list[str]]) -> dict[str, float | int]:
    """Online Recall/nDCG@10: each recommendation against the same user's next engagement."""
    nxt: dict[int, str] = {}
    last: dict[str, int] = {}
    for i, e in enumerate(events):
        if e["user_id"] in last:
            nxt[last[e["user_id"]]] = e["item_id"]
        last[e["user_id"]] = i
    metric = NextEngagement(10)
    for i, top in enumerate(tops):
        if i in nxt and top:
            metric.add(top, nxt[i])
    return metric.result()


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    ho = held_out(args.data, holdout_of(args.data), args.events)
    model = EmbSumInference.from_checkpoint(args.checkpoint, device="cpu")
    base = EngineConfig.from_model(model.config, refresh=RefreshPolicy("session_close"))
    cfgs = {name: dataclasses.replace(base, **over) for name, over in variants(args.q).items()}
    eng = Engine.in_memory(model, cfgs[ORACLE], index=FaissIndex(IndexConfig(dim=model.dim)),
                           id_half=IdHalf.from_checkpoint(args.checkpoint))
    with console.status(f"encoding {len(ho.items)} items, warming {len(ho.history)} users"):
        eng.upsert_items(list(ho.items.values()))
        warm = warm_states(model, base, ho.items, ho.history)
    tops, index_s = {}, {}
    for name, cfg in cfgs.items():
        with console.status(f"replaying {len(ho.replay)} engagements: {name}"):
            tops[name], index_s[name] = replay(eng, cfg, warm, ho.replay, args.batch)
    oracle, rows = tops[ORACLE], {}
    for name, cfg in cfgs.items():
        pairs = [(a, b) for a, b in zip(tops[name], oracle, strict=True) if b]
        rows[name] = {"query_codes": cfg.query_codes or model.config.m, "fetch": dataclasses.asdict(cfg.fetch),
                      "top10_overlap_with_oracle": sum(len(set(a) & set(b)) / len(b) for a, b in pairs) / len(pairs),
                      "identical_top10_share": sum(a == b for a, b in pairs) / len(pairs),
                      "online": judge(ho.replay, tops[name]),
                      "index_ms_per_event": 1e3 * index_s[name] / len(ho.replay)}
    return {"checkpoint": str(args.checkpoint), "events": len(ho.replay), "ranked": len(pairs),
            "m": model.config.m, "hybrid": eng.status()["id_rows"] is not None, "variants": rows}


def print_table(res: dict[str, Any], console: Console) -> None:
    table = Table(title=f"bounded retrieval, {res['events']} held-out engagements, m = {res['m']}")
    for col in ("variant", "queries", "top-10 overlap", "identical top-10", "online R@10", "index ms/event"):
        table.add_column(col)
    for name, r in res["variants"].items():
        table.add_row(name, str(r["query_codes"]), f"{r['top10_overlap_with_oracle']:.4f}",
                      f"{r['identical_top10_share']:.3f}", f"{r['online']['recall@10']:.4f}",
                      f"{r['index_ms_per_event']:.2f}")
    console.print(table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/movielens"))
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--q", type=int, nargs="+", default=[2, 4, 6, 8])
    p.add_argument("--json", type=Path)
    args, console = p.parse_args(), Console()
    res = run(args, console)
    print_table(res, console)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
