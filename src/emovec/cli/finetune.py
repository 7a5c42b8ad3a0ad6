"""Fine-tuning commands of the ``emovec`` CLI (finetune-data, finetune, ladder): thin shells over
``emovec.finetune`` (with the drift study's monitor for ``--vectors``, and the policy-dominance study's ladder).
Registered on the shared app when ``emovec.cli`` imports this module."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from emovec.cli.shared import (
    ModelOpt,
    _load,
    app,
    err,
    friendly,
    out,
    with_executor,
)
from emovec.executors import ExecutorOptions


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
    """Write the replies the fine-tuning regimes learn from (see emovec.finetune.build)."""
    from emovec.errors import ArtifactExistsError
    from emovec.finetune.build import build_replies
    from emovec.finetune.data import save_replies, summary

    if out_file.exists() and not overwrite:
        raise ArtifactExistsError(f"{out_file} exists; pass --overwrite to replace it")
    student = _load(model, None, None)
    writer = _load(teacher, None, None) if teacher else None
    chosen = [r.strip() for r in roles.split(",")] if roles else None
    replies = build_replies(student, writer, chosen, per_role=per_role,
                            on_role=lambda role, n: err.print(f"{role}: {n} replies kept"), show_progress=True)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_replies(replies, out_file)
    out.print(f"{out_file}: {summary(replies)}")


@app.command()
@friendly
@with_executor(workers=None)
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
    where: ExecutorOptions | None = None,
) -> None:
    """LoRA fine-tuning on a safety regime; resumes from OUT's checkpoints; with --vectors, a drift monitor
    writes OUT/drift/drift.jsonl at step 0, every save and the end. With --executor ray the run is a Ray Tune
    trial on a worker that loads MODEL itself."""
    from emovec.finetune.data import REGIMES, FinetuneDataError
    from emovec.finetune.train import FinetuneConfig
    from emovec.finetune.train import finetune as run_finetune
    from emovec.finetune.trials import finetune_trial
    from emovec.studies.drift.monitor import drift_monitor
    from emovec.studies.drift.rows import read_rows

    if regime not in REGIMES:
        raise FinetuneDataError(f"unknown regime {regime!r}; choose one of {', '.join(sorted(REGIMES))}")
    config = FinetuneConfig(regime=regime, out=out_dir, model=model, steps=steps, save_steps=save_steps,
                            learning_rate=learning_rate, batch_size=batch_size, examples=examples, seed=seed,
                            start_from=start_from)
    monitor = (None if vectors is None else
               partial(drift_monitor, vectors=vectors, out=out_dir / "drift", every=monitor_every, run=regime))
    if where is not None and where.kind == "ray":
        result = finetune_trial(config, where, monitor=monitor)
    else:
        lm = _load(model, None, None)
        result = run_finetune(config, lm=lm, monitor=None if monitor is None else monitor(lm), show_progress=True)
    out.print(f"adapter: {result.adapter}; examples per role {result.counts}; training {result.train_seconds:.0f} s, "
              f"drift monitor {result.monitor_seconds:.0f} s")
    for row in read_rows(out_dir / "drift"):
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
    from emovec.studies.policy_dominance.ladder import build_ladder

    for rung in build_ladder(out_dir, steps=steps, examples=examples, learning_rate=learning_rate, seed=seed,
                             say=lambda m: err.print(m, highlight=False), show_progress=True):
        out.print(f"{rung.family}: {rung.name} ({rung.level}) -> {rung.path}", highlight=False)
