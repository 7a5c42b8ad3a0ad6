"""Every story's activations saved beside a vector set (``stories.safetensors``), so ``emovec inspect`` can
cross-validate without reading the corpus through the model again.

The file records the hash of the vector tensors it belongs to; a cache from another extraction is ignored.
Activations are stored in float16 (cross-validation figures move in the fourth decimal at most).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from emovec._files import temp_path
from emovec.vectors.extract import LabeledActivations

STORIES_FILE = "stories.safetensors"


def save_stories(directory: str | Path, stories: LabeledActivations, bases: list[Tensor | None],
                 tensors_sha256: str) -> Path:
    """Write the stories' activations, labels, topics and the neutral bases into ``directory``."""
    out = Path(directory) / STORIES_FILE
    tensors = {"acts": stories.acts.half().contiguous()}
    for j, basis in enumerate(bases):
        if basis is not None:
            tensors[f"basis.{j}"] = basis.float().contiguous()
    meta = {"labels": json.dumps(stories.labels), "topics": json.dumps(stories.topics),
            "layers": json.dumps(stories.layers), "n_bases": str(len(bases)), "tensors_sha256": tensors_sha256}
    tmp = temp_path(out)
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(out)
    return out


def load_stories(directory: str | Path, tensors_sha256: str) -> tuple[LabeledActivations, list[Tensor | None]] | None:
    """The cached stories of the vector set whose tensor file hashes to ``tensors_sha256``, or ``None``."""
    path = Path(directory) / STORIES_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("tensors_sha256") != tensors_sha256:
                return None
            acts = handle.get_tensor("acts").float()
            keys = set(handle.keys())
            bases: list[Tensor | None] = [handle.get_tensor(f"basis.{j}") if f"basis.{j}" in keys else None
                                          for j in range(int(meta["n_bases"]))]
    except (OSError, ValueError, KeyError, SafetensorError):
        return None  # a corrupt cache is re-read from the corpus
    stories = LabeledActivations(labels=json.loads(meta["labels"]), layers=json.loads(meta["layers"]), acts=acts,
                                 topics=json.loads(meta["topics"]))
    return stories, bases


def tensors_hash(directory: str | Path) -> str:
    """The tensor-file hash a saved vector set records."""
    return str(json.loads((Path(directory) / "vectors.json").read_text(encoding="utf-8"))["tensors_sha256"])

