"""Study commands of the ``emovec`` CLI (study policy-dominance, stability, drift, cross-model, robustify, paper): thin
shells over ``emovec.studies`` and ``emovec.drift.study``. Registered on the shared ``study`` group when
``emovec.cli`` imports this module."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from emovec.cli.shared import (
    AddressOpt,
    DeviceOpt,
    DtypeOpt,
    ExecutorOpt,
    GpusOpt,
    ModelOpt,
    WorkersOpt,
    _load,
    err,
    executor_options,
    friendly,
    out,
    study_app,
)


def _check_preset(preset: str, presets: Mapping[str, object], error: type[Exception]) -> None:
    if preset not in presets:
        raise error(f"unknown preset {preset!r}; choose {' or '.join(presets)}")


def _finish(answer: str, report: Path) -> None:
    """Print a study's answer, one line each, and where its report is."""
    for line in answer.splitlines():
        out.print(line, highlight=False)
    err.print(f"report: {report}")


def _ladder_rungs(folder: Path, family: str | None, models: str | None) -> tuple[list[str], dict[str, str]]:
    """The rungs of one family from ``folder/ladder.json``, in training order, with their policy levels."""
    from emovec.drift.ladder import read_ladder
    from emovec.studies.policy_dominance import StudyError

    if models:
        raise StudyError("give either --models or --from-ladder, not both")
    rungs = read_ladder(folder)
    families = sorted({r.family for r in rungs})
    if family not in families:
        raise StudyError(f"--family {family!r}: the ladder at {folder} holds {', '.join(families)}")
    chosen = [r for r in rungs if r.family == family]
    return [r.path for r in chosen], {r.path: r.level for r in chosen}


@study_app.command("policy-dominance")
@friendly
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
    executor: ExecutorOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusOpt = None,
    address: AddressOpt = None,
) -> None:
    """Stability, modularity and causal influence of key emotion vectors across policy levels, and whether
    emotion steering and monitoring add safety value over non-emotional controls."""
    from emovec.studies.policy_dominance import DEFAULT_MODELS, KEY_VECTORS, PRESETS, ModelPlan, StudyError, run_study

    if preset not in PRESETS:
        raise StudyError(f"unknown preset {preset!r}; choose {' or '.join(PRESETS)}")
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(DEFAULT_MODELS)
    where = executor_options(executor, workers, gpus_per_worker, address)
    levels: dict[str, str] = {}
    if from_ladder is not None:
        names, levels = _ladder_rungs(from_ladder, family, models)
        ladder = True
        err.print("ladder rungs: " + " -> ".join(f"{n} ({lvl})" for n, lvl in levels.items()), highlight=False,
                  soft_wrap=True)
    def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for item in values or []:
            name, sep, path = item.partition("=")
            if not sep:
                raise StudyError(f"{flag} {item!r} must look like MODEL=PATH")
            if name not in names:
                raise StudyError(f"{flag} names {name!r}, which is not among the models {names}")
            found[name] = path
        return found

    given, genre = pairs(vectors, "--vectors"), pairs(dialogues, "--dialogues")
    if no_extract:
        missing = [n for n in names if n not in given]
        if missing:
            raise StudyError(f"no vectors for {missing[0]!r}: extract them (emovec extract --model {missing[0]}) and "
                             f"pass --vectors {missing[0]}=DIR, or drop --no-extract")
    plan = PRESETS[preset].plan(len(KEY_VECTORS))
    rate = {"quick": "measured once on 2 CPU cores during development: 2-7 minutes per model, 13.5 minutes for "
                     "the three default models",
            "full": "about 70x the generated tokens of quick: an estimated 2-7 hours per model on 2 CPU cores, "
                    "well under an hour on one GPU"}[preset]
    err.print(f"preset {preset}: per model {plan}; {rate}", highlight=False)
    if dry_run:
        return
    plans = [ModelPlan(n, given.get(n), genre.get(n), policy_level=levels.get(n)) for n in names]
    result = run_study(plans, preset, out_dir, ladder=ladder,
                       overwrite=overwrite, seed=seed, device=device, dtype=dtype,
                       executor=where, show_progress=True,
                       log=lambda m: err.print(m, highlight=False, soft_wrap=True, markup=False))
    for name, res in result.models.items():
        out.print(f"{name}: {res.verdict.text if res.verdict else ''}", highlight=False)
    from emovec.reports.study_report import write_study_report

    if result.report is not None:
        write_study_report(out_dir, result.report)
    err.print(f"report: {out_dir / 'report.html'} and {out_dir / 'report.json'}")


def _numbers(text: str, kind: type, flag: str) -> list[Any]:
    from emovec.drift.study import DriftStudyError

    try:
        return [kind(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise DriftStudyError(f"{flag} {text!r}: give comma-separated numbers, e.g. 0,1,2 or 1e-3,4e-3") from None


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
    from emovec.studies.policy_dominance import KEY_VECTORS, pool_emotions, study_layer
    from emovec.studies.stability_curve import stability_curve, write_curve

    numbers = [int(c) for c in _numbers(counts, int, "--counts")]
    lm = _load(model, device, dtype)
    keys = list(KEY_VECTORS.values())
    pool = pool_emotions(load_corpus().emotions(), keys, background, seed)
    curve = stability_curve(lm, keys, pool, study_layer(lm, None) if layer is None else layer, counts=numbers,
                            n_splits=n_splits, seed=seed, log=lambda m: err.print(m, highlight=False),
                            show_progress=True)
    path = out_file or Path("runs/stability") / f"{model.replace('/', '_')}.json"
    write_curve(curve, path, overwrite=overwrite)
    out.print(f"{curve.model}, layer {curve.layer}, key vectors {', '.join(keys)}", highlight=False)
    out.print(curve.table(), highlight=False)
    err.print(f"written: {path}")


@study_app.command("drift")
@friendly
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
    executor: ExecutorOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusOpt = None,
    address: AddressOpt = None,
) -> None:
    """Fine-tune on each safety regime with a drift monitor; did the indices move before the external evals
    regressed, and how well do they separate regressed from healthy checkpoints? With --executor ray the runs
    are Ray Tune trials."""
    from emovec.drift.study import PRESETS, DriftStudyError, run_drift_study
    from emovec.reports.drift_report import write_drift_report

    _check_preset(preset, PRESETS, DriftStudyError)
    p = PRESETS[preset].model_copy(update={
        **({"seeds": _numbers(seeds, int, "--seeds")} if seeds else {}),
        **({"learning_rates": _numbers(learning_rates, float, "--learning-rates")} if learning_rates else {}),
        **({"early_steps": [] if early_steps.strip().lower() == "none" else _numbers(early_steps, int, "--early-steps")}
           if early_steps else {})})
    models = [m.strip() for m in model.split(",") if m.strip()] if model else list(p.models)
    where = executor_options(executor, workers, gpus_per_worker, address)
    for name in models:
        folder = out_dir if len(models) == 1 else out_dir / name.replace("/", "_")
        result = run_drift_study(p, folder, model=name, on_progress=lambda m: err.print(m, highlight=False),
                                 executor=where, show_progress=True)
        for run in result.runs:
            lr = "" if run.learning_rate is None else f"/lr {run.learning_rate:g}"
            out.print(f"{name} {run.regime}{lr}/seed {run.seed}: first alert {run.first_alert}, first regressed "
                      f"checkpoint {run.first_regression}, lead time {run.lead_time}", highlight=False)
        for s in result.separation:
            out.print(f"{name} AUC {s.index}: {s.auc:.2f} [{s.low:.2f}, {s.high:.2f}] "
                      f"({s.n_regressed} regressed / {s.n_healthy} healthy checkpoints); step-matched "
                      f"{s.matched_auc:.2f} [{s.matched_low:.2f}, {s.matched_high:.2f}] ({s.n_pairs} pairs)",
                      highlight=False)
        err.print(f"report: {write_drift_report(folder, result)}")


@study_app.command("cross-model")
@friendly
def cross_model(
    preset: Annotated[str, typer.Option(help="quick or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/cross"),
    models: Annotated[str | None, typer.Option(help="comma-separated models, three or more (default: the "
                                                    "three packaged ones); a fine-tuned variant as "
                                                    "BASE+ADAPTER_FOLDER")] = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusOpt = None,
    address: AddressOpt = None,
) -> None:
    """Is there a small emotion basis shared across models whose readings predict tone-masked safety failures
    on a model it never saw? Leave-one-model-out, with light adaptation and baselines. With --executor ray each
    model's reading (directions, stimuli, red-team replies in batches) runs on a pool of its replicas."""
    from emovec.reports.cross_model_report import write_cross_model_report
    from emovec.studies.cross_model_run import DEFAULT_MODELS, PRESETS, CrossModelError, run_cross_model_study

    _check_preset(preset, PRESETS, CrossModelError)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(DEFAULT_MODELS)
    where = executor_options(executor, workers, gpus_per_worker, address)
    result = run_cross_model_study(names, preset, out_dir, say=lambda m: err.print(m, highlight=False),
                                   executor=where, show_progress=True)
    _finish(result.answer, write_cross_model_report(out_dir, result))


@study_app.command("robustify")
@friendly
def robustify(
    preset: Annotated[str, typer.Option(help="quick or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/robust"),
    model: ModelOpt = "smollm2-135m-instruct",
    executor: ExecutorOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusOpt = None,
    address: AddressOpt = None,
) -> None:
    """Directions optimised for safety and for their emotional meaning, against naive emotion steering and
    metric-only directions, at the same strength, on held-out suites. With --executor ray the arms are
    evaluated on a pool of model replicas, one arm per worker (the optimisations run here)."""
    from emovec.reports.robustify_report import write_robustify_report
    from emovec.studies.robustify import PRESETS, RobustifyError, run_robustify_study

    _check_preset(preset, PRESETS, RobustifyError)
    result = run_robustify_study(preset, out_dir, model=model, say=lambda m: err.print(m, highlight=False),
                                 executor=executor_options(executor, workers, gpus_per_worker, address),
                                 show_progress=True)
    _finish(result.answer, write_robustify_report(out_dir, result))


@study_app.command("paper")
@friendly
def paper(
    vectors: Annotated[Path, typer.Option(help="a vector set folder (e.g. runs/demo)")],
    preset: Annotated[str, typer.Option(help="quick (under 15 minutes on 2 cores) or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/paper"),
    model: ModelOpt = "smollm2-135m-instruct",
    executor: ExecutorOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusOpt = None,
    address: AddressOpt = None,
) -> None:
    """The paper's experiments: intensity templates, top-activating human text, activity preferences, and
    steering that moves preferences. With --executor ray each steered direction's preference read runs on a
    pool of model replicas."""
    from emovec.executors import check_available
    from emovec.reports.paper_report import write_paper_report
    from emovec.studies.paper import PRESETS, PaperError, run_paper_study
    from emovec.vectors.vector_set import VectorSet

    _check_preset(preset, PRESETS, PaperError)
    where = executor_options(executor, workers, gpus_per_worker, address)
    check_available(where)
    vs = VectorSet.load(vectors)
    lm = _load(model, None, None)
    result = run_paper_study(lm, vs, preset, executor=where, show_progress=True)
    for line in result.findings:
        out.print(line, highlight=False)
    err.print(f"report: {write_paper_report(out_dir, result)}")
