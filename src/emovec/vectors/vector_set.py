"""``VectorSet``: named directions per layer with their provenance, saved as safetensors plus JSON.

On disk a vector set is a directory holding ``vectors.safetensors`` (one tensor, ``directions``, shaped
``[n_layers, n_vectors, d_model]``, plus ``mean_norm`` ``[n_layers]``) and ``vectors.json`` (names, layers,
provenance, the SHA-256 of the tensor file). Files are replaced atomically, tensors are read with
safetensors only, and a torn or edited tensor file is detected by its hash.
"""

from __future__ import annotations

import difflib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from pydantic import BaseModel, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from emovec._files import atomic_write, sha256_of, temp_path
from emovec._version import __version__
from emovec.capture import TokenSelection
from emovec.errors import ArtifactExistsError, IncompatibleVectorsError, IntegrityError, LayerError
from emovec.models.loading import LoadedModel, ModelSource

SCHEMA_VERSION = 1
FORMAT = "emovec.vectorset"
TENSORS_FILE = "vectors.safetensors"
META_FILE = "vectors.json"

Scalar = str | int | float | bool | None


class CorpusInfo(BaseModel):
    """The texts a vector set was fitted on."""

    path: str
    sha256: str
    n_train: int
    n_heldout: int = 0
    n_neutral: int
    heldout_per_emotion: int = 0
    stories_per_emotion: int | None = None
    neutral_limit: int | None = None
    topics_limit: int | None = None
    design: str | None = None
    n_topics: int | None = None
    cells_filled: int | None = None
    cells_total: int | None = None


class Provenance(BaseModel):
    """Everything needed to say where a vector set came from and to reproduce it."""

    model: ModelSource
    method: str
    method_params: dict[str, Scalar] = Field(default_factory=dict)
    token_selection: TokenSelection
    corpus: CorpusInfo | None = None
    seed: int | None = None
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    emovec_version: str = __version__


class VectorSetMeta(BaseModel):
    """The JSON half of a saved vector set (versioned schema)."""

    format: str = FORMAT
    schema_version: int = SCHEMA_VERSION
    names: list[str]
    layers: list[int]
    d_model: int
    tensors_sha256: str
    recommended_layer: int | None = None
    provenance: Provenance


@dataclass(frozen=True)
class VectorSet:
    """Directions for named concepts at several layers of one model.

    Attributes:
        names: concept names (the 171 emotions, or any concepts), in order.
        layers: block indices; the residual stream after each block.
        directions: ``[n_layers, n_vectors, d_model]`` float32, not normalised (use ``unit()`` for that).
        mean_norm: ``[n_layers]`` mean residual-stream norm at each layer, so steering strength can be given
            as a fraction of it, as the paper does.
        provenance: model, method, token positions, corpus, seed, emovec version.
        recommended_layer: the layer validation picked, if it has run.
        center: ``[n_layers, d_model]`` the activation point the directions are measured from (for emotion
            vectors, the mean over emotions); subtract it from an activation before comparing, or ``None``.

    Example:
        >>> vs = VectorSet.load("runs/demo")
        >>> vs.nearest("calm", k=3)
        >>> desperate_minus_calm = vs.vector("desperate") - vs.vector("calm")
    """

    names: tuple[str, ...]
    layers: tuple[int, ...]
    directions: Tensor
    mean_norm: Tensor
    provenance: Provenance
    recommended_layer: int | None = None
    center: Tensor | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.directions.shape)
        if len(shape) != 3 or shape[:2] != (len(self.layers), len(self.names)):
            raise ValueError(
                f"directions must be [n_layers={len(self.layers)}, n_vectors={len(self.names)}, d_model]; got {shape}"
            )
        if tuple(self.mean_norm.shape) != (len(self.layers),):
            raise ValueError(f"mean_norm must have one value per layer; got shape {tuple(self.mean_norm.shape)}")
        if self.center is not None and tuple(self.center.shape) != (len(self.layers), shape[-1]):
            raise ValueError(f"center must be [n_layers, d_model]; got {tuple(self.center.shape)}")
        if len(set(self.names)) != len(self.names):
            raise ValueError("vector names must be unique")
        if self.recommended_layer is not None and self.recommended_layer not in self.layers:
            raise ValueError(f"recommended layer {self.recommended_layer} is not among the layers {self.layers}")

    # -- shape and lookup ---------------------------------------------------------------------------------

    @property
    def d_model(self) -> int:
        return int(self.directions.shape[-1])

    @property
    def default_layer(self) -> int:
        """The recommended layer, else the layer two thirds of the way through the model."""
        if self.recommended_layer is not None:
            return self.recommended_layer
        target = (2 * self.provenance.model.n_layers) // 3
        return min(self.layers, key=lambda layer: abs(layer - target))

    def layer_index(self, layer: int | None) -> int:
        """Position of ``layer`` in ``self.layers`` (``None``: the default layer)."""
        chosen = self.default_layer if layer is None else layer
        if chosen not in self.layers:
            raise LayerError(f"layer {chosen} is not in this vector set; it has layers {list(self.layers)}")
        return self.layers.index(chosen)

    def index(self, name: str) -> int:
        """Position of ``name``; an unknown name raises ``KeyError`` suggesting the closest names."""
        try:
            return self.names.index(name)
        except ValueError:
            close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(f"no vector named {name!r} in this set ({len(self.names)} names).{hint}") from None

    def vector(self, name: str, layer: int | None = None) -> Tensor:
        """The direction of ``name`` at ``layer`` (default layer if ``None``), ``[d_model]``."""
        return self.directions[self.layer_index(layer), self.index(name)]

    def at_layer(self, layer: int | None = None) -> Tensor:
        """All directions at one layer, ``[n_vectors, d_model]``."""
        return self.directions[self.layer_index(layer)]

    def unit(self) -> VectorSet:
        """The same set with every direction scaled to unit norm."""
        norms = self.directions.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return replace(self, directions=self.directions / norms)

    def select(self, names: Sequence[str] | None = None, layers: Sequence[int] | None = None) -> VectorSet:
        """A subset by names and/or layers."""
        n_idx = [self.index(n) for n in names] if names is not None else list(range(len(self.names)))
        l_idx = [self.layer_index(layer) for layer in layers] if layers is not None else list(range(len(self.layers)))
        rec = self.recommended_layer if self.recommended_layer in [self.layers[i] for i in l_idx] else None
        return replace(
            self, names=tuple(self.names[i] for i in n_idx), layers=tuple(self.layers[i] for i in l_idx),
            directions=self.directions[l_idx][:, n_idx], mean_norm=self.mean_norm[l_idx], recommended_layer=rec,
            center=self.center[l_idx] if self.center is not None else None,
        )

    def with_recommended_layer(self, layer: int) -> VectorSet:
        return replace(self, recommended_layer=layer)

    # -- geometry -----------------------------------------------------------------------------------------

    def cosine_similarity(self, layer: int | None = None) -> Tensor:
        """``[n_vectors, n_vectors]`` cosine similarities at one layer."""
        unit = torch.nn.functional.normalize(self.at_layer(layer), dim=-1)
        return unit @ unit.T

    def nearest(self, query: str | Tensor, layer: int | None = None, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` names whose directions are closest (cosine) to a name or a raw vector.

        Example:
            >>> vs.nearest("calm", k=3)
            [('peaceful', 0.81), ('relaxed', 0.79), ('serene', 0.77)]
        """
        mat = torch.nn.functional.normalize(self.at_layer(layer), dim=-1)
        if isinstance(query, str):
            q = mat[self.index(query)]
            skip = {self.index(query)}
        else:
            if query.shape[-1] != self.d_model:
                raise IncompatibleVectorsError(f"query has width {query.shape[-1]}, this set has {self.d_model}")
            q = torch.nn.functional.normalize(query.float(), dim=-1)
            skip = set()
        sims = (mat @ q).tolist()
        ranked = sorted((i for i in range(len(self.names)) if i not in skip), key=lambda i: -sims[i])
        return [(self.names[i], float(sims[i])) for i in ranked[:k]]

    # -- arithmetic ---------------------------------------------------------------------------------------

    def _check_same_space(self, other: VectorSet) -> None:
        if other.d_model != self.d_model or other.provenance.model.fingerprint != self.provenance.model.fingerprint:
            raise IncompatibleVectorsError("cannot combine vector sets from different models or widths")
        if other.names != self.names or other.layers != self.layers:
            raise IncompatibleVectorsError("cannot combine vector sets with different names or layers; use select()")

    def _derived(self, directions: Tensor, op: str) -> VectorSet:
        prov = self.provenance.model_copy(
            update={"method": f"{self.provenance.method}|{op}", "method_params": dict(self.provenance.method_params)}
        )
        return replace(self, directions=directions, provenance=prov)

    def __add__(self, other: VectorSet) -> VectorSet:
        self._check_same_space(other)
        return self._derived(self.directions + other.directions, "add")

    def __sub__(self, other: VectorSet) -> VectorSet:
        self._check_same_space(other)
        return self._derived(self.directions - other.directions, "sub")

    def __mul__(self, factor: float) -> VectorSet:
        return self._derived(self.directions * float(factor), f"mul({float(factor):g})")

    __rmul__ = __mul__

    def __neg__(self) -> VectorSet:
        return self * -1.0

    def __truediv__(self, factor: float) -> VectorSet:
        return self * (1.0 / float(factor))

    # -- compatibility ------------------------------------------------------------------------------------

    def check_compatible(self, lm: LoadedModel, force: bool = False) -> None:
        """Refuse to use this set with a model it was not made from.

        A different width or too few layers is always refused; a different model of the same shape is
        refused unless ``force=True`` (then a warning is issued).
        """
        made = self.provenance.model
        if self.d_model != lm.d_model:
            raise IncompatibleVectorsError(
                f"vectors have width {self.d_model} (model {made.name!r}) but {lm.name!r} has width {lm.d_model}; "
                f"extract vectors for {lm.name!r} with `emovec extract --model {lm.name}`"
            )
        if max(self.layers) >= lm.n_layers:
            raise IncompatibleVectorsError(
                f"vectors use layer {max(self.layers)} but {lm.name!r} has only {lm.n_layers} layers"
            )
        if made.fingerprint != lm.source.fingerprint:
            message = (
                f"these vectors were made from {made.name!r} (weights {made.fingerprint}) but the loaded model is "
                f"{lm.name!r} (weights {lm.source.fingerprint})"
            )
            if not force:
                raise IncompatibleVectorsError(message + "; pass force=True (--force) to use them anyway")
            warnings.warn(message + "; used anyway because force=True", stacklevel=2)

    # -- persistence --------------------------------------------------------------------------------------

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``vectors.safetensors`` and ``vectors.json`` into ``directory`` atomically.

        Other files in the directory (reports, plots) are left alone. An existing vector set there is only
        replaced with ``overwrite=True``.

        Example:
            >>> vs.save("runs/my-vectors")
        """
        out = Path(directory)
        if (out / META_FILE).exists() and not overwrite:
            raise ArtifactExistsError(
                f"{out} already holds a vector set; choose another directory or pass overwrite=True (--overwrite)"
            )
        out.mkdir(parents=True, exist_ok=True)
        tmp_tensors = temp_path(out / TENSORS_FILE)
        tensors = {"directions": self.directions.float().contiguous().cpu(), "mean_norm": self.mean_norm.float().cpu()}
        if self.center is not None:
            tensors["center"] = self.center.float().contiguous().cpu()
        save_file(tensors, str(tmp_tensors), metadata={"format": FORMAT})
        sha = sha256_of([tmp_tensors])
        meta = VectorSetMeta(
            names=list(self.names), layers=list(self.layers), d_model=self.d_model, tensors_sha256=sha,
            recommended_layer=self.recommended_layer, provenance=self.provenance,
        )
        os.replace(tmp_tensors, out / TENSORS_FILE)
        # The JSON goes last: it names the tensor file's hash, so a crash between the two is detected on load.
        atomic_write(out / META_FILE, meta.model_dump_json(indent=1))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> VectorSet:
        """Read a vector set directory, verifying its schema and the tensor file's hash.

        Raises:
            FileNotFoundError: the directory or one of its two files is missing.
            IntegrityError: the JSON is malformed, the schema is newer than this emovec, or the tensor file is
                truncated, edited or inconsistent with the JSON.
        """
        src = Path(directory)
        meta_path, tensor_path = src / META_FILE, src / TENSORS_FILE
        for p in (meta_path, tensor_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p} is missing: {src} is not a vector set directory (make one with `emovec extract`)"
                )
        try:
            raw = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{meta_path} is not valid JSON ({exc}); the file is corrupt") from None
        if raw.get("format") != FORMAT:
            raise IntegrityError(f"{meta_path} is not an emovec vector set (format {raw.get('format')!r})")
        if int(raw.get("schema_version", 0)) > SCHEMA_VERSION:
            raise IntegrityError(
                f"{meta_path} has schema version {raw['schema_version']}; this emovec ({__version__}) reads up to "
                f"{SCHEMA_VERSION}. Upgrade emovec."
            )
        try:
            meta = VectorSetMeta.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise IntegrityError(f"{meta_path} is malformed: {first['msg']} at {first['loc']}") from None
        if sha256_of([tensor_path]) != meta.tensors_sha256:
            raise IntegrityError(
                f"{tensor_path} does not match the hash recorded in {META_FILE}: it is truncated or was modified. "
                "Re-extract the vectors or restore the file."
            )
        try:
            tensors = load_file(str(tensor_path))
        except (SafetensorError, OSError) as exc:
            raise IntegrityError(f"{tensor_path} is not a readable safetensors file ({exc})") from None
        directions, mean_norm = tensors.get("directions"), tensors.get("mean_norm")
        if directions is None or mean_norm is None:
            raise IntegrityError(f"{tensor_path} lacks the 'directions' or 'mean_norm' tensor")
        if tuple(directions.shape) != (len(meta.layers), len(meta.names), meta.d_model):
            raise IntegrityError(
                f"{tensor_path} holds directions of shape {tuple(directions.shape)}, but {META_FILE} describes "
                f"{(len(meta.layers), len(meta.names), meta.d_model)}"
            )
        if not torch.isfinite(directions).all():
            raise IntegrityError(f"{tensor_path} holds non-finite directions; re-extract the vectors")
        return cls(
            names=tuple(meta.names), layers=tuple(meta.layers), directions=directions, mean_norm=mean_norm,
            provenance=meta.provenance, recommended_layer=meta.recommended_layer, center=tensors.get("center"),
        )
