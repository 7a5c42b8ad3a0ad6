"""Builders shared by the tests: tiny random models from configs, an in-memory tokenizer, random vector sets and
plain Hugging Face reference passes. Nothing here downloads weights; the fixtures in ``tests/conftest.py`` wrap
these."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from emovec.capture import TokenSelection
from emovec.models.loading import ModelSource
from emovec.vectors import Provenance, VectorSet

if TYPE_CHECKING:
    from transformers import BatchEncoding

    from emovec.evaluation.blackmail import BlackmailManifest
    from emovec.evaluation.sweep_manifest import SweepManifest
    from emovec.models import LoadedModel

WORDS = tuple(
    "the a an and of to in on at with was is were she he they it her his their we i you my cat dog house car "
    "train room door window street city sea sky rain sun night day morning letter walked ran sat looked smiled "
    "cried laughed shouted waited opened closed felt thought said knew happy sad angry calm afraid proud nervous "
    "lonely grateful desperate surprised disgusted slowly quietly suddenly again never always very still only "
    "just then there here water tea bread book phone money work friend mother father sister brother child teacher "
    "red blue green old new small big long short warm cold dark bright . , ! ?"
    .split()
)


def make_tokenizer(rename: dict[str, str] | None = None) -> object:
    """A word-level tokenizer over ``WORDS`` that prepends ``<bos>``; ``rename`` gives some words another spelling
    (same ids, same vocabulary size)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<bos>", "<eos>"]
    vocab = {(rename or {}).get(w, w): i for i, w in enumerate(specials + list(dict.fromkeys(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def make_model(family: str, seed: int = 0) -> torch.nn.Module:
    """A random three-layer model of ``family`` (llama, qwen2 or gemma3); the same seed gives the same weights."""
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    vocab = len(make_tokenizer())  # type: ignore[arg-type]
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  pad_token_id=1, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(seed)
    if family == "llama":
        return LlamaForCausalLM(LlamaConfig(**common))
    if family == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common))
    if family == "gemma3":
        return Gemma3ForCausalLM(Gemma3TextConfig(**common, head_dim=8, sliding_window=16))
    raise ValueError(family)


FAMILIES = ("llama", "qwen2", "gemma3")


def sentence(rng: torch.Generator, n: int, bias: list[str] | None = None) -> str:
    words = [w for w in WORDS if w.isalpha()]
    out = []
    for _ in range(n):
        if bias and torch.rand(1, generator=rng).item() < 0.4:
            out.append(bias[int(torch.randint(len(bias), (1,), generator=rng))])
        else:
            out.append(words[int(torch.randint(len(words), (1,), generator=rng))])
    return " ".join(out)


def make_set(lm: LoadedModel, names: Sequence[str] = ("calm", "desperate", "afraid", "happy"),
             layers: Sequence[int] = (0, 2), seed: int = 0) -> VectorSet:
    """A vector set of random directions for ``lm`` (unit mean norm 3, zero centre)."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(len(layers), len(names), lm.d_model, generator=g)
    prov = Provenance(model=lm.source, method="test", token_selection=TokenSelection.from_index(1))
    return VectorSet(names=tuple(names), layers=tuple(layers), directions=dirs, mean_norm=torch.ones(len(layers)) * 3,
                     provenance=prov, center=torch.zeros(len(layers), lm.d_model))


PROMPTS = ["the cat sat on the", "she walked to the train and waited for her"]


def encode(lm: LoadedModel, texts: list[str], side: str = "left") -> BatchEncoding:
    """``texts`` tokenized and padded on ``side``."""
    lm.tokenizer.padding_side = side
    return lm.tokenizer(texts, return_tensors="pt", padding=True)


def greedy(lm: LoadedModel, enc: BatchEncoding, n: int = 6) -> torch.Tensor:
    """``n`` greedy tokens after each prompt, straight from Hugging Face ``generate``."""
    with torch.no_grad():
        return lm.model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)


def logits(lm: LoadedModel, enc: BatchEncoding) -> torch.Tensor:
    """The model's logits for ``enc``, without hooks or gradients."""
    with torch.no_grad():
        return lm.model(**enc).logits


def model_source(name: str = "tiny") -> ModelSource:
    """A model's provenance record for tests that need no model."""
    return ModelSource(name=name, kind="builtin", location=name, family="llama", fingerprint="f", n_layers=3,
                       d_model=32)


def sweep_manifest(name: str = "tiny", suites: dict[str, int] | None = None) -> SweepManifest:
    """A sweep manifest naming ``name`` and suites of the given sizes (no model, vectors or sweep needed)."""
    from emovec.evaluation.sweep_config import SweepConfig
    from emovec.evaluation.sweep_manifest import SuiteRecord, SweepManifest, VectorsRecord

    prov = Provenance(model=model_source(name), method="test", token_selection=TokenSelection.from_index(1))
    return SweepManifest(emovec_version="0", model=model_source(name),
                         vectors=VectorsRecord(path="v", provenance=prov, hash="h"),
                         suites={k: SuiteRecord(suite=k, source="s", licence="MIT", n=n)
                                 for k, n in (suites or {}).items()},
                         judge=None, emotion_judge=None, config=SweepConfig(vectors="v", out="o", conditions=["none"]))


def blackmail_manifest(name: str = "tiny") -> BlackmailManifest:
    from emovec.evaluation.blackmail import BlackmailManifest

    return BlackmailManifest(emovec_version="0", model=model_source(name), settings={}, judge=None, variants=[],
                             conditions=[])


@contextmanager
def attention_sink(lm: LoadedModel, layer: int) -> Iterator[None]:
    """Blow up the first two positions of ``layer``'s output a thousandfold (text-dependent), as the attention
    sink of a real model does (its first position has ~100x the norm of the rest)."""
    def hook(_module, _inputs, output):  # type: ignore[no-untyped-def]
        hidden = (output[0] if isinstance(output, tuple) else output).clone()
        hidden[:, :2] *= 1000
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = lm.blocks[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
