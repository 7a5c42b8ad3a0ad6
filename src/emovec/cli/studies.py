"""Study commands of the ``emovec`` CLI: ``study list`` and ``study run NAME`` for every registered study (the
built-in ones and those other packages register in the entry-point group ``emovec.studies``), and one command per
built-in study with its own options (policy-dominance, stability, drift, cross-model, robustify, paper): thin
shells over ``emovec.studies``. Registered on the shared ``study`` group when ``emovec.cli`` imports this module."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from emovec.cli.shared import (
    DeviceOpt,
    DtypeOpt,
    ModelOpt,
    _load,
    err,
    friendly,
    out,
    study_app,
    with_executor,
)
from emovec.executors import ExecutorOptions, check_available


def _say(line: str) -> None:
    err.print(line, highlight=False, soft_wrap=True, markup=False)


def _check_preset(preset: str, presets: Mapping[str, object], error: type[Exception]) -> None:
    if preset not in presets:
        raise error(f"unknown preset {preset!r}; choose {' or '.join(presets)}")


def _finish(lines: list[str], report: Path | None) -> None:
    """Print a study's answer, one line each, and where its report is."""
    for line in lines:
        out.print(line, highlight=False)
    if report is not None:
        err.print(f"report: {report}")


def _names(models: str | None) -> tuple[str, ...]:
    return tuple(m.strip() for m in models.split(",") if m.strip()) if models else ()


@study_app.command("list")
@friendly
def list_studies() -> None:
    """Every registered study (built in, or from a package's ``emovec.studies`` entry point): its name, the
    question it answers and its presets."""
    from emovec.studies import studies

    for study in studies().values():
        out.print(f"[bold]{study.name}[/]: {study.question}\n    presets: {', '.join(study.presets)}",
                  highlight=False, soft_wrap=True)


@study_app.command("run")
@friendly
@with_executor()
def run_any(
    name: Annotated[str, typer.Argument(help="a registered study (emovec study list)")],
    preset: Annotated[str, typer.Option(help="one of the study's presets")] = "quick",
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder (default: runs/NAME)")] = None,
    models: Annotated[str | None, typer.Option(help="comma-separated models (default: the study's)")] = None,
    vectors: Annotated[Path | None, typer.Option(help="a vector set folder, for studies that read one")] = None,
    seed: int = 0,
    where: ExecutorOptions | None = None,
) -> None:
    """Run any registered study with one of its presets, write its result file and its report, and print its
    answer. The built-in studies also have commands of their own with more options."""
    from emovec.studies import StudyRun, get_study

    study = get_study(name)
    folder = out_dir or Path("runs") / name
    check_available(where)
    result = study.run(StudyRun(preset=study.preset(preset), out=folder, models=_names(models), vectors=vectors,
                                seed=seed, executor=where, say=_say, show_progress=True))
    _finish(study.answer(result), study.report(folder, result) if study.report is not None else None)


def _ladder_rungs(folder: Path, family: str | None, models: str | None) -> tuple[list[str], dict[str, str]]:
    """The rungs of one family from ``folder/ladder.json``, in training order, with their policy levels."""
    from emovec.studies import StudyError
    from emovec.studies.policy_dominance.ladder import read_ladder

    if models:
        raise StudyError("give either --models or --from-ladder, not both")
    rungs = read_ladder(folder)
    families = sorted({r.family for r in rungs})
    if family not in families:
        raise StudyError(f"--family {family!r}: the ladder at {folder} holds {', '.join(families)}")
    chosen = [r for r in rungs if r.family == family]
    return [r.path for r in chosen], {r.path: r.level for r in chosen}


def _pairs(values: list[str] | None, flag: str, names: list[str]) -> dict[str, str]:
    """``MODEL=PATH`` options as ``{model: path}``; each model must be among ``names``."""
    from emovec.studies import StudyError

    found: dict[str, str] = {}
    for item in values or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise StudyError(f"{flag} {item!r} must look like MODEL=PATH")
        if name not in names:
            raise StudyError(f"{flag} names {name!r}, which is not among the models {names}")
        found[name] = path
    return found


# The cost of each preset, as measured or estimated; printed before a policy-dominance run.
POLICY_RATES = {"quick": "measured once on 2 CPU cores during development: 2-7 minutes per model, 13.5 minutes "
                         "for the three default models",
                "full": "about 70x the generated tokens of quick: an estimated 2-7 hours per model on 2 CPU cores, "
                        "well under an hour on one GPU"}


@study_app.command("policy-dominance")
@friendly
@with_executor()
def policy_dominance(
    models: Annotated[str | None, typer.Option(help="comma-separated models (default: gemma-3-270m, "
                                                    "smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct)")] = None,
    vectors: Annotated[list[str] | None, typer.Option(help="MODEL=DIR: a vector set for a model (repeatable); "
                                                           "models without one get vectors extracted from the "
                                                           "study's own story activations")] = None,
    dialogues: Annotated[list[str] | None, typer.Option(help="MODEL=FILE: a dialogue corpus (emovec stories "
                                                             "--genre dialogue) for stories-vs-dialogues "
                                                             "stability (repeatable)")] = None,
    preset: Annotated[str, typer.Option(help="quick (under 20 minutes on 2 cores) or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/study"),
    ladder: Annotated[bool, typer.Option(help="the models are one family at increasing policy levels")] = False,
    from_ladder: Annotated[Path | None, typer.Option(help="a folder from `emovec ladder`: study one family's rungs "
                                                          "(with --family), labelled by their policy level")] = None,
    family: Annotated[str | None, typer.Option(help="with --from-ladder: the family to study (gemma, smollm2)")] = None,
    no_extract: Annotated[bool, typer.Option(help="fail for models without --vectors instead of extracting")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan and its cost, run nothing")] = False,
    overwrite: Annotated[bool, typer.Option(help="redo models already done in --out")] = False,
    seed: int = 0,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    where: ExecutorOptions | None = None,
) -> None:
    """Stability, modularity and causal influence of key emotion vectors across policy levels, and whether
    emotion steering and monitoring add safety value over non-emotional controls."""
    from emovec.studies import DEFAULT_MODELS, KEY_VECTORS, StudyError
    from emovec.studies.policy_dominance import PRESETS, STUDY, ModelPlan, run_study

    _check_preset(preset, PRESETS, StudyError)
    names = list(_names(models) or DEFAULT_MODELS)
    levels: dict[str, str] = {}
    if from_ladder is not None:
        names, levels = _ladder_rungs(from_ladder, family, models)
        ladder = True
        err.print("ladder rungs: " + " -> ".join(f"{n} ({lvl})" for n, lvl in levels.items()), highlight=False,
                  soft_wrap=True)
    given, genre = _pairs(vectors, "--vectors", names), _pairs(dialogues, "--dialogues", names)
    missing = [n for n in names if n not in given]
    if no_extract and missing:
        raise StudyError(f"no vectors for {missing[0]!r}: extract them (emovec extract --model {missing[0]}) and "
                         f"pass --vectors {missing[0]}=DIR, or drop --no-extract")
    err.print(f"preset {preset}: per model {PRESETS[preset].plan(len(KEY_VECTORS))}; {POLICY_RATES[preset]}",
              highlight=False)
    if dry_run:
        return
    plans = [ModelPlan(n, given.get(n), genre.get(n), policy_level=levels.get(n)) for n in names]
    result = run_study(plans, preset, out_dir, ladder=ladder, overwrite=overwrite, seed=seed, device=device,
                       dtype=dtype, executor=where, show_progress=True, log=_say)
    assert result.report is not None  # run_study always writes it
    assert STUDY.report is not None
    _finish(STUDY.answer(result.report), STUDY.report(out_dir, result.report))
    err.print(f"and {out_dir / 'report.json'}")


def _numbers(text: str, kind: type, flag: str) -> list[Any]:
    from emovec.studies import StudyError

    try:
        return [kind(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise StudyError(f"{flag} {text!r}: give comma-separated numbers, e.g. 0,1,2 or 1e-3,4e-3") from None


@study_app.command("stability")
@friendly
def stability_by_count(
    model: ModelOpt = "smollm2-135m-instruct",
    counts: Annotated[str, typer.Option(help="stories per emotion, comma-separated")] = "6,12,20",
    layer: Annotated[int | None, typer.Option(help="layer read (default: two thirds of the depth, as the "
                                                   "policy-dominance study without --vectors)")] = None,
    background: Annotated[int, typer.Option(help="emotions besides the key ones, setting the centre")] = 10,
    n_splits: Annotated[int, typer.Option(help="random halvings per count")] = 50,
    out_file: Annotated[Path | None, typer.Option("--out", help="JSON file (default: "
                                                                "runs/stability/MODEL.json)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    seed: int = 0,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Split-half cosine of the policy-dominance study's key vectors, its shuffled-label null and the held-out
    readout AUC at several counts of stories per emotion: is the corpus large enough for stable vectors?"""
    from emovec.corpus import load_corpus
    from emovec.studies import KEY_VECTORS, pool_emotions, study_layer
    from emovec.studies.stability import STUDY, stability_curve, write_curve

    numbers = [int(c) for c in _numbers(counts, int, "--counts")]
    lm = _load(model, device, dtype)
    keys = list(KEY_VECTORS.values())
    pool = pool_emotions(load_corpus().emotions(), keys, background, seed)
    curve = stability_curve(lm, keys, pool, study_layer(lm) if layer is None else layer, counts=numbers,
                            n_splits=n_splits, seed=seed, log=_say, show_progress=True)
    path = out_file or Path("runs/stability") / f"{model.replace('/', '_')}.json"
    write_curve(curve, path, overwrite=overwrite)
    _finish(STUDY.answer(curve), None)
    err.print(f"written: {path}")


@study_app.command("drift")
@friendly
@with_executor()
def drift(
    preset: Annotated[str, typer.Option(help="quick (about 15 minutes on 2 cores) or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/drift"),
    model: Annotated[str | None, typer.Option("--model", "-m", help="comma-separated models (default: the preset's; "
                                                                    "several: one study each in OUT/<model>/)")] = None,
    seeds: Annotated[str | None, typer.Option(help="comma-separated seeds (default: the preset's)")] = None,
    learning_rates: Annotated[str | None, typer.Option(
        help="comma-separated learning rates: one run per rate, regime and seed (default: the preset's one)")] = None,
    early_steps: Annotated[str | None, typer.Option(
        help="comma-separated steps measured before the first save (default: the preset's; 'none' for none)")] = None,
    where: ExecutorOptions | None = None,
) -> None:
    """Fine-tune on each safety regime with a drift monitor; did the indices move before the external evals
    regressed, and how well do they separate regressed from healthy checkpoints? With --executor ray the runs
    are Ray Tune trials."""
    from emovec.studies.drift.study import PRESETS, STUDY, DriftStudyError, run_drift_study

    _check_preset(preset, PRESETS, DriftStudyError)
    p = PRESETS[preset].model_copy(update={
        **({"seeds": _numbers(seeds, int, "--seeds")} if seeds else {}),
        **({"learning_rates": _numbers(learning_rates, float, "--learning-rates")} if learning_rates else {}),
        **({"early_steps": [] if early_steps.strip().lower() == "none" else _numbers(early_steps, int, "--early-steps")}
           if early_steps else {})})
    names = _names(model) or tuple(p.models)
    assert STUDY.report is not None
    for name in names:
        folder = out_dir if len(names) == 1 else out_dir / name.replace("/", "_")
        result = run_drift_study(p, folder, model=name, on_progress=_say, executor=where, show_progress=True)
        _finish(STUDY.answer(result), STUDY.report(folder, result))


@study_app.command("cross-model")
@friendly
@with_executor()
def cross_model(
    preset: Annotated[str, typer.Option(help="quick or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/cross"),
    models: Annotated[str | None, typer.Option(help="comma-separated models, three or more (default: the "
                                                    "three packaged ones); a fine-tuned variant as "
                                                    "BASE+ADAPTER_FOLDER")] = None,
    where: ExecutorOptions | None = None,
) -> None:
    """Is there a small emotion basis shared across models whose readings predict tone-masked safety failures
    on a model it never saw? Leave-one-model-out, with light adaptation and baselines. With --executor ray each
    model's reading (directions, stimuli, red-team replies in batches) runs on a pool of its replicas."""
    from emovec.studies import DEFAULT_MODELS
    from emovec.studies.cross_model import PRESETS, STUDY, CrossModelError, run_cross_model_study

    _check_preset(preset, PRESETS, CrossModelError)
    result = run_cross_model_study(_names(models) or DEFAULT_MODELS, preset, out_dir, say=_say, executor=where,
                                   show_progress=True)
    assert STUDY.report is not None
    _finish(STUDY.answer(result), STUDY.report(out_dir, result))


@study_app.command("robustify")
@friendly
@with_executor()
def robustify(
    preset: Annotated[str, typer.Option(help="quick or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/robust"),
    model: ModelOpt = "smollm2-135m-instruct",
    where: ExecutorOptions | None = None,
) -> None:
    """Directions optimised for safety and for their emotional meaning, against naive emotion steering and
    metric-only directions, at the same strength, on held-out suites. With --executor ray the arms are
    evaluated on a pool of model replicas, one arm per worker (the optimisations run here)."""
    from emovec.studies.robustify import PRESETS, STUDY, RobustifyError, run_robustify_study

    _check_preset(preset, PRESETS, RobustifyError)
    result = run_robustify_study(preset, out_dir, model=model, say=_say, executor=where, show_progress=True)
    assert STUDY.report is not None
    _finish(STUDY.answer(result), STUDY.report(out_dir, result))


@study_app.command("paper")
@friendly
@with_executor()
def paper(
    vectors: Annotated[Path, typer.Option(help="a vector set folder (e.g. runs/demo)")],
    preset: Annotated[str, typer.Option(help="quick (under 15 minutes on 2 cores) or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/paper"),
    model: ModelOpt = "smollm2-135m-instruct",
    where: ExecutorOptions | None = None,
) -> None:
    """The paper's experiments: intensity templates, top-activating human text, activity preferences, and
    steering that moves preferences. With --executor ray each steered direction's preference read runs on a
    pool of model replicas."""
    from emovec.studies.paper import PRESETS, STUDY, PaperError, run_paper_study
    from emovec.vectors.vector_set import VectorSet

    _check_preset(preset, PRESETS, PaperError)
    check_available(where)
    vs = VectorSet.load(vectors)
    lm = _load(model, None, None)
    result = run_paper_study(lm, vs, preset, executor=where, show_progress=True)
    assert STUDY.report is not None
    _finish(STUDY.answer(result), STUDY.report(out_dir, result))
