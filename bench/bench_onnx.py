"""Would ONNX Runtime run the session encoder faster than torch on this CPU? One question, one run:
sessions/s of the checkpoint's encoder (the worker's dominant cost) in torch fp32, torch int8
(dynamic quantisation, the CPU default) and ONNX Runtime fp32 / int8 (its own dynamic
quantisation of the exported graph), timed interleaved on the same padded batch, plus each one's
deviation from torch fp32 on the real tokens. ONNX Runtime is worth adopting only if it beats
torch int8 clearly (--adopt-at); then its valid quality would be measured as bench_inference does.

    pip install onnxruntime onnx   # the `bench` extra
    python bench/bench_onnx.py --checkpoint checkpoints/demo-quick/<key>/model --data data/movielens
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from bench_inference import timed  # a sibling script (the script's own folder is on sys.path)
from rich.console import Console

from model.batching import tokenize
from model.device import set_torch_threads
from model.inference import EmbSumInference
from model.records import read_jsonl
from model.text import session_text

ROOT = Path(__file__).resolve().parents[1]


class Encoder(torch.nn.Module):
    """The session encoder alone: ids, mask -> token states (what the worker runs per event)."""

    def __init__(self, inf: EmbSumInference):
        super().__init__()
        self.model = inf.model  # a registered submodule: its weights export as weights

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_sessions(ids, mask)[1]


def batch(inf: EmbSumInference, data: Path, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n session texts of 1-10 random catalogue items (the demo's session sizes), tokenised."""
    items = read_jsonl(data / "items.jsonl")
    rng = np.random.default_rng(seed)
    texts = [session_text(items[j] for j in rng.choice(len(items), rng.integers(1, 11))) for _ in range(n)]
    return tokenize(inf.tokenizer, texts, inf.config.history_token_limit(), inf.device)


def ort_sessions(fp32: EmbSumInference, ids: torch.Tensor, mask: torch.Tensor, threads: int,
                 workdir: Path) -> dict:
    """ONNX Runtime sessions of the exported encoder: fp32 and dynamically quantised int8."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    f32, f8 = workdir / "encoder.onnx", workdir / "encoder.int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(fp32).eval(), (ids[:2], mask[:2]), str(f32), input_names=["ids", "mask"],
                          output_names=["states"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("ids", "mask", "states")})
        quantize_dynamic(str(f32), str(f8), weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return {name: ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])
            for name, f in (("onnxruntime fp32", f32), ("onnxruntime int8", f8))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sessions", type=int, default=64, help="sessions per encoder call")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (the worker's)")
    ap.add_argument("--adopt-at", type=float, default=1.2, help="speed-up over torch int8 worth adopting")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/onnx.json")
    args = ap.parse_args()
    threads = set_torch_threads(args.threads)
    console = Console()
    fp32 = EmbSumInference.from_checkpoint(args.checkpoint, "cpu", "fp32")
    int8 = EmbSumInference.from_checkpoint(args.checkpoint, "cpu", "int8")
    ids, mask = batch(fp32, args.data, args.sessions)
    feeds = {"ids": ids.numpy(), "mask": mask.numpy()}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        runs = {"torch fp32": lambda: Encoder(fp32)(ids, mask).numpy(),
                "torch int8": lambda: Encoder(int8)(ids, mask).numpy()}
        for name, sess in ort_sessions(fp32, ids, mask, threads, Path(tmp)).items():
            runs[name] = lambda s=sess: s.run(None, feeds)[0]
        times = {name: [] for name in runs}
        with console.status(f"timing {len(runs)} encoders, {args.repeats} interleaved repeats"):
            for _ in range(args.repeats):  # interleaved: drift on a shared machine hits all alike
                for name, fn in runs.items():
                    times[name].append(timed(fn, 1))
        ref, real = runs["torch fp32"](), mask.numpy()
        result = {name: {"sessions_per_s": args.sessions / statistics.median(times[name]),
                         "relative_error": float(np.linalg.norm((fn() - ref)[real]) / np.linalg.norm(ref[real]))}
                  for name, fn in runs.items()}
    best = max((n for n in result if n.startswith("onnxruntime")), key=lambda n: result[n]["sessions_per_s"])
    gain = result[best]["sessions_per_s"] / result["torch int8"]["sessions_per_s"]
    out = {"question": "ONNX Runtime vs torch for the session encoder on this CPU",
           "checkpoint": str(args.checkpoint), "sessions": args.sessions, "threads": threads,
           "tokens": {"padded": int(real.size), "real": int(real.sum())}, "torch": torch.__version__,
           "onnxruntime": __import__("onnxruntime").__version__, "encoders": result,
           "best_onnxruntime": best, "speedup_over_torch_int8": gain, "adopt_at": args.adopt_at,
           "adopted": gain >= args.adopt_at}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    for name, r in result.items():
        console.print(f"{name:18s} {r['sessions_per_s']:7.1f} sessions/s   rel. error {r['relative_error']:.4f}")
    console.print(f"{best} is {gain:.2f}x torch int8: {'adopt' if out['adopted'] else 'not adopted'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
