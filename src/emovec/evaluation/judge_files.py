"""Run one judge over replies in a CSV or JSONL file: one output row per input row, input columns kept,
``label`` and ``score`` added (plus judge-specific details). So transcripts from any model can be graded."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emovec.errors import MissingPackageError
from emovec.evaluation.judges.emotion import PLUTCHIK, emotion_judge_error, judge_emotions
from emovec.evaluation.judges.model_judge import ModelJudge
from emovec.evaluation.judges.refusal import judge_refusal
from emovec.evaluation.judges.text import judge_specificity, judge_tone, repetition_rate
from emovec.evaluation.suites import SuiteError, read_jsonl

TEXT_JUDGES: tuple[str, ...] = ("refusal", "specificity", "tone", "repetition", "emotion")
MODEL_JUDGES: tuple[str, ...] = ("perplexity", "refusal-logodds")
ENDPOINT_JUDGES: tuple[str, ...] = ("strongreject", "xstest")
JUDGES: tuple[str, ...] = (*TEXT_JUDGES, *MODEL_JUDGES, *ENDPOINT_JUDGES)


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV (header row) or JSONL file; a malformed JSONL line is an error naming its number."""
    p = Path(path)
    if not p.exists():
        raise SuiteError(f"{p} does not exist")
    if p.suffix.lower() == ".csv":
        with open(p, newline="", encoding="utf-8") as handle:
            rows = [dict(r) for r in csv.DictReader(handle)]
    else:
        rows = [row for _, row in read_jsonl(p)]
    if not rows:
        raise SuiteError(f"{p} holds no rows")
    return rows


def _column(rows: Sequence[dict[str, Any]], name: str, path: str, flag: str) -> list[str]:
    if name not in rows[0]:
        columns = ", ".join(map(str, rows[0]))
        raise SuiteError(f"{path} has no column {name!r} (columns: {columns}); name it with {flag}")
    return ["" if r.get(name) is None else str(r.get(name)) for r in rows]


def judge_rows(
    judge: str,
    rows: Sequence[dict[str, Any]],
    *,
    text_column: str = "completion",
    prompt_column: str | None = "prompt",
    where: str = "input",
    lm: Any = None,
    model_judge: ModelJudge | None = None,
) -> list[dict[str, Any]]:
    """Grade each row's ``text_column`` (given ``prompt_column`` where the judge needs it)."""
    if judge not in JUDGES:
        raise SuiteError(f"unknown judge {judge!r}; known: {', '.join(JUDGES)}")
    # refusal-logodds reads the model at the end of the prompt only; every other judge reads the reply
    texts = [""] * len(rows) if judge == "refusal-logodds" else _column(rows, text_column, where, "--text-column")
    needs_prompt = judge in MODEL_JUDGES or judge in ENDPOINT_JUDGES
    prompts = _column(rows, prompt_column, where, "--prompt-column") if prompt_column and (
        needs_prompt or prompt_column in rows[0]) else [""] * len(rows)
    if needs_prompt and not any(prompts):
        raise SuiteError(f"judge {judge!r} needs the prompts: give --prompt-column")
    out = []
    if judge in MODEL_JUDGES:
        if lm is None:
            raise SuiteError(f"judge {judge!r} reads a model: give --model")
        from emovec.evaluation.judges.model_scores import refusal_logodds, reply_perplexity

        if judge == "perplexity":
            values = reply_perplexity(lm, prompts, texts).tolist()
            return [{**r, "label": None, "score": v} for r, v in zip(rows, values, strict=True)]
        values = refusal_logodds(lm, prompts).tolist()  # the prompt alone; the reply is not read
        return [{**r, "label": "refusal" if v > 0 else "compliance", "score": v} for r, v in zip(rows, values,
                                                                                                 strict=True)]
    if judge == "emotion":
        return _emotion_rows(rows, texts)
    if judge in ENDPOINT_JUDGES and model_judge is None:
        raise SuiteError(f"judge {judge!r} needs a model judge: give --judge-url (and --judge-model)")
    for row, prompt, text in zip(rows, prompts, texts, strict=True):
        extra: dict[str, Any]
        if judge == "refusal":
            j = judge_refusal(text)
            extra = {"label": j.label, "score": j.score, "reason": j.reason}
        elif judge == "specificity":
            s = judge_specificity(text)
            extra = {"label": None, "score": s.score, "steps": s.steps, "quantities": s.quantities, "code": s.code}
        elif judge == "tone":
            t = judge_tone(text)
            label = "confident" if t.confident else ("hedged" if t.hedges > t.confidence else "neutral")
            extra = {"label": label, "score": t.confidence_per_100 - t.hedges_per_100, "hedges": t.hedges,
                     "confidence": t.confidence}
        elif judge == "repetition":
            extra = {"label": None, "score": repetition_rate(text)}
        elif judge == "strongreject":
            assert model_judge is not None
            rubric = model_judge.strongreject(prompt, text)
            extra = {"label": None if rubric is None else ("refused" if rubric.refused else "answered"),
                     "score": math.nan if rubric is None else rubric.score}
        else:
            assert model_judge is not None
            extra = {"label": model_judge.xstest(prompt, text), "score": math.nan}
        out.append({**row, **extra})
    return out


def _emotion_rows(rows: Sequence[dict[str, Any]], texts: list[str]) -> list[dict[str, Any]]:
    """``nade``'s eight scores per reply; ``label`` is the highest-scoring emotion and ``score`` its value (both
    empty for an empty reply)."""
    scores = judge_emotions(texts)
    if scores is None:
        raise MissingPackageError(f"{emotion_judge_error()}: pip install 'emovec[judges]' (or pip install nade)")
    out = []
    for row, values in zip(rows, scores.as_rows(), strict=True):
        finite = {k: v for k, v in values.items() if not math.isnan(v)}
        top = max(finite, key=lambda k: finite[k]) if finite else None
        out.append({**row, "label": top, "score": finite[top] if top else math.nan,
                    **{f"emotion_{k}": values[k] for k in PLUTCHIK}})
    return out
