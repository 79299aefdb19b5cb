"""Checkpoint = directory: model.safetensors + config.json (config, backbone, metadata) + tokenizer.

Only safetensors and JSON are read back: no pickle, no torch.load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from model.backbones import build_backbone, load_tokenizer
from model.config import EmbSumConfig
from model.device import pick_device
from model.embsum import EmbSum
from model.errors import CheckpointError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What load_checkpoint returns."""

    model: EmbSum
    tokenizer: Any
    config: EmbSumConfig
    device: torch.device
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | Path, model: EmbSum, tokenizer, metadata: dict[str, Any] | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> Path:
    """Write model weights, config + metadata, tokenizer (and optimizer state) into path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_model(model, str(path / "model.safetensors"))  # handles tied (shared) weights
    doc = {"format_version": FORMAT_VERSION, "config": model.cfg.to_dict(),
           "backbone": model.backbone.hf_configs(), "metadata": metadata or {}}
    (path / "config.json").write_text(json.dumps(doc, indent=2, default=str))
    tokenizer.save_pretrained(str(path))
    if optimizer is not None:
        save_optimizer(path, optimizer)
    logger.info("saved checkpoint to %s", path)
    return path


def read_checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint directory."""
    f = Path(path) / "config.json"
    if not f.exists() or not (Path(path) / "model.safetensors").exists():
        raise CheckpointError(f"{path} is not a checkpoint (needs config.json and model.safetensors)")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{f}: invalid JSON ({e})") from e


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Rebuild the model from config.json and load its safetensors weights."""
    doc = read_checkpoint_config(path)
    cfg = EmbSumConfig.from_dict(doc["config"])
    dev = pick_device(device)
    tokenizer = load_tokenizer(cfg, path)
    model = EmbSum(cfg, build_backbone(cfg, tokenizer, hf=doc["backbone"]))
    missing, unexpected = load_model(model, str(Path(path) / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return Checkpoint(model.to(dev).eval(), tokenizer, cfg, dev, doc.get("metadata", {}))


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Optimizer state as optimizer.safetensors + hyper-parameters in optimizer.json."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    save_file(tensors, str(path / "optimizer.safetensors"))
    (path / "optimizer.json").write_text(json.dumps({"param_groups": sd["param_groups"], "scalars": scalars}))


def load_optimizer(path: str | Path, optimizer: torch.optim.Optimizer) -> bool:
    """Restore optimizer state saved by save_optimizer; False when there is none."""
    path = Path(path)
    if not (path / "optimizer.safetensors").exists():
        return False
    meta = json.loads((path / "optimizer.json").read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, t in load_file(str(path / "optimizer.safetensors")).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = t
    for key, v in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return True


def save_hybrid(path: str | Path, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
    """The ID half next to a content checkpoint: hybrid.safetensors (tower, gate, ID rows and
    their optimizer slots) + hybrid.json (configs, row ids in row order, training facts)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path / "hybrid.safetensors"))
    (path / "hybrid.json").write_text(json.dumps({"format_version": FORMAT_VERSION, **doc}, indent=2, default=str))


def load_hybrid(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, doc) of a hybrid checkpoint; None for a content-only checkpoint."""
    path = Path(path)
    if not (path / "hybrid.json").exists():
        return None
    if not (path / "hybrid.safetensors").exists():
        raise CheckpointError(f"{path}: hybrid.json without hybrid.safetensors")
    try:
        doc = json.loads((path / "hybrid.json").read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}/hybrid.json: invalid JSON ({e})") from e
    return load_file(str(path / "hybrid.safetensors")), doc
