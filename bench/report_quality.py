"""Write the README's quality section from results/*.json (tables, targets, a PNG plot).

Everything between `<!-- results:start -->` and `<!-- results:end -->` in README.md is
regenerated; the markers are appended at the end when missing. Numbers come only from the
JSON files written by `threadrec evaluate`, `threadrec merge-seeds` and bench/bench_online_policies.py.

    python bench/report_quality.py --results results --readme README.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.evaluation.confidence import compare
from model.evaluation.seeds import claim
from streams.readme import markers, splice_section

ROOT = Path(__file__).resolve().parents[1]
START, END = markers("results")
IMP = ("auc", "mrr", "ndcg@5", "ndcg@10")
FULL = ("full_recall@10", "full_recall@50", "full_ndcg@10", "full_ndcg@50")
LABELS = {"auc": "AUC", "mrr": "MRR", "ndcg@5": "nDCG@5", "ndcg@10": "nDCG@10",
          "full_recall@10": "R@10 (full)", "full_recall@50": "R@50 (full)",
          "full_ndcg@10": "nDCG@10 (full)", "full_ndcg@50": "nDCG@50 (full)"}
ABLATIONS = (("full", "full model (sessions, lambda=0.05, m=32, n=4)"), ("lambda0", "lambda = 0 (no summary loss)"),
             ("mn1", "m = n = 1 (single user / item code)"), ("one_chunk", "one-chunk history encoding"))


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _cell(res: dict, name: str, metric: str, best: float) -> str:
    """The mean (bold when the highest), with its 95% bootstrap interval when the run has one."""
    v = res["models"][name][metric]
    text = f"**{fmt(v)}**" if v == best else fmt(v)
    iv = res.get("intervals", {}).get(name, {}).get(metric)
    return f"{text} ({iv['lo']:.3f}-{iv['hi']:.3f})" if iv else text


def model_table(res: dict) -> list[str]:
    cols = IMP + FULL
    lines = ["| model | " + " | ".join(LABELS[c] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    best = {c: max(v[c] for v in res["models"].values()) for c in cols}
    for name in res["models"]:
        lines.append(f"| {name} | " + " | ".join(_cell(res, name, c, best[c]) for c in cols) + " |")
    if res.get("intervals"):
        lines += ["", "In parentheses: 95% bootstrap interval over users."]
    return lines


def data_line(res: dict) -> str:
    d = res["data"]
    return (f"{d['split']} split: {d['impressions']} impressions (1 positive + 4 sampled negatives) over "
            f"{d['users']} users; full ranking over {d['items']} items minus each user's history "
            f"for {d['full_ranking_users']} users.")


def train_line(res: dict) -> str:
    ck = res.get("checkpoint") or {}
    meta, cfg = ck.get("metadata", {}), ck.get("config", {})
    opts = meta.get("options", {})
    parts = [f"checkpoint `{ck.get('path')}`: step {meta.get('step')}",
             f"{meta.get('elapsed_s', 0) / 60:.1f} min of CPU training" if meta.get("elapsed_s") else None,
             f"batch {opts.get('batch_size')}, lr {opts.get('lr')}" if opts else None,
             f"m={cfg.get('m')}, n={cfg.get('n')}, r={cfg.get('r')}, lambda={cfg.get('lambda_sum')}, "
             f"g={cfg.get('max_sessions')} sessions x {cfg.get('max_session_tokens')} tokens, "
             f"history_mode={cfg.get('history_mode', 'sessions')}, frozen layers={cfg.get('freeze_layers')}"]
    return "; ".join(p for p in parts if p) + "."


def _diff(iv) -> str:
    return f"{iv.mean:+.4f} [{iv.lo:+.4f}, {iv.hi:+.4f}]"


def above_all(res: dict, name: str, metric: str) -> str:
    """'**status** (detail)' for "name above every other model on metric". With per-user values
    each pair is judged by the paired bootstrap interval of the difference (on par when it holds
    0); without them no claim is made, whatever the point values say."""
    ms, per = res["models"], res.get("per_user", {})
    others = [b for b in ms if b != name]
    if not all(metric in per.get(m, {}) for m in [name, *others]):
        behind = [b for b in others if ms[b][metric] >= ms[name][metric]]
        detail = "; point values only, not beaten: " + ", ".join(f"{b} {fmt(ms[b][metric])}" for b in behind) \
            if behind else "; point values only"
        return f"**not claimed: no per-user values, so no interval** ({name} {fmt(ms[name][metric])}{detail})"
    judged = {b: compare(per[name][metric], per[b][metric]) for b in others}
    below = [b for b, (v, _) in judged.items() if v == "below"]
    par = [b for b, (v, _) in judged.items() if v == "on par"]
    status = "missed" if below else "on par" if par else "met"
    detail = ", ".join(f"{b} {v} {_diff(iv)}" for b, (v, iv) in judged.items() if v != "above")
    return f"**{status}** ({name} {fmt(ms[name][metric])}" + (f"; {detail})" if detail else ")")


def targets(test: dict, onlines: list[tuple[str, dict]]) -> list[str]:
    out = []
    ms = test["models"]
    if "embsum" in ms:
        for metric in ("full_ndcg@10", "auc"):
            out.append(f"- EmbSum beats every baseline on test {LABELS[metric]}: {above_all(test, 'embsum', metric)}")
    for label, online in onlines:
        if {"realtime", "stale", "frozen"} <= set(online["policies"]):
            out.append(f"- Real-time beats stale and frozen on online Recall@{online['protocol']['k']} ({label}): "
                       + realtime_claim(online))
    return out


def realtime_claim(online: dict) -> str:
    """'**status** (detail)' for "real-time above stale and frozen": each pair judged by the paired
    bootstrap interval of the difference in hits over the judgments both policies made; no claim
    when the run kept no per-judgment hits."""
    p, k = online["policies"], online["protocol"]["k"]
    r = {n: p[n][f"recall@{k}"] for n in ("realtime", "stale", "frozen")}
    points = f"realtime {fmt(r['realtime'])}, stale {fmt(r['stale'])}, frozen {fmt(r['frozen'])}"
    if not all(p[n].get("hits") for n in r):
        return f"**not claimed: no per-judgment hits, so no interval** ({points}; point values only)"
    judged = {}
    for other in ("stale", "frozen"):
        common = sorted(set(p["realtime"]["hits"]) & set(p[other]["hits"]))
        judged[other] = compare([p["realtime"]["hits"][c] for c in common], [p[other]["hits"][c] for c in common])
    verdicts = [v for v, _ in judged.values()]
    status = "missed" if "below" in verdicts else "on par" if "on par" in verdicts else "met"
    detail = ", ".join(f"{o} {v} {_diff(iv)} over {iv.n} judgments" for o, (v, iv) in judged.items())
    return f"**{status}** ({points}; realtime vs {detail})"


HYBRID_TARGETS = {"full_recall@10": 0.18, "full_ndcg@10": 0.09}


def hybrid_targets(res: dict) -> list[str]:
    """Issue 12's targets on one evaluation run that holds the hybrid and every baseline."""
    ms, out = res["models"], []
    h = ms["hybrid"]
    for metric, floor in HYBRID_TARGETS.items():
        ok = h[metric] >= floor
        out.append(f"- Hybrid test {LABELS[metric]} >= {floor}: **{'met' if ok else 'missed'}** ({fmt(h[metric])})")
    for metric in ("full_recall@10", "full_ndcg@10", "auc"):
        out.append(f"- Hybrid above every other model on test {LABELS[metric]}: {above_all(res, 'hybrid', metric)}")
    out.append("- (above = the 95% paired bootstrap interval over users of the difference excludes 0; "
               "on par = it holds 0)")
    return out


def hybrid_section(res: dict, command: str) -> list[str]:
    """The hybrid against every baseline in one run, with how each ID model was trained."""
    md = ["### Hybrid (EmbSum content + ID memory) vs baselines, one run", "", data_line(res), train_line(res),
          "", *hybrid_targets(res), "", *model_table(res), ""]
    tr = res.get("training", {})
    if "hybrid" in tr:
        t = tr["hybrid"]["tower"]
        md.append(f"ID half: SASRec tower {t['epochs']} epochs (best {t['best_epoch']}, valid R@10 "
                  f"{fmt(t['best_valid_recall@10'])}, {t['seconds'] / 60:.1f} min), gate fitted on "
                  f"{tr['hybrid']['held_in_positions']} {tr['hybrid'].get('fit_on', 'held-in')} positions; {tr['hybrid']['id_rows']} ID rows; "
                  f"{tr['hybrid']['elapsed_s'] / 60:.1f} min in all.")
    for name in ("sasrec", "bpr"):
        if name in tr:
            t = tr[name]
            md.append(f"Baseline {name}: {t['epochs']} epochs, best {t['best_epoch']} (valid R@10 "
                      f"{fmt(t['best_valid_recall@10'])}), {t['seconds'] / 60:.1f} min.")
    if res.get("cold"):
        md += ["", f"Cold-item slice: {res['cold_users']} test users whose target no model trained on.", "",
               "| model | R@10 (full) | nDCG@10 (full) |", "|---|---|---|"]
        md += [f"| {n} | {fmt(m['full_recall@10'])} | {fmt(m['full_ndcg@10'])} |" for n, m in res["cold"].items()]
    return md + ["", f"Reproduce: `{command}`", ""]


SEED_METRICS = (("full_recall@10", "recall@10"), ("full_ndcg@10", "ndcg@10"))
MIN_SEEDS, MARGIN = 3, 1.10  # issue 28: >= 3 seeds each; hybrid R@10 >= 1.10 x SASRec's


def _ci(d: dict) -> str:
    return f"{d['mean']:.4f} [{d['ci_low']:.4f}, {d['ci_high']:.4f}]"


def _signed(d: dict) -> str:
    return f"{d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"


def seed_claims(res: dict) -> list[str]:
    """One line per 'focus vs model' difference, its word read off the paired interval."""
    focus, out = res["focus"], []
    for other in (n for n in res["models"] if n != focus):
        for metric, short in SEED_METRICS:
            d = res.get(f"diff_{focus}_{other}_{short}")
            if d:
                out.append(f"- {focus} vs {other} on test {LABELS[metric]}: **{claim(d)}** (difference {_signed(d)})")
    return out


def seed_targets(res: dict) -> list[str]:
    """Issue 28's margin over SASRec: the ratio of means and both paired intervals above 0."""
    r, dr, dn = (res.get(k) for k in ("hybrid_over_sasrec_recall@10", "diff_hybrid_sasrec_recall@10",
                                      "diff_hybrid_sasrec_ndcg@10"))
    if r is None or not dr or not dn:
        return []
    few = len(res["seeds"]) < MIN_SEEDS
    word = (f"not claimed: {len(res['seeds'])} seed(s), the target needs >= {MIN_SEEDS}" if few else
            "met" if r >= MARGIN and claim(dr) == "above" else "missed")
    nd = f"not claimed: {len(res['seeds'])} seed(s)" if few else "met" if claim(dn) == "above" else "missed"
    return [f"- Hybrid test R@10 >= {MARGIN:.2f} x SASRec's, its paired interval above 0: **{word}** "
            f"(hybrid / SASRec {r:.3f}x; difference {_signed(dr)})",
            f"- Hybrid test nDCG@10 above SASRec, its paired interval above 0: **{nd}** (difference {_signed(dn)})"]


def seed_runs(res: dict) -> list[str]:
    """Per seed: its file, checkpoint and training minutes (the budget is per seed)."""
    out = []
    for r in res["runs"]:
        mins = ", ".join(f"{k.removesuffix('_minutes')} {v} min" for k, v in r.items()
                         if k.endswith("_minutes") and v is not None)
        src = f"`{r['file']}`, " if r.get("file") else ""
        how = ", ".join(f"{label} {r[k]}" for k, label in (("content_budget", "budget"), ("train_dtype", "dtype"))
                        if r.get(k))
        out.append(f"- seed {r['seed']}: {src}checkpoint `{r['checkpoint']}` (trained with seed "
                   f"{r['train_seed']}{'; ' + how if how else ''}); {mins or 'no training times recorded'}")
    return out


def seeds_section(res: dict) -> list[str]:
    """Every model over seeds: mean over users of the seed-averaged per-user values, its interval,
    the per-seed means, and the focus model's paired differences written as above / on par / below."""
    seeds = ", ".join(str(s) for s in res["seeds"])
    md = [f"### Over seeds ({seeds}): {res['focus']} vs every model, test split", "",
          f"{res['users']} test users; each model's per-user values are averaged over the seeds, then "
          "the mean over users is shown with its 95% bootstrap interval over users; a difference is the "
          "paired bootstrap interval over the same users, written above / below only when it excludes 0 "
          "(on par when it holds 0).", "", *seed_targets(res), *seed_claims(res), "",
          "| model | R@10 (full) [95% CI] | nDCG@10 (full) [95% CI] | R@10 per seed |", "|---|---|---|---|"]
    for name, ms in res["models"].items():
        per = ", ".join(f"{x:.4f}" for x in ms.get("per_seed", {}).get("full_recall@10", []))
        md.append(f"| {name} | {_ci(ms['full_recall@10'])} | {_ci(ms['full_ndcg@10'])} | {per} |")
    md += ["", *seed_runs(res), "", "Reproduce: `make quality-seed SEED=S` for each seed (`SEED_STEPS=N SEED_PRECISION=fp32` bounds it by steps, not minutes; `threadrec train ... "
           "--seed S`, then `threadrec evaluate --split test --seed S --json results/quality_test_seedS.json`), "
           "then `make quality-seeds-merge` (`threadrec merge-seeds results/quality_test_seed*.json --json "
           "results/quality_seeds.json`)", ""]
    return md


SUMMARY_TARGETS = (("distinct across users", "grounding", "distinct_share", 0.90),
                   ("named titles in the history", "grounding", "named_titles_in_history_share", 1.0),
                   ("naming a genre of the last session", "grounding", "last_session_genre_share", 0.80),
                   ("ending with EOS", "quality", "eos_share", 0.95),
                   ("with no repeated 3-gram", "quality", "repeated_3gram_share", 0.95))


def _summary_value(block: dict, part: str, key: str) -> float | None:
    v = block.get(part, {}).get(key)
    return None if v is None else 1 - v if key == "repeated_3gram_share" else v


def summary_rows(results: Path) -> list[tuple[str, dict]]:
    """(label, block) per measured set of summaries: the training targets, then a checkpoint's
    free and grounded generation (bench/bench_summaries.py)."""
    rows = []
    for f in sorted(results.glob("summary_targets*.json")):  # one per token budget measured
        t = load(f)
        rows.append((f"training targets ({t['users']} test users, {t['targets']['summary_max_tokens']}-token "
                     "budget)", t["targets"]))
    if (g := load(results / "summary_quality.json")) is not None:
        rows += [(f"`{g['checkpoint']}`, {mode}", g[mode]) for mode in ("free", "grounded") if mode in g]
    return rows


def summary_section(results: Path) -> list[str]:
    """Issue 28's summary measures per set of summaries, each against its target."""
    rows = summary_rows(results)
    if not rows:
        return []
    head = " | ".join(f"{label} (target {'>= ' if floor < 1 else ''}{floor:.0%})"
                      for label, _, _, floor in SUMMARY_TARGETS)
    md = ["### Summaries", "", f"| summaries | {head} | titles named per summary |",
          "|---" * (len(SUMMARY_TARGETS) + 2) + "|"]
    for label, block in rows:
        cells = [_summary_value(block, part, key) for _, part, key, _ in SUMMARY_TARGETS]
        md.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.1%}" for v in cells)
                  + f" | {block.get('grounding', {}).get('titles_named_per_summary', 0):.2f} |")
    return md + ["", "Reproduce: `python bench/bench_summaries.py --targets --data data/movielens --users 943 --json "
                 "results/summary_targets.json` (no checkpoint: the targets cut to the budget as training cuts them; "
                 "48 tokens is the CPU recipe's, `--summary-max-tokens 32 --json results/summary_targets_quick.json` "
                 "the demo's quick checkpoint's); "
                 "`python bench/bench_summaries.py --checkpoint CKPT --data data/movielens --users 943` for a "
                 "checkpoint's free and grounded summaries", ""]


def cold_values(res: dict, name: str, metric: str) -> list[float] | None:
    """The cold slice's per-user values of one model (None when the run kept none)."""
    ids, per = res.get("cold_user_ids"), res.get("per_user", {}).get(name, {}).get(metric)
    if ids is None or per is None:
        return None
    at = {u: k for k, u in enumerate(res["per_user_ids"])}
    return [per[at[u]] for u in ids]


def cold_claim(res: dict, others: tuple[str, ...], metric: str) -> str:
    """'**status** (detail)' for the hybrid against others on the cold slice: each pair by the
    paired bootstrap interval over the slice's users; no claim without per-user values."""
    c = res.get("cold") or {}
    points = ", ".join(f"{n} {fmt(c.get(n, {}).get(metric))}" for n in ("hybrid", *others))
    h, vals = cold_values(res, "hybrid", metric), {o: cold_values(res, o, metric) for o in others}
    if h is None or any(v is None for v in vals.values()):
        return f"**not claimed: no per-user values of the slice, so no interval** ({points}; point values only)"
    judged = {o: compare(h, v) for o, v in vals.items()}
    verdicts = [v for v, _ in judged.values()]
    status = "missed" if "below" in verdicts else "on par" if "on par" in verdicts else "met"
    detail = ", ".join(f"{o} {v} {_diff(iv)}" for o, (v, iv) in judged.items())
    return f"**{status}** ({points}; hybrid vs {detail}; {len(h)} users)"


def cold_section(res: dict) -> list[str]:
    """The cold split: 10% of late newcomers held out of all training; the slice of test users
    whose target is one of them, for every model (targets: hybrid >= content-only, > SASRec, BPR)."""
    md = ["### Cold items (hybrid vs baselines on the cold split), one run", "", data_line(res), train_line(res), ""]
    for metric in ("full_recall@10", "full_recall@50"):
        md.append(f"- Cold slice: hybrid >= content-only EmbSum on {LABELS[metric]}: "
                  + cold_claim(res, ("embsum",), metric))
    md += [f"- Cold slice: hybrid above SASRec and BPR on R@10: {cold_claim(res, ('sasrec', 'bpr'), 'full_recall@10')}",
           "", "All test users:", "", *model_table(res)]
    return cold_tail(res, md)


def cold_tail(res: dict, md: list[str]) -> list[str]:
    md += ["", f"Cold-item slice: {res.get('cold_users')} test users whose target no model trained on.", "",
           "| model | R@10 (full) | nDCG@10 (full) | R@50 (full) |", "|---|---|---|---|"]
    md += [f"| {n} | {fmt(m['full_recall@10'])} | {fmt(m['full_ndcg@10'])} | {fmt(m['full_recall@50'])} |"
           for n, m in (res.get("cold") or {}).items()]
    cmd = (f"threadrec data cold --from data/movielens --out data/movielens-cold; threadrec train --data "
           f"data/movielens-cold ...; threadrec evaluate --data data/movielens-cold --checkpoint "
           f"{res['checkpoint']['path']} --split test --json results/quality_test_cold.json")
    return md + ["", f"Reproduce: `{cmd}`", ""]


def online_table(online: dict) -> list[str]:
    k = online["protocol"]["k"]
    lines = [f"| policy | Recall@{k} | nDCG@{k} | judged | warm-user Recall@{k} | warm-user nDCG@{k} | judged (warm) "
             f"| replay s |", "|---|---|---|---|---|---|---|---|"]
    for name, r in online["policies"].items():
        lines.append(f"| {name} | {fmt(r[f'recall@{k}'])} | {fmt(r[f'ndcg@{k}'])} | {r['judged']} | "
                     f"{fmt(r[f'warm_users_recall@{k}'])} | {fmt(r[f'warm_users_ndcg@{k}'])} | "
                     f"{r['warm_users_judged']} | {r['replay_s']:.0f} |")
    return lines


def plot_online(onlines: list[tuple[str, dict]], path: Path) -> None:
    """Bars of online Recall@k and nDCG@k per refresh policy, one group per checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = onlines[0][1]["protocol"]["k"]
    names = list(onlines[0][1]["policies"])
    width = 0.8 / len(onlines)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, (f"recall@{k}", f"ndcg@{k}"), strict=True):
        top = 0.0
        for j, ((label, online), color) in enumerate(zip(onlines, ("#2b8cbe", "#fdae6b"), strict=False)):
            vals = [online["policies"][n][metric] for n in names]
            xs = [i + (j - (len(onlines) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, vals, width, color=color, label=label)
            for x, v in zip(xs, vals, strict=True):
                ax.text(x, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
            top = max(top, *vals)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(f"online next-engagement {metric}")
        ax.set_ylim(0, top * 1.3 if top > 0 else 1)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"refresh policy, {onlines[0][1]['protocol']['replayed_events']} replayed held-out engagements",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curve(run: dict, valid: dict | None, path: Path) -> None:
    """Valid AUC and full nDCG@10 along the main run, with the baselines' valid values as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vs = run["validations"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, metric in zip(axes, ("auc", "full_ndcg@10"), strict=True):
        ax.plot([v["minutes"] for v in vs], [v[metric] for v in vs], "o-", color="#2b8cbe", label="EmbSum")
        for (name, m), color in zip(((n, m) for n, m in (valid or {}).get("models", {}).items() if n != "embsum"),
                                    ("#fdae6b", "#e6550d", "#31a354", "#bdbdbd"), strict=False):
            ax.axhline(m[metric], ls="--", lw=1, color=color, label=name)
        ax.set_xlabel("training minutes")
        ax.set_title(f"valid {LABELS[metric]}")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ablation_table(results: Path) -> list[str]:
    rows = [(key, label, load(results / f"ablation_{key}_test.json") or load(results / f"ablation_{key}_valid.json"))
            for key, label in ABLATIONS]
    rows = [r for r in rows if r[2] is not None]
    if not rows:
        return []
    cols = ("auc", "mrr", "ndcg@10", "full_recall@10", "full_ndcg@10", "full_ndcg@50")
    lines = ["| variant | steps | valid AUC | valid nDCG@10 (full) | "
             + " | ".join(f"test {LABELS[c]}" for c in cols) + " |", "|---" * (len(cols) + 4) + "|"]
    for _key, label, res in rows:
        m = res.get("models", {}).get("embsum", {})
        meta = res["checkpoint"]["metadata"]
        v = meta.get("valid", {})
        lines.append(f"| {label} | {meta.get('step')} | {fmt(v.get('auc'))} | {fmt(v.get('full_ndcg@10'))} | "
                     + " | ".join(fmt(m.get(c)) for c in cols) + " |")
    first = rows[0][2]
    budget = first["checkpoint"]["metadata"].get("options", {}).get("max_minutes")
    eval_users = first["checkpoint"]["metadata"].get("options", {}).get("eval_users")
    test = ("test not evaluated in time (n/a)" if "data" not in first else
            f"test on all {first['data']['users']} test users" if first["data"]["users"] == first["data"]["meta"]
            .get("counts", {}).get("users") else f"test on the first {first['data']['users']} test users by id")
    lines += ["", f"Each variant: the same recipe and data, a {budget}-minute wall-clock training budget (then "
              f"one final validation), {test}; valid = the run's final validation "
              f"(first {eval_users} valid users by id)."]
    return lines


def runs_table(results: Path) -> list[str]:
    """EmbSum's test metrics per main-recipe run: earlier runs (results/earlier_run_*_test.json) and now."""
    files = [*sorted(results.glob("earlier_run_*_test.json")), results / "quality_test.json"]
    rows = [(f.name, load(f)) for f in files if f.exists()]
    if len(rows) < 2:
        return []
    lines = ["| results file | checkpoint | budget (min) | best step | train dtype | test AUC | test R@10 (full) | "
             "test nDCG@10 (full) |", "|---|---|---|---|---|---|---|---|"]
    for name, res in rows:
        ck = res["checkpoint"]
        meta, m = ck["metadata"], res["models"]["embsum"]
        lines.append(f"| `{name}` | `{ck['path']}` | {meta.get('options', {}).get('max_minutes')} | "
                     f"{meta.get('step')} | {meta.get('train_dtype', 'torch.float32')} | {fmt(m['auc'])} | "
                     f"{fmt(m['full_recall@10'])} | {fmt(m['full_ndcg@10'])} |")
    return lines


def eval_command(res: dict | None, out: str, target: str) -> str:
    if not res:
        return ""
    d, ck = res["data"], res.get("checkpoint") or {}
    users = f" --max-users {d['users']}" if d["users"] < d["meta"].get("counts", {}).get("users", d["users"]) else ""
    extra = "" if len(res["models"]) > 1 else " --no-baselines"
    return (f"make {target}` or `threadrec evaluate --data {d['dir']} --checkpoint {ck.get('path')} "
            f"--split {d['split']}{users}{extra} --json {out}")


def online_command(res: dict, out: str) -> str:
    p = res["protocol"]
    target = "quality-online-heldout" if res["checkpoint"].get("period_held_out_from_training") else "quality-online"
    ckpt = res["checkpoint"]["path"].removesuffix("/best")
    if target == "quality-online" and ckpt != "checkpoints/ml-cpu3":  # the Makefile's CKPT
        target += f" CKPT={ckpt}"
    return (f"make {target}` or `python bench/bench_online_policies.py --data {res.get('data', 'data/movielens')} "
            f"--checkpoint {res['checkpoint']['path']} --holdout-events {p['holdout_events']} "
            f"--max-per-user {p['max_per_user']} --candidates {p.get('candidates', 100)} --json {out}")


ONLINE_FILES = (("main checkpoint", "online_policies.json"),
                ("checkpoint trained before the period", "online_policies_heldout.json"))


def online_results(results: Path) -> list[tuple[str, dict, str]]:
    """(label, result, path) for each online replay result present."""
    return [(label, res, f"results/{name}") for label, name in ONLINE_FILES
            if (res := load(results / name)) is not None]


def ablation_command(res: dict | None) -> str:
    if not res:
        return ""
    opts = res["checkpoint"]["metadata"].get("options", {})
    return (f"make quality-ablations ABL_MIN={opts.get('max_minutes')} ABL_USERS={opts.get('eval_users')}` "
            "(per variant: `threadrec train` with the main recipe plus `--max-minutes`, `--eval-every 0` and "
            "the variant's flag, then `threadrec evaluate --split test --no-baselines`; see the Makefile)")


def build(results: Path, commands: dict[str, str]) -> str:
    test, valid = load(results / "quality_test.json"), load(results / "quality_valid.json")
    onlines = online_results(results)
    md = ["## Results: EmbSum on MovieLens-100K (CPU)", "",
          "Generated by `bench/report_quality.py` from `results/*.json`; `make quality` reruns the "
          "whole pipeline. MIND protocol per impression (AUC, MRR, nDCG@5/10, averaged) and full "
          "ranking (Recall/nDCG@10/50). Model selection and early stopping use the valid split only.", ""]
    seeds = load(results / "quality_seeds.json")
    if seeds:
        md += seeds_section(seeds)
    hybrid = load(results / "quality_test_hybrid.json")
    if hybrid and "hybrid" in hybrid["models"]:
        md += hybrid_section(hybrid, "make quality-main quality-eval-hybrid` (or `make quality-hybrid` on an existing "
                             "content checkpoint, then `threadrec evaluate --data data/movielens --checkpoint "
                             f"{hybrid['checkpoint']['path']} --split test --json results/quality_test_hybrid.json")
    cold = load(results / "quality_test_cold.json")
    if cold and "hybrid" in cold["models"]:
        md += cold_section(cold)
    if test:
        md += ["### Targets (content-only EmbSum, earlier run)", "",
               *targets(test, [(label, o) for label, o, _ in onlines]), ""]
        md += ["### Test split: EmbSum vs baselines", "", data_line(test), train_line(test), "",
               *model_table(test), "", f"Reproduce: `{commands['test']}`", ""]
    if valid:
        md += ["### Valid split", "", data_line(valid), "", *model_table(valid), "",
               f"Reproduce: `{commands['valid']}`", ""]
    if onlines:
        p = onlines[0][1]["protocol"]
        md += ["### Online replay: refresh policies", "",
               f"Held-out period: the last {p['holdout_events']} engagements ({p['cutoff_utc']} to {p['end_utc']} UTC, "
               f"{p['held_out_days']} days); replayed: each user's first {p['max_per_user']} of them, "
               f"{p['replayed_events']} engagements of "
               f"{p['users']} users of whom {p['warm_users']} have a training-period "
               f"history (rows by split: {p['held_out_by_split']}). Warm start: each user's state from all of its "
               f"engagements up to the cutoff. Replay in event-time order through `streams.engine.engine.Engine`; the "
               f"recommendation shown before each engagement is judged against it. Exclusion: {p['exclusion']}. "
               f"Retrieval: {p['retrieval']}. Stale: {p['stale_refresh']}.", ""]
        for label, online, file in onlines:
            md += [f"#### {label}", "", f"Checkpoint `{online['checkpoint']['path']}`; " + (
                   "it never trained on an engagement of the period (`--holdout-events`)."
                   if online["checkpoint"].get("period_held_out_from_training") else
                   "its train split (leave-one-out) holds the period's train rows, so the period is held out "
                   "from user states, not from model training."), "", *online_table(online), "",
                   f"Reproduce: `{online_command(online, file)}`", ""]
        md += ["![metric by refresh policy](results/online_policies.png)", ""]
    md += summary_section(results)
    abl = ablation_table(results)
    if abl:
        md += ["### Ablations (equal, smaller budget)", "", *abl, "", f"Reproduce: `{commands['ablation']}", ""]
    run = load(results / "main_run_validations.json")
    if run:
        md += ["### Main run: validations (valid split, first 200 users by id)", "", f"`{run['command']}`", "",
               "| step | minutes | loss (mean of last steps) | valid AUC | valid MRR | valid R@10 (full) | "
               "valid nDCG@10 (full) | best so far |", "|---|---|---|---|---|---|---|---|"]
        md += [f"| {v['step']} | {v['minutes']:.1f} | {v['loss']:.4f} | {fmt(v['auc'])} | {fmt(v['mrr'])} | "
               f"{fmt(v.get('full_recall@10'))} | {fmt(v.get('full_ndcg@10'))} | {'yes' if v['best_so_far'] else ''} |"
               for v in run["validations"]]
        md += ["", "![valid metrics along the main run](results/main_run_curve.png)", ""]
    runs = runs_table(results)
    if runs:
        md += ["### Runs of the main recipe (test split, EmbSum)", "", *runs, ""]
    first = load(results / "first_run_valid.json")
    if first:
        md += ["### Earlier recipe (stopped)", "", f"{first['run']}. Valid (first 200 users) at its checkpoints "
               f"({first['source']}):", "", "| step | minutes | train loss (last batch) | valid AUC | valid MRR |",
               "|---|---|---|---|---|"]
        md += [f"| {v['step']} | {v['elapsed_s'] / 60:.1f} | {v['train_loss_last']:.4f} | {fmt(v['auc'])} | "
               f"{fmt(v['mrr'])} |" for v in first["validations"]]
        md += [""]
    notes = results / "quality_notes.md"
    if notes.exists():
        md += ["### Notes", "", notes.read_text().strip(), ""]
    return "\n".join(md).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=ROOT / "results")
    p.add_argument("--readme", default=ROOT / "README.md")
    args = p.parse_args(argv)
    results = Path(args.results)
    cmds = {"test": eval_command(load(results / "quality_test.json"), "results/quality_test.json", "quality-eval"),
            "valid": eval_command(load(results / "quality_valid.json"), "results/quality_valid.json", "quality-eval"),
            "ablation": ablation_command(load(results / "ablation_full_test.json")
                                         or load(results / "ablation_full_valid.json"))}
    run = load(results / "main_run_validations.json")
    if run:
        plot_curve(run, load(results / "quality_valid.json"), results / "main_run_curve.png")
    onlines = online_results(results)
    if onlines:
        plot_online([(label, o) for label, o, _ in onlines], results / "online_policies.png")
    splice_section(Path(args.readme), "results", build(results, cmds))
    print(f"wrote {args.readme} results section", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
