"""Does this code recommend as well as an older commit on MovieLens-100K? One run answers it:
the old commit is checked out in a temporary git worktree and both codes run, alternately, the
same demo (`threadrec demo`'s defaults, the same quick checkpoint, the same data) and the same
offline test evaluation (`threadrec evaluate --no-baselines`). Issue 26's bar: online and offline
Recall@10 within 2% relative of the old code's (not lower than 0.98x).

    python bench/bench_ml100k_guard.py [--old 6bfe463 --runs 2 --checkpoint CKPT]

Each code runs as its own processes (PYTHONPATH and working directory its tree; the run records
which `streams` it imported). Inside a tree this script runs as `demo` or `train`, so nothing at
its top imports the project: the old tree has other module paths. Online metrics judge each
recommendation by the same user's next replayed engagement; the paired interval resamples users
over the engagements judged in every run of both codes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.02  # relative loss of Recall@10 the new code may cost (issue 26)
DATA = Path("data/movielens")


# --- inside one code tree -------------------------------------------------------------------


def demo_here(checkpoint: Path, out: Path) -> None:
    """`threadrec demo --checkpoint C` with its defaults, in this process's tree; the report's JSON
    plus every judged engagement's rank (the CLI's JSON has only the means)."""
    from rich.console import Console

    import streams
    from streams.demo.run import DemoOptions, run_demo

    opts = DemoOptions(checkpoint=checkpoint)
    with (out.with_suffix(".log")).open("w") as log:
        report = run_demo(opts, Console(file=log, width=120))
    doc = report.as_json()
    doc["streams_imported_from"] = streams.__file__
    doc["judged_events"] = [[j.user_id, j.item_id, j.ts, j.rank] for j in report.judged
                            if j.next_item is not None]
    out.write_text(json.dumps(doc, default=str))


def train_here() -> str:
    """The demo's quick checkpoint (cached under checkpoints/demo-quick/), trained by this tree."""
    from streams.demo.checkpoint import quick_checkpoint
    from streams.demo.data import held_out, holdout_of
    from streams.demo.run import DemoOptions

    opts = DemoOptions()
    ho = held_out(DATA, holdout_of(DATA), opts.events)
    return str(quick_checkpoint(DATA, ho.cut_ts, opts.quick_minutes)[0].resolve())


# --- pure helpers (tested) -------------------------------------------------------------------


def per_user_gains(runs: list[list[list]], keys: set[tuple], by=lambda key: key[0]) -> dict[Any, tuple[float, float]]:
    """{user: (hits, nDCG gain)} per run on average, over the judged engagements in `keys`
    ((user, item, ts)); a run's repeated recommendation for one engagement counts once. `by`
    groups the engagements (default: by user; `lambda key: key` keeps each engagement)."""
    out: dict[Any, list[float]] = {}
    for events in runs:
        seen = set()
        for user, item, ts, rank in events:
            key = (user, item, ts)
            if key not in keys or key in seen:
                continue
            seen.add(key)
            acc = out.setdefault(by(key), [0.0, 0.0])
            if rank is not None and rank < 10:
                acc[0] += 1.0
                acc[1] += 1.0 / math.log2(rank + 2)
    return {u: (h / len(runs), g / len(runs)) for u, (h, g) in out.items()}


def common_keys(runs: list[list[list]]) -> set[tuple]:
    """The judged engagements (user, item, ts) present in every run."""
    sets = [{(u, i, t) for u, i, t, _ in events} for events in runs]
    return set.intersection(*sets) if sets else set()


def verdict(ratio: float, lo: float | None = None, hi: float | None = None,
            tolerance: float = TOLERANCE) -> str:
    """Issue 26's bar on new/old: 'not worse' at or above 1 - tolerance, else 'worse'; with an
    interval, 'not worse (resolved)' / 'worse (resolved)' when it lies on one side of the line,
    and 'on par' (saying where the point lies) when it spans it: within the noise."""
    line = 1.0 - tolerance
    if lo is not None and lo >= line:
        return "not worse (resolved)"
    if hi is not None and hi < line:
        return "worse (resolved)"
    if lo is not None and hi is not None:
        return "on par (point at or above the bar)" if ratio >= line else "on par (point below the bar)"
    return "not worse" if ratio >= line else "worse"


# --- orchestration ---------------------------------------------------------------------------


def run_in(tree: Path, args: list[str], log: Path, timeout_s: float) -> None:
    """This script's `args` as a process of `tree`'s code (its PYTHONPATH and working directory)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    with log.open("w") as out:
        subprocess.run(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, check=True,
                       timeout=timeout_s)


def old_tree(commit: str, into: Path) -> Path:
    """`commit` checked out (detached) in a temporary worktree, with this tree's prepared data."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), commit],
                   check=True, capture_output=True)
    (into / DATA).parent.mkdir(parents=True, exist_ok=True)
    (into / DATA).symlink_to((ROOT / DATA).resolve())
    return into


def offline(tree: Path, ckpt: Path, out: Path) -> None:
    """`threadrec evaluate` (test split, checkpoint only, fp32) run by `tree`'s code -> out, with
    its wall time and the load beside it (out .meta.json)."""
    cmd = [sys.executable, "-m", "streams.cli", "evaluate", "--data", str(DATA), "--checkpoint", str(ckpt),
           "--no-baselines", "--no-progress", "--json", str(out)]
    t0, load = time.time(), _load()
    with out.with_suffix(".log").open("w") as log:
        subprocess.run(cmd, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
                       stdout=log, stderr=subprocess.STDOUT, timeout=3600)
    out.with_suffix(".meta.json").write_text(json.dumps(
        {"wall_s": round(time.time() - t0, 1), "load_avg_at_start": load}))


def reuse_offline(source: Path, work: Path, code: str) -> None:
    """An earlier run's offline evaluation of `code` (its JSON and meta) into `work`, marked as
    reused: for a change evaluate cannot see (the online trainer's), it saves ~30 min a code."""
    for suffix in (".json", ".meta.json"):
        src = source / f"offline-{code}{suffix}"
        if src.exists():
            doc = json.loads(src.read_text())
            if suffix == ".meta.json":
                doc["reused_from"] = str(source)
            (work / src.name).write_text(json.dumps(doc))


def offline_doc(out: Path) -> dict[str, Any]:
    """What the summary needs of one code's evaluate JSON (per-user values where it has them)."""
    doc, meta = json.loads(out.read_text()), out.with_suffix(".meta.json")
    return {"command": "threadrec evaluate --data data/movielens --checkpoint CKPT --no-baselines",
            "models": doc["models"], "per_user": doc.get("per_user"), "users": doc.get("per_user_ids"),
            **(json.loads(meta.read_text()) if meta.exists() else {})}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def online_runs(trees: dict[str, Path], ckpt: Path, runs: int, work: Path) -> None:
    """`runs` demos per code, alternating which code goes first (load drifts over the hour);
    each to work/demo-<code>-<run>.json."""
    for r in range(runs):
        for code in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
            path, load, t0 = work / f"demo-{code}-{r}.json", _load(), time.time()
            run_in(trees[code], ["demo", "--checkpoint", str(ckpt), "--out", str(path)], work / f"demo-{code}-{r}.out", 3600)
            doc = {**json.loads(path.read_text()), "load_avg_at_start": load, "total_wall_s": round(time.time() - t0, 1)}
            path.write_text(json.dumps(doc))
            print(f"{code} run {r}: {doc['online']} ({doc['streams_imported_from']})", flush=True)


def online_summary(runs: dict[str, list[dict]]) -> dict[str, Any]:
    """Means per code and the paired interval of new/old Recall@10 and nDCG@10 over users (the
    verdict's), and over engagements (narrower: it ignores that one user's engagements correlate)."""
    from model.evaluation.confidence import paired_ratio

    keys = common_keys([r["judged_events"] for rs in runs.values() for r in rs])
    out: dict[str, Any] = {"judged_in_every_run": len(keys)}
    pairs = {}
    for unit, by in (("users", lambda key: key[0]), ("engagements", lambda key: key)):
        gains = {c: per_user_gains([r["judged_events"] for r in rs], keys, by) for c, rs in runs.items()}
        units = sorted(gains["new"])
        out[unit] = len(units)
        pairs[unit] = {c: [gains[c][u] for u in units] for c in ("new", "old")}
    for k, name in ((0, "recall@10"), (1, "ndcg@10")):
        new, old = ([g[k] for g in pairs["users"][c]] for c in ("new", "old"))
        iv = paired_ratio(new, old)
        ev = paired_ratio(*([g[k] for g in pairs["engagements"][c]] for c in ("new", "old")))
        out[name] = {"old": sum(old) / len(keys), "new": sum(new) / len(keys), "ratio": iv.mean,
                     "ratio_lo": iv.lo, "ratio_hi": iv.hi, "verdict": verdict(iv.mean, iv.lo, iv.hi),
                     "ratio_lo_engagements": ev.lo, "ratio_hi_engagements": ev.hi}
    return out


def offline_summary(off: dict[str, dict]) -> dict[str, Any]:
    """Per served model (hybrid, content-only embsum): new/old test Recall@10, paired when both
    codes gave per-user values (the old code's evaluate may not)."""
    from model.evaluation.confidence import paired_ratio

    out = {}
    for name in off["new"]["models"]:
        old, new = off["old"]["models"][name]["full_recall@10"], off["new"]["models"][name]["full_recall@10"]
        row = {"old": old, "new": new, "ratio": new / old if old else None}
        pu = [off[c].get("per_user") or {} for c in ("old", "new")]
        if all(name in p for p in pu) and off["old"]["users"] == off["new"]["users"]:
            iv = paired_ratio(pu[1][name]["full_recall@10"], pu[0][name]["full_recall@10"])
            row.update(ratio_lo=iv.lo, ratio_hi=iv.hi)
        row["verdict"] = verdict(row["ratio"] or 0.0, row.get("ratio_lo"), row.get("ratio_hi"))
        out[name] = row
    return out


def commit_of(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def checkpoint(given: Path | None, work: Path) -> Path:
    """The one checkpoint both codes run: `given`, else the quick one trained by this tree."""
    if given is not None:
        return given.resolve()
    run_in(ROOT, ["train", "--out", str(work / "ckpt.txt")], work / "train.out", 3600)
    return Path((work / "ckpt.txt").read_text().strip())


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Both codes' demos and offline evaluations into the work dir, then their summary."""
    work = args.work or Path(tempfile.mkdtemp(prefix="ml100k-guard-"))  # per-run files stay here
    work.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint(args.checkpoint, work)
    old = old_tree(args.old, work / "old")
    try:
        trees = {"old": old, "new": ROOT}
        (work / "meta.json").write_text(json.dumps({
            "checkpoint": str(ckpt), "load_avg_at_start": _load(), "runs": args.runs,
            "commits": {c: commit_of(t) for c, t in trees.items()},
            "command": f"python bench/bench_ml100k_guard.py --old {args.old} --runs {args.runs}"
                       + (f" --offline-from {args.offline_from}" if args.offline_from else "")}))
        online_runs(trees, ckpt, args.runs, work)
        for c, t in trees.items():
            if args.offline_from is not None:
                reuse_offline(args.offline_from, work, c)
            else:
                offline(t, ckpt, work / f"offline-{c}.json")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    return summarise(work)


def summarise(work: Path) -> dict[str, Any]:
    """The result from the files a compare run left in `work` (rerunnable without the runs)."""
    meta = json.loads((work / "meta.json").read_text())
    runs = {c: [json.loads((work / f"demo-{c}-{r}.json").read_text()) for r in range(meta["runs"])]
            for c in ("old", "new")}
    # a run stopped before both offline evaluations finished still summarises its demos
    off = {c: offline_doc(work / f"offline-{c}.json") for c in ("old", "new") if (work / f"offline-{c}.json").exists()}
    return {"question": "does the new code recommend as well as the old commit on MovieLens-100K?",
            "tolerance": TOLERANCE, **meta, "load_avg_at_end": _load(), "cpu_count": os.cpu_count(),
            "demo_command": "threadrec demo --checkpoint CKPT (defaults otherwise: --events 1000 --rate 10, torch threads 1)",
            "online": online_summary(runs), "offline": offline_summary(off) if len(off) == 2 else {},
            "runs": {c: [_run_row(r) for r in rs] for c, rs in runs.items()},
            "diagnostics": diagnostics(work, runs["old"]),
            "offline_runs": {c: {k: v for k, v in o.items() if k not in ("per_user", "users")}
                             for c, o in off.items()}}


def diagnostics(work: Path, old: list[dict]) -> list[dict[str, Any]]:
    """Extra demos left in the work dir as diag-*.json (the new code with a flag changed, to find
    which change moves recall; each says what in "label"): Recall@10 against the old runs'."""
    base = sum(r["online"]["recall@10"] for r in old) / len(old)
    out = []
    for path in sorted(work.glob("diag-*.json")):
        doc = json.loads(path.read_text())
        rec = doc["online"]["recall@10"]
        out.append({"label": doc.get("label", path.stem), "recall@10": rec, "ndcg@10": doc["online"]["ndcg@10"],
                    "ratio_to_old_mean": rec / base if base else None})
    return out


def _run_row(doc: dict) -> dict[str, Any]:
    keep = ("online", "online_popularity", "engagements_in", "recommendations_out", "deadlettered",
            "latency_ms", "events_per_s", "streams_imported_from", "load_avg_at_start", "total_wall_s")
    return {k: doc.get(k) for k in keep}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", nargs="?", choices=("compare", "summarise", "demo", "train"), default="compare")
    p.add_argument("--old", default="6bfe463", help="the commit to compare against")
    p.add_argument("--runs", type=int, default=2, help="demos per code")
    p.add_argument("--checkpoint", type=Path, help="the checkpoint both run (none: train the quick one)")
    p.add_argument("--out", type=Path, help="(demo/train) where this tree's result goes")
    p.add_argument("--json", type=Path, default=ROOT / "bench/results/ml100k_guard.json")
    p.add_argument("--note", help="(summarise) a reading of the runs, kept in the JSON and the README")
    p.add_argument("--offline-from", type=Path, help="(compare) reuse this earlier work dir's offline "
                   "evaluations instead of running them (a change they cannot see, e.g. the online trainer's)")
    p.add_argument("--work", type=Path, help="where each run's files go (none: a new temporary dir); "
                   "summarise: the dir to summarise")
    args = p.parse_args()
    if args.action == "demo":
        demo_here(args.checkpoint, args.out)
    elif args.action == "train":
        args.out.write_text(train_here())
    else:
        doc = summarise(args.work) if args.action == "summarise" else compare(args)
        if args.note:
            doc["note"] = args.note
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(json.dumps({k: doc[k] for k in ("online", "offline")}, indent=2))


if __name__ == "__main__":
    main()
