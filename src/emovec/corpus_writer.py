"""Writing a story corpus with a model: the prompt templates, the plan of texts to write (rotating or crossed
topic x emotion designs, neutral texts), and batched, resumable generation on either executor. The corpus
format and its loading are ``emovec.corpus``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emovec._files import atomic_write
from emovec._progress import stage
from emovec.corpus import MAX_NEW_TOKENS, CorpusRecord, GenerationSettings, Kind, meta_path
from emovec.errors import CorpusError
from emovec.executors import ExecutorOptions, make_executor
from emovec.models import LoadedModel
from emovec.models.prompts import encode_left_padded, format_prompt

STORY_TEMPLATE = (
    "Write a short story of about 150 words about {topic}, in which the main character feels {emotion}. "
    "Show the feeling through what the character does, thinks and says. Write only the story."
)
DIALOGUE_TEMPLATE = (
    "Write a short dialogue of about 150 words between two people about {topic}, in which one of them feels "
    "{emotion}. Show the feeling only through what they say. Write only the dialogue."
)
TEMPLATES: dict[str, str] = {"story": STORY_TEMPLATE, "dialogue": DIALOGUE_TEMPLATE}
BASE_MODEL_SEPARATOR = "\n\n"  # a model without a chat template starts its text after the prompt and a blank line
NEUTRAL_TEMPLATE = (
    "Write a factual paragraph of about 150 words explaining {topic}. Use a neutral, encyclopedic tone "
    "with no emotions, opinions or characters. Write only the paragraph."
)


@dataclass(frozen=True)
class Job:
    """One text to generate."""

    id: str
    kind: Kind
    emotion: str | None
    topic: str
    index: int

    def prompt(self, settings: GenerationSettings) -> str:
        if self.kind == "story":
            return settings.story_template.format(topic=self.topic, emotion=self.emotion)
        return settings.neutral_template.format(topic=self.topic)


def plan_stories(
    emotion_names: Sequence[str], topic_list: Sequence[str], topics_per_emotion: int, stories_per_topic: int = 1
) -> list[Job]:
    """Give each emotion ``topics_per_emotion`` topics (rotating so all topics are used evenly) and
    ``stories_per_topic`` stories on each. Pass ``len(topic_list)`` topics per emotion for the paper's full grid.

    Jobs come index-major: story ``k`` of every emotion before story ``k + 1``, so an interrupted run still has
    the same number of stories for every emotion.

    Example:
        >>> jobs = plan_stories(["calm"], ["a walk"], 1, stories_per_topic=2)
        >>> [(j.id, j.topic) for j in jobs]
        [('story/calm/0', 'a walk'), ('story/calm/1', 'a walk')]
    """
    if not emotion_names or not topic_list or topics_per_emotion < 1 or stories_per_topic < 1:
        raise CorpusError("plan_stories needs at least one emotion, one topic and one story per emotion and topic")
    jobs: list[Job] = []
    for k in range(topics_per_emotion * stories_per_topic):
        for e_idx, emotion in enumerate(emotion_names):
            topic = topic_list[(e_idx * topics_per_emotion + k // stories_per_topic) % len(topic_list)]
            jobs.append(Job(f"story/{emotion}/{k}", "story", emotion, topic, k))
    return jobs


def plan_crossed(
    emotion_names: Sequence[str], topic_list: Sequence[str], n_topics: int, stories_per_cell: int = 1
) -> list[Job]:
    """The paper's crossed design: each of the first ``n_topics`` topics written for every emotion,
    ``stories_per_cell`` times. Every emotion meets every topic, so topic effects can be removed exactly.

    Jobs come topic-major (all emotions of topic 0, then topic 1, ...), so an interrupted run holds whole
    topics. Story ids are ``story/{emotion}/t{topic:03d}/{k}``; ``index`` is ``topic * stories_per_cell + k``.

    Example:
        >>> jobs = plan_crossed(["calm", "angry"], ["a walk", "a storm"], 2)
        >>> [(j.emotion, j.topic) for j in jobs]
        [('calm', 'a walk'), ('angry', 'a walk'), ('calm', 'a storm'), ('angry', 'a storm')]
    """
    if not emotion_names or stories_per_cell < 1 or n_topics < 1:
        raise CorpusError("plan_crossed needs at least one emotion, one topic and one story per cell")
    if n_topics > len(topic_list):
        raise CorpusError(f"--topics {n_topics}: only {len(topic_list)} topics are available")
    return [
        Job(f"story/{emotion}/t{t:03d}/{k}", "story", emotion, topic_list[t], t * stories_per_cell + k)
        for t in range(n_topics) for k in range(stories_per_cell) for emotion in emotion_names
    ]


def plan_neutral(subjects: Sequence[str], per_subject: int) -> list[Job]:
    """Neutral-text jobs: ``per_subject`` texts for each subject."""
    return [Job(f"neutral/{i}/{k}", "neutral", None, s, k) for i, s in enumerate(subjects) for k in range(per_subject)]


def _prompt_text(lm: LoadedModel, text: str) -> str:
    """The writing prompt as the model sees it; a model without a chat template continues it after a blank line."""
    return format_prompt(lm, text) + ("" if lm.has_chat_template else BASE_MODEL_SEPARATOR)


def _generate_batch(lm: LoadedModel, prompts: list[str], settings: GenerationSettings, seed: int) -> list[str]:
    tok = lm.tokenizer
    enc = encode_left_padded(lm, [_prompt_text(lm, p) for p in prompts], add_special_tokens=not lm.has_chat_template)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = lm.model.generate(
            **enc, max_new_tokens=settings.max_new_tokens, do_sample=settings.temperature > 0,
            temperature=settings.temperature if settings.temperature > 0 else None,
            top_p=settings.top_p if settings.temperature > 0 else None, pad_token_id=tok.pad_token_id,
        )
    new = out[:, enc["input_ids"].shape[1]:]
    return [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]


def corpus_batch(lm: LoadedModel, settings: GenerationSettings, item: tuple[list[str], int],
                 state: dict[str, Any]) -> list[str]:
    """One batch of texts (the unit of work an executor runs)."""
    prompts, batch_seed = item
    return _generate_batch(lm, prompts, settings, batch_seed)


def _read_done(path: Path) -> set[str]:
    """Ids already written; a torn last line (interrupted write) is cut off so appends stay valid JSONL."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    keep = raw if raw.endswith(b"\n") or not raw else raw[: raw.rfind(b"\n") + 1]
    if keep != raw:
        with open(path, "r+b") as handle:
            handle.truncate(len(keep))
    return {json.loads(line)["id"] for line in keep.decode("utf-8").splitlines() if line.strip()}


def _check_or_write_meta(path: Path, settings: GenerationSettings) -> None:
    meta = meta_path(path)
    if meta.exists():
        old = GenerationSettings.model_validate_json(meta.read_text())
        differing = [k for k, v in settings.model_dump().items() if k not in ("batch_size", "emovec_version")
                     and old.model_dump().get(k) != v]
        if differing:
            raise CorpusError(
                f"{path} was started with other settings ({', '.join(differing)} differ); "
                "resume with the same settings or write to a new --out file"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(meta, settings.model_dump_json(indent=1))


def generate_corpus(
    lm: LoadedModel,
    out: str | Path,
    jobs: Sequence[Job],
    *,
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
    batch_size: int = 32,
    show_progress: bool = False,
    genre: str = "story",
    design: str = "rotating",
    executor: ExecutorOptions | None = None,
) -> Path:
    """Generate the texts of ``jobs`` with ``lm`` and append them to the JSONL file ``out``.

    Resumable: ids already in ``out`` are skipped, a torn last line is repaired, and a run with different
    settings is refused. Each batch is appended and flushed as soon as it is generated.

    Args:
        lm: the generating model (an instruction model writes better stories).
        out: the JSONL file; settings go to ``<out>.meta.json``.
        jobs: from ``plan_stories`` and ``plan_neutral``.
        max_new_tokens: sampling setting.
        temperature: sampling setting.
        top_p: sampling setting.
        seed: batch ``i`` samples with seed ``seed + i``.
        batch_size: prompts per ``generate`` call.
        show_progress: report the ``stories`` stage (a bar in a terminal, else one line when done).
        genre: ``story`` (the paper's recipe) or ``dialogue`` (the same emotions and topics as conversations,
            for checking that vectors do not depend on the genre).
        design: ``crossed`` (every topic for every emotion, ``plan_crossed``) or ``rotating`` (``plan_stories``);
            recorded in the meta file so extraction can check it.
        executor: where batches are generated (local by default, or a Ray pool); this process appends them.

    Returns:
        The path written.

    Example:
        >>> generate_corpus(lm, "stories.jsonl", plan_stories(emotions(), topics(), 10))
    """
    path = Path(out)
    if genre not in TEMPLATES:
        raise CorpusError(f"genre {genre!r} is not one of {', '.join(TEMPLATES)}")
    settings = GenerationSettings(
        model=lm.name, model_file_sha256=lm.source.file_sha256, model_fingerprint=lm.source.fingerprint,
        story_template=TEMPLATES[genre], neutral_template=NEUTRAL_TEMPLATE, max_new_tokens=max_new_tokens,
        temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size, design=design,
    )
    _check_or_write_meta(path, settings)
    done = _read_done(path)
    todo = [j for j in jobs if j.id not in done]
    batches = [todo[start: start + batch_size] for start in range(0, len(todo), batch_size)]
    items = [([j.prompt(settings) for j in b], seed + i) for i, b in enumerate(batches)]
    runner = make_executor(executor, lm)
    what = f"{genre}, {len(done)} already written, {runner.name}"
    with (stage("stories", len(todo), unit="texts", detail=what, show=show_progress) as advance,
          open(path, "a", encoding="utf-8") as handle):

        def keep(index: int, texts: list[str]) -> None:
            for job, text in zip(batches[index], texts, strict=True):
                rec = CorpusRecord(id=job.id, kind=job.kind, emotion=job.emotion, topic=job.topic,
                                   index=job.index, text=text)
                handle.write(rec.model_dump_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            advance(len(texts))

        runner.map(corpus_batch, settings, items, keep)
    return path
