"""Early stopping on valid for the ID models (SASRec, BPR): epochs until `patience` epochs bring
no better valid Recall@10 (nDCG@10 breaks ties) or the wall-clock budget is spent; the best
epoch's state is restored."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from rich.progress import Progress

logger = logging.getLogger(__name__)


def early_stopped(name: str, opts: Any, epoch: Callable[[], float], valid: Callable[[], tuple[float, float]],
                  snapshot: Callable[[], Any], restore: Callable[[Any], None], progress: bool) -> dict[str, Any]:
    """Run epoch() (returns the loss) and valid() (R@10, nDCG@10) per epoch under opts.max_epochs,
    opts.patience and opts.max_minutes; restore the best snapshot. Returns the training facts."""
    t0, best, best_state, best_epoch, curve, stopped = time.time(), (-1.0, -1.0), None, 0, [], "max_epochs"
    with Progress(disable=not progress) as bar:
        task = bar.add_task(f"{name} epochs", total=opts.max_epochs)
        for k in range(opts.max_epochs):
            loss, score = epoch(), valid()
            curve.append({"epoch": k, "loss": round(loss, 4), "valid_recall@10": round(score[0], 4),
                          "valid_ndcg@10": round(score[1], 4), "seconds": round(time.time() - t0, 1)})
            if score > best:
                best, best_epoch, best_state = score, k, snapshot()
            bar.update(task, advance=1, description=f"{name} loss {loss:.3f} valid R@10 {score[0]:.4f} "
                                                    f"(best {best[0]:.4f} at {best_epoch})")
            if k - best_epoch >= opts.patience or time.time() - t0 > 60 * opts.max_minutes:
                stopped = "patience" if k - best_epoch >= opts.patience else "budget"
                break
    if best_state is not None:
        restore(best_state)
    logger.info("%s: best valid R@10 %.4f at epoch %d of %d", name, best[0], best_epoch, len(curve))
    return {"epochs": len(curve), "best_epoch": best_epoch, "best_valid_recall@10": best[0],
            "best_valid_ndcg@10": best[1], "seconds": round(time.time() - t0, 1), "stopped_by": stopped,
            "options": dataclasses.asdict(opts), "curve": curve}
