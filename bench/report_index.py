"""Turns bench/results/index.json (bench/bench_index.py) into the README's retrieval-index section
(between `<!-- index:start -->` and `<!-- index:end -->`): recall@100 against CPU time per
engagement for each layout (norm bands, as before them, one IVF) and row budget, at each size.

    python bench/report_index.py [--json bench/results/index.json --readme README.md]
        [--later bench/results/index_merged.json bench/results/index_trained_codes.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from streams.readme import markdown_table, splice_section

ROOT = Path(__file__).resolve().parents[1]

INTRO = """`bench/bench_index.py`: recall@100 of `FaissIndex.search` against exact search, and CPU ms per
engagement of `search_many` with the engine's bounds, one thread. `codes`: per user the engine's
10 UPE codes as queries; `items`: 10 held-out item vectors per user. `feed`: the production feed's
items encoded by the packaged encoder; `fitted`: a mixture fitted to them, sampled at 1M.
`banded` is the default layout (the IVF in norm bands, `store/faiss_bands.py`, fp16 codes, each
user's queries pooling their rows on the (query, list) pairs of the best estimated scores);
`banded-shares` is the layout before it (fp32 codes, each query's rows shared 8:4:2:1 by the
bands); `single` is one IVF over all items. The row budget per query is `IndexConfig.scan_rows`
(worker flag `--index-scan-rows`): since `banded` follows the catalogue (`scan_rows_exponent`, the
budget at 1M items x (items / 1M)^(1/3)), its rows at the size are shown in brackets where the
run recorded them; `banded-fixed` keeps the budget whatever the size.
"""


def _pair(rows: list[dict[str, Any]], key: str) -> str:
    by = {r["queries"]: r for r in rows}
    fmt = "{:.3f}" if key == "recall_at_100" else "{:.1f}"
    return " / ".join(fmt.format(by[q][key]) if q in by else "-" for q in ("codes", "items"))


def _now() -> int:
    from store.config import IndexConfig

    return IndexConfig().scan_rows


def table(rows: list[dict[str, Any]], default_rows: int | None = None) -> str:
    """One line per setting; default_rows: mark that budget as today's default (later runs)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["data"], r["items"], r.get("layout", "single"), r.get("scan_rows"), r["nprobe"])
        groups.setdefault(key, []).append(r)
    out = []
    for (data, items, layout, budget, nprobe), rs in groups.items():
        if default_rows is None:  # the run's own default, which may have changed since
            was = rs[0].get("default_nprobe") and layout == "banded"
            default = "" if not was else " (default)" if budget == _now() else " (default then)"
        else:
            default = " (default now)" if budget == default_rows and layout == "banded" else ""
        at = rs[0].get("rows_at_size")
        budget_text = f"{budget:,}" + (f" ({at:,} here)" if at and at != budget else "") + default
        out.append((data, f"{items:,}", layout, budget_text if budget else f"nprobe {nprobe}",
                    str(rs[0]["nlist"]), _pair(rs, "recall_at_100"), _pair(rs, "cpu_ms_per_engagement")))
    head = ("vectors", "items", "layout", "rows per query", "lists", "recall@100 codes / items",
            "ms per engagement codes / items")
    return markdown_table(head, out)


def section(d: dict[str, Any], later: list[tuple[str, dict[str, Any]]] = ()) -> str:
    m = d["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_avg_at_end"])
    out = (f"## Results: retrieval index\n\n{INTRO}\n{table(d['rows'])}\nMachine: {m['cpu_count']} cores, "
           f"load average {load} at the end (shared), faiss {m['faiss']}, {m['threads']} thread.\n")
    for name, run in later:
        out += "\n" + later_run(name, run)
    return out


def later_run(name: str, d: dict[str, Any]) -> str:
    """A later, smaller run: its vectors, the merge of near-duplicate queries, and its rows."""
    cfg, merge = d["config"], d["index_defaults"].get("query_merge_cos", 1.0)
    load = ", ".join(f"{x:.1f}" for x in d["machine"]["load_avg_at_end"])
    return (f"A later run (`bench/results/{name}`): vectors from `{Path(cfg['vectors']).name}` "
            f"({d['encoded_items']:,} encoded items, {d['users_with_codes']} users' codes), near-duplicate "
            f"queries merged above cosine {merge} (`banded-unmerged`: not), load average {load} at the end.\n\n"
            f"{table(d['rows'], _now())}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", type=Path, default=ROOT / "bench/results/index.json")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--later", type=Path, nargs="*", default=[ROOT / "bench/results/index_merged.json",
                                                          ROOT / "bench/results/index_trained_codes.json"])
    args = p.parse_args()
    later = [(f.name, json.loads(f.read_text())) for f in args.later if f.is_file()]
    splice_section(args.readme, "index", section(json.loads(args.json.read_text()), later),
                   before="## Results: online trainer at scale")
    print("README index section written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
