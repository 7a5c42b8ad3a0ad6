"""Interop: export a steering as a llama.cpp control vector (GGUF) or an lm-evaluation-harness steer file,
and import GGUF control vectors.

A GGUF control vector (the ``controlvector`` architecture that llama.cpp, repeng and EasySteer read) holds
one tensor ``direction.{i}`` per steered layer: the vector added to the residual stream after block ``i``
(llama.cpp never steers block 0, so a steering of layer 0 cannot be exported there). lm-evaluation-harness's
``steered`` model reads a ``.pt`` file mapping a hookpoint (``layers.{i}``) to
``{"action", "steering_coefficient", "steering_vector", "bias"}``; it is loaded with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from emovec._files import temp_path
from emovec.errors import IntegrityError
from emovec.models.architectures import ARCHITECTURES
from emovec.steer import SteeringError, SteeringSpec
from emovec.vectors.vector_set import VectorSet


def additions(spec: SteeringSpec, vectors: VectorSet) -> dict[int, Tensor]:
    """The raw vector each layer of a pure ``add`` steering adds (strength x mean norm x unit direction).

    Example:
        >>> additions(SteeringSpec([SteerTerm("calm", 0.05)], [12]), vs)[12].shape
    """
    if spec.condition is not None or spec.scope != "all" or spec.start != 0:
        raise SteeringError("only unconditional steering of all tokens can be exported; drop scope/start/condition")
    out: dict[int, Tensor] = {}
    for layer, weight in spec.layer_weights().items():
        j = vectors.layer_index(layer)
        total = torch.zeros(vectors.d_model)
        for term in spec.terms:
            if term.op != "add":
                raise SteeringError(f"{term.label}: only 'add' steering exports to this format, not {term.op!r}")
            if not isinstance(term.strength, int | float):
                raise SteeringError("per-row strengths cannot be exported; give one strength per term")
            vec = vectors.vector(term.direction, layer) if isinstance(term.direction, str) else term.direction.float()
            total += float(term.strength) * weight * float(vectors.mean_norm[j]) * vec / vec.norm()
        out[layer] = total
    return out


def export_gguf(spec: SteeringSpec, vectors: VectorSet, path: str | Path) -> Path:
    """Write the steering as a llama.cpp control-vector GGUF file (atomically).

    Example:
        >>> export_gguf(SteeringSpec([SteerTerm("calm", 0.05)], [12]), vs, "calm.gguf")
    """
    import gguf

    adds = additions(spec, vectors)
    if 0 in adds:
        raise SteeringError("llama.cpp control vectors cannot steer layer 0; choose layers from 1")
    target = Path(path)
    tmp = temp_path(target)
    writer = gguf.GGUFWriter(str(tmp), "controlvector")
    writer.add_string("controlvector.model_hint", _model_hint(vectors))
    writer.add_uint32("controlvector.layer_count", len(adds))
    writer.add_string("emovec.model", vectors.provenance.model.name)
    writer.add_string("emovec.fingerprint", vectors.provenance.model.fingerprint)
    writer.add_string("emovec.steering", ", ".join(f"{t.label}={t.strength}" for t in spec.terms))
    for layer in sorted(adds):
        writer.add_tensor(f"direction.{layer}", adds[layer].numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, target)
    return target


def _model_hint(vectors: VectorSet) -> str:
    family = vectors.provenance.model.family
    return {"gemma3_text": "gemma3"}.get(family, family)


def import_gguf(path: str | Path, vectors: VectorSet | None = None) -> dict[int, Tensor]:
    """Read a GGUF control vector: ``{layer: vector added after that block}``.

    With ``vectors`` given, the width is checked against it.

    Example:
        >>> adds = import_gguf("calm.gguf", vs)
        >>> spec = SteeringSpec([SteerTerm(adds[12], 1.0)], [12])  # or use the raw vectors directly
    """
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError, IndexError) as exc:
        raise IntegrityError(f"{path} is not a readable GGUF file ({exc})") from None
    field = reader.fields.get("general.architecture")
    arch = bytes(field.parts[field.data[0]]).decode() if field is not None else None
    if arch != "controlvector":
        raise IntegrityError(f"{path} is a GGUF file of architecture {arch!r}, not a control vector")
    out: dict[int, Tensor] = {}
    for tensor in reader.tensors:
        prefix, _, index = tensor.name.partition(".")
        if prefix != "direction" or not index.isdigit():
            continue
        out[int(index)] = torch.from_numpy(np.array(tensor.data, dtype=np.float32).reshape(-1))
    if not out:
        raise IntegrityError(f"{path} holds no direction.N tensors")
    if vectors is not None:
        widths = {v.shape[0] for v in out.values()}
        if widths != {vectors.d_model}:
            raise SteeringError(f"{path} has vectors of width {sorted(widths)}; the vector set's model has "
                                f"width {vectors.d_model}")
    return out


def hookpoint(vectors: VectorSet, layer: int) -> str:
    """lm-evaluation-harness's name for block ``layer``: its path under the model's base model, from the model
    family's row of ``emovec.models.architectures.ARCHITECTURES``; a family without a row is an error (its
    module path is not known, and another family's could name a module the model does not have)."""
    family = vectors.provenance.model.family
    spec = next((a for a in ARCHITECTURES if family in a.family), None)
    if spec is None:
        raise SteeringError(f"the vector set's model family {family!r} has no row in "
                            "emovec.models.architectures.ARCHITECTURES, so its lm-evaluation-harness hookpoint is "
                            "not known; add an ArchSpec row for it (its block path), or export to GGUF instead")
    relative = spec.layers.removeprefix(spec.backbone + ".")
    return f"{relative}.{layer}"


def export_lm_eval(spec: SteeringSpec, vectors: VectorSet, path: str | Path) -> Path:
    """Write the steering as the ``.pt`` file lm-evaluation-harness's ``steered`` model reads.

    Use it with ``lm_eval --model steered --model_args pretrained=...,steer_path=FILE``.

    Example:
        >>> export_lm_eval(SteeringSpec([SteerTerm("calm", 0.05)], [12]), vs, "calm.pt")
    """
    config = {
        hookpoint(vectors, layer): {"action": "add", "steering_coefficient": 1.0, "steering_vector": vec,
                                    "bias": None}
        for layer, vec in additions(spec, vectors).items()
    }
    target = Path(path)
    tmp = temp_path(target)
    torch.save(config, tmp)
    os.replace(tmp, target)
    return target

