"""What the demo shows in the terminal: live recommendations for a few users, then the report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streams.demo.report import Judged, Report

logger = logging.getLogger(__name__)

SHOW_ITEMS = 5


def title_of(items: Mapping[str, Mapping[str, Any]], item_id: str | None) -> str:
    if item_id is None:
        return "-"
    it = items.get(item_id)
    return f"{it.get('title') or item_id}" if it else item_id


def user_panel(j: Judged, items: Mapping[str, Mapping[str, Any]], seen: int) -> Panel:
    """The latest recommendation of one user: summary, top items, what they engaged with next."""
    t = Table.grid(padding=(0, 1))
    t.add_column(justify="right", style="dim")
    t.add_column()
    t.add_column(justify="right")
    for r, (item_id, score) in enumerate(zip(j.items[:SHOW_ITEMS], j.scores, strict=False), 1):
        hit = item_id == j.next_item
        t.add_row(str(r), Text(title_of(items, item_id), style="bold green" if hit else ""),
                  f"{score:.3f}")
    rank = j.rank
    nxt = ("(last replayed engagement)" if j.next_item is None else
           f"{title_of(items, j.next_item)}  " + (f"[rank {rank + 1}]" if rank is not None else "[not in top 10]"))
    body = Group(Text(f"engaged with: {title_of(items, j.item_id)}"),
                 Text(f"summary: {j.summary or '(popularity fallback)'}", style="italic"), t,
                 Text(f"next engagement: {nxt}", style="cyan"))
    return Panel(body, title=f"user {j.user_id}  ({seen} recommendations, {j.latency_s * 1000:.0f} ms)",
                 title_align="left")


def live_view(judged: list[Judged], featured: list[str], items: Mapping[str, Mapping[str, Any]],
              status: str) -> RenderableType:
    """Status line and the featured users' latest recommendation."""
    latest: dict[str, Judged] = {}
    count: dict[str, int] = {}
    for j in judged:
        if j.user_id in featured:
            latest[j.user_id] = j
            count[j.user_id] = count.get(j.user_id, 0) + 1
    panels = [user_panel(latest[u], items, count[u]) for u in featured if u in latest]
    return Group(Text(status, style="bold"), *panels)


def report_table(report: Report) -> Table:
    """The end-of-run report as a two-column table."""
    d = report.as_json()
    t = Table(title="threadrec demo report", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    rows = [("engagements in", f"{d['engagements_in']:,}"),
            ("recommendations out", f"{d['recommendations_out']:,}"),
            ("dead-lettered", f"{d['deadlettered']:,}"),
            ("latency p50 / p99", f"{d['latency_ms']['p50']:.0f} / {d['latency_ms']['p99']:.0f} ms"),
            ("events/s (replay start -> last output)", f"{d['events_per_s']:.1f}"),
            (f"online Recall@10 (next engagement, {d['online']['judged']} judged)",
             f"{d['online']['recall@10']:.4f}"),
            ("online nDCG@10", f"{d['online']['ndcg@10']:.4f}")]
    pop = d.get("online_popularity")
    if pop:
        rows.append(("popularity (context): Recall@10 / nDCG@10",
                     f"{pop['recall@10']:.4f} / {pop['ndcg@10']:.4f}"))
    rows += learning_rows(d)
    for k, v in rows:
        t.add_row(k, v)
    return t


def learning_rows(d: dict) -> list[tuple[str, str]]:
    """The online learning part of the report: curve, parameter version, trainer counters."""
    rows = []
    for c in d.get("curve", []):
        pop = c["popularity"]["recall@10"] if c.get("popularity") else float("nan")
        rows.append((f"  learning curve, chunk {c['chunk'] + 1}: model / popularity Recall@10",
                     f"{c['model']['recall@10']:.4f} / {pop:.4f}"))
    if d.get("param_version_last") is not None:
        rows.append(("parameter version of the last recommendation", str(d["param_version_last"])))
    tr = d.get("trainer")
    if tr:
        rows.append(("trainer: engagements learned / syncs / rows sent",
                     f"{tr.get('engagements', 0):,} / {tr.get('syncs', 0)} / {tr.get('rows_sent', 0):,}"))
    return rows
