"""The one loader of a hybrid checkpoint's ID half (hybrid.safetensors + hybrid.json, written
by model/checkpoint.py: save_hybrid): the serving engine, the online trainer, offline
evaluation and prior re-tuning all read it through `load_id_half`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import load_hybrid
from model.ids.hybrid import Fusion, HybridConfig
from model.ids.sasrec import SASRec, load_tower


@dataclass
class IdCheckpoint:
    """Tower, fitted gate, config and ID rows (in item_ids order) of one hybrid checkpoint."""

    tower: SASRec
    fusion: Fusion
    config: HybridConfig
    tensors: dict[str, torch.Tensor]
    doc: dict[str, Any]

    @property
    def item_ids(self) -> list[str]:
        return self.doc["item_ids"]

    @property
    def present(self) -> list[str]:
        """The items that have a row (trained in the checkpoint's train period)."""
        return self.doc["present"]

    def present_rows(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The ids that have a row, with their rows and their Adagrad slots, in `present` order."""
        row_of = {i: k for k, i in enumerate(self.item_ids)}
        ids = [i for i in self.present if i in row_of]
        at = np.array([row_of[i] for i in ids], dtype=np.int64)
        rows, slots = self.tensors["id_rows"].numpy(), self.tensors["id_accumulators"].numpy()
        return ids, rows[at].copy(), slots[at].copy()


def load_id_half(path: str | Path) -> IdCheckpoint | None:
    """The ID half of a checkpoint; None for a content-only one (CheckpointError when broken)."""
    loaded = load_hybrid(path)
    if loaded is None:
        return None
    tensors, doc = loaded
    tower = load_tower(tensors, doc["tower"])
    return IdCheckpoint(tower, Fusion.from_tensors(tensors, tower.opts.dim),
                        HybridConfig.from_dict(doc.get("hybrid", {})), tensors, doc)
