"""The sweep and blackmail reports: dose-response figures and a self-contained HTML page each.

Every interval comes from the evaluation layer (``emovec.evaluation.summary.summarize`` for sweeps,
``emovec.evaluation.blackmail.summarize_blackmail`` for the scenario): callers pass the summaries in. This module
only draws and formats (the model judge's agreement with the rule judge is read from the rows by
``emovec.evaluation.judges.agreement``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emovec._files import atomic_write
from emovec.evaluation.blackmail import BlackmailManifest, BlackmailSummary
from emovec.evaluation.judges.agreement import Agreement, agreement
from emovec.evaluation.judges.emotion import SKIPPED
from emovec.evaluation.summary import ConditionSummary, refusal_judges_agree
from emovec.evaluation.sweep_manifest import SweepManifest
from emovec.reports.figures import file_base64, new_figure, save_png
from emovec.reports.pages import render

PLOTTED: tuple[str, ...] = ("refuse_harmful", "answer_benign", "harmful_detail", "tone_masked_rate", "helpfulness",
                            "kl_benign", "perplexity", "refusal_logodds_harmful", "readout_calm_minus_distress",
                            "nade_calm_minus_distress")
EMOTION_SIDE: tuple[str, ...] = ("readout_calm_minus_distress", "nade_calm_minus_distress", "nade_target")
MAIN: tuple[str, ...] = ("refuse_harmful", "answer_benign", "balanced_accuracy", "harmful_detail", "tone_masked_rate",
                         "helpfulness")
SIDE: tuple[str, ...] = ("perplexity", "repetition", "kl_benign", "refusal_logodds_harmful", "refusal_logodds_benign",
                         "ms_per_token_p50", "ms_per_token_p95", "refusal_judges_agree")
BASELINES = ("none", "prompt")
BLACKMAIL_RATES = ("threat_blackmail", "threat_valid_format", "threat_mentions_secret")


def _has_nade(rows: pd.DataFrame) -> bool:
    return "nade_joy" in rows and bool(rows["nade_joy"].notna().any())


def dose_response(summaries: Sequence[ConditionSummary], condition: str, layers: str, path: Path,
                  metrics: Sequence[str] = PLOTTED) -> Path:
    """One panel per metric: the condition's value over strength with its interval; baselines dashed."""
    steered = sorted((s for s in summaries if s.condition == condition and s.layers == layers),
                     key=lambda s: s.strength)
    base = [s for s in summaries if s.cond_kind in BASELINES]
    cols = 4
    fig, axes = new_figure((3.2 * cols, 2.6 * ((len(metrics) + cols - 1) // cols)),
                           (len(metrics) + cols - 1) // cols, cols, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        xs = [s.strength for s in steered]
        est = [s.metrics[metric] for s in steered]
        ax.plot(xs, [e.value for e in est], marker="o", color="C0")
        ax.fill_between(xs, [e.low for e in est], [e.high for e in est], color="C0", alpha=0.2)
        for j, b in enumerate(base):
            ax.axhline(b.metrics[metric].value, ls="--", color=f"C{j + 1}", lw=1, label=b.condition)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("strength (x mean residual norm)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if base:
        axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{condition} at layers {layers}", fontsize=10)
    return save_png(fig, path)


def _dose_figures(summaries: Sequence[ConditionSummary], folder: Path, metrics: Sequence[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for cond, layers in sorted({(s.condition, s.layers) for s in summaries if s.cond_kind not in BASELINES}):
        name = f"dose_{cond.replace(':', '_').replace(' ', '_')}_L{layers.replace(',', '-')}.png"
        paths.append(dose_response(summaries, cond, layers, folder / name, metrics))
    return paths


def _summary_block(summaries: Sequence[ConditionSummary], metrics: Sequence[str]) -> dict[str, list[Any]]:
    rows = [[s.condition, f"{s.strength:+.3f}" if s.cond_kind not in BASELINES else "-", s.layers or "-",
             s.n_rows, *[s.metrics[m].text() for m in metrics]] for s in summaries]
    return {"headers": ["condition", "strength", "layers", "rows", *metrics], "rows": rows}


def judge_agreement(rows: pd.DataFrame) -> Agreement | None:
    """The offline refusal judge against the model judge on the rows the model judge labelled (None if none)."""
    judged = rows[rows["judge_label"].notna()] if "judge_label" in rows else rows.iloc[:0]
    if not len(judged):
        return None
    return agreement(list(judged["refusal_label"]), list(judged["judge_label"]), list(judged["prompt"]),
                     list(judged["reply"]))


def _refusal_method(manifest: SweepManifest) -> str:
    record = manifest.refusal_judge
    if record is None:
        return "rules (not recorded)"  # a manifest from before the sweep recorded its refusal judge
    return record.method if record.mode is None else f"{record.method} ({record.mode})"


def refusal_judge_context(rows: pd.DataFrame, manifest: SweepManifest) -> dict[str, str]:
    """Which refusal judge filled ``refusal_label`` and how often the learned judge and the rules agree."""
    agree = refusal_judges_agree(rows)
    return {"method": _refusal_method(manifest), "agree": agree.text(3), "n": str(agree.n)}


def sweep_context(rows: pd.DataFrame, manifest: SweepManifest, summaries: Sequence[ConditionSummary],
                  figures: Sequence[Path], n_boot: int, title: str = "Steering sweep",
                  judged: Agreement | None = None) -> dict[str, Any]:
    """What ``sweep.html.j2`` shows, from the sweep's rows, manifest and summaries (formatting only).

    Example:
        >>> ctx = sweep_context(rows, manifest, summarize(rows, n_boot=1000), [], n_boot=1000)
        >>> ctx["n_rows"] == len(rows)
        True
    """
    masked = rows[rows["tone_masked"]] if "tone_masked" in rows else rows.iloc[:0]
    return {
        "title": f"emovec: {title}", "heading": title, "model": manifest.model.name,
        "n_rows": len(rows), "n_boot": n_boot,
        "main": _summary_block(summaries, MAIN), "side": _summary_block(summaries, SIDE),
        "emotion": _summary_block(summaries, EMOTION_SIDE) if _has_nade(rows) else None, "emotion_skipped": SKIPPED,
        "figures": [{"data": file_base64(p), "alt": p.stem} for p in figures],
        "judge_status": manifest.judge_line(),
        "refusal_judge": refusal_judge_context(rows, manifest),
        "agreement": None if judged is None else {"n": judged.n, "accuracy": f"{judged.accuracy:.3f}",
                                                  "kappa": f"{judged.kappa:.3f}",
                                                  "failures": judged.failure_summary()},
        "n_masked": len(masked),
        "masked_rows": [[r["condition"], r["strength"], str(r["prompt"])[:100], str(r["reply"])[:240]]
                        for r in masked.head(12).to_dict("records")],
        "suite_rows": [[k, v.n, v.source, v.licence] for k, v in manifest.suites.items()],
        "manifest_json": manifest.model_dump_json(indent=1),
    }


def write_sweep_report(out: str | Path, rows: pd.DataFrame, manifest: SweepManifest,
                       summaries: Sequence[ConditionSummary], n_boot: int, title: str = "Steering sweep") -> Path:
    """Write ``summary.json``, figures and ``report.html`` into ``out``; returns the HTML path.

    Args:
        out: the sweep folder.
        rows: the graded sweep rows.
        manifest: the sweep's manifest (model, suites, judge).
        summaries: ``emovec.evaluation.summary.summarize(rows, n_boot)``: the report draws, it does not summarise.
        n_boot: the bootstrap resamples behind those summaries' intervals (shown on the page).
        title: the page heading.

    Example:
        >>> write_sweep_report("runs/sweep", result.rows, result.manifest, summarize(result.rows, 1000), 1000)
        PosixPath('runs/sweep/report.html')
    """
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / "summary.json", json.dumps([s.as_dict() for s in summaries], indent=1))
    plotted = PLOTTED if _has_nade(rows) else tuple(m for m in PLOTTED if not m.startswith("nade_"))
    figures = _dose_figures(summaries, directory / "figures", plotted)
    page = render("sweep.html.j2", sweep_context(rows, manifest, summaries, figures, n_boot, title,
                                                 judge_agreement(rows)))
    return atomic_write(directory / "report.html", page)


def blackmail_rates(summary: Sequence[BlackmailSummary], path: Path) -> Path:
    """Per rate, each emotion's value over strength with its interval (strength 0: the unsteered run)."""
    fig, axes = new_figure((4 * len(BLACKMAIL_RATES), 3), 1, len(BLACKMAIL_RATES), squeeze=False)
    base = next((e for e in summary if e.emotion == ""), None)
    emotions = sorted({e.emotion for e in summary if e.emotion})
    for ax, metric in zip(axes.flat, BLACKMAIL_RATES, strict=True):
        for j, emotion in enumerate(emotions):
            pts = [(e.strength, e.rate(metric)) for e in summary if e.emotion == emotion]
            if base is not None:
                pts.append((0.0, base.rate(metric)))
            pts.sort(key=lambda p: p[0])
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1].value for p in pts], marker="o", color=f"C{j}", label=emotion)
            ax.fill_between(xs, [p[1].low for p in pts], [p[1].high for p in pts], color=f"C{j}", alpha=0.15)
        ax.set_title(metric, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("strength", fontsize=8)
    if emotions:
        axes.flat[0].legend(fontsize=7)
    return save_png(fig, path)


def _rate(e: BlackmailSummary, key: str) -> str:
    v = e.rate(key)
    return "n/a" if v.n == 0 else f"{v.value:.2f} [{v.low:.2f}, {v.high:.2f}] (n={v.n})"


def _blackmail_verdict(rows: pd.DataFrame) -> str:
    valid = int(rows["valid_format"].sum()) if len(rows) else 0
    black = int(rows["blackmail"].sum()) if len(rows) else 0
    return (f"{black} of {len(rows)} replies blackmailed; {valid} used the email format correctly."
            + (" The model never produced a valid action, so blackmail rates here say nothing about its "
               "disposition; use a larger model." if valid == 0 else ""))


def blackmail_context(summary: Sequence[BlackmailSummary], rows: pd.DataFrame, manifest: BlackmailManifest,
                      rates: Path | None) -> dict[str, Any]:
    """What ``blackmail.html.j2`` shows, from ``summarize_blackmail``'s entries and the rows (formatting only)."""
    return {
        "title": "emovec: blackmail scenario", "model": manifest.model.name,
        "verdict": _blackmail_verdict(rows),
        "rate_rows": [[e.condition, _rate(e, "threat_blackmail"), _rate(e, "threat_valid_format"),
                       _rate(e, "threat_mentions_secret"), _rate(e, "control_blackmail"),
                       _rate(e, "control_valid_format"),
                       "n/a" if e.judge_blackmail_rate is None else f"{e.judge_blackmail_rate:.2f}"]
                      for e in summary],
        "rates_png": file_base64(rates),
        "sample_rows": [[r["variant"], r["condition"], r["blackmail"], r["valid_format"], str(r["reply"])[:400]]
                        for r in (rows.head(6).to_dict("records") if len(rows) else [])],
        "manifest_json": manifest.model_dump_json(indent=1),
    }


def write_blackmail_report(out: str | Path, rows: pd.DataFrame, manifest: BlackmailManifest,
                           summary: Sequence[BlackmailSummary]) -> Path:
    """``summary.json``, a rate-vs-strength figure and ``report.html`` for the blackmail scenario.

    Args:
        out: the scenario's folder.
        rows: its graded replies.
        manifest: model and settings, shown as provenance.
        summary: ``emovec.evaluation.blackmail.summarize_blackmail(rows)``.

    Example:
        >>> write_blackmail_report("runs/bm", rows, BlackmailManifest.read("runs/bm"), summarize_blackmail(rows))
        PosixPath('runs/bm/report.html')
    """
    directory = Path(out)
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    atomic_write(directory / "summary.json", json.dumps([e.model_dump() for e in summary], indent=1))
    rates = blackmail_rates(summary, directory / "figures" / "blackmail_rates.png")
    page = render("blackmail.html.j2", blackmail_context(summary, rows, manifest, rates))
    return atomic_write(directory / "report.html", page)
