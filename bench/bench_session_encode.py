"""Session-encode throughput (tokens/s) vs a matmul FLOP/s ceiling measured in the same run.

efficiency = achieved model FLOP/s / matmul FLOP/s, with model FLOPs per token =
2 * (non-embedding encoder parameters) + 4 * layers * T * d (attention scores and mixing).
Usage: python bench/bench_session_encode.py [--batch 16 --tokens 128 --reps 3 --json OUT]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from rich.console import Console
from rich.table import Table

from model.config import EmbSumConfig
from model.device import pick_device
from model.inference import EmbSumInference
from model.numerics import autocast


def matmul_flops(device: torch.device, n: int = 1024, reps: int = 5) -> float:
    """FLOP/s of a square float32 (bf16 on CUDA) matmul: the practical ceiling here."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def encoder_flops_per_token(inf: EmbSumInference, tokens: int) -> float:
    enc = inf.model.backbone.encoder
    params = sum(p.numel() for n, p in enc.named_parameters() if "embeddings" not in n)
    layers = enc.config.num_hidden_layers
    return 2 * params + 4 * layers * tokens * inf.dim


def run(batch: int, tokens: int, reps: int, device: str | None) -> dict:
    dev = pick_device(device)
    inf = EmbSumInference.pretrained(EmbSumConfig(m=4, n=2, max_session_tokens=tokens), device=dev)
    ids = torch.randint(1000, 20000, (batch, tokens), device=dev)
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad(), autocast(dev, "bf16" if dev.type == "cuda" else "fp32"):
        inf.model.encode_sessions(ids, mask)  # warm-up
        sync(dev)
        t = time.perf_counter()
        for _ in range(reps):
            inf.model.encode_sessions(ids, mask)
        sync(dev)
    secs = (time.perf_counter() - t) / reps
    tok_s = batch * tokens / secs
    model_flops = tok_s * encoder_flops_per_token(inf, tokens)
    peak = matmul_flops(dev)
    return {"device": str(dev), "threads": torch.get_num_threads(), "batch": batch, "tokens": tokens,
            "sessions_per_s": batch / secs, "tokens_per_s": tok_s, "model_flops_per_s": model_flops,
            "matmul_flops_per_s": peak, "efficiency": model_flops / peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    res = run(a.batch, a.tokens, a.reps, a.device)
    table = Table(title="session encode (MiniLM-L6)")
    for k in res:
        table.add_column(k, justify="right")
    table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in res.values()])
    Console(width=200).print(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
