"""The direction optimiser's checkpoint: one safetensors file holding the direction, the best direction so
far and the optimiser's moments, with the settings and loss history in its metadata (and a JSON copy)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from safetensors import safe_open
from safetensors.torch import save_file

from emovec._files import atomic_write, temp_path


@dataclass
class Checkpoint:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def load_checkpoint(out: Path) -> Checkpoint | None:
    path = out / "direction.safetensors"
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
        stored = (f.metadata() or {}).get("robust")
    if stored is None:  # a checkpoint from before the metadata: the JSON copy
        legacy = out / "robust.json"
        stored = legacy.read_text("utf-8") if legacy.exists() else json.dumps({"config": {}, "history": []})
    return Checkpoint(tensors, json.loads(stored))


def changed_settings(ck: Checkpoint, config: BaseModel, n_prompts: int) -> list[str]:
    """The settings (besides ``steps`` and ``out``) in which ``config`` differs from the checkpointed run."""
    now = {**json.loads(config.model_dump_json()), "n_prompts": n_prompts}
    # a setting added since the checkpoint was written counts as its default there
    defaults = json.loads(type(config).model_construct().model_dump_json(include=set(type(config).model_fields)
                                                                          - set(ck.meta["config"])))
    saved = {**defaults, **ck.meta["config"], "n_prompts": ck.meta.get("n_prompts")}
    return sorted(k for k in now if k not in ("steps", "out") and saved.get(k) != now[k])


def save_checkpoint(out: Path, config: BaseModel, n_prompts: int, direction: torch.Tensor, best: torch.Tensor,
          opt: torch.optim.Optimizer, history: list[dict[str, float]], start_val: dict[str, float]) -> None:
    """One file: the direction, the best one so far, the optimiser's moments (so a resumed run continues
    exactly) and, in its metadata, the settings and the history; then a readable JSON copy of the latter."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out / "direction.safetensors")
    state = opt.state[direction]
    moments = {f"adam.{k}": torch.as_tensor(v).detach().float().reshape(-1).contiguous() for k, v in state.items()}
    meta = json.dumps({"config": json.loads(config.model_dump_json()), "n_prompts": n_prompts, "history": history,
                       "start_val": start_val})
    save_file({"direction": direction.detach().contiguous(), "best": best.detach().contiguous(), **moments},
              str(tmp), metadata={"robust": meta})
    tmp.replace(out / "direction.safetensors")
    atomic_write(out / "robust.json", json.dumps(json.loads(meta), indent=1))
