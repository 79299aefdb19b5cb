"""Writes the prepared data directory (docs/data-format.md) and summarises it."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model.records import write_jsonl
from streams.data.cold import cold_meta, cold_summary
from streams.data.records import Engagement, Impression, Item, Problems
from streams.data.split import Split
from streams.errors import DataError
from streams.progress import progress

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Prepared:
    """Everything one loader produced, ready to write."""

    source: str
    items: list[Item]
    engagements: list[Engagement]
    split: Split
    impressions_valid: list[Impression]
    impressions_test: list[Impression]
    seed: int | None
    split_description: str
    specifics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def meta(self, problems: Problems) -> dict[str, Any]:
        return {
            "source": self.source,
            "counts": {"items": len(self.items), "engagements": len(self.engagements),
                       "users": len({e.user_id for e in self.engagements})},
            "seed": self.seed,
            "split": self.split_description,
            "split_counts": {"train": len(self.split.train), "valid": len(self.split.valid),
                             "test": len(self.split.test),
                             "impressions_valid": len(self.impressions_valid),
                             "impressions_test": len(self.impressions_test)},
            "skipped_bad_input": dict(problems.counts),
            **self.specifics,
        }


def write_prepared(out_dir: Path, prep: Prepared, problems: Problems) -> dict[str, Any]:
    """Write all files of the prepared format; meta.json last (its presence means complete)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{out_dir}: cannot create output directory: {e.strerror or e}") from e
    meta_path = out_dir / "meta.json"
    meta_path.unlink(missing_ok=True)
    files: list[tuple[str, Sequence[Any]]] = [
        ("items.jsonl", prep.items), ("engagements.jsonl", prep.engagements),
        ("train.jsonl", prep.split.train), ("valid.jsonl", prep.split.valid),
        ("test.jsonl", prep.split.test), ("impressions_valid.jsonl", prep.impressions_valid),
        ("impressions_test.jsonl", prep.impressions_test)]
    for name, rows in files:
        write_jsonl(out_dir / name, (r.to_json() for r in progress(rows, f"write {name}", len(rows))))
    meta = prep.meta(problems)
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("prepared %s in %s", prep.source, out_dir)
    return meta


def summary_lines(out_dir: Path, meta: dict[str, Any], problems: Problems,
                  seconds: float) -> list[str]:
    """Short human summary printed at the end of `data prepare`."""
    c, s = meta["counts"], meta["split_counts"]
    lines = [f"prepared {meta['source']} -> {out_dir} in {seconds:.1f}s",
             f"  items {c['items']:,}  engagements {c['engagements']:,}  users {c['users']:,}",
             f"  train {s['train']:,}  valid {s['valid']:,}  test {s['test']:,}  "
             f"impressions valid {s['impressions_valid']:,} test {s['impressions_test']:,}"]
    if "cold_split" in meta:
        lines.append(f"  {cold_summary(meta['cold_split'])}")
    lines += [f"  {line}" for line in problems.summary()]
    return lines


def finish(out_dir: Path, prep: Prepared, problems: Problems, started: float,
           echo: Callable[[str], Any] | None = None, cold_items: float = 0.0,
           cold_seed: int = 0) -> dict[str, Any]:
    """The loaders' common end: add the cold-item split (cold_items > 0), write, print the summary."""
    prep.specifics.update(cold_meta(prep.engagements, prep.split, cold_items, cold_seed))
    meta = write_prepared(Path(out_dir), prep, problems)
    for line in summary_lines(Path(out_dir), meta, problems, time.perf_counter() - started):
        (echo or logger.info)(line)
    return meta
