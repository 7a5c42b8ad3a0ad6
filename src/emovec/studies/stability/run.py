"""The stability study: are the key vectors stable at the corpus's size? Split-half cosine, its shuffled-label
null and the held-out readout AUC of the key vectors at several counts of stories per emotion
(``emovec.studies.stability.curve``), on one model, written to ``OUT/stability.json``.

Example:
    >>> curve = run_stability_study("smollm2-135m-instruct", "quick", "runs/stability")
    >>> print(curve.table())
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emovec.corpus import load_corpus
from emovec.models.loading import LoadedModel, load_model
from emovec.studies._kit import (
    KEY_VECTORS,
    Study,
    StudyError,
    StudyPreset,
    StudyRun,
    pool_emotions,
    study_layer,
)
from emovec.studies.stability.curve import StabilityCurve, stability_curve, write_curve

RESULT_FILE = "stability.json"
DEFAULT_MODEL = "smollm2-135m-instruct"


class StabilityPreset(StudyPreset):
    """The counts of stories per emotion measured, the emotions besides the key ones (setting the centre), the
    random halvings per count and the tokens read per story."""

    counts: tuple[int, ...] = (6, 12, 20)
    background: int = 10
    n_splits: int = 50
    max_length: int = 100


PRESETS: dict[str, StabilityPreset] = {"quick": StabilityPreset(name="quick"),
                                       "full": StabilityPreset(name="full", counts=(4, 6, 8, 12, 16, 20),
                                                               n_splits=200)}


def run_stability_study(model: str | LoadedModel = DEFAULT_MODEL, preset: str | StabilityPreset = "quick",
                        out: str | Path = "runs/stability", *, layer: int | None = None, seed: int = 0,
                        overwrite: bool = False, say: Callable[[str], None] | None = None,
                        show_progress: bool = False) -> StabilityCurve:
    """The key vectors' stability at each count of the preset, written to ``out/stability.json``.

    Args:
        model: a model spec, or a loaded model.
        preset: ``quick``, ``full`` or a ``StabilityPreset``.
        out: the study folder.
        layer: the layer read (default: ``study_layer``, two thirds of the depth).
        seed: draws the background emotions and the halvings.
        overwrite: replace an existing result file.
        say: a line as the reading starts and one per count.
        show_progress: report the reading and the counts as stages.

    Returns:
        The curve (``curve.table()`` prints it).

    Example:
        >>> run_stability_study("smollm2-135m-instruct", StabilityPreset(name="small", counts=(6, 12)))
    """
    p = PRESETS[preset] if isinstance(preset, str) else preset
    lm = load_model(model) if isinstance(model, str) else model
    keys = list(KEY_VECTORS.values())
    pool = pool_emotions(load_corpus().emotions(), keys, p.background, seed)
    curve = stability_curve(lm, keys, pool, study_layer(lm) if layer is None else layer, counts=p.counts,
                            max_length=p.max_length, n_splits=p.n_splits, seed=seed, log=say,
                            show_progress=show_progress)
    write_curve(curve, Path(out) / RESULT_FILE, overwrite=overwrite)
    return curve


def _run(run: StudyRun) -> StabilityCurve:
    if len(run.models) > 1:
        raise StudyError(f"the stability study reads one model; got {len(run.models)}")
    return run_stability_study(run.models[0] if run.models else DEFAULT_MODEL, run.preset,  # type: ignore[arg-type]
                               run.out, seed=run.seed, overwrite=True, say=run.say, show_progress=run.show_progress)


STUDY = Study(
    name="stability",
    question="Is the corpus large enough for stable key vectors: how do split-half cosine, its shuffled-label null "
             "and the held-out readout AUC grow with the stories per emotion?",
    presets=PRESETS, run=_run, result=StabilityCurve,
    answer=lambda curve: [f"{curve.model}, layer {curve.layer}, key vectors {', '.join(curve.keys)}",
                          *curve.table().splitlines()])
