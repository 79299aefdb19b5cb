"""Turns bench/results/scale_components.json (bench/bench_scale.py) into the README's scale section
(between `<!-- scale:start -->` and `<!-- scale:end -->`): a table and a log-log plot of each
cost against the catalogue size, written next to the JSON; then the pipeline level's table from
bench/results/scale.json (`bench_scale.py --level pipeline`) when it exists.

    python bench/report_scale.py [--json bench/results/scale_components.json
                                  --pipeline-json bench/results/scale.json --readme README.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from streams.readme import cell, markdown_table, splice_section

ROOT = Path(__file__).resolve().parents[1]

# (row key, label, sub-key of a timing dict or None, scale to the plotted unit)
PER_ENGAGEMENT = [("retrieval_ms_seen1060", "retrieval, all codes, 1,060 seen (ms CPU)", "cpu_p50"),
                  ("retrieval_ms_bounded_seen1060", "retrieval, engine bounds, 1,060 seen (ms CPU)", "cpu_p50"),
                  ("id_retrieve_ms", "ID retrieve (ms CPU)", "cpu_p50"),
                  ("id_terms_ms", "ID terms + prior (ms CPU)", "cpu_p50")]
PER_CATALOGUE = [("build_s", "index bulk build (s)"), ("id_table_rebuild_s", "ID index build, once at start (s)"),
                 ("id_rows_load_s", "ID rows load (s)"), ("catalogue_encode_s_auto", "encode catalogue, 1 worker (s)")]


def _get(row: dict[str, Any], key: str, sub: str | None = None) -> float | None:
    value = row.get(key)
    if isinstance(value, dict):
        value = value.get(sub or "p50")
    return float(value) if isinstance(value, (int, float)) else None


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _ms(row: dict[str, Any], key: str) -> str:
    """'CPU p50 (wall p50)' milliseconds of one engagement."""
    cpu, wall = _get(row, key, "cpu_p50"), _get(row, key, "p50")
    return "-" if cpu is None else f"{cpu:.1f} ({wall:.1f})"


def table(rows: list[dict[str, Any]], data: str = "random") -> str:
    head = ("| items | index | retrieval ms, 60 / 1,060 seen: all codes | ... engine bounds "
            f"| recall@100 {data} / clustered | build s (IVF k-means) | index MB | ID half ms "
            "| ID index build s (once) / update us per changed row | state bytes, 0 / 1,000 earlier "
            "| encode catalogue, 1 worker | peak RSS MB | ran out |")
    out = [head, "|" + "---|" * 13]
    for r in rows:
        ivf = f" ({r['ivf_train_s']:.1f})" if "ivf_train_s" in r else ""
        id_ms = sum(_get(r, f"id_{s}_ms", "cpu_p50") or 0 for s in ("tower", "retrieve", "terms"))
        enc = _get(r, "catalogue_encode_s_auto")
        out.append(
            f"| {r['items']:,} | {r.get('mode', '-')}{' ' + str(r['nlist']) if r.get('nlist') else ''} "
            f"| {_ms(r, 'retrieval_ms_seen60')} / {_ms(r, 'retrieval_ms_seen1060')} "
            f"| {_ms(r, 'retrieval_ms_bounded_seen60')} / {_ms(r, 'retrieval_ms_bounded_seen1060')} "
            f"| {_num(_get(r, 'recall_at_100'), '.3f')} / {_num(_get(r, 'recall_at_100_clustered'), '.3f')} "
            f"| {_num(_get(r, 'build_s'))}{ivf} | {_num((r.get('index_bytes') or 0) / 2**20 or None, '.0f')} "
            f"| {id_ms:.1f} | {_num(_get(r, 'id_table_rebuild_s'), '.2f')} / "
            f"{_num(_get(r, 'id_rows_changed_us_per_row'), '.1f')} "
            f"| {r.get('user_state_bytes_earlier0', '-')} / {r.get('user_state_bytes_earlier1000', '-')} "
            f"| {'-' if enc is None else f'{enc / 60:,.0f} min'} | {_num(_get(r, 'peak_rss_mb'), '.0f')} "
            f"| {r.get('ran_out', '')} |")
    return "\n".join(out) + "\n"


def growth(rows: list[dict[str, Any]]) -> str:
    """The log-log slope of each cost between the two largest measured sizes (1 = linear)."""
    done = [r for r in rows if "ran_out" not in r]
    if len(done) < 2:
        return ""
    a, b = done[-2], done[-1]
    parts = []
    for key, label, sub in PER_ENGAGEMENT + [(k, lab, None) for k, lab in PER_CATALOGUE]:
        x, y = _get(a, key, sub), _get(b, key, sub)
        if x and y:
            slope = math.log(y / x) / math.log(b["items"] / a["items"])
            parts.append(f"{label.split(' (')[0]}: {slope:.2f}")
    return (f"Growth from {a['items']:,} to {b['items']:,} items, as the log-log slope "
            f"(0 = flat, 1 = linear in the catalogue): " + "; ".join(parts) + ".\n")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Two log-log panels against items: per-engagement ms, per-catalogue seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = [(axes[0], PER_ENGAGEMENT, "ms per engagement (CPU, p50)"),
              (axes[1], [(k, lab, None) for k, lab in PER_CATALOGUE], "seconds per catalogue")]
    for ax, series, ylabel in panels:
        for key, label, sub in series:
            pts = [(r["items"], _get(r, key, sub)) for r in rows]
            pts = [(x, y) for x, y in pts if y]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label.split(" (")[0])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("items in the catalogue")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("bench/bench_scale.py: cost against catalogue size (component level)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _blas(m: dict[str, Any]) -> str:
    b = m.get("blas_threads")
    return str(max(b.values())) if isinstance(b, dict) and b else "unlimited"


def notes(d: dict[str, Any]) -> str:
    m, enc = d["machine"], d.get("encoder", {})
    cfg = d["config"]
    speed = ", ".join(f"{mode} ({v['resolved_mode']}) {v['items_per_s']:.0f} items/s"
                      for mode, v in enc.items() if isinstance(v, dict)) or f"skipped ({enc.get('skipped')})"
    return (f"Machine: {m['cpu']}, {m['cpu_count']} cores, load average {m['load_avg_at_start'][0]:.1f} at "
            f"the start (other processes shared the cores: the table gives the process's CPU time per "
            f"engagement, wall time in brackets); faiss {m['faiss']}, torch {m['torch']} and numpy's "
            f"BLAS on {m['faiss_threads']} / {m['torch_threads']} / {_blas(m)} thread(s). Retrieval: {cfg['m']} interest "
            f"vectors of dim {cfg['dim']}, {cfg['k']} candidates past the seen items, IndexConfig "
            f"defaults (exact below {cfg['index']['exact_threshold']:,} items, then IVF-Flat, "
            f"{_probes(cfg['index'])}), {_data(cfg)}; recall@100 against exact search "
            f"on {cfg['recall_users']} users' queries. ID half: rows of dim {cfg['id_dim']}, prior "
            f"q{cfg['prior_q']:g} (its reference reads a fixed sample of rows). 'engine bounds': the engine's default query codes and fetch bound (EngineConfig). Item encoder on "
            f"{enc.get('sample_items', 0)} feed items: {speed}.\n")


def _data(cfg: dict[str, Any]) -> str:
    if cfg["data"] == "fitted":
        return ("vectors of a Gaussian mixture fitted to the production feed's items encoded by the "
                "packaged encoder, queried by encoded users' UPE codes (store.synthetic.FittedVectors)")
    return f"{cfg['data']} unit vectors"


def _probes(index: dict[str, Any]) -> str:
    """How many lists a query probes: a fixed nprobe, or the lists holding scan_rows vectors."""
    if index.get("nprobe"):
        return f"nprobe {index['nprobe']}"
    return (f"the lists holding about {index['scan_rows']:,} vectors per query, inner products through "
            "an extra coordinate (store/faiss_index.py); realistic recall: bench/results/index.json")


def users_note(rows: list[dict[str, Any]]) -> str:
    """What the user count changes: nothing above reads another user's state; the stores grow."""
    r = next((r for r in reversed(rows) if "user_state_bytes_earlier0" in r), None)
    if r is None:
        return ""
    return (f"User count: none of the costs above reads another user's state or grows with users; the "
            f"user-state stores do, by {r['user_state_bytes_earlier0'] / 1024:.0f} KiB (no earlier items) "
            f"to {r['user_state_bytes_earlier1000'] / 1024:.0f} KiB (1,000 earlier items) per user: "
            f"{r['user_state_bytes_earlier0'] * 1e6 / 2**30:.0f}-{r['user_state_bytes_earlier1000'] * 1e6 / 2**30:.0f} "
            "GiB per million users across the partitions, each engagement writing its user's whole value "
            "to the changelog.\n")


def section(d: dict[str, Any], png: Path, readme: Path) -> str:
    link = os.path.relpath(png, readme.parent)
    return ("## Results: scale\n\nGenerated by `bench/report_scale.py` from `bench/bench_scale.py`: "
            "**component level**, every part called in one process the way the engine calls it per "
            "engagement, no broker and no worker, so these are the parts' costs, not the pipeline's "
            "latency.\n\n" + table(d["rows"], d["config"].get("data", "random")) + "\n" + growth(d["rows"]) + "\n" + users_note(d["rows"])
            + "\n" + notes(d)
            + f"\n![cost against catalogue size]({link})\n")


# ---- pipeline level (bench/results/scale.json) -------------------------------------------------

PIPELINE_HEAD = ("items", "users", "state bytes p50 / max", "changelog bytes / engagement",
                 "saturation ev/s (ratio)", "p50 / p99 ms at 25/s", "retrieval ms / event", "ANN recall@100",
                 "worker RSS MB", "restore s", "catalogue ready s", "sweep max block ms",
                 "p99 during retrain / p99", "ran out", "item vectors", "run")


def _v(row: dict[str, Any], key: str, fmt: str = ".0f") -> str:
    return cell(row.get(key), fmt)


def pipeline_table(rows: list[dict[str, Any]]) -> str:
    v = _v
    return markdown_table(PIPELINE_HEAD, [
        (f"{r['items']:,}", f"{r['users']:,}", f"{v(r, 'state_bytes_p50')} / {v(r, 'state_bytes_max')}",
         v(r, "changelog_bytes_per_engagement"),
         f"{v(r, 'saturation_events_per_s', '.1f')} ({v(r, 'saturation_ratio', '.2f')})",
         f"{v(r, 'p50_ms')} / {v(r, 'p99_ms')}", v(r, "retrieval_ms_per_event", ".1f"),
         v(r, "ann_recall_at_100", ".3f"), v(r, "rss_mb"), v(r, "restore_s", ".1f"), v(r, "catalogue_ready_s", ".1f"),
         v(r, "sweep_max_block_ms", ".1f"), v(r, "p99_during_retrain_ratio", ".2f"), r.get("ran_out") or "",
         r.get("vectors", "clustered"), r.get("run") or "earlier")
        for r in rows])


TARGETS = [("saturation_events_per_s", ">=", 50.0, "saturation >= 50 engagements/s"),
           ("saturation_ratio", ">=", 0.8, "saturation >= 0.8 x the smallest size of the same run"),
           ("p99_ms", "<=", 500.0, "p99 <= 500 ms at 25/s"),
           ("retrieval_ms_per_event", "<=", 10.0, "retrieval <= 10 ms per engagement"),
           ("ann_recall_at_100", ">=", 0.95, "ANN recall@100 >= 0.95"),
           ("restore_s", "<=", 300.0, "restore <= 5 min"),
           ("catalogue_ready_s", "<=", 600.0, "catalogue ready <= 10 min"),
           ("sweep_max_block_ms", "<=", 100.0, "sweep block <= 100 ms"),
           ("p99_during_retrain_ratio", "<=", 2.0, "p99 during retrain <= 2 x")]


def targets_line(rows: list[dict[str, Any]]) -> str:
    """The issue's targets against the largest size with a measurement of each (of one run)."""
    parts = []
    for key, op, bound, label in TARGETS:
        measured = [r for r in rows if isinstance(r.get(key), (int, float))]
        r = max(measured, key=lambda r: r["items"]) if measured else None
        if r is None:
            parts.append(f"{label}: not measured")
            continue
        ok = r[key] >= bound if op == ">=" else r[key] <= bound
        shown = f"{r[key]:,.0f}" if abs(r[key]) >= 100 else f"{r[key]:.3g}"
        parts.append(f"{label}: {shown} at {r['items']:,} items ({'met' if ok else 'missed'})")
    return ("Against the targets of issue 26 (the newest run, its largest size measured): "
            + "; ".join(parts) + ".\n")


def run_of(row: dict[str, Any]) -> str:
    """A row's run label (UTC start, as `--merge` stamps it); rows from before the stamp: earlier."""
    return row.get("run") or "earlier"


def newest_run(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the rows of the newest run, the others newest first): earlier code, read as history."""
    newest = max((run_of(r) for r in rows), key=lambda x: (x != "earlier", x), default="earlier")
    older = sorted((r for r in rows if run_of(r) != newest), key=lambda r: (run_of(r) != "earlier", run_of(r)),
                   reverse=True)
    return [r for r in rows if run_of(r) == newest], older


def larger_line(newest: list[dict[str, Any]], older: list[dict[str, Any]]) -> str:
    """The sizes past the newest run's, as earlier runs left them (what ran out, or what they served)."""
    top = max((r["items"] for r in newest), default=0)
    past = {r["items"]: r for r in reversed(older) if r["items"] > top}  # the newest run of each size
    if not past:
        return ""
    parts = [f"{n:,} items x {r['users']:,} users (run {run_of(r)}): "
             + (f"ran out of {r['ran_out']}" if r.get("ran_out") else
                f"saturation {_v(r, 'saturation_events_per_s', '.1f')}/s, p99 {_v(r, 'p99_ms')} ms at 25/s, "
                f"retrieval {_v(r, 'retrieval_ms_per_event', '.1f')} ms, p99 during retrain "
                f"{_v(r, 'p99_during_retrain_ratio', '.1f')}x")
             for n, r in sorted(past.items())]
    return "Larger sizes, from earlier runs (older code): " + "; ".join(parts) + ".\n"


def pipeline_notes(d: dict[str, Any]) -> str:
    m, rows = d["machine"], d["rows"]
    loads = ", ".join(f"{r.get('load_avg_at_start', 0):.1f}" for r in rows)
    explain = "; ".join(f"{r['items']:,} items: model {_v(r, 'model_ms_per_event', '.0f')} ms/event with "
                        f"{_v(r, 'sessions_recomputed_per_event', '.1f')} older sessions re-encoded per "
                        f"event on the engine thread (token-state cache misses; "
                        f"{_v(r, 'lane_recomputed_per_event', '.1f')} in the summary lane), "
                        f"{_v(r, 'changelog_records_per_engagement', '.2f')} "
                        f"changelog records per engagement, {r.get('index_rebuilds_during_doubling', '-')} "
                        f"index rebuilds in the doubling, its vectors applied at "
                        f"{_v(r, 'doubling_applied_per_s', '.0f')}/s" for r in rows if "model_ms_per_event" in r)
    setup = "; ".join(f"{r['items']:,} items: items + vectors {_v(r, 'bulk_items_s')} s, states "
                      f"{_v(r, 'bulk_states_s')} s, broker RSS {_v(r, 'broker_rss_mb')} MB" for r in rows)
    nice = d.get("config", {}).get("publisher_nice")
    publisher = ("" if nice is None else f" The doubling's vectors were published from the bench's process at "
                 f"nice {nice} (other machines publish them in a deployment).")
    return (f"Bulk load (set-up, before the worker starts): {setup}.{publisher} "
            f"Broker: {d['broker']}; {d['worker']}; {d['checkpoint']}. Item "
            f"vectors: {d['vectors']['note']} ({d['vectors']['generator']}; the column says which each "
            f"row ran: `fitted`, the mixture fitted to the encoder's items, norms varying as theirs do; "
            f"`clustered`, unit vectors around 1,000 centres). Warm states: {d['warm_states']}. Machine: {m['cpu']}, {m['cpu_count']} cores, "
            f"load average {loads} at the start of each size (other processes shared the cores). "
            f"Where the time goes: {explain}.\n")


def pipeline_section(d: dict[str, Any]) -> str:
    newest, older = newest_run(d["rows"])
    out = ("\n### Pipeline level\n\nGenerated from `bench/results/scale.json` (`bench/bench_scale.py "
           "--level pipeline`): a real worker subprocess through the bundled broker, per size the "
           "synthetic feed bulk-loaded, the worker started on an empty data dir, warm users' "
           f"held-out engagements replayed. The newest run ({run_of(newest[0])}):\n\n" + pipeline_table(newest)
           + "\n" + targets_line(newest) + "\n" + larger_line(newest, older) + "\n"
           + pipeline_notes({**d, "rows": newest}))
    if older:
        out += "\nEarlier runs, newest first (each on the code of its day):\n\n" + pipeline_table(older)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/scale_components.json")
    ap.add_argument("--pipeline-json", type=Path, default=ROOT / "bench/results/scale.json")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args()
    d = json.loads(args.json.read_text())
    png = args.json.resolve().with_suffix(".png")
    plot(d["rows"], png)
    body = section(d, png, args.readme.resolve())
    if args.pipeline_json.is_file():
        body += pipeline_section(json.loads(args.pipeline_json.read_text()))
    splice_section(args.readme, "scale", body, after="<!-- speed:end -->")
    print(f"wrote the scale section of {args.readme} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
