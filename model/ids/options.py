"""The ID half's settings: the hybrid's gate fit and the SASRec tower's recipe (no torch here:
the CLI builds its flags from these fields without loading the model stack)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class HybridConfig:
    """The ID half of a hybrid checkpoint (stored in hybrid.json next to the EmbSum config)."""

    min_count: int = 1  # an item gets an ID row after this many train engagements (admission)
    # fusion fit: share of targets scored as if they had no ID row, so warm items' ID scores
    # stay comparable with content-only scores of new items (DropoutNet's trick)
    row_dropout: float = 0.2
    fusion_epochs: int = 60  # full-batch epochs of the gate fit on held-in positions
    fusion_lr: float = 0.05
    # where the gate is fitted: 0 = the valid split (the tower then trains on all of train, as the
    # SASRec baseline does); N > 0 = each user's last N train engagements, cut from the tower's data
    fusion_positions: int = 0
    fusion_sample: int = 0  # fit the gate on at most this many held-in positions (seeded; 0 = all)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> HybridConfig:
        """Build from a dict, ignoring unknown keys."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SASRecOptions:
    """Architecture and training recipe: the standard one (2 blocks, 50 items, learned positions,
    causal attention, CE over the catalogue, AdamW, early stopping on valid), with dim, dropout
    and lr picked by valid Recall@10 on ML-100K (5-minute CPU budgets, else epoch-matched:
    dim 128 / lr 6e-3 / dropout 0.2 0.217 at 14 epochs; dim 64 / lr 6e-3 0.214; dim 64 / lr 3e-3
    0.190; the same with dropout 0.5 0.174, with batch 64 0.193; dim 64 / lr 1e-3 0.099)."""

    dim: int = 128  # hidden size = ID row size
    blocks: int = 2  # self-attention blocks
    heads: int = 1  # attention heads
    max_len: int = 50  # most recent items the tower reads
    dropout: float = 0.2  # dropout on inputs and inside the blocks
    lr: float = 6e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    batch_size: int = 128  # training windows per step
    max_epochs: int = 300  # upper bound on epochs
    patience: int = 10  # epochs without a better valid Recall@10 before stopping
    max_minutes: float = 15.0  # wall-clock budget of the tower's training
    seed: int = 0  # initialisation and shuffling seed
