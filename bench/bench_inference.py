"""Which numerics should inference run on this CPU? One question, answered in one run: session
encoding and summary generation speed for fp32, int8 (dynamic quantisation of the linear
layers) and bf16 (only where the CPU has native bf16), and each mode's valid Recall@10 against
fp32 on the same users. The fastest mode within 1% relative Recall@10 of fp32 is the one
`--inference auto` should pick here (model/numerics.py).

    python bench/bench_inference.py --checkpoint checkpoints/ml-hyb2 --data data/movielens
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from model.device import set_torch_threads
from model.evaluation.evaluate import evaluate
from model.inference import EmbSumInference
from model.numerics import int8_supported, resolve_mode
from model.precision import cpu_has_bf16
from model.records import read_jsonl
from model.text import session_text

ROOT = Path(__file__).resolve().parents[1]

TOLERANCE = 0.01  # relative Recall@10 loss a faster mode may cost


def cpu_facts() -> dict:
    """What decides the numerics: the CPU's vector capability and native bf16."""
    name = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    return {"cpu": name, "capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": cpu_has_bf16(), "int8_engines": list(torch.backends.quantized.supported_engines),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def session_texts(data: Path, n: int, per_session: int, seed: int = 0) -> list[str]:
    """n session texts of per_session random catalogue items (the encoder's real input shape)."""
    items = read_jsonl(data / "items.jsonl")
    rng = np.random.default_rng(seed)
    return [session_text(items[j] for j in rng.choice(len(items), per_session)) for _ in range(n)]


def timed(fn, repeats: int) -> float:
    """Median seconds of fn() over repeats, after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def speeds(models: dict[str, EmbSumInference], texts: list[str], users: int, repeats: int) -> dict:
    """Sessions/s and summaries/s per mode; modes interleaved per repeat so drift hits all alike."""
    enc = {m: [] for m in models}
    summ = {m: [] for m in models}
    for _ in range(repeats):
        for mode, inf in models.items():
            enc[mode].append(timed(lambda inf=inf: inf.encode_sessions(texts), 1))
            cached = [[s] for s in inf.encode_sessions(texts[:users])]
            summ[mode].append(timed(lambda inf=inf, c=cached: inf.summarize(c), 1))
    return {m: {"encode_sessions_per_s": len(texts) / statistics.median(enc[m]),
                "summaries_per_s": users / statistics.median(summ[m])} for m in models}


def quality(args: argparse.Namespace, mode: str) -> dict:
    """Valid full-ranking metrics of the checkpoint's models (content EmbSum, and the hybrid)."""
    res = evaluate(args.data, args.checkpoint, split="valid", max_users=args.max_users, device="cpu",
                   progress=not args.no_progress, baselines=False, mode=mode)
    return {name: {k: m[f] for k, f in (("recall@10", "full_recall@10"), ("ndcg@10", "full_ndcg@10"),
                                        ("auc", "auc")) if f in m}
            for name, m in res["models"].items()}


def choose(result: dict) -> str:
    """The fastest mode (encode + summarise time) whose served model holds Recall@10 within TOLERANCE."""
    served = "hybrid" if "hybrid" in result["modes"]["fp32"]["quality"] else "embsum"
    base = result["modes"]["fp32"]["quality"][served]["recall@10"]
    ok = [m for m, r in result["modes"].items() if r["quality"][served]["recall@10"] >= base * (1 - TOLERANCE)]

    def cost(m: str) -> float:
        r = result["modes"][m]
        return 1 / r["encode_sessions_per_s"] + 1 / r["summaries_per_s"]

    return min(ok, key=cost)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="prepared data dir (valid split for quality)")
    ap.add_argument("--max-users", type=int, default=None, help="valid users for quality (default: all)")
    ap.add_argument("--sessions", type=int, default=64, help="session texts per encode call")
    ap.add_argument("--per-session", type=int, default=8, help="items per session text")
    ap.add_argument("--summaries", type=int, default=16, help="users per summary batch")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/inference.json")
    args = ap.parse_args()
    set_torch_threads(args.threads)
    console = Console()
    modes = ["fp32"] + (["int8"] if int8_supported() else []) + (["bf16"] if cpu_has_bf16() else [])
    skipped = {} if cpu_has_bf16() else {"bf16": "no native bf16 on this CPU (AVX512-BF16/AMX): emulated, slower"}
    models = {m: EmbSumInference.from_checkpoint(args.checkpoint, "cpu", m) for m in modes}
    texts = session_texts(args.data, args.sessions, args.per_session)
    with console.status(f"timing {', '.join(modes)}: {args.repeats} interleaved repeats"):
        speed = speeds(models, texts, args.summaries, args.repeats)
    result = {"cpu": cpu_facts(), "checkpoint": str(args.checkpoint), "data": str(args.data),
              "plan": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "skipped": skipped, "tolerance": TOLERANCE, "modes": {}}
    for m in modes:
        console.print(f"valid quality, {m}")
        result["modes"][m] = {**speed[m], "quality": quality(args, m)}
    result["chosen"] = choose(result)
    result["auto_resolves_to"] = resolve_mode("auto", torch.device("cpu"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print_table(console, result)
    return 0


def print_table(console: Console, result: dict) -> None:
    t = Table(title=f"inference numerics on {result['cpu']['cpu']} ({result['cpu']['capability']})")
    for col in ("mode", "sessions/s", "summaries/s", "model", "valid R@10", "nDCG@10"):
        t.add_column(col)
    for m, r in result["modes"].items():
        for name, q in r["quality"].items():
            t.add_row(m, f"{r['encode_sessions_per_s']:.1f}", f"{r['summaries_per_s']:.1f}", name,
                      f"{q['recall@10']:.4f}", f"{q['ndcg@10']:.4f}")
    console.print(t)
    console.print(f"chosen: {result['chosen']}; auto resolves to {result['auto_resolves_to']}; "
                  f"skipped: {result['skipped'] or 'none'}")


if __name__ == "__main__":
    raise SystemExit(main())
