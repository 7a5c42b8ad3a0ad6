"""Shared fixtures: tiny random models built from configs and an in-memory tokenizer (no downloads)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

WORDS = tuple(
    "the a an and of to in on at with was is were she he they it her his their we i you my cat dog house car "
    "train room door window street city sea sky rain sun night day morning letter walked ran sat looked smiled "
    "cried laughed shouted waited opened closed felt thought said knew happy sad angry calm afraid proud nervous "
    "lonely grateful desperate surprised disgusted slowly quietly suddenly again never always very still only "
    "just then there here water tea bread book phone money work friend mother father sister brother child teacher "
    "red blue green old new small big long short warm cold dark bright . , ! ?"
    .split()
)


def make_tokenizer() -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<bos>", "<eos>"]
    vocab = {w: i for i, w in enumerate(specials + list(dict.fromkeys(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def make_model(family: str) -> torch.nn.Module:
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
    torch.manual_seed(0)
    if family == "llama":
        return LlamaForCausalLM(LlamaConfig(**common))
    if family == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common))
    if family == "gemma3":
        return Gemma3ForCausalLM(Gemma3TextConfig(**common, head_dim=8, sliding_window=16))
    raise ValueError(family)


FAMILIES = ("llama", "qwen2", "gemma3")


@pytest.fixture(params=FAMILIES)
def tiny(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    from emovec import wrap_model

    return wrap_model(make_model(request.param), make_tokenizer(), name=f"tiny-{request.param}")


@pytest.fixture
def tiny_llama():  # type: ignore[no-untyped-def]
    from emovec import wrap_model

    return wrap_model(make_model("llama"), make_tokenizer(), name="tiny-llama")


def sentence(rng: torch.Generator, n: int, bias: list[str] | None = None) -> str:
    words = [w for w in WORDS if w.isalpha()]
    out = []
    for _ in range(n):
        if bias and torch.rand(1, generator=rng).item() < 0.4:
            out.append(bias[int(torch.randint(len(bias), (1,), generator=rng))])
        else:
            out.append(words[int(torch.randint(len(words), (1,), generator=rng))])
    return " ".join(out)


@pytest.fixture
def write_corpus(tmp_path: Path) -> Callable[..., Path]:
    """Write a small synthetic crossed corpus: story ``k`` of each emotion is on topic ``k``, biased toward its
    emotion's word and its topic's word, plus neutral texts."""
    from emovec.corpus import CorpusRecord

    topic_words = ("train", "house", "sea", "city", "rain", "book", "tea", "dog")

    def write(emotions: tuple[str, ...] = ("happy", "sad", "angry", "calm"), per: int = 4, n_neutral: int = 6,
              length: int = 24, neutral_length: int | None = None) -> Path:
        rng = torch.Generator().manual_seed(1)
        rows = []
        for k in range(per):
            topic = topic_words[k % len(topic_words)]
            for e in emotions:
                rows.append(CorpusRecord(id=f"story/{e}/{k}", kind="story", emotion=e, topic=topic, index=k,
                                         text=sentence(rng, length, [e, e, e, topic])))
        for k in range(n_neutral):
            rows.append(CorpusRecord(id=f"neutral/0/{k}", kind="neutral", emotion=None, topic="t", index=k,
                                     text=sentence(rng, neutral_length or length)))
        path = tmp_path / "corpus.jsonl"
        path.write_text("".join(r.model_dump_json() + "\n" for r in rows))
        return path

    return write


@pytest.fixture(scope="session")
def real_model() -> Iterator[object]:
    from emovec import load_model

    yield load_model("smollm2-135m-instruct")
