"""Judges: offline rules over text, scores read from the model, and an optional model judge."""

from emovec.evaluation.judges.agreement import Agreement, agreement
from emovec.evaluation.judges.model_judge import EndpointJudge, LocalJudge, ModelJudge, RubricScore, make_judge
from emovec.evaluation.judges.model_scores import next_token_kl, refusal_logodds, reply_perplexity
from emovec.evaluation.judges.text import (
    LABELS,
    RefusalJudgement,
    Specificity,
    Tone,
    judge_helpful,
    judge_refusal,
    judge_specificity,
    judge_tone,
    repetition_rate,
    tone_masked,
)

__all__ = [
    "LABELS",
    "Agreement",
    "EndpointJudge",
    "LocalJudge",
    "ModelJudge",
    "RefusalJudgement",
    "RubricScore",
    "Specificity",
    "Tone",
    "agreement",
    "judge_helpful",
    "judge_refusal",
    "judge_specificity",
    "judge_tone",
    "make_judge",
    "next_token_kl",
    "refusal_logodds",
    "repetition_rate",
    "reply_perplexity",
    "tone_masked",
]
