"""Training loop: NCE + lambda * L_sum, AdamW with warm-up, clipping, validation, checkpoints, resume.

Reduced CPU settings (2 cores, minutes not hours): --freeze-layers 4 --max-sessions 3
--steps 30 --batch-size 4 with max_session_tokens 64, max_item_tokens 32, summary_max_tokens 32.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn

from model.backbones import build_backbone, load_tokenizer
from model.batching import summary_targets, tokenize
from model.checkpoint import (
    load_checkpoint,
    load_optimizer,
    read_checkpoint_config,
    save_checkpoint,
)
from model.config import EmbSumConfig
from model.dataset import PreparedData, event_rows, histories, holdout_cutoff, load_prepared
from model.device import pick_device
from model.embsum import EmbSum
from model.examples import Example, NegativeSampler, build_examples, history_chunks
from model.precision import grad_scaler, resolve_precision, train_autocast
from model.summaries import Summarizer, make_summarizer
from model.text import item_text, session_text
from model.training.options import TrainOptions as TrainOptions  # its home is options.py (no torch)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BarState:
    """What the training bar shows: its total and position, and the run's remaining seconds."""

    total: float
    completed: float
    remaining_s: float | None  # None until a step has been timed

    def fields(self, steps_done: int, max_steps: int) -> dict[str, Any]:
        """Keyword arguments of Progress.update for this state."""
        eta = "-:--:--" if self.remaining_s is None else _clock(self.remaining_s)
        return {"total": self.total, "completed": self.completed, "steps": f"{steps_done}/{max_steps}",
                "eta": eta}


def bar_state(budget_s: float | None, elapsed_s: float, steps_done: int, max_steps: int,
              step0: int = 0) -> BarState:
    """The bar for a run elapsed_s into its time budget (None: no budget), at steps_done of max_steps.

    step0: steps done before this process (a resume); only later ones time the steps. With a budget
    the bar measures seconds, so it finishes at the budget, and the remaining time is the sooner of
    the budget's rest and the step estimate: a capped run never shows more time left than its cap.
    """
    timed = steps_done - step0
    by_steps = elapsed_s / timed * max(max_steps - steps_done, 0) if timed > 0 else None
    if budget_s is None:
        return BarState(float(max_steps), float(steps_done), by_steps)
    left = max(budget_s - elapsed_s, 0.0)
    remaining = left if by_steps is None else min(left, by_steps)
    # the run ends at whichever limit comes first: the bar is full then, not when steps run out
    return BarState(budget_s, budget_s - remaining, remaining)


def _clock(seconds: float) -> str:
    """H:MM:SS, as rich's TimeRemainingColumn writes it."""
    minutes, secs = divmod(int(math.ceil(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class BatchBuilder:
    """Turns Examples into model tensors: sessions, candidates (pos first) and summary targets."""

    def __init__(self, data: PreparedData, cfg: EmbSumConfig, tokenizer, summarizer: Summarizer,
                 sampler: NegativeSampler, device: torch.device):
        self.data, self.cfg, self.tok, self.summ = data, cfg, tokenizer, summarizer
        self.sampler, self.device = sampler, device
        self._summaries: dict[tuple, str] = {}

    def summary(self, ex: Example) -> str:
        key = tuple(tuple(s) for s in ex.sessions)  # sessions, not only items: the last one is named
        if key not in self._summaries:
            self._summaries[key] = self.summ.summarize([self.data.items[i] for s in key for i in s],
                                                       [self.data.items[i] for i in key[-1]] if key else None)
        return self._summaries[key]

    def __call__(self, examples: list[Example], start_id: int, eos_id: int) -> dict[str, Any]:
        cfg, items = self.cfg, self.data.items
        sess_texts, owner, cands = [], [], []
        for u, ex in enumerate(examples):
            for s in history_chunks(ex.sessions, cfg):
                sess_texts.append(session_text(items[i] for i in s))
                owner.append(u)
            negs = self.sampler.sample(ex.user_id, cfg.r)
            negs += random.choices(list(items), k=cfg.r - len(negs))  # tiny catalogues only
            cands += [item_text(items[i]) for i in [ex.positive, *negs]]
        sess_ids, sess_mask = tokenize(self.tok, sess_texts, cfg.history_token_limit(), self.device,
                                       keep="end" if cfg.history_mode == "one_chunk" else "start")
        cand_ids, cand_mask = tokenize(self.tok, cands, cfg.max_item_tokens, self.device)
        u = len(examples)
        dec = summary_targets(self.tok, [self.summary(ex) for ex in examples], cfg.summary_max_tokens,
                              start_id, eos_id, self.device)
        return {"sess_ids": sess_ids, "sess_mask": sess_mask,
                "sess_owner": torch.tensor(owner, device=self.device),
                "cand_ids": cand_ids.view(u, cfg.r + 1, -1), "cand_mask": cand_mask.view(u, cfg.r + 1, -1),
                "dec": dec}


def make_optimizer(model: EmbSum, opts: TrainOptions,
                   progress: Any = None) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (heads at a larger rate) with linear warm-up then cosine decay.

    progress: optional callable step -> fraction of training done in [0, 1] (a time budget);
    by default the fraction is step / opts.steps.
    """
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    body = [p for n, p in model.named_parameters() if n.startswith("backbone.") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": opts.lr},
                             {"params": heads, "lr": opts.lr * opts.head_lr_mult}],
                            weight_decay=opts.weight_decay)
    warm = max(1, int(opts.warmup * opts.steps))

    def factor(step: int) -> float:
        if progress is not None:
            p = min(1.0, max(step / max(1, opts.steps), progress(step)))
            if p < opts.warmup:
                return max(p / opts.warmup, 1.0 / warm)
            return 0.5 * (1 + math.cos(math.pi * (p - opts.warmup) / max(1e-9, 1 - opts.warmup)))
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, opts.steps - warm))))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _log_eval(step: int, total: int, elapsed: float, stats: dict[str, Any], v: dict[str, float],
              best: bool) -> None:
    """One line per validation, printed even without a progress bar."""
    k = min(len(stats["losses"]), 20)  # mean over the last steps: single batches are noisy
    mean = lambda key: sum(stats[key][-k:]) / max(k, 1)  # noqa: E731
    vals = " ".join(f"{m} {x:.4f}" for m, x in v.items())
    print(f"[train] step {step}/{total} {elapsed / 60:.1f} min | loss {mean('losses'):.4f} "
          f"nce {mean('nce'):.4f} sum {mean('sum'):.4f} | valid {vals}{' | best' if best else ''}", flush=True)


def _record_validation(out: Path, command: str | None, step: int, elapsed: float, stats: dict[str, Any],
                       v: dict[str, float], best: bool) -> None:
    """Append this validation (with the mean recent losses) to OUT/validations.json, the run's curve."""
    k = min(len(stats["losses"]), 20)
    mean = lambda key: sum(stats[key][-k:]) / max(k, 1)  # noqa: E731
    path = out / "validations.json"
    log = json.loads(path.read_text()) if path.exists() else {}
    log = {"command": command or log.get("command"), "source": "written by model.train at each validation",
           "validations": [*log.get("validations", []),
                           {"step": step, "minutes": round(elapsed / 60, 2), "loss": mean("losses"),
                            "nce": mean("nce"), "sum": mean("sum"), "best_so_far": best, **v}]}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(log, indent=1))


def _drawer(examples: list[Example], opts: TrainOptions):
    """rng -> one batch of examples, by example (default) or by user (see TrainOptions.sample_by)."""
    if opts.sample_by == "example":
        return lambda rng: rng.sample(examples, min(opts.batch_size, len(examples)))
    if opts.sample_by != "user":
        raise ValueError(f"unknown sample_by {opts.sample_by!r} (example or user)")
    by_user: dict[str, list[Example]] = {}
    for ex in examples:
        by_user.setdefault(ex.user_id, []).append(ex)
    users = sorted(by_user)
    return lambda rng: [rng.choice(by_user[u]) for u in rng.sample(users, min(opts.batch_size, len(users)))]


def _build_or_resume(out: Path, cfg: EmbSumConfig, resume: bool, device: torch.device):
    if resume and (out / "config.json").exists():
        ck = load_checkpoint(out, device)
        step = int(read_checkpoint_config(out)["metadata"].get("step", 0))
        logger.info("resuming from %s at step %d", out, step)
        return ck.model, ck.tokenizer, step
    tok = load_tokenizer(cfg)
    return EmbSum(cfg, build_backbone(cfg, tok)).to(device), tok, 0


class _Run:
    """One run's moving parts between steps: optimiser, loss scaler, time budget, stats, best so far."""

    def __init__(self, out: Path, opts: TrainOptions, command: str | None, model: EmbSum, tok,
                 data: PreparedData, device: torch.device, step0: int):
        self.out, self.opts, self.command = out, opts, command
        self.model, self.tok, self.data, self.device = model, tok, data, device
        self.amp_dtype = resolve_precision(opts.precision, device)
        self.scaler = grad_scaler(device, self.amp_dtype)
        self.t0 = time.time()
        self.budget_s = opts.max_minutes * 60 if opts.max_minutes else None
        self.opt, self.sched = self._optimizer(step0)
        self.stats: dict[str, Any] = {"losses": [], "nce": [], "sum": [], "valid": []}
        self.meta: dict[str, Any] = {}
        best_dir = out / "best"
        self.prev = read_checkpoint_config(best_dir)["metadata"] if step0 and (best_dir / "config.json").exists() else {}
        self.best_val = self.prev.get("valid", {}).get(opts.select_metric, -math.inf)
        if not step0:
            (out / "validations.json").unlink(missing_ok=True)  # a fresh run starts a fresh curve
        self.eval_s = 0.0  # duration of the last validation: the budget keeps room for a final one

    def _optimizer(self, step0: int) -> tuple[torch.optim.Optimizer, Any]:
        budget_s, t0 = self.budget_s, self.t0
        opt, sched = make_optimizer(self.model, self.opts,
                                    (lambda _s: (time.time() - t0) / budget_s) if budget_s else None)
        if step0 and load_optimizer(self.out, opt):
            with warnings.catch_warnings():  # fast-forward the schedule to the resumed step
                warnings.simplefilter("ignore")
                for _ in range(step0):
                    sched.step()
        return opt, sched

    def step(self, batch: dict[str, Any]) -> None:
        """One optimiser step on batch; its losses go to stats."""
        with train_autocast(self.device, self.amp_dtype):
            res = self.model(batch)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(res["loss"]).backward()
        self.scaler.unscale_(self.opt)  # clip the true gradients
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        for k, key in (("losses", "loss"), ("nce", "nce"), ("sum", "sum")):
            self.stats[k].append(float(res[key].detach()))

    def out_of_time(self, step_t: float) -> bool:
        """True when another step of this one's length plus a validation would pass the budget."""
        now = time.time()
        return self.budget_s is not None and now - self.t0 + self.eval_s + (now - step_t) >= self.budget_s

    def validate(self, step: int, out_of_time: bool) -> None:
        """Validate, append to the curve, log, and save the checkpoint (and out/best when best)."""
        # evaluate imports inference only; no cycle at import time
        from model.evaluation.evaluate import validate

        opts, ev_t = self.opts, time.time()
        v = validate(self.model, self.tok, self.data, opts.eval_users)
        self.eval_s = time.time() - ev_t
        self.model.train()
        is_best = v.get(opts.select_metric, -math.inf) > self.best_val
        self.stats["valid"].append({"step": step, **v})
        _record_validation(self.out, self.command, step, time.time() - self.t0, self.stats, v, is_best)
        self.meta.update(step=step, elapsed_s=time.time() - self.t0, valid=v, valid_history=self.stats["valid"],
                         train_loss_last=self.stats["losses"][-1], stopped_by_time=bool(out_of_time),
                         select_metric=opts.select_metric)
        _log_eval(step, opts.steps, time.time() - self.t0, self.stats, v, is_best)
        if is_best:
            self.best_val = v[opts.select_metric]
            save_checkpoint(self.out / "best", self.model, self.tok, metadata={**self.meta, "best": True})
        self.meta["best_step"] = step if is_best else self.meta.get("best_step", self.prev.get("step"))
        self.meta["best_valid"] = self.best_val
        save_checkpoint(self.out, self.model, self.tok, metadata=self.meta, optimizer=self.opt)


def _loop(run: _Run, builder: BatchBuilder, draw, step0: int, progress: bool) -> None:
    """Steps from step0 to opts.steps (or the time budget), validating every eval_every and last."""
    opts, model = run.opts, run.model
    rng = random.Random(opts.seed + step0)
    model.train()
    # with a time budget the bar counts its seconds: a capped run never shows the uncapped ETA
    with Progress(TextColumn("train"), BarColumn(), TextColumn("{task.fields[steps]}"),
                  TextColumn("{task.fields[info]}"), TextColumn("{task.fields[eta]}"),
                  disable=not progress) as bar:
        state = bar_state(run.budget_s, time.time() - run.t0, step0, opts.steps, step0)
        task = bar.add_task("train", info="", **state.fields(step0, opts.steps))
        for step in range(step0, opts.steps):
            step_t = time.time()
            run.step(builder(draw(rng), model.backbone.start_id, model.backbone.eos_id))
            stats = run.stats
            state = bar_state(run.budget_s, time.time() - run.t0, step + 1, opts.steps, step0)
            bar.update(task, info=f"loss {stats['losses'][-1]:.4f} nce {stats['nce'][-1]:.3f}",
                       **state.fields(step + 1, opts.steps))
            out_of_time = run.out_of_time(step_t)
            last = step + 1 == opts.steps or out_of_time
            if (opts.eval_every and (step + 1) % opts.eval_every == 0) or last:
                run.validate(step + 1, out_of_time)
            if out_of_time:
                logger.info("time budget of %.1f min reached at step %d", opts.max_minutes, step + 1)
                break
        bar.update(task, completed=state.total, eta=_clock(0))  # done, budget spent or not


def _train_examples(data: PreparedData, cfg: EmbSumConfig, opts: TrainOptions, data_dir: str | Path):
    """(examples, user histories, cutoff): train rows up to the holdout cutoff, grouped by user."""
    cutoff = holdout_cutoff(event_rows(data), opts.holdout_events) if opts.holdout_events else None
    if cutoff is not None:
        data.train = [e for e in data.train if float(e["ts"]) <= cutoff]
    user_events = histories(data.train)
    # a cold-item split holds its items out of training: never a target (they stay history content)
    examples = [ex for ex in build_examples(user_events, cfg) if ex.positive not in data.cold_items]
    if not examples:
        from model.errors import DataDirError
        raise DataDirError(f"{data_dir}: no user has two or more train engagements")
    return examples, user_events, cutoff


def train(data_dir: str | Path, out: str | Path, cfg: EmbSumConfig, opts: TrainOptions,
          resume: bool = False, progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """Train EmbSum on data_dir/train.jsonl; checkpoints into out; returns training stats.

    command: the command line that started the run, kept with the validation curve.
    """
    torch.manual_seed(opts.seed)
    random.seed(opts.seed)
    out, device = Path(out), pick_device(opts.device)
    data = load_prepared(data_dir)
    model, tok, step0 = _build_or_resume(out, cfg, resume, device)
    cfg = model.cfg
    examples, user_events, cutoff = _train_examples(data, cfg, opts, data_dir)
    summarizer = make_summarizer(cfg)
    sampler = NegativeSampler([i for i in data.items if i not in data.cold_items], user_events, opts.seed)
    builder = BatchBuilder(data, cfg, tok, summarizer, sampler, device)
    run = _Run(out, opts, command, model, tok, data, device, step0)
    run.meta = {"summary_source": summarizer.source, "train_dtype": str(run.amp_dtype or torch.float32),
                "data": {"dir": str(data_dir), "meta": data.meta}, "train_examples": len(examples),
                "options": vars(opts), "train_cutoff_ts": cutoff}
    _loop(run, builder, _drawer(examples, opts), step0, progress)
    stats = run.stats
    stats["elapsed_s"] = time.time() - run.t0
    stats["step"] = step0 + len(stats["losses"])
    return stats
