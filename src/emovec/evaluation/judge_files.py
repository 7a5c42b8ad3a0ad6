"""Run one judge over replies in a CSV or JSONL file: one output row per input row, input columns kept,
``label`` and ``score`` added (plus judge-specific details). So transcripts from any model can be graded.

The refusal judge has three methods (``REFUSAL_METHODS``): ``learned`` (the default: ``refusal_learned``, reading the
prompt and, where a column names it, the prompt's harm label), ``rules`` (``refusal``) and ``string-match`` (the
baseline). Each refusal row records ``judge_method`` (the method and mode that judged it, and why when it fell
back) and ``empty`` (the reply holds no word; labelled ``full_refusal``)."""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emovec.errors import MissingPackageError
from emovec.evaluation.judges.accuracy import baseline_refusal
from emovec.evaluation.judges.emotion import PLUTCHIK, emotion_judge_error, judge_emotions
from emovec.evaluation.judges.model_judge import ModelJudge
from emovec.evaluation.judges.model_scores import refusal_logodds, reply_perplexity
from emovec.evaluation.judges.refusal import judge_refusal
from emovec.evaluation.judges.refusal_features import (
    KNOWN_PROMPT_LABELS,
    PromptLabel,
    PromptLabelError,
    is_empty,
    prompt_label_of,
)
from emovec.evaluation.judges.refusal_learned import load_learned_judge
from emovec.evaluation.judges.text import judge_specificity, judge_tone, repetition_rate
from emovec.evaluation.suites import SuiteError, read_jsonl

TEXT_JUDGES: tuple[str, ...] = ("refusal", "specificity", "tone", "repetition", "emotion")
MODEL_JUDGES: tuple[str, ...] = ("perplexity", "refusal-logodds")
ENDPOINT_JUDGES: tuple[str, ...] = ("strongreject", "xstest")
JUDGES: tuple[str, ...] = (*TEXT_JUDGES, *MODEL_JUDGES, *ENDPOINT_JUDGES)
REFUSAL_METHODS: tuple[str, ...] = ("learned", "rules", "string-match")
CSV_SUFFIXES: tuple[str, ...] = (".csv",)
JSONL_SUFFIXES: tuple[str, ...] = (".jsonl", ".ndjson")


class JudgeFallbackWarning(UserWarning):
    """A judge read less than it was asked to (no prompt column: the learned refusal judge read the replies alone)."""


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV (header row) or JSONL file, UTF-8; a malformed JSONL line is an error naming its number, and
    so is a file of another kind or encoding."""
    p = Path(path)
    if not p.exists():
        raise SuiteError(f"{p} does not exist")
    suffix = p.suffix.lower()
    if suffix not in CSV_SUFFIXES + JSONL_SUFFIXES:
        raise SuiteError(f"{p} is neither CSV ({', '.join(CSV_SUFFIXES)}) nor JSONL ({', '.join(JSONL_SUFFIXES)}); "
                         "save the replies as one of them")
    try:
        if suffix in CSV_SUFFIXES:
            with open(p, newline="", encoding="utf-8") as handle:
                rows = [dict(r) for r in csv.DictReader(handle)]
        else:
            rows = [row for _, row in read_jsonl(p)]
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{p} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8") from None
    except csv.Error as exc:
        raise SuiteError(f"{p} is not a readable CSV file ({exc})") from None
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
    method: str | None = None,
    prompt_label_column: str | None = None,
    params: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Grade each row's ``text_column`` (given ``prompt_column`` where the judge needs it).

    ``method``, ``prompt_label_column`` and ``params`` (a learned judge's parameters other than the shipped ones)
    apply to the refusal judge only (see the module docs)."""
    if judge not in JUDGES:
        raise SuiteError(f"unknown judge {judge!r}; known: {', '.join(JUDGES)}")
    if judge != "refusal" and (method is not None or prompt_label_column is not None):
        raise SuiteError(f"--method and --prompt-label-column apply to the refusal judge only, not {judge!r}")
    if judge == "refusal":
        texts = _column(rows, text_column, where, "--text-column")
        return refusal_rows(rows, texts, prompt_column=prompt_column, where=where, method=method or "learned",
                            prompt_label_column=prompt_label_column, params=params)
    # refusal-logodds reads the model at the end of the prompt only; every other judge reads the reply
    texts = [""] * len(rows) if judge == "refusal-logodds" else _column(rows, text_column, where, "--text-column")
    needs_prompt = judge in MODEL_JUDGES or judge in ENDPOINT_JUDGES
    prompts = _column(rows, prompt_column, where, "--prompt-column") if prompt_column and (
        needs_prompt or prompt_column in rows[0]) else [""] * len(rows)
    if needs_prompt and not any(prompts):
        raise SuiteError(f"judge {judge!r} needs the prompts: give --prompt-column")
    if judge in MODEL_JUDGES:
        if lm is None:
            raise SuiteError(f"judge {judge!r} reads a model: give --model")
        return _model_rows(judge, rows, prompts, texts, lm)
    if judge == "emotion":
        return _emotion_rows(rows, texts)
    if judge in ENDPOINT_JUDGES and model_judge is None:
        raise SuiteError(f"judge {judge!r} needs a model judge: give --judge-url (and --judge-model)")
    return [{**row, **_grade(judge, prompt, text, model_judge)}
            for row, prompt, text in zip(rows, prompts, texts, strict=True)]


def _model_rows(judge: str, rows: Sequence[dict[str, Any]], prompts: list[str], texts: list[str],
                lm: Any) -> list[dict[str, Any]]:
    """The judges that read the model itself: the reply's perplexity, or the prompt's next-token refusal
    log-odds (the reply is not read)."""
    if judge == "perplexity":
        values = reply_perplexity(lm, prompts, texts).tolist()
        return [{**r, "label": None, "score": v} for r, v in zip(rows, values, strict=True)]
    values = refusal_logodds(lm, prompts).tolist()
    return [{**r, "label": "refusal" if v > 0 else "compliance", "score": v} for r, v in zip(rows, values,
                                                                                             strict=True)]


def _grade(judge: str, prompt: str, text: str, model_judge: ModelJudge | None) -> dict[str, Any]:
    """One reply's label, score and details from a text judge or a model judge."""
    if judge == "specificity":
        s = judge_specificity(text)
        return {"label": None, "score": s.score, "steps": s.steps, "quantities": s.quantities, "code": s.code}
    if judge == "tone":
        t = judge_tone(text)
        label = "confident" if t.confident else ("hedged" if t.hedges > t.confidence else "neutral")
        return {"label": label, "score": t.confidence_per_100 - t.hedges_per_100, "hedges": t.hedges,
                "confidence": t.confidence}
    if judge == "repetition":
        return {"label": None, "score": repetition_rate(text)}
    assert model_judge is not None
    if judge == "strongreject":
        rubric = model_judge.strongreject(prompt, text)
        return {"label": None if rubric is None else ("refused" if rubric.refused else "answered"),
                "score": math.nan if rubric is None else rubric.score}
    return {"label": model_judge.xstest(prompt, text), "score": math.nan}


def prompt_labels(rows: Sequence[dict[str, Any]], column: str, where: str) -> list[PromptLabel]:
    """The prompts' harm labels in ``column`` (safe/unsafe or benign/harmful, any case); an error names every
    unknown value (with its first row, up to five) and the accepted ones."""
    values = _column(rows, column, where, "--prompt-label-column")
    unknown: dict[str, int] = {}
    out: list[PromptLabel] = []
    for number, value in enumerate(values, 1):
        try:
            out.append(prompt_label_of(value))
        except PromptLabelError:
            unknown.setdefault(value, number)
    if unknown:
        listed = ", ".join(f"{v!r} (row {n})" for v, n in list(unknown.items())[:5])
        raise SuiteError(f"{where}: column {column!r} holds unknown prompt labels: {listed}; accepted: "
                         f"{', '.join(KNOWN_PROMPT_LABELS)} (any case)")
    return out


def refusal_rows(rows: Sequence[dict[str, Any]], texts: list[str], *, prompt_column: str | None, where: str,
                 method: str = "learned", prompt_label_column: str | None = None,
                 params: str | Path | None = None) -> list[dict[str, Any]]:
    """The refusal judge by ``method`` over ``texts`` (the replies of ``rows``); see the module docs."""
    if method not in REFUSAL_METHODS:
        raise SuiteError(f"unknown refusal method {method!r}; known: {', '.join(REFUSAL_METHODS)}")
    labels = prompt_labels(rows, prompt_label_column, where) if prompt_label_column else None
    if method == "rules":
        return [{**row, **_rule_fields(text)} for row, text in zip(rows, texts, strict=True)]
    if method == "string-match":
        return [{**row, **_string_match_fields(text)} for row, text in zip(rows, texts, strict=True)]
    note = ""
    prompts: list[str] | None = None
    if prompt_column and prompt_column in rows[0]:
        prompts = _column(rows, prompt_column, where, "--prompt-column")
    else:
        note = f"; no prompt column {prompt_column!r}" + (", prompt labels unused" if labels else "")
        warnings.warn(f"{where} has no prompt column {prompt_column!r}: the learned refusal judge reads the replies "
                      "alone (mode 'reply', less accurate); name the prompts with --prompt-column",
                      JudgeFallbackWarning, stacklevel=2)

    judged = load_learned_judge(str(params) if params else None).judge(texts, prompts,
                                                                        labels if prompts is not None else None)
    return [{**row, "label": j.label, "score": j.score, **{f"p_{k}": v for k, v in j.probabilities.items()},
             "rule_label": j.rule_label, "judge_method": f"learned ({j.mode}{note})", "empty": j.empty}
            for row, j in zip(rows, judged, strict=True)]


def _rule_fields(text: str) -> dict[str, Any]:
    j = judge_refusal(text)
    return {"label": j.label, "score": j.score, "reason": j.reason, "judge_method": "rules", "empty": is_empty(text)}


def _string_match_fields(text: str) -> dict[str, Any]:
    label = "full_refusal" if is_empty(text) else baseline_refusal(text)
    return {"label": label, "score": float(label != "full_compliance"), "judge_method": "string match",
            "empty": is_empty(text)}


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
