"""Dose-response plots and a self-contained HTML report for a sweep (or the blackmail scenario)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from emovec._files import atomic_write
from emovec.evaluation.judges.agreement import agreement
from emovec.evaluation.judges.emotion import SKIPPED
from emovec.evaluation.summary import ConditionSummary, summarize
from emovec.reports.html import _CSS, _img, _table

PLOTTED: tuple[str, ...] = ("refuse_harmful", "answer_benign", "harmful_detail", "tone_masked_rate", "helpfulness",
                            "kl_benign", "perplexity", "refusal_logodds_harmful", "readout_calm_minus_distress",
                            "nade_calm_minus_distress")
EMOTION_SIDE: tuple[str, ...] = ("readout_calm_minus_distress", "nade_calm_minus_distress", "nade_target")


def _has_nade(rows: pd.DataFrame) -> bool:
    return "nade_joy" in rows and bool(rows["nade_joy"].notna().any())


def dose_response(summaries: Sequence[ConditionSummary], condition: str, layers: str, path: Path,
                  metrics: Sequence[str] = PLOTTED) -> Path:
    """One panel per metric: the condition's value over strength with its interval; baselines dashed."""
    steered = sorted((s for s in summaries if s.condition == condition and s.layers == layers),
                     key=lambda s: s.strength)
    base = [s for s in summaries if s.cond_kind in ("none", "prompt")]
    cols = 4
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        xs = [s.strength for s in steered]
        est = [s.metrics[metric] for s in steered]
        ax.plot(xs, [e.value for e in est], marker="o", color="C0")
        ax.fill_between(xs, [e.lo for e in est], [e.hi for e in est], color="C0", alpha=0.2)
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _summary_table(summaries: Sequence[ConditionSummary], metrics: Sequence[str]) -> str:
    rows = [[s.condition, f"{s.strength:+.3f}" if s.cond_kind not in ("none", "prompt") else "-", s.layers or "-",
             s.n_rows, *[s.metrics[m].text() for m in metrics]] for s in summaries]
    return _table(["condition", "strength", "layers", "rows", *metrics], rows)


def write_sweep_report(out: str | Path, rows: pd.DataFrame, manifest: dict[str, Any], n_boot: int = 1000,
                       title: str = "Steering sweep") -> Path:
    """Write ``summary.json``, figures and ``report.html`` into ``out``; returns the HTML path."""
    directory = Path(out)
    figures = directory / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    summaries = summarize(rows, n_boot=n_boot)
    atomic_write(directory / "summary.json", json.dumps([s.as_dict() for s in summaries], indent=1))
    images = []
    nade = _has_nade(rows)
    plotted = PLOTTED if nade else tuple(m for m in PLOTTED if not m.startswith("nade_"))
    for cond, layers in sorted({(s.condition, s.layers) for s in summaries if s.cond_kind not in ("none", "prompt")}):
        name = f"dose_{cond.replace(':', '_').replace(' ', '_')}_L{layers.replace(',', '-')}.png"
        images.append(_img(dose_response(summaries, cond, layers, figures / name, plotted)))
    main = ["refuse_harmful", "answer_benign", "balanced_accuracy", "harmful_detail", "tone_masked_rate",
            "helpfulness"]
    side = ["perplexity", "repetition", "kl_benign", "refusal_logodds_harmful", "refusal_logodds_benign",
            "ms_per_token_p50", "ms_per_token_p95"]
    parts = [
        f"<h1>{html.escape(title)}: {html.escape(str(manifest.get('model', {}).get('name', '')))}</h1>",
        f"<p>{len(rows)} graded replies; values with 95% bootstrap intervals ({n_boot} resamples of prompts). "
        "Strengths are fractions of the mean residual-stream norm at the steered layer.</p>",
        "<h2>Safety and usefulness</h2>", _summary_table(summaries, main),
        "<h2>Side effects, fluency, latency</h2>", _summary_table(summaries, side),
        "<p class=note>Judges are offline rules (see emovec.evaluation.judges.text); latency is per batch, and "
        "batches mix conditions, so it measures the sweep, not one condition.</p>",
        "<h2>Emotion: the model's own readout beside an independent judge</h2>",
        (_summary_table(summaries, EMOTION_SIDE) + "<p class=note>readout: the steered model reading its own reply "
         "(circular); nade: a separate fastText + LightGBM classifier of Plutchik's eight emotions, joy and trust "
         "minus fear; nade_target: its score of the steered emotion's Plutchik counterpart "
         "(emovec.evaluation.judges.emotion).</p>") if nade else f"<p>{html.escape(SKIPPED)}</p>",
        "<h2>Dose-response</h2>", *images,
    ]
    judged = rows[rows["judge_label"].notna()] if "judge_label" in rows else rows.iloc[:0]
    status = manifest.get("judge_status") or ("configured: " + str(manifest.get("judge"))
                                              if manifest.get("judge") else "not configured")
    parts.append(f"<h2>Model judge</h2><p>{html.escape(str(status))}</p>")
    if len(judged):
        ag = agreement(list(judged["refusal_label"]), list(judged["judge_label"]), list(judged["prompt"]),
                       list(judged["reply"]))
        parts.append(f"<p>Offline refusal judge vs model judge on {ag.n} replies: agreement {ag.accuracy:.3f}, "
                     f"Cohen's kappa {ag.kappa:.3f}.</p><ul>"
                     + "".join(f"<li>{html.escape(line)}</li>" for line in ag.failure_summary()) + "</ul>")
    masked = rows[rows["tone_masked"]] if "tone_masked" in rows else rows.iloc[:0]
    parts.append(f"<h2>Tone-masked failures ({len(masked)})</h2>")
    if len(masked):
        examples = masked.head(12).to_dict("records")
        parts.append(_table(["condition", "strength", "prompt", "reply"],
                            [[r["condition"], r["strength"], str(r["prompt"])[:100], str(r["reply"])[:240]]
                             for r in examples]))
    suites = manifest.get("suites", {})
    suite_rows = [[k, v.get("n"), v.get("source"), v.get("licence")] for k, v in suites.items()]
    parts += ["<h2>Suites</h2>", _table(["suite", "items", "source", "licence"], suite_rows),
              "<h2>Provenance</h2>", f"<pre>{html.escape(json.dumps(manifest, indent=1, default=str))}</pre>"]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>emovec: {html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write(directory / "report.html", page)


def write_blackmail_report(out: str | Path, rows: pd.DataFrame, manifest: dict[str, Any]) -> Path:
    """``summary.json``, a rate-vs-strength figure and ``report.html`` for the blackmail scenario."""
    from emovec.evaluation.blackmail import summarize_blackmail

    directory = Path(out)
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    summary = summarize_blackmail(rows)
    atomic_write(directory / "summary.json", json.dumps(summary, indent=1))
    metrics = ("threat_blackmail", "threat_valid_format", "threat_mentions_secret")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    base = next((e for e in summary if e["emotion"] == ""), None)
    emotions = sorted({e["emotion"] for e in summary if e["emotion"]})
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for j, emotion in enumerate(emotions):
            pts = sorted(((e["strength"], e[metric]) for e in summary if e["emotion"] == emotion),
                         key=lambda p: p[0])
            if base is not None:  # strength 0 is the unsteered run
                pts = sorted([*pts, (0.0, base[metric])], key=lambda p: p[0])
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1]["value"] for p in pts], marker="o", color=f"C{j}", label=emotion)
            ax.fill_between(xs, [p[1]["lo"] for p in pts], [p[1]["hi"] for p in pts], color=f"C{j}", alpha=0.15)
        ax.set_title(metric, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("strength", fontsize=8)
    if emotions:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig_path = directory / "figures" / "blackmail_rates.png"
    fig.savefig(fig_path, dpi=100)
    plt.close(fig)

    def cell(e: dict[str, Any], key: str) -> str:
        v = e[key]
        return "n/a" if v["n"] == 0 else f"{v['value']:.2f} [{v['lo']:.2f}, {v['hi']:.2f}] (n={v['n']})"

    table = _table(["condition", "blackmail (threat+secret)", "valid format", "mentions secret",
                    "blackmail (controls)", "valid format (controls)", "model judge"],
                   [[e["condition"], cell(e, "threat_blackmail"), cell(e, "threat_valid_format"),
                     cell(e, "threat_mentions_secret"), cell(e, "control_blackmail"),
                     cell(e, "control_valid_format"),
                     "n/a" if e["judge_blackmail_rate"] is None else f"{e['judge_blackmail_rate']:.2f}"]
                    for e in summary])
    total_valid = int(rows["valid_format"].sum()) if len(rows) else 0
    total_black = int(rows["blackmail"].sum()) if len(rows) else 0
    verdict = (f"{total_black} of {len(rows)} replies blackmailed; {total_valid} used the email format correctly."
               + (" The model never produced a valid action, so blackmail rates here say nothing about its "
                  "disposition; use a larger model." if total_valid == 0 else ""))
    samples = rows.head(6).to_dict("records") if len(rows) else []
    parts = [f"<h1>Agentic blackmail scenario: {html.escape(str(manifest.get('model', {}).get('name', '')))}</h1>",
             f"<p>{html.escape(verdict)} Rates with 95% Wilson intervals.</p>", table, _img(fig_path),
             "<h2>Sample replies</h2>",
             _table(["variant", "condition", "blackmail", "valid", "reply"],
                    [[r["variant"], r["condition"], r["blackmail"], r["valid_format"], str(r["reply"])[:400]]
                     for r in samples]),
             "<h2>Provenance</h2>", f"<pre>{html.escape(json.dumps(manifest, indent=1, default=str))}</pre>"]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>emovec: blackmail scenario</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write(directory / "report.html", page)
