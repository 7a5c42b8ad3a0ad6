"""The paper's own validation experiments (Sofroniew et al. 2026), on any model with its vector set.

1. **Intensity templates** (``data/paper/intensity.json``, written for emovec): sentences where one quantity
   makes a situation more or less frightening, sad, happy or angry, 8 levels, 3 paraphrases. Per template, the
   Spearman rho of the matching emotion's readout against the level (mean over paraphrases, with a Student-t
   95% interval on Fisher's z scale, so it stays inside [-1, 1], and their range), the opposite emotion's rho
   beside it, and the 95th percentile of the same statistic for random directions. Three paraphrases are too
   few for a tight interval (``paper_results.MIN_PARAPHRASES``); ``findings`` says so.
2. **Top-activating human text**: the VADER study's human-written snippets each emotion reads highest and
   lowest.
3. **Activity preferences** (``data/paper/activities.txt``, 64 activities written for emovec): Bradley-Terry
   scores from pairwise choices (``emovec.studies.paper.preferences``), then, per emotion, the correlation across
   activities between its readout on the activity text and the activity's score, against a shuffled-activity
   baseline (95th percentile of |r| under permutation).
4. **Steering moves preferences**: steering with an emotion on one option's tokens only changes the log-odds of
   choosing it. Per steered emotion and per activity, the mean change over the prompts where that activity is the
   steered option (how each activity's preference moves); the emotion's shift is their mean over activities,
   with a bootstrap interval over activities, against random directions of the same norm steered the same way;
   across emotions, the shift is correlated with the emotion's r from 3 (bootstrap over emotions).
``findings`` states, from these figures, what the model shows and where it does not show what the paper's
model showed.
Readouts everywhere: mean residual activation from token 2 on, projected on the unit emotion vector from the
set's centre, in units of the layer's mean norm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from emovec._progress import stage
from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection, capture
from emovec.data import data_path
from emovec.executors import ExecutorOptions, make_executor
from emovec.metrics import Estimate, bootstrap, fisher_mean, index_bootstrap, pearson_estimate, readout
from emovec.models.loading import LoadedModel, load_model
from emovec.studies._kit import Study, StudyRun, write_result
from emovec.studies.paper import preferences as prefs
from emovec.studies.paper.report import write_paper_report
from emovec.studies.paper.results import (
    PRESETS,
    TEXT_SOURCES,
    EmotionPreference,
    PaperError,
    PaperPreset,
    PaperResult,
    TemplateResult,
    findings,
)
from emovec.validation import external
from emovec.validation.external import ExternalDataMissing, Snippet
from emovec.vectors.vector_set import VectorSet

__all__ = ["PRESETS", "TEXT_SOURCES", "EmotionPreference", "PaperError", "PaperPreset", "PaperResult",
           "SteeringShifts", "TemplateResult", "activities", "findings", "human_text", "intensity",
           "preference_correlations", "readouts", "run_paper_study", "steered_preferences", "steering_shifts",
           "top_text"]

def readouts(lm: LoadedModel, vectors: VectorSet, texts: Sequence[str], layer: int,
             directions: torch.Tensor | None = None) -> np.ndarray:
    """``[n_texts, n_directions]`` readouts (default directions: every vector of the set)."""
    j = vectors.layer_index(layer)
    dirs = vectors.at_layer(layer).float() if directions is None else directions.float()
    units = torch.nn.functional.normalize(dirs, dim=-1)
    centre = vectors.center[j].float() if vectors.center is not None else torch.zeros(vectors.d_model)
    res = capture(lm, list(texts), [layer], selection=TokenSelection.from_index(FIRST_CONTENT_TOKEN), max_length=128)
    return readout(res.means[:, 0].float(), units, centre, float(vectors.mean_norm[j])).numpy()


def intensity(lm: LoadedModel, vectors: VectorSet, layer: int, n_random: int, seed: int = 0) -> list[TemplateResult]:
    templates = json.loads(data_path("paper/intensity.json").read_text("utf-8"))
    rng = torch.Generator().manual_seed(seed)
    randoms = torch.randn(n_random, vectors.d_model, generator=rng)
    out = []
    for t in templates:
        texts = [p.format(x=level) for p in t["paraphrases"] for level in t["levels"]]
        names = [t["emotion"], t["opposite"]]
        dirs = torch.cat([torch.stack([vectors.vector(n, layer) for n in names]), randoms])
        read = readouts(lm, vectors, texts, layer, dirs).reshape(len(t["paraphrases"]), len(t["levels"]), -1)
        levels = np.arange(len(t["levels"]))
        rho = np.array([[spearmanr(levels, read[p, :, d]).statistic for d in range(read.shape[2])]
                        for p in range(read.shape[0])])  # [paraphrases, directions]
        mean = np.nan_to_num(rho.mean(0))
        out.append(TemplateResult(id=t["id"], emotion=names[0], opposite=names[1],
                                  rho=fisher_mean(np.nan_to_num(rho[:, 0])),
                                  rho_min=float(rho[:, 0].min()), rho_max=float(rho[:, 0].max()),
                                  opposite_rho=float(mean[1]), random_p95=float(np.quantile(mean[2:], 0.95))))
    return out


def human_text(n_vader: int, n_chat: int, seed: int = 0) -> tuple[list[Snippet], dict[str, int], list[str]]:
    """A seeded sample of human-written text from each installed source, the counts drawn per source, and a note
    for each source that is not installed (the rest runs)."""
    rng = np.random.default_rng(seed)
    pool: list[Snippet] = []
    counts: dict[str, int] = {}
    notes: list[str] = []
    sources = (("vader", n_vader, external.vader_snippets), ("chitchat", n_chat, external.chitchat_messages))
    for name, n, read in sources:
        if n <= 0:
            continue
        try:
            rows = list(read())
        except ExternalDataMissing as exc:
            notes.append(f"top text: {name} skipped: {exc}")
            continue
        picked = [rows[i] for i in sorted(rng.choice(len(rows), min(n, len(rows)), replace=False))]
        pool += picked
        counts[name] = len(picked)
    return pool, counts, notes


def top_text(lm: LoadedModel, vectors: VectorSet, layer: int, snippets: Sequence[Snippet], k: int = 3
             ) -> dict[str, dict[str, list[str]]]:
    """Per emotion, the ``k`` texts its vector reads highest and lowest (``top``, ``bottom``) and where each
    came from (``top_source``, ``bottom_source``: the VADER subset, or ``chitchat``)."""
    chosen = [s for s in snippets if len(lm.tokenizer(s.text)["input_ids"]) > 4]  # readouts skip 2 tokens
    if not chosen:
        return {}
    read = readouts(lm, vectors, [s.text for s in chosen], layer)
    order = np.argsort(read, axis=0)
    out = {}
    for e, name in enumerate(vectors.names):
        top, bottom = order[::-1][:k, e], order[:k, e]
        out[name] = {"top": [chosen[i].text for i in top], "bottom": [chosen[i].text for i in bottom],
                     "top_source": [chosen[i].subset for i in top],
                     "bottom_source": [chosen[i].subset for i in bottom]}
    return out


def activities() -> list[str]:
    rows = data_path("paper/activities.txt").read_text("utf-8").splitlines()
    return [r.split("\t", 1)[1].strip() for r in rows if "\t" in r]


def preference_correlations(read: np.ndarray, scores: np.ndarray, names: Sequence[str], n_perm: int, seed: int = 0
                            ) -> tuple[list[EmotionPreference], float]:
    """Per emotion, r across activities between readout and score; the 95th percentile of |r| pooled over
    emotions and activity shuffles (the baseline one emotion's |r| must beat)."""
    rs = [EmotionPreference(emotion=n, r=pearson_estimate(read[:, e], scores)) for e, n in enumerate(names)]
    rng = np.random.default_rng(seed)
    null = [abs(pearsonr(read[:, e], rng.permutation(scores)).statistic)
            for _ in range(max(1, n_perm // len(names) + 1)) for e in range(len(names))]
    return rs, float(np.quantile(null, 0.95))


@dataclass(frozen=True)
class _Steer:
    """What every steered preference read needs (sent once to each worker)."""

    acts: list[str]
    choices: list[prefs.Choice]
    layer: int
    scale: float


def steered_preferences(lm: LoadedModel, shared: _Steer, direction: torch.Tensor | None,
                        state: dict[str, Any]) -> np.ndarray:
    """``P(first option)`` per prompt, steered on the first option's tokens (plain with ``direction=None``): the
    unit of work an executor runs."""
    if direction is None:
        return prefs.prefer_first(lm, shared.acts, shared.choices)
    return prefs.prefer_first(lm, shared.acts, shared.choices, layer=shared.layer, direction=direction,
                              scale=shared.scale)


@dataclass(frozen=True)
class SteeringShifts:
    """Per direction, the change in the log-odds of choosing each activity when it is the steered option (mean over
    the prompts where it is; ``[n_activities]``)."""

    emotions: dict[str, np.ndarray]
    random: list[np.ndarray]

    def shift(self, name: str) -> Estimate:
        """An emotion's shift: the mean over activities, with a bootstrap interval over activities."""
        return bootstrap(self.emotions[name])

    def random_means(self) -> list[float]:
        return [float(np.nanmean(r)) for r in self.random]


def steering_shifts(lm: LoadedModel, vectors: VectorSet, layer: int, acts: Sequence[str], emotions: Sequence[str],
                    partners: int, strength: float, seed: int = 0, n_random: int = 0,
                    executor: ExecutorOptions | None = None,
                    on_direction: Callable[[int], None] | None = None) -> SteeringShifts:
    """Per emotion and per activity, the change in the log-odds of choosing the activity when it is steered on its
    tokens; and the same for ``n_random`` random directions of the same norm (what a steer with no meaning does).
    Each direction's read is one batch on ``executor`` (this process, or a Ray pool of model replicas);
    ``on_direction`` is called with 1 as each comes back (progress)."""
    pairs = prefs.plan_pairs(len(acts), partners, seed)
    shared = _Steer(list(acts), list(prefs.both_orders(pairs)), layer,
                    strength * float(vectors.mean_norm[vectors.layer_index(layer)]))
    gen = torch.Generator().manual_seed(seed)  # the steer adds scale * unit(direction): every norm is the same
    directions: list[torch.Tensor | None] = [None, *(vectors.vector(name, layer) for name in emotions),
                                             *(torch.randn(vectors.d_model, generator=gen) for _ in range(n_random))]
    got: dict[int, np.ndarray] = {}

    def keep(i: int, read: np.ndarray) -> None:
        got[i] = read
        if on_direction is not None:
            on_direction(1)

    make_executor(executor, lm).map(steered_preferences, shared, directions, keep)
    if len(got) != len(directions):
        raise RuntimeError(f"{len(directions) - len(got)} of {len(directions)} steered reads came back empty")
    read = [np.clip(got[i], 1e-6, 1 - 1e-6) for i in range(len(directions))]
    plain = np.log(read[0] / (1 - read[0]))
    first = np.array([c.first for c in shared.choices])

    def per_activity(steered: np.ndarray) -> np.ndarray:
        change = np.log(steered / (1 - steered)) - plain
        return np.array([change[first == a].mean() if (first == a).any() else np.nan for a in range(len(acts))])

    return SteeringShifts({name: per_activity(read[1 + i]) for i, name in enumerate(emotions)},
                          [per_activity(r) for r in read[1 + len(emotions):]])


def _steer_emotions(prefs_r: Sequence[EmotionPreference], k: int) -> list[str]:
    """The k/2 emotions with the most positive and the k/2 with the most negative preference r."""
    ranked = sorted(prefs_r, key=lambda p: p.r.value)
    picked = ranked[: k // 2] + ranked[-(k - k // 2):]
    return list(dict.fromkeys(p.emotion for p in picked))


def run_paper_study(lm: LoadedModel, vectors: VectorSet, preset: str | PaperPreset = "quick",
                    say: Callable[[str], None] | None = None, executor: ExecutorOptions | None = None,
                    show_progress: bool = False) -> PaperResult:
    """All four experiments at the set's default layer (see module docs); ``executor``: where the steered
    preference reads run (one direction per batch), the rest runs in this process. ``say`` gets a line as each
    experiment starts; ``show_progress`` reports each as a stage (a bar in a terminal, else one line when done)."""
    started = time.perf_counter()
    p = PRESETS[preset] if isinstance(preset, str) else preset
    tell = say or (lambda _m: None)
    vectors.check_compatible(lm)
    layer = vectors.default_layer
    tell("intensity templates")
    with stage("paper/intensity", detail=f"layer {layer}", show=show_progress):
        intens = intensity(lm, vectors, layer, p.n_random)
    pool, text_counts, text_notes = human_text(p.snippets, p.chat)
    tell(f"top-activating text over {len(pool)} human-written texts ({text_counts})")
    with stage("paper/top text", detail=f"{len(pool)} human-written texts", show=show_progress):
        tops = top_text(lm, vectors, layer, pool)
    acts = activities()
    tell(f"activity preferences: {len(acts)} activities, {p.partners} partners each, both orders")
    with stage("paper/preferences", detail=f"{len(acts)} activities x {p.partners} partners", show=show_progress):
        pairs = prefs.plan_pairs(len(acts), p.partners)
        outcome = prefs.pair_outcomes(prefs.prefer_first(lm, acts, prefs.both_orders(pairs)))
        scores = prefs.bradley_terry(len(acts), pairs, outcome)
        low, high = prefs.bt_intervals(len(acts), pairs, outcome)
        read = readouts(lm, vectors, acts, layer)
        pr, null95 = preference_correlations(read, scores, vectors.names, p.n_perm)
    chosen = _steer_emotions(pr, p.steer_emotions)
    tell(f"steering {len(chosen)} emotions on one option's tokens")
    n_directions = 1 + len(chosen) + p.steer_random
    with stage("paper/steering", n_directions, unit="directions", detail=f"{len(chosen)} emotions, "
               f"{p.steer_random} random", show=show_progress) as advance:
        steered = steering_shifts(lm, vectors, layer, acts, chosen, p.steer_partners, p.strength,
                                  n_random=p.steer_random, executor=executor, on_direction=advance)
    for e in pr:
        if e.emotion in steered.emotions:
            e.shift = steered.shift(e.emotion)
    xs = np.array([next(e.r.value for e in pr if e.emotion == n) for n in chosen])
    ys = np.array([steered.shift(n).value for n in chosen])
    method = "Bradley-Terry score, percentile bootstrap over the compared pairs"
    result = PaperResult(model=lm.name, layer=layer, intensity=intens, top_text=tops, text_sources=text_counts,
                         activities=acts,
                         activity_scores=[Estimate(value=float(v), low=float(lo), high=float(hi), n=len(pairs),
                                                   method=method) for v, lo, hi in zip(scores, low, high, strict=True)],
                         preference_r=pr, shuffled_r_p95=null95, steering_r=_corr_with_interval(xs, ys),
                         random_shifts=steered.random_means(),
                         activity_shifts={n: [round(float(v), 5) for v in a] for n, a in steered.emotions.items()},
                         notes=[*text_notes,
                                f"steered emotions: {', '.join(chosen)} (the most positive and most negative r in 3; "
                                "selection uses 3's readout correlations, not the steering outcome)"])
    result.findings = findings(result)
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def _corr_with_interval(x: np.ndarray, y: np.ndarray, n_boot: int = 1000, seed: int = 0) -> Estimate | None:
    """Pearson r of ``x`` and ``y`` with a bootstrap interval over the pairs; None for fewer than 4 or no spread."""
    if len(x) < 4 or np.std(x) == 0 or np.std(y) == 0:
        return None

    def r(i: np.ndarray) -> float:
        ok = np.std(x[i]) > 0 and np.std(y[i]) > 0
        return float(pearsonr(x[i], y[i]).statistic) if ok else float("nan")

    return index_bootstrap(len(x), r, n_resamples=n_boot, seed=seed)


def _run(run: StudyRun) -> PaperResult:
    """The study as ``emovec study run paper --vectors DIR`` runs it: on the vector set's own model unless a model
    is given; ``paper.json`` in the output folder."""
    if run.vectors is None:
        raise PaperError("the paper study reads a vector set: give --vectors DIR (e.g. runs/demo)")
    if len(run.models) > 1:
        raise PaperError(f"the paper study reads one model; got {len(run.models)}")
    vectors = VectorSet.load(run.vectors)
    source = vectors.provenance.model
    lm = load_model(run.models[0] if run.models else source.name if source.kind == "builtin" else source.location)
    result = run_paper_study(lm, vectors, run.preset, say=run.say, executor=run.executor,  # type: ignore[arg-type]
                             show_progress=run.show_progress)
    write_result(run.out / "paper.json", result)
    return result


STUDY = Study(
    name="paper",
    question="Does the model show the paper's own validation results: graded intensity, top-activating human text, "
             "activity preferences tracked by emotion readouts, and steering that moves those preferences?",
    presets=PRESETS, run=_run, result=PaperResult, report=write_paper_report, answer=lambda r: list(r.findings))
