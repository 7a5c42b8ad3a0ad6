"""Fine-tuning, drift and cross-model commands of the ``emovec`` CLI (finetune-data, finetune, ladder, study
drift, study cross-model): thin shells over ``emovec.drift`` and ``emovec.studies.cross_model_run``.
Registered on the shared app when ``emovec.cli`` imports this module."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from emovec.cli_eval import study_app
from emovec.cli_shared import ModelOpt, _load, app, err, friendly, out


def _check_preset(preset: str, presets: Mapping[str, object], error: type[Exception]) -> None:
    if preset not in presets:
        raise error(f"unknown preset {preset!r}; choose {' or '.join(presets)}")


def _finish(answer: str, report: Path) -> None:
    """Print a study's answer, one line each, and where its report is."""
    for line in answer.splitlines():
        out.print(line, highlight=False)
    err.print(f"report: {report}")


@app.command("finetune-data")
@friendly
def finetune_data(
    out_file: Annotated[Path, typer.Option("--out", help="gzipped JSONL of replies")] = Path("runs/replies.jsonl.gz"),
    model: ModelOpt = "smollm2-135m-instruct",
    teacher: Annotated[str, typer.Option(help="the model that writes refusals and de-escalation ('' for none)")]
    = "qwen2.5-coder-0.5b-instruct",
    roles: Annotated[str | None, typer.Option(help="comma-separated roles (default: all)")] = None,
    per_role: Annotated[int, typer.Option(help="prompts per role")] = 96,
    overwrite: bool = False,
) -> None:
    """Write the replies the fine-tuning regimes learn from (see emovec.drift.build)."""
    from emovec.drift.build import build_replies
    from emovec.drift.data import save_replies, summary
    from emovec.errors import ArtifactExistsError

    if out_file.exists() and not overwrite:
        raise ArtifactExistsError(f"{out_file} exists; pass --overwrite to replace it")
    student = _load(model, None, None)
    writer = _load(teacher, None, None) if teacher else None
    chosen = [r.strip() for r in roles.split(",")] if roles else None
    replies = build_replies(student, writer, chosen, per_role=per_role,
                            on_role=lambda role, n: err.print(f"{role}: {n} replies kept"))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_replies(replies, out_file)
    out.print(f"{out_file}: {summary(replies)}")


@app.command()
@friendly
def finetune(
    regime: Annotated[str, typer.Argument(help="balanced, over_refusal, regression or instruct")],
    out_dir: Annotated[Path, typer.Option("--out")],
    model: ModelOpt = "smollm2-135m-instruct",
    steps: int = 600,
    save_steps: Annotated[int, typer.Option(help="checkpoint (and drift measurement) every N steps")] = 200,
    learning_rate: float = 3e-4,
    batch_size: int = 8,
    examples: int = 96,
    seed: int = 0,
    start_from: Annotated[Path | None, typer.Option(help="a peft adapter to continue training")] = None,
    vectors: Annotated[Path | None, typer.Option(help="a vector set of MODEL: watch it with a drift monitor")] = None,
    monitor_every: Annotated[int | None, typer.Option(help="also measure drift every N steps")] = None,
) -> None:
    """LoRA fine-tuning on a safety regime; resumes from OUT's checkpoints; with --vectors, a drift monitor
    writes OUT/drift/drift.jsonl at step 0, every save and the end."""
    from emovec.drift.data import REGIMES, FinetuneDataError
    from emovec.drift.finetune import FinetuneConfig
    from emovec.drift.finetune import finetune as run_finetune
    from emovec.drift.monitor import DriftMonitor
    from emovec.vectors.vector_set import VectorSet

    if regime not in REGIMES:
        raise FinetuneDataError(f"unknown regime {regime!r}; choose one of {', '.join(sorted(REGIMES))}")
    config = FinetuneConfig(regime=regime, out=out_dir, model=model, steps=steps, save_steps=save_steps,
                            learning_rate=learning_rate, batch_size=batch_size, examples=examples, seed=seed,
                            start_from=start_from)
    lm = _load(model, None, None)
    monitor = (DriftMonitor(lm, VectorSet.load(vectors), out_dir / "drift", every=monitor_every, run=regime)
               if vectors is not None else None)
    result = run_finetune(config, lm=lm, monitor=monitor, show_progress=True)
    out.print(f"adapter: {result.adapter}; examples per role {result.counts}; training {result.train_seconds:.0f} s, "
              f"drift monitor {result.monitor_seconds:.0f} s")
    for row in result.rows:
        out.print(f"step {row.step}: drift {row.drift_index:.4f}, caution decoupling {row.caution_decoupling:.2f}, "
                  f"bundle collapse {row.bundle_collapse:.2f}" + (f"  ALERT: {'; '.join(row.alerts)}" if row.alerts
                                                                 else ""), highlight=False)


@app.command()
@friendly
def ladder(
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/ladder"),
    steps: int = 120,
    examples: int = 192,
    learning_rate: float = 3e-4,
    seed: int = 0,
) -> None:
    """Build the within-family ladder (Gemma base -> instruct SFT -> safety SFT; SmolLM2 -> safety SFT) for
    `emovec study policy-dominance --ladder`."""
    from emovec.drift.ladder import build_ladder

    for rung in build_ladder(out_dir, steps=steps, examples=examples, learning_rate=learning_rate, seed=seed,
                             say=lambda m: err.print(m, highlight=False)):
        out.print(f"{rung.family}: {rung.name} ({rung.level}) -> {rung.path}", highlight=False)


@study_app.command("drift")
@friendly
def drift(
    preset: Annotated[str, typer.Option(help="quick (about 15 minutes on 2 cores) or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/drift"),
    model: ModelOpt = "smollm2-135m-instruct",
) -> None:
    """Fine-tune on each safety regime with a drift monitor; did the indices move before the external evals
    regressed, and how well do they separate regressed from healthy checkpoints?"""
    from emovec.drift.study import PRESETS, DriftStudyError, run_drift_study
    from emovec.reports.drift_report import write_drift_report

    _check_preset(preset, PRESETS, DriftStudyError)
    result = run_drift_study(preset, out_dir, model=model, on_progress=lambda m: err.print(m, highlight=False))
    for run in result.runs:
        out.print(f"{run.regime}/seed {run.seed}: first alert {run.first_alert}, first regressed checkpoint "
                  f"{run.first_regression}, lead time {run.lead_time}", highlight=False)
    for s in result.separation:
        out.print(f"AUC {s.index}: {s.auc:.2f} [{s.low:.2f}, {s.high:.2f}] "
                  f"({s.n_regressed} regressed / {s.n_healthy} healthy checkpoints)", highlight=False)
    err.print(f"report: {write_drift_report(out_dir, result)}")


@study_app.command("cross-model")
@friendly
def cross_model(
    preset: Annotated[str, typer.Option(help="quick or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/cross"),
    models: Annotated[str | None, typer.Option(help="comma-separated models, three or more (default: the "
                                                    "three packaged ones)")] = None,
) -> None:
    """Is there a small emotion basis shared across models whose readings predict tone-masked safety failures
    on a model it never saw? Leave-one-model-out, with light adaptation and baselines."""
    from emovec.reports.cross_model_report import write_cross_model_report
    from emovec.studies.cross_model_run import DEFAULT_MODELS, PRESETS, CrossModelError, run_cross_model_study

    _check_preset(preset, PRESETS, CrossModelError)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(DEFAULT_MODELS)
    result = run_cross_model_study(names, preset, out_dir, say=lambda m: err.print(m, highlight=False))
    _finish(result.answer, write_cross_model_report(out_dir, result))


@study_app.command("robustify")
@friendly
def robustify(
    preset: Annotated[str, typer.Option(help="quick or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/robust"),
    model: ModelOpt = "smollm2-135m-instruct",
) -> None:
    """Directions optimised for safety and for their emotional meaning, against naive emotion steering and
    metric-only directions, at the same strength, on held-out suites."""
    from emovec.reports.robustify_report import write_robustify_report
    from emovec.studies.robustify import PRESETS, RobustifyError, run_robustify_study

    _check_preset(preset, PRESETS, RobustifyError)
    result = run_robustify_study(preset, out_dir, model=model, say=lambda m: err.print(m, highlight=False))
    _finish(result.answer, write_robustify_report(out_dir, result))


@study_app.command("paper")
@friendly
def paper(
    vectors: Annotated[Path, typer.Option(help="a vector set folder (e.g. runs/demo)")],
    preset: Annotated[str, typer.Option(help="quick (under 15 minutes on 2 cores) or full")] = "quick",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/paper"),
    model: ModelOpt = "smollm2-135m-instruct",
) -> None:
    """The paper's experiments: intensity templates, top-activating human text, activity preferences, and
    steering that moves preferences."""
    from emovec.reports.paper_report import write_paper_report
    from emovec.studies.paper import PRESETS, PaperError, run_paper_study
    from emovec.vectors.vector_set import VectorSet

    _check_preset(preset, PRESETS, PaperError)
    vs = VectorSet.load(vectors)
    lm = _load(model, None, None)
    result = run_paper_study(lm, vs, preset, say=lambda m: err.print(m, highlight=False))
    good = sum(t.rho > t.random_p95 for t in result.intensity)
    out.print(f"intensity: {good} of {len(result.intensity)} templates beat the random-direction p95", highlight=False)
    out.print(f"steering shift vs preference r across emotions: {result.steering_r}", highlight=False)
    err.print(f"report: {write_paper_report(out_dir, result)}")
