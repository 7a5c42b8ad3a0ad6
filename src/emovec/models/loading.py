"""``load_model``: one entry point for built-in names, GGUF files, local checkpoints and hub ids."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel
from torch import nn

from emovec.errors import LayerError, UnknownModelError
from emovec.models.architectures import ArchSpec, arch_for, get_module
from emovec.models.gguf_cache import cached_checkpoint
from emovec.models.registry import BUILTIN_MODELS, DEFAULT_MODEL, builtin, locate_parts

SourceKind = Literal["builtin", "gguf", "directory", "hub", "object"]


class ModelSource(BaseModel):
    """Where a model came from: recorded in every vector set and result made with it."""

    name: str
    kind: SourceKind
    location: str
    family: str
    file_sha256: str | None = None
    revision: str | None = None
    fingerprint: str
    n_layers: int
    d_model: int


def default_device() -> torch.device:
    """The first accelerator available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """float32 on the CPU (bfloat16 matmuls are several times slower there), bfloat16 on accelerators."""
    return torch.float32 if device.type == "cpu" else torch.bfloat16


def weights_fingerprint(model: nn.Module, arch: ArchSpec) -> str:
    """A short hash of the embedding matrix, identifying the weights whatever file they came from."""
    weight = get_module(model, arch.embed).weight.detach()
    sample = weight[: min(256, weight.shape[0])].to(torch.float32).cpu().contiguous()
    digest = hashlib.sha256(str(tuple(weight.shape)).encode())
    digest.update(sample.numpy().round(4).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer, architecture row and provenance.

    Attributes:
        model: the Hugging Face ``*ForCausalLM`` model, in eval mode. emovec never replaces its modules.
        tokenizer: its tokenizer, with a pad token set.
        arch: the architecture table row giving module paths.
        source: provenance, recorded in everything made with this model.
    """

    model: Any
    tokenizer: Any
    arch: ArchSpec
    source: ModelSource

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def n_layers(self) -> int:
        return self.source.n_layers

    @property
    def d_model(self) -> int:
        return self.source.d_model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def blocks(self) -> nn.ModuleList:
        blocks = get_module(self.model, self.arch.layers)
        assert isinstance(blocks, nn.ModuleList)
        return blocks

    @property
    def backbone(self) -> nn.Module:
        return get_module(self.model, self.arch.backbone)

    @property
    def final_norm(self) -> nn.Module:
        return get_module(self.model, self.arch.final_norm)

    @property
    def lm_head(self) -> nn.Module:
        return get_module(self.model, self.arch.lm_head)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def check_layers(self, layers: Sequence[int] | None) -> list[int]:
        """Validate layer indices (negative counts from the end); ``None`` means every layer.

        Example:
            >>> lm.check_layers([-1])
            [29]
        """
        if layers is None:
            return list(range(self.n_layers))
        checked: list[int] = []
        for layer in layers:
            index = int(layer) + self.n_layers if int(layer) < 0 else int(layer)
            if not 0 <= index < self.n_layers:
                raise LayerError(
                    f"layer {layer} is out of range: {self.name} has {self.n_layers} layers, "
                    f"valid indices are 0..{self.n_layers - 1} (or -{self.n_layers}..-1)"
                )
            checked.append(index)
        if len(set(checked)) != len(checked):
            raise LayerError(f"layers {list(layers)} name the same layer twice")
        return sorted(checked)


def _finish(
    model: Any, tokenizer: Any, name: str, kind: SourceKind, location: str,
    file_sha256: str | None = None, revision: str | None = None,
) -> LoadedModel:
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    arch = arch_for(model)
    config = model.config
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    source = ModelSource(
        name=name, kind=kind, location=location, family=arch.name, file_sha256=file_sha256,
        revision=revision, fingerprint=weights_fingerprint(model, arch),
        n_layers=len(get_module(model, arch.layers)), d_model=int(cfg.hidden_size),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, arch=arch, source=source)


def _from_checkpoint(
    location: str | Path, device: torch.device, dtype: torch.dtype, revision: str | None,
    trust_remote_code: bool, local_only: bool,
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code,
                              "local_files_only": local_only}
    with warnings.catch_warnings(), _no_transformers_bars():
        warnings.filterwarnings("ignore", message=".*generation flags.*")
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    return model.to(device), tokenizer


@contextmanager
def _no_transformers_bars() -> Iterator[None]:
    """Hide transformers' own tqdm bars (``Loading weights``) while a model loads: emovec says what it loads where
    asked (the CLI prints a line) and a library prints nothing of its own."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def load_model(
    spec: str | Path = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a causal language model for emovec.

    Args:
        spec: a built-in name (``emovec.BUILTIN_MODELS``), a path to a ``.gguf`` file, a local Hugging Face
            checkpoint directory, or a hub id (``org/name``) already in the local Hugging Face cache.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: the first accelerator, else the CPU.
        dtype: ``"float32"``, ``"bfloat16"``...; default: float32 on the CPU, bfloat16 elsewhere.
        revision: a hub revision (branch, tag or commit) for hub ids.
        trust_remote_code: run the checkpoint's own modelling code (only if you trust it).

    Returns:
        A ``LoadedModel`` with provenance in ``.source``.

    Example:
        >>> lm = load_model("smollm2-135m-instruct")
        >>> lm.n_layers, lm.d_model
        (30, 576)
    """
    dev = torch.device(device) if device is not None else default_device()
    dt = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or default_dtype(dev))
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}: use float32, float16 or bfloat16")
    text = str(spec)
    path = Path(text).expanduser()
    if text in BUILTIN_MODELS:
        entry = builtin(text)
        directory, sha = cached_checkpoint(locate_parts(entry), entry.gguf_name, entry.sha256)
        model, tok = _from_checkpoint(directory, dev, dt, None, False, True)
        return _finish(model, tok, entry.name, "builtin", str(directory), file_sha256=sha)
    if path.is_file() and path.suffix == ".gguf":
        directory, sha = cached_checkpoint([path], path.name)
        model, tok = _from_checkpoint(directory, dev, dt, None, False, True)
        return _finish(model, tok, path.stem, "gguf", str(path.resolve()), file_sha256=sha)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownModelError(f"{path} is a directory but holds no config.json: not a Hugging Face checkpoint")
        model, tok = _from_checkpoint(path, dev, dt, None, trust_remote_code, True)
        rev = getattr(model.config, "_commit_hash", None)
        return _finish(model, tok, path.name, "directory", str(path.resolve()), revision=rev)
    if _HUB_ID.match(text) and not path.exists():
        try:
            model, tok = _from_checkpoint(text, dev, dt, revision, trust_remote_code, False)
        except OSError as exc:
            raise UnknownModelError(
                f"could not load {text!r} from the Hugging Face hub or its local cache ({exc}). Check the id, "
                "download it where you have network access, or pass a local directory or .gguf file."
            ) from exc
        rev = getattr(model.config, "_commit_hash", None) or revision
        return _finish(model, tok, text, "hub", text, revision=rev)
    builtin(text)  # raises UnknownModelError listing the known names
    raise AssertionError("unreachable")


def wrap_model(model: nn.Module, tokenizer: Any, name: str = "in-memory") -> LoadedModel:
    """Wrap a model object you already have (tests, custom loaders) so emovec can use it.

    Example:
        >>> lm = wrap_model(LlamaForCausalLM(config), tokenizer, name="tiny-llama")
    """
    return _finish(model, tokenizer, name, "object", name)
