"""Judges: offline rules over text, scores read from the model, an optional independent emotion judge
(``nade``) and an optional model judge."""

from emovec.evaluation.judges.accuracy import JudgeAccuracy, baseline_refusal, load_labelled, measure
from emovec.evaluation.judges.agreement import Agreement, agreement
from emovec.evaluation.judges.emotion import PLUTCHIK, EmotionScores, judge_emotions, plutchik_of
from emovec.evaluation.judges.model_judge import EndpointJudge, LocalJudge, ModelJudge, RubricScore, make_judge
from emovec.evaluation.judges.model_scores import next_token_kl, refusal_logodds, reply_perplexity
from emovec.evaluation.judges.refusal import LABELS, RefusalJudgement, judge_refusal
from emovec.evaluation.judges.text import (
    Specificity,
    Tone,
    judge_helpful,
    judge_specificity,
    judge_tone,
    repetition_rate,
    tone_masked,
)

__all__ = [
    "LABELS",
    "PLUTCHIK",
    "Agreement",
    "EmotionScores",
    "EndpointJudge",
    "JudgeAccuracy",
    "LocalJudge",
    "ModelJudge",
    "RefusalJudgement",
    "RubricScore",
    "Specificity",
    "Tone",
    "agreement",
    "baseline_refusal",
    "judge_emotions",
    "judge_helpful",
    "judge_refusal",
    "judge_specificity",
    "judge_tone",
    "load_labelled",
    "make_judge",
    "measure",
    "next_token_kl",
    "plutchik_of",
    "refusal_logodds",
    "repetition_rate",
    "reply_perplexity",
    "tone_masked",
]
