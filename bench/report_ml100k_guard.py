"""Turns bench/results/ml100k_guard.json (bench/bench_ml100k_guard.py) into the README's section
between `<!-- ml100k-guard:start -->` and `<!-- ml100k-guard:end -->`: old vs new code on
MovieLens-100K, online (the demo) and offline (test split), with issue 26's verdict.

    python bench/report_ml100k_guard.py [--json bench/results/ml100k_guard.json --readme README.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from streams.readme import markdown_table, splice_section

ROOT = Path(__file__).resolve().parents[1]



def _tail(path: str) -> str:
    """The last folder of a path (a work dir's name, not where it lay on the bench's machine)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _checkpoint_name(path: str) -> str:
    """A quick checkpoint by its cache name (demo-quick/<hash>/model) wherever it was copied."""
    return "demo-quick/" + path.split("demo-quick/", 1)[1] if "demo-quick/" in path else _tail(path)


def _scrub(command: str) -> str:
    """The command with its path arguments cut to their last folder."""
    return " ".join(_tail(w) if w.startswith("/") else w for w in command.split())

def _interval(row: dict[str, Any]) -> str:
    if row.get("ratio_lo") is None:
        return "-"
    return f"{row['ratio_lo']:.3f}-{row['ratio_hi']:.3f}"


def table(d: dict[str, Any]) -> str:
    """One line per metric: old, new, new/old with its paired 95% interval, verdict."""
    rows = []
    for name in ("recall@10", "ndcg@10"):
        r = d["online"][name]
        rows.append((f"online {name} (demo)", f"{r['old']:.4f}", f"{r['new']:.4f}", f"{r['ratio']:.3f}",
                     _interval(r), r["verdict"]))
    for model, r in d["offline"].items():
        rows.append((f"offline test Recall@10, {model}", f"{r['old']:.4f}", f"{r['new']:.4f}",
                     f"{r['ratio']:.3f}" if r["ratio"] is not None else "-", _interval(r), r["verdict"]))
    c = d["commits"]
    head = ("metric", f"old ({c['old']})", f"new ({c['new']})", "new / old", "95% interval", "verdict")
    return markdown_table(head, rows)


def per_run(d: dict[str, Any]) -> str:
    """Each demo's online Recall@10 / nDCG@10, in the order they ran per code."""
    parts = []
    for code, runs in d["runs"].items():
        vals = ", ".join(f"{r['online']['recall@10']:.4f} / {r['online']['ndcg@10']:.4f}" for r in runs)
        parts.append(f"{code}: {vals}")
    return "; ".join(parts)


def _by_engagement(row: dict[str, Any]) -> str:
    if row.get("ratio_lo_engagements") is None:
        return ""
    return (f"; resampling engagements instead, Recall@10 new / old "
            f"{row['ratio_lo_engagements']:.3f}-{row['ratio_hi_engagements']:.3f}")


def _diagnostics(d: dict[str, Any]) -> str:
    """One line per extra demo of the new code with a flag changed (which change moves recall)."""
    rows = [f"- {x['label']}: Recall@10 {x['recall@10']:.4f} ({x['ratio_to_old_mean']:.3f}x the old runs' mean)"
            for x in d.get("diagnostics", [])]
    return "\nOne run each of the new code with one thing changed:\n\n" + "\n".join(rows) + "\n" if rows else ""


def _offline_how(d: dict[str, Any]) -> str:
    """Where the offline figures come from: this run, an earlier run's (reused), or none."""
    if not d["offline"]:
        return ": not finished in this run"
    reused = {r["reused_from"] for r in d.get("offline_runs", {}).values() if r.get("reused_from")}
    where = ", ".join(sorted(_tail(r) for r in reused))
    return f", reused from an earlier run of the same checkpoint (work dir {where})" if reused else ""


def section(d: dict[str, Any]) -> str:
    on = d["online"]
    load = ", ".join(f"{x:.1f}" for x in d["load_avg_at_start"])
    return (f"## Results: MovieLens-100K against the code before issue 26\n\n"
            f"`{_scrub(d['command'])}`: the old commit in a temporary git worktree, both codes on checkpoint "
            f"`{_checkpoint_name(d['checkpoint'])}` and the same data; online = `{d['demo_command']}`, "
            f"{len(d['runs']['new'])} runs per code, alternating; offline = `threadrec evaluate --no-baselines` "
            f"(test split, fp32){_offline_how(d)}. Bar: new / old >= {1 - d['tolerance']:.2f}; \"resolved\" when the paired "
            f"interval lies on one side of it.\n\n{table(d)}\n"
            f"Online pairs: {on['judged_in_every_run']} engagements judged in every run, {on['users']} users "
            f"(the interval resamples users{_by_engagement(on['recall@10'])}). Per run, Recall@10 / nDCG@10: {per_run(d)}. "
            f"Machine: {d['cpu_count']} cores, load average {load} at the start (shared).\n{_diagnostics(d)}"
            + (f"\n{d['note']}\n" if d.get("note") else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=ROOT / "bench/results/ml100k_guard.json")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = p.parse_args()
    splice_section(args.readme, "ml100k-guard", section(json.loads(args.json.read_text())),
                   before="<!-- results:start -->")


if __name__ == "__main__":
    main()
