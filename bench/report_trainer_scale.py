"""Turns bench/results/trainer_scale.json (bench/bench_trainer_scale.py) into the README's
trainer-scale section (between `<!-- trainer-scale:start -->` and `<!-- trainer-scale:end -->`):
one row per size, the issue's targets checked against the same run.

    python bench/report_trainer_scale.py [--json bench/results/trainer_scale.json --readme README.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from streams.readme import cell, markdown_table, splice_section

ROOT = Path(__file__).resolve().parents[1]

INTRO = """`bench/bench_trainer_scale.py`: the trainer's per-event class alone (no broker) over N rows in
rocksdict, fed the synthetic production feed (`threadrec data synth`'s generator), block by block
as the trainer's loop hands them over (`learn_block` engagements, one batched step each); the
timed engagements stand for one sync interval at the stated rate, and the sync is what the
publish rule sends after them. CPU time per engagement is split into the frozen tower's batched
forward and backward (the same work at every size) and the rest (sampling, row bookkeeping,
Adagrad: what a catalogue could make grow). A worker's ID half over the same rows then applies
those syncs, in order, in slices as the worker does: each slice prepared off the engine lock on a
thread of its own (decode, gates, the ID index's plan, the rows' KV write) while one engagement's
ID-half calls (h_u, index search, exact terms) are served, then applied under the lock (the cached
rows and versions, the IVF's remove and add, the row sample), slices sized as the worker sizes them (`param_apply_share` of an engagement's time, here
one serve's, at most `param_apply_budget_ms` per hold of the lock, at least the
`param_apply_min_per_s` rate). Apply us per row: under the lock (wall, and the thread's CPU
time); prepare us per row: off it (wall); the p99 of (one hold + one serve), an engagement that
waited for the lock a whole slice, over the p99 of serves taken just before each slice (the same
moment's load), and the p99 of the serves beside a prepare over the same; the syncs are applied on
fresh worker halves until at least 600 slices are pooled (one pass at 10k rows is about 80 slices,
whose p99 is their largest), each size in a process of its own. Start: until a worker's ID half over N rows can
serve (rows open, index and row sample built), from its local rows (full disk) or from the
checkpoint's rows plus the whole compacted `parameters` topic applied record by record (empty
disk).
Measured on 2 cores shared with other work (load average below): read the rates as this
moment's, not as capacity; the CPU columns are the steadier comparison.
"""


def _num(value: float | None, fmt: str) -> str:
    return cell(value, fmt, missing="n/a")


HEAD = ("rows", "engagements/s", "CPU us / engagement", "tower us", "rest us", "candidates / step", "sync rows",
        "sync MB", "rows touched", "negatives held back", "apply us / row (lock)", "apply CPU us / row (lock)",
        "prepare us / row (off the lock)", "slice (median rows)", "p99 during sync / without", "p99 beside a prepare / without",
        "start, full disk (s)", "start, empty disk (s)")


def table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(HEAD, [
        (f"{r['rows']:,}", f"{r['trainer_events_per_s']:,.0f}", f"{r['trainer_cpu_us_per_event']:.0f}",
         f"{r['tower_cpu_us_per_event']:.0f}", f"{r['rest_cpu_us_per_event']:.0f}",
         _num(r.get("mean_candidates"), ".0f"), f"{r['sync_rows']:,}", f"{r['sync_bytes'] / 1e6:.2f}",
         f"{r['sync_touched_rows']:,}", f"{r['sync_held_back']:,}", _num(r.get("apply_us_per_row"), ".1f"),
         _num(r.get("apply_cpu_us_per_row"), ".1f"), _num(r.get("prepare_us_per_row"), ".1f"),
         _num(r.get("apply_slice_median"), ".0f"), _num(r.get("p99_during_sync_ratio"), ".2f"),
         _num(r.get("p99_beside_prepare_ratio"), ".2f"), _num(r.get("start_full_disk_s"), ".1f"),
         _num(r.get("start_empty_disk_s"), ".1f"))
        for r in rows])


def targets(rows: list[dict[str, Any]]) -> str:
    """The issue's targets, each against this run (met / missed with the numbers)."""
    by = {r["rows"]: r for r in rows}
    small, big = by.get(10_000), by.get(1_000_000)
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    if big is not None:
        eps = big["trainer_events_per_s"]
        lines.append(f"- trainer >= 1,000 engagements/s at 1M rows: {eps:,.0f}/s, {verdict(eps >= 1000)}")
        mb = big["sync_bytes"] / 1e6
        lines.append(f"- a sync at 1M rows and {big['engagement_rate_per_s']:,.0f} engagements/s <= 100 MB: "
                     f"{mb:.1f} MB ({big['sync_rows']:,} rows), {verdict(mb <= 100)}")
    if big is not None and small is not None:
        ratio = big["trainer_cpu_us_per_event"] / small["trainer_cpu_us_per_event"]
        lines.append(f"- CPU per engagement at 1M within 1.5x of 10k: {ratio:.2f}x, {verdict(ratio <= 1.5)}")
    applied = [r for r in rows if r.get("apply_us_per_row") is not None]
    if applied:
        worst = max(r["apply_us_per_row"] for r in applied)
        lines.append(f"- worker apply <= 5 us per row (under the engine lock): up to {worst:.1f} us, {verdict(worst <= 5)}")
        p99 = max(r["p99_during_sync_ratio"] for r in applied if r.get("p99_during_sync_ratio") is not None)
        lines.append(f"- worker p99 during a sync <= 1.5x without: up to {p99:.2f}x, {verdict(p99 <= 1.5)}")
    if big is not None and big.get("start_full_disk_s") is not None:
        full = big["start_full_disk_s"]
        lines.append(f"- a worker's ID half with 1M rows serving within 2 minutes of a start from a full disk: "
                     f"{full:.0f} s (empty disk: {big['start_empty_disk_s']:.0f} s), {verdict(full <= 120)}")
    return "\n".join(lines) + "\n"


def section(d: dict[str, Any]) -> str:
    c, m = d["config"], d["machine"]
    start = m.get("load_avg_start")
    load = (f"load average {start[0]:.1f} at the start, {m['load_avg'][0]:.1f} at the end" if start
            else f"load average {m['load_avg'][0]:.1f} at the end")
    run = (f"`bench/results/trainer_scale.json` (`--sizes {' '.join(str(s) for s in c['sizes'])} --rate "
           f"{c['rate']:g} --syncs {c.get('syncs', 1)}`: {c['warmup']:,} warm-up and {int(round(c['rate'] * c['sync_s'])):,} timed "
           f"engagements per sync, {c.get('syncs', 1)} sync(s) of {c['sync_s']:g} s at {c['rate']:g} engagements/s, the sync "
           f"columns the largest; torch on "
           f"{m['torch_threads']} threads; learn_block {c.get('learn_block')}, {c['negatives']} shared "
           f"draws, publish threshold {c['publish_threshold']}; {load}):\n")
    if d.get("start_measures"):
        note = f"\nStart columns: {d['start_measures']}.\n"
    else:
        note = f"\nStart columns are n/a: {d['start_null_because']}.\n" if d.get("start_null_because") else ""
    return f"{INTRO}\n{run}\n{table(d['rows'])}\n{targets(d['rows'])}{note}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", type=Path, default=ROOT / "bench/results/trainer_scale.json")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = p.parse_args()
    splice_section(args.readme, "trainer-scale", section(json.loads(args.json.read_text())),
                   after="## Results: online trainer at scale")
    print("README trainer-scale section written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
