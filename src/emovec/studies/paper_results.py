"""What the paper study returns (``PaperResult`` and its parts, read back with ``model_validate_json``), its presets,
and ``findings``: the plain-language reading of a result against its baselines and the paper's own figures."""

from __future__ import annotations

from pydantic import BaseModel, Field

from emovec.errors import EmovecError


class PaperError(EmovecError, ValueError):
    """A paper-experiments run that cannot go as asked."""


class PaperPreset(BaseModel):
    name: str
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


class TemplateResult(BaseModel):
    id: str
    emotion: str
    opposite: str
    rho: float
    rho_min: float
    rho_max: float
    opposite_rho: float
    random_p95: float
    rho_low: float | None = None  # Student-t 95% interval of the mean rho over the paraphrases
    rho_high: float | None = None

    @property
    def rises(self) -> bool:
        """The matching emotion rises with the level beyond a random direction, its interval above 0."""
        return self.rho > self.random_p95 and (self.rho_low is None or self.rho_low > 0)


class EmotionPreference(BaseModel):
    emotion: str
    r: float
    shift: float | None = None
    r_low: float | None = None  # Fisher-z 95% interval of r over the activities
    r_high: float | None = None
    shift_low: float | None = None  # bootstrap 95% interval of the shift over activities
    shift_high: float | None = None


class PaperResult(BaseModel):
    schema_version: int = 1
    model: str
    layer: int
    intensity: list[TemplateResult]
    top_text: dict[str, dict[str, list[str]]]
    text_sources: dict[str, int] = Field(default_factory=dict)  # texts read per source (see TEXT_SOURCES)
    activities: list[str]
    activity_scores: list[float]
    activity_low: list[float]
    activity_high: list[float]
    preference_r: list[EmotionPreference]
    shuffled_r_p95: float
    steering_r: float | None = None
    steering_r_low: float | None = None
    steering_r_high: float | None = None
    random_shifts: list[float] = Field(default_factory=list)  # the same steer along random directions
    activity_shifts: dict[str, list[float]] = Field(default_factory=dict)  # per steered emotion, per activity
    findings: list[str] = Field(default_factory=list)  # what the figures show, and where not (see ``findings``)
    seconds: float | None = None
    notes: list[str] = Field(default_factory=list)


TEXT_SOURCES = {"vader": "VADER study snippets (vadersentiment 3.3.2 source archive, hutto_ICWSM_2014, MIT)",
                "chitchat": "BYU Chit-Chat Challenge messages (chitchat-dataset 0.9.0, MIT)"}


PAPER_FIGURES = {"blissful": 0.71, "hostile": -0.74, "steering": 0.85}  # what the paper reports on its model


def findings(result: PaperResult) -> list[str]:
    """One line per experiment: what this model shows against its baseline, and plainly where it does not show
    what the paper's model showed (read from the figures and their intervals, nothing else)."""
    out = []
    n_t = len(result.intensity)
    rises = [t.id for t in result.intensity if t.rises]
    opposite = [t.id for t in result.intensity if t.opposite_rho < t.rho]
    out.append(f"intensity: in {len(rises)} of {n_t} templates the matching emotion rises with the level beyond the "
               f"random-direction p95 with its interval above 0 ({', '.join(rises) or 'none'}); the opposite emotion "
               f"rises less than the matching one in {len(opposite)} of {n_t}"
               + ("" if len(rises) * 2 > n_t else " - most templates do not show the paper's graded response"))
    beyond = [e for e in result.preference_r if abs(e.r) > result.shuffled_r_p95]
    pair = []
    for name in ("blissful", "hostile"):
        e = next((x for x in result.preference_r if x.emotion == name), None)
        if e is not None:
            ci = "" if e.r_low is None else f" [{e.r_low:+.2f}, {e.r_high:+.2f}]"
            pair.append(f"{name} r {e.r:+.2f}{ci} (paper {PAPER_FIGURES[name]:+.2f})")
    out.append(f"preferences: {len(beyond)} of {len(result.preference_r)} emotions correlate with the activity "
               f"scores beyond the shuffled-activity p95 |r| {result.shuffled_r_p95:.2f} (about "
               f"{round(0.05 * len(result.preference_r))} would by chance)"
               + (f"; {'; '.join(pair)}" if pair else ""))
    steered = [e for e in result.preference_r if e.shift is not None]
    if steered:
        lo_r, hi_r = (min(result.random_shifts), max(result.random_shifts)) if result.random_shifts else (0.0, 0.0)
        outside = [e.emotion for e in steered if e.shift is not None and not lo_r <= e.shift <= hi_r]
        if result.steering_r is None:
            track = "the correlation with r could not be estimated"
        else:
            shown = result.steering_r_low is not None and result.steering_r_low > 0
            track = (f"r(preference r, shift) {result.steering_r:+.2f} [{result.steering_r_low:+.2f}, "
                     f"{result.steering_r_high:+.2f}] (paper {PAPER_FIGURES['steering']:+.2f}): "
                     + ("the shift tracks the readout correlation" if shown else
                        "not shown to track the readout correlation (interval reaches 0)"))
        out.append(f"steering: {len(outside)} of {len(steered)} steered emotions move the choice outside the range of "
                   f"{len(result.random_shifts)} random directions of the same norm; {track}")
    return out
