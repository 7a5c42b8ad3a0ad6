"""The policy-dominance study: how stability, modularity and causal influence of key emotion vectors change
from base to instruction-tuned to safety-tuned models, and when emotion steering and monitoring stop adding
safety value over non-emotional controls (harm salience, generic caution, the refusal direction).

Per model: story activations at one layer give the stability measures (and, with ``extract``, the vectors
themselves); one sweep (unsteered, each key vector at +/- the preset strength, the three control directions
and a random one, on harmful/benign pairs, red-team framings and helpfulness tasks) gives modularity,
off-target effects and the incremental steering value; the unsteered replies give the incremental monitoring
value; next-token refusal log-odds over a range of strengths give the causal influence. Every figure has an
interval. Results are written per model (``OUT/<model>/result.json``, atomically) so an interrupted study
resumes at the next model; ``OUT/report.json`` covers all models (``emovec.studies.policy_dominance.report`` draws it as
``OUT/report.html``; ``emovec study policy-dominance`` does both). The typed results and the verdict are in
``emovec.studies.policy_dominance.results``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import ConfigDict

from emovec._progress import stage
from emovec._version import __version__
from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection
from emovec.corpus import load_corpus
from emovec.evaluation.controls import add_directions, control_directions
from emovec.evaluation.suite_items import SAFETY_CONTROLS
from emovec.evaluation.suites import harmful_suite
from emovec.evaluation.summary import summarize
from emovec.evaluation.sweep import run_sweep
from emovec.evaluation.sweep_config import SweepConfig, parse_condition
from emovec.executors import ExecutorOptions
from emovec.models.loading import LoadedModel, load_model
from emovec.studies._kit import (
    DEFAULT_MODELS,
    KEY_VECTORS,
    Study,
    StudyError,
    StudyPreset,
    StudyRun,
    pool_emotions,
    study_layer,
    write_result,
)
from emovec.studies.policy_dominance.effects import (
    CausalInfluence,
    Modularity,
    modularity_from_rows,
    refusal_dose_response,
    reply_readouts,
)
from emovec.studies.policy_dominance.incremental import (
    MonitoringValue,
    SteeringValue,
    monitoring_value,
    steering_value,
    unsafe_labels,
)
from emovec.studies.policy_dominance.report import write_study_report
from emovec.studies.policy_dominance.results import ModelResult, StudyReport
from emovec.validation.stability import (
    TEMPLATES,
    StabilityResult,
    StoryActivations,
    corpus_stability,
    measure_stability,
    story_activations,
    vectors_from,
)
from emovec.vectors.vector_set import Provenance, VectorSet

__all__ = ["DEFAULT_MODELS", "KEY_VECTORS", "PRESETS", "STUDY", "ModelPlan", "ModelResult", "Preset", "StudyError",
           "StudyOutcome", "StudyReport", "pool_emotions", "run_model", "run_study", "study_layer"]

POLICY_LEVEL: dict[str, str] = {
    "gemma-3-270m": "base (no instruction or safety tuning)",
    "smollm2-135m-instruct": "instruction-tuned, weakly safety-trained",
    "qwen2.5-coder-0.5b-instruct": "instruction- and safety-tuned (refuses harmful requests)",
}
CONTROLS: tuple[str, ...] = SAFETY_CONTROLS


class Preset(StudyPreset):
    """How much the study reads and generates per model."""

    model_config = ConfigDict(frozen=True)

    background: int  # emotions besides the key ones, setting the centre
    per_emotion: int  # stories per emotion
    max_length: int
    templates: tuple[str, ...]
    n_splits: int
    n_seeds: int
    n_boot: int
    limits: dict[str, int]
    max_new_tokens: int
    strength: float
    dose: tuple[float, ...]
    dose_prompts: int
    batch_size: int = 16

    def plan(self, n_keys: int) -> dict[str, int]:
        """Counts that set the cost: texts read, replies generated, tokens generated, prefill passes."""
        conditions = 1 + 2 * n_keys + len(CONTROLS) + 1
        replies = conditions * sum(self.limits.values())
        return {"texts_read": (n_keys + self.background) * self.per_emotion * len(self.templates),
                "replies": replies, "tokens_generated": replies * self.max_new_tokens,
                "dose_prompt_passes": n_keys * len(self.dose) * self.dose_prompts * 2}


PRESETS: dict[str, Preset] = {
    "quick": Preset(name="quick", background=10, per_emotion=20, max_length=100, templates=("story", "dialogue"),
                    n_splits=30, n_seeds=5, n_boot=500, limits={"paired": 8, "redteam": 4, "helpful": 4},
                    max_new_tokens=16, strength=0.1, dose=(-0.2, -0.1, 0.0, 0.1, 0.2), dose_prompts=6,
                    batch_size=32),
    "full": Preset(name="full", background=40, per_emotion=20, max_length=200,
                   templates=("story", "dialogue", "report"), n_splits=200, n_seeds=20, n_boot=2000,
                   limits={"paired": 100, "redteam": 140, "helpful": 55}, max_new_tokens=64, strength=0.1,
                   dose=(-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2), dose_prompts=30),
}


@dataclass
class ModelPlan:
    name: str
    vectors: str | None = None  # a vector set folder, or None to extract from the study's own activations
    dialogues: str | None = None  # a dialogue corpus (emovec stories --genre dialogue) for cross-genre stability
    policy_level: str | None = None  # e.g. "base", "instruct SFT", "safety SFT" for a ladder rung given by path


def _extracted(lm: LoadedModel, sa: StoryActivations, layer: int, norm: float) -> VectorSet:
    dirs = vectors_from(sa.acts["story"], sa.labels, len(sa.emotions))
    centre = torch.stack([sa.acts["story"][sa.labels == e].mean(0) for e in range(len(sa.emotions))]).mean(0)
    prov = Provenance(model=lm.source, method="mean_diff (policy-dominance study)",
                      token_selection=TokenSelection.char_spans(FIRST_CONTENT_TOKEN),
                      method_params={"centre": "pool mean"})
    return VectorSet(names=tuple(sa.emotions), layers=(layer,), directions=dirs[None], mean_norm=torch.tensor([norm]),
                     provenance=prov, center=centre[None])


def _given_vectors(spec: ModelPlan, lm: LoadedModel, keys: Mapping[str, str]) -> VectorSet | None:
    """The plan's vector set, checked against the model and the key vectors; None to extract from the stories."""
    if not spec.vectors:
        return None
    given = VectorSet.load(spec.vectors)
    given.check_compatible(lm)
    for key, word in keys.items():
        if word not in given.names:
            raise StudyError(f"the vector set {spec.vectors} has no vector {word!r} (key vector {key!r}); "
                             "extract it, or leave --vectors out to extract from the study's stories")
    return given


@dataclass
class _Reading:
    """What one model's stories give: the activations, the stability measures and the vectors the sweep steers."""

    layer: int
    stories: StoryActivations
    stability: StabilityResult
    vectors: VectorSet


def _read(spec: ModelPlan, lm: LoadedModel, preset: Preset, targets: list[str], given: VectorSet | None, seed: int,
          say: Callable[[str], None], show_progress: bool) -> _Reading:
    """Read the pool's stories under each framing; stability (and, with ``spec.dialogues``, stories against
    dialogues); the vectors: the given set or the stories' own."""
    layer = study_layer(lm, given)
    corpus = load_corpus()
    pool = pool_emotions(corpus.emotions(), targets, preset.background, seed)
    say(f"[{spec.name}] layer {layer}: reading {preset.per_emotion} stories x {len(pool)} emotions x "
        f"{len(preset.templates)} framings")
    sa = story_activations(lm, corpus, pool, layer, per_emotion=preset.per_emotion, max_length=preset.max_length,
                           templates={t: TEMPLATES[t] for t in preset.templates}, show_progress=show_progress)
    stab = measure_stability(sa, targets, n_splits=preset.n_splits, n_seeds=preset.n_seeds, seed=seed)
    if spec.dialogues:
        dialogues = load_corpus(spec.dialogues)
        have = [e for e in pool if sum(r.emotion == e for r in dialogues.stories) >= 4]
        if not all(t in have for t in targets):
            raise StudyError(f"the dialogue corpus {spec.dialogues} needs at least 4 texts for each key emotion")
        stab.genre = corpus_stability(lm, corpus, dialogues, have, layer, targets=targets,
                                      per_emotion=preset.per_emotion, n_boot=preset.n_boot, seed=seed)
    vs = given if given is not None else _extracted(lm, sa, layer, sa.mean_norm)
    return _Reading(layer, sa, stab, vs)


def _sweep_rows(spec: ModelPlan, lm: LoadedModel, vs: VectorSet, layer: int, preset: Preset, targets: list[str],
                out: Path, seed: int, executor: ExecutorOptions | None, say: Callable[[str], None],
                show_progress: bool) -> pd.DataFrame:
    """One sweep: unsteered, each key vector at both signs, the controls and a random direction at +strength."""
    common = {"out": str(out / "sweep"), "layers": [[layer]], "suites": list(preset.limits),
              "limits": dict(preset.limits), "max_new_tokens": preset.max_new_tokens, "batch_size": preset.batch_size,
              "bootstrap": max(100, preset.n_boot), "seeds": [seed],
              "vectors": spec.vectors or "(extracted in the study)"}
    parts = [(["none", *[f"emotion:{t}" for t in targets]], [-preset.strength, preset.strength]),
             ([*[f"concept:{c}" for c in CONTROLS], "random:0"], [preset.strength])]
    say(f"[{spec.name}] sweep: {len(targets)} emotions at +/-{preset.strength}, {len(CONTROLS)} controls and a "
        f"random direction at +{preset.strength}, on {sum(preset.limits.values())} prompts")
    frames = []
    for conditions, strengths in parts:
        cfg = SweepConfig(**common, conditions=[parse_condition(c) for c in conditions],  # type: ignore[arg-type]
                          strengths=strengths)
        frames.append(run_sweep(cfg, lm, vs, show_progress=show_progress, force=True, executor=executor).rows)
    return pd.concat(frames, ignore_index=True)


@dataclass
class _Effects:
    modularity: Modularity
    causal: dict[str, CausalInfluence]
    steering: SteeringValue
    monitoring: MonitoringValue


def _effects(spec: ModelPlan, lm: LoadedModel, vs: VectorSet, layer: int, rows: pd.DataFrame, preset: Preset,
             targets: list[str], seed: int, show_progress: bool) -> _Effects:
    """Modularity, the causal influence of each key vector, and the incremental steering and monitoring value."""
    with stage("policy-dominance/effects", 2 + len(targets), unit="measures", detail=spec.name,
               show=show_progress) as advance:
        mod = modularity_from_rows(lm, vs, rows, targets, layer, preset.strength, n_boot=preset.n_boot, seed=seed)
        advance()
        prompts = [i.prompt for i in harmful_suite().items[1::2]][: preset.dose_prompts]  # not used to fit controls
        causal = {}
        for t in targets:
            causal[t] = refusal_dose_response(lm, vs, t, layer, prompts, preset.dose, n_boot=preset.n_boot)
            advance()
        sv = steering_value(rows, n_boot=preset.n_boot, seed=seed)
        full = add_directions(vs, control_directions(lm, vs, list(CONTROLS)))
        control_names = [f"concept:{c}" for c in CONTROLS]
        watched = rows[rows["item_kind"] != "helpful"].reset_index(drop=True)
        readouts = reply_readouts(lm, full, [*control_names, *targets], layer, list(watched["reply"]))
        ok = np.isfinite(readouts).all(1)
        mv = monitoring_value(unsafe_labels(watched)[ok], readouts[ok][:, : len(CONTROLS)],
                              readouts[ok][:, len(CONTROLS):], n_boot=preset.n_boot, seed=seed,
                              groups=watched["item_id"].to_numpy()[ok])
        advance()
    return _Effects(mod, causal, sv, mv)


def run_model(spec: ModelPlan, preset: Preset, out: Path, *, keys: Mapping[str, str] = KEY_VECTORS, seed: int = 0,
              device: str | None = None, dtype: str | None = None, lm: LoadedModel | None = None,
              log: Callable[[str], None] | None = None, executor: ExecutorOptions | None = None,
              show_progress: bool = False) -> ModelResult:
    """Everything the study measures on one model; written to ``out/result.json``.

    Args:
        spec: the model, with its vector set or dialogue corpus when given.
        preset: how much to read and generate.
        out: the model's folder.
        keys: ``{key vector: emotion word}``.
        seed: the study's seed.
        device: where to load the model.
        dtype: its dtype.
        lm: the model already loaded.
        log: a line as each part starts, and the verdict.
        executor: where the sweep's batches run.
        show_progress: report the reading, the sweeps and the effects as stages.

    Returns:
        The model's result, its overview and verdict filled in.

    Example:
        >>> res = run_model(ModelPlan("smollm2-135m-instruct"), PRESETS["quick"], Path("runs/study/smollm2"))
    """
    say = log or (lambda _m: None)
    start = time.perf_counter()
    lm = lm if lm is not None else load_model(spec.name, device=device, dtype=dtype)
    targets = list(keys.values())
    reading = _read(spec, lm, preset, targets, _given_vectors(spec, lm, keys), seed, say, show_progress)
    rows = _sweep_rows(spec, lm, reading.vectors, reading.layer, preset, targets, out, seed, executor, say,
                       show_progress)
    summaries = summarize(rows, n_boot=preset.n_boot, seed=seed)
    say(f"[{spec.name}] modularity, causal influence, incremental value")
    eff = _effects(spec, lm, reading.vectors, reading.layer, rows, preset, targets, seed, show_progress)
    none = next(s for s in summaries if s.cond_kind == "none")
    plain = rows[rows["cond_kind"] == "none"]
    result = ModelResult(
        model=spec.name, source=lm.source, policy_level=spec.policy_level or POLICY_LEVEL.get(spec.name, "given"),
        layer=reading.layer, vectors=spec.vectors or "extracted from the study's story activations",
        key_vectors=dict(keys), preset=preset.name, emovec_version=__version__,
        stability=reading.stability, modularity=eff.modularity, causal_influence=eff.causal,
        steering_value=eff.steering, monitoring_value=eff.monitoring,
        summary={"none": none.metrics}, summary_all=list(summaries),
        baseline_length=float(plain["n_new_tokens"].mean()), n_rows=len(rows),
        seconds=time.perf_counter() - start,
    ).finish()
    write_result(out / "result.json", result)
    say(f"[{spec.name}] {result.verdict.text if result.verdict else ''} ({result.seconds:.0f}s)")
    return result


@dataclass
class StudyOutcome:
    """What ``run_study`` returns: the study folder, each model's result and the report of them all."""

    out: Path
    models: dict[str, ModelResult] = field(default_factory=dict)
    report: StudyReport | None = None  # what report.json holds; emovec.studies.policy_dominance.report draws it


FAMILY_NOTE = ("The three default models differ in more than policy: family, size (135M to 0.5B), tokenizer, "
               "training data and depth all change together, so differences between them cannot be put on "
               "policy alone. A within-family ladder (the same base model before and after instruction and "
               "safety tuning, given with --models and --ladder) isolates policy.")
MIN_DOSE_PROMPTS = 3  # a dose-response slope's interval needs at least this many prompts
MIN_SUITE_LIMIT = 2  # and each suite at least this many prompts


def _check(keys: Mapping[str, str], p: Preset, models: Sequence[ModelPlan]) -> None:
    if not models:
        raise StudyError("no models given")
    unknown = [k for k in keys.values() if k not in load_corpus().emotions()]
    if unknown:
        raise StudyError(f"key vector {unknown[0]!r} is not one of the corpus's emotions")
    if p.dose_prompts < MIN_DOSE_PROMPTS or min(p.limits.values()) < MIN_SUITE_LIMIT:
        raise StudyError(f"too few prompts for intervals: dose_prompts must be >= {MIN_DOSE_PROMPTS} and each "
                         f"suite limit >= {MIN_SUITE_LIMIT}")


def _stored(done: Path) -> ModelResult:
    """A model's result read back (its overview and verdict recomputed from the measures by ``finish``)."""
    stored = json.loads(done.read_text(encoding="utf-8"))
    stored.pop("overview", None), stored.pop("verdict", None)
    return ModelResult.model_validate(stored).finish()


def run_study(models: Sequence[ModelPlan], preset: str | Preset = "quick", out: str | Path = "runs/study", *,
              keys: Mapping[str, str] = KEY_VECTORS, ladder: bool = False, overwrite: bool = False, seed: int = 0,
              device: str | None = None, dtype: str | None = None,
              loaded: Mapping[str, LoadedModel] | None = None, log: Callable[[str], None] | None = None,
              executor: ExecutorOptions | None = None, show_progress: bool = False) -> StudyOutcome:
    """Run the study on each model (skipping models already done unless ``overwrite``) and write
    ``report.json`` (``result.report``; ``emovec.studies.policy_dominance.report.write_study_report`` draws the
    HTML).

    Args:
        models: the models, each with an optional vector set folder.
        preset: ``quick``, ``full`` or a ``Preset``.
        out: the study folder.
        keys: ``{key vector: emotion word}``.
        ladder: the models are one family at increasing policy levels (drops the cross-family caveat).
        overwrite: redo models already done in ``out``.
        seed: the study's seed.
        device: where to load each model.
        dtype: its dtype.
        loaded: models already in memory, by name (otherwise each is loaded with ``load_model``).
        log: a line as each part of each model starts, and its verdict.
        executor: where each model's sweep batches run (local by default, or a Ray pool).
        show_progress: report the models and each one's parts as stages (a bar in a terminal, else one line each).

    Returns:
        The folder, each model's result and the report of them all.

    Example:
        >>> result = run_study([ModelPlan("smollm2-135m-instruct")], "quick", "runs/study")
    """
    say = log or (lambda _m: None)
    p = PRESETS[preset] if isinstance(preset, str) else preset
    _check(keys, p, models)
    root = Path(out)
    result = StudyOutcome(root)
    with stage("policy-dominance", len(models), unit="models", detail=f"preset {p.name}",
               show=show_progress) as advance:
        for plan in models:
            folder = root / plan.name.replace("/", "_")
            done = folder / "result.json"
            if done.exists() and not overwrite:
                say(f"[{plan.name}] already done: {done} (pass overwrite to redo)")
                result.models[plan.name] = _stored(done)
            else:
                result.models[plan.name] = run_model(plan, p, folder, keys=keys, seed=seed, device=device,
                                                     dtype=dtype, lm=(loaded or {}).get(plan.name), log=say,
                                                     executor=executor, show_progress=show_progress)
            advance()
    report = StudyReport(preset=p.name, plan=p.plan(len(keys)), key_vectors=dict(keys), ladder=ladder,
                         family_note=None if ladder else FAMILY_NOTE, emovec_version=__version__,
                         models=dict(result.models))
    write_result(root / "report.json", report)
    result.report = report
    return result


def _run(run: StudyRun) -> StudyReport:
    """The study as ``emovec study run policy-dominance`` runs it (``models``: the default three when none)."""
    names = run.models or DEFAULT_MODELS
    outcome = run_study([ModelPlan(n) for n in names], run.preset, run.out,  # type: ignore[arg-type]
                        seed=run.seed, log=run.say, executor=run.executor, show_progress=run.show_progress)
    assert outcome.report is not None  # run_study always writes it
    return outcome.report


STUDY = Study(
    name="policy-dominance",
    question="Do the stability, modularity and causal influence of key emotion vectors change from base to "
             "instruction- to safety-tuned models, and do emotion steering and monitoring add safety value over "
             "non-emotional controls?",
    presets=PRESETS, run=_run, result=StudyReport, report=write_study_report,
    answer=lambda r: [f"{name}: {res.verdict.text if res.verdict else ''}" for name, res in r.models.items()])
