"""Safety evaluation: prompt suites, judges, steering sweeps with baselines, the agentic blackmail scenario.

Example:
    >>> from emovec.evaluation import load_config, run_sweep, load_suite, judge_refusal
    >>> cfg = load_config("sweep.yaml")
    >>> result = run_sweep(cfg, lm, vectors)
"""

from emovec.evaluation.blackmail import (
    BlackmailCondition,
    BlackmailSummary,
    Variant,
    classify,
    conditions_for,
    run_blackmail,
    summarize_blackmail,
)
from emovec.evaluation.controls import CONTROL_CONCEPTS, add_directions, control_directions
from emovec.evaluation.judge_files import JUDGES, judge_rows, read_table
from emovec.evaluation.judges import (
    Agreement,
    EndpointJudge,
    LocalJudge,
    ModelJudge,
    agreement,
    judge_helpful,
    judge_refusal,
    judge_specificity,
    judge_tone,
    make_judge,
    next_token_kl,
    refusal_logodds,
    repetition_rate,
    reply_perplexity,
    tone_masked,
)
from emovec.evaluation.store import read_results
from emovec.evaluation.suites import PromptItem, Suite, load_suite, load_suite_file, suite_names
from emovec.evaluation.summary import ConditionSummary, summarize
from emovec.evaluation.sweep import SweepResult, run_sweep
from emovec.evaluation.sweep_config import SweepConfig, SweepConfigError, load_config

__all__ = [
    "CONTROL_CONCEPTS",
    "JUDGES",
    "Agreement",
    "BlackmailCondition",
    "ConditionSummary",
    "EndpointJudge",
    "LocalJudge",
    "ModelJudge",
    "PromptItem",
    "Suite",
    "SweepConfig",
    "SweepConfigError",
    "SweepResult",
    "Variant",
    "add_directions",
    "agreement",
    "classify",
    "conditions_for",
    "control_directions",
    "judge_helpful",
    "judge_refusal",
    "judge_rows",
    "judge_specificity",
    "judge_tone",
    "load_config",
    "load_suite",
    "load_suite_file",
    "make_judge",
    "next_token_kl",
    "read_results",
    "read_table",
    "refusal_logodds",
    "repetition_rate",
    "reply_perplexity",
    "run_blackmail",
    "run_sweep",
    "summarize",
    "summarize_blackmail",
    "BlackmailSummary",
    "suite_names",
    "tone_masked",
]
