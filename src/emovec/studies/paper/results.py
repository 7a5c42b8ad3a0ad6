"""What the paper study returns (``PaperResult`` and its parts, read back with ``model_validate_json``), its presets,
and ``findings``: the plain-language reading of a result against its baselines and the paper's own figures."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from emovec.metrics import Estimate
from emovec.studies._kit import StudyError, StudyPreset, StudyResult, older_estimate


class PaperError(StudyError):
    """A paper-experiments run that cannot go as asked."""


class PaperPreset(StudyPreset):
    """How much human text is read, how many activity pairs are compared and what is steered."""

    snippets: int = 1500  # VADER snippets read for the top text
    chat: int = 1500  # Chit-Chat Challenge messages read beside them
    partners: int = 6
    steer_emotions: int = 12
    steer_partners: int = 2
    strength: float = 0.1
    n_random: int = 50
    n_perm: int = 200
    steer_random: int = 4  # random directions steered like the emotions (the shift a meaningless steer makes)


PRESETS = {"quick": PaperPreset(name="quick"),
           "full": PaperPreset(name="full", snippets=23703, chat=20000, partners=20, steer_emotions=40,
                               steer_partners=6, steer_random=12)}


# A template's interval over fewer paraphrases than this is too wide to say much (Student-t with n - 1 degrees of
# freedom: 4.3 standard errors each side at 3); the findings say so, with this number.
MIN_PARAPHRASES = 5


class TemplateResult(BaseModel):
    id: str
    emotion: str
    opposite: str
    rho: Estimate  # mean Spearman rho over the paraphrases, Fisher-z interval (``metrics.fisher_mean``)
    rho_min: float
    rho_max: float
    opposite_rho: float
    random_p95: float

    @property
    def rises(self) -> bool:
        """The matching emotion rises with the level beyond a random direction, its interval above 0."""
        return self.rho.value > self.random_p95 and (math.isnan(self.rho.low) or self.rho.low > 0)

    @property
    def too_few_paraphrases(self) -> bool:
        """The interval rests on fewer than ``MIN_PARAPHRASES`` paraphrases."""
        return self.rho.n < MIN_PARAPHRASES


class EmotionPreference(BaseModel):
    emotion: str
    r: Estimate  # across activities: readout against preference score, Fisher-z interval
    shift: Estimate | None = None  # steering shift, bootstrap interval over activities


class PaperResult(StudyResult):
    schema_version: int = 2
    model: str
    layer: int
    intensity: list[TemplateResult]
    top_text: dict[str, dict[str, list[str]]]
    text_sources: dict[str, int] = Field(default_factory=dict)  # texts read per source (see TEXT_SOURCES)
    activities: list[str]
    activity_scores: list[Estimate]  # Bradley-Terry scores, percentile bootstrap over the compared pairs
    preference_r: list[EmotionPreference]
    shuffled_r_p95: float
    steering_r: Estimate | None = None  # r(preference r, steering shift) across emotions, bootstrap over emotions
    random_shifts: list[float] = Field(default_factory=list)  # the same steer along random directions
    activity_shifts: dict[str, list[float]] = Field(default_factory=dict)  # per steered emotion, per activity
    findings: list[str] = Field(default_factory=list)  # what the figures show, and where not (see ``findings``)
    seconds: float | None = None
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A schema-1 file (intervals as loose numbers beside their figures) read as schema 2."""
        return upgrade_schema_1(data)


def upgrade_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept each interval as loose numbers beside its figure; schema 2 holds a ``metrics.Estimate``."""
    new = {k: v for k, v in data.items() if k not in ("activity_low", "activity_high", "steering_r_low",
                                                      "steering_r_high")}
    new["schema_version"] = 2
    new["intensity"] = [{**{k: v for k, v in t.items() if k not in ("rho_low", "rho_high")},
                         "rho": older_estimate(t["rho"], t.get("rho_low"), t.get("rho_high"),
                                               "Student-t interval over the paraphrases")} for t in data["intensity"]]
    new["activity_scores"] = [older_estimate(s, lo, hi, "Bradley-Terry score, bootstrap over pairs")
                              for s, lo, hi in zip(data["activity_scores"], data["activity_low"],
                                                   data["activity_high"], strict=True)]
    new["preference_r"] = [{"emotion": e["emotion"],
                            "r": older_estimate(e["r"], e.get("r_low"), e.get("r_high"),
                                                "Pearson r, Fisher z interval"),
                            "shift": older_estimate(e.get("shift"), e.get("shift_low"), e.get("shift_high"),
                                                    "bootstrap over activities")} for e in data["preference_r"]]
    new["steering_r"] = older_estimate(data.get("steering_r"), data.get("steering_r_low"),
                                       data.get("steering_r_high"), "Pearson r, bootstrap over emotions")
    return new


TEXT_SOURCES = {"vader": "VADER study snippets (vadersentiment 3.3.2 source archive, hutto_ICWSM_2014, MIT)",
                "chitchat": "BYU Chit-Chat Challenge messages (chitchat-dataset 0.9.0, MIT)"}


PAPER_FIGURES = {"blissful": 0.71, "hostile": -0.74, "steering": 0.85}  # what the paper reports on its model


def findings(result: PaperResult) -> list[str]:
    """One line per experiment: what this model shows against its baseline, and plainly where it does not show
    what the paper's model showed (read from the figures and their intervals, nothing else)."""
    return [_intensity_line(result), _preference_line(result), *([_steering_line(result)] if any(
        e.shift is not None for e in result.preference_r) else [])]


def _intensity_line(result: PaperResult) -> str:
    n_t = len(result.intensity)
    rises = [t.id for t in result.intensity if t.rises]
    opposite = [t.id for t in result.intensity if t.opposite_rho < t.rho.value]
    few = [t for t in result.intensity if t.too_few_paraphrases]
    line = (f"intensity: in {len(rises)} of {n_t} templates the matching emotion rises with the level beyond the "
            f"random-direction p95 with its interval above 0 ({', '.join(rises) or 'none'}); the opposite emotion "
            f"rises less than the matching one in {len(opposite)} of {n_t}"
            + ("" if len(rises) * 2 > n_t else " - most templates do not show the paper's graded response"))
    if few:
        reach = sum(1 for t in few if not t.rho.low > 0)
        line += (f"; {len(few)} templates have fewer than {MIN_PARAPHRASES} paraphrases (as few as "
                 f"{min(t.rho.n for t in few)}), too few for a tight interval: {reach} of them reach 0")
    return line


def _preference_line(result: PaperResult) -> str:
    beyond = [e for e in result.preference_r if abs(e.r.value) > result.shuffled_r_p95]
    pair = []
    for name in ("blissful", "hostile"):
        e = next((x for x in result.preference_r if x.emotion == name), None)
        if e is not None:
            ci = "" if math.isnan(e.r.low) else f" [{e.r.low:+.2f}, {e.r.high:+.2f}]"
            pair.append(f"{name} r {e.r.value:+.2f}{ci} (paper {PAPER_FIGURES[name]:+.2f})")
    return (f"preferences: {len(beyond)} of {len(result.preference_r)} emotions correlate with the activity "
            f"scores beyond the shuffled-activity p95 |r| {result.shuffled_r_p95:.2f} (about "
            f"{round(0.05 * len(result.preference_r))} would by chance)" + (f"; {'; '.join(pair)}" if pair else ""))


def _steering_line(result: PaperResult) -> str:
    steered = [e.shift.value for e in result.preference_r if e.shift is not None]
    emotions = [e.emotion for e in result.preference_r if e.shift is not None]
    lo_r, hi_r = (min(result.random_shifts), max(result.random_shifts)) if result.random_shifts else (0.0, 0.0)
    outside = [n for n, v in zip(emotions, steered, strict=True) if not lo_r <= v <= hi_r]
    r = result.steering_r
    if r is None:
        track = "the correlation with r could not be estimated"
    else:
        shown = r.low > 0
        track = (f"r(preference r, shift) {r.value:+.2f} [{r.low:+.2f}, {r.high:+.2f}] (paper "
                 f"{PAPER_FIGURES['steering']:+.2f}): " + ("the shift tracks the readout correlation" if shown else
                                                           "not shown to track the readout correlation (interval "
                                                           "reaches 0)"))
    return (f"steering: {len(outside)} of {len(steered)} steered emotions move the choice outside the range of "
            f"{len(result.random_shifts)} random directions of the same norm; {track}")
