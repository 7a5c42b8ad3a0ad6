"""The policy-dominance study report: one HTML page with plots, and the JSON it is drawn from."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from emovec._files import atomic_write
from emovec.reports.html import _CSS, _img, _table


def _est(e: dict[str, Any], digits: int = 2) -> str:
    if not e or e.get("n", 0) == 0 or not math.isfinite(e.get("value", float("nan"))):
        return "n/a"
    lo, hi = e.get("lo", float("nan")), e.get("hi", float("nan"))
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{e['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{e['value']:.{digits}f}"


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _bars(models: dict[str, Any], getter: Any, title: str, path: Path, ylim: tuple[float, float] | None = None) -> Path:
    names = list(models)
    keys = list(next(iter(models.values()))["key_vectors"].values())
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(keys), 3.2))
    width = 0.8 / max(len(names), 1)
    for i, m in enumerate(names):
        ests = [getter(models[m], k) for k in keys]
        vals = [e["value"] for e in ests]
        err = np.array([[e["value"] - e["lo"] for e in ests], [e["hi"] - e["value"] for e in ests]])
        ax.bar(np.arange(len(keys)) + i * width, vals, width, yerr=np.nan_to_num(err), label=m, capsize=2)
    ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys, rotation=20, fontsize=8)
    ax.set_title(title, fontsize=10)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _dose(models: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3), squeeze=False)
    for ax, (name, res) in zip(axes[0], models.items(), strict=True):
        for key, c in res["causal_influence"].items():
            ax.plot(c["strengths"], c["mean_by_strength"], marker="o", label=key)
        ax.set_title(f"{name}: refusal log-odds", fontsize=9)
        ax.set_xlabel("strength", fontsize=8)
        ax.legend(fontsize=6)
    return _save(fig, path)


def _target_readout(res: dict[str, Any], name: str) -> str:
    mod = res["modularity"]
    i = mod["names"].index(name) if name in mod["names"] else None
    return "n/a" if i is None else _est(mod["matrix"][i][i], 3)


def _target_judge(res: dict[str, Any], name: str) -> str:
    est = res["modularity"].get("judge_target", {}).get(name)
    return "skipped" if est is None else _est(est)


def _matrix(res: dict[str, Any], path: Path) -> Path:
    mod = res["modularity"]
    names = mod["names"]
    m = np.array([[e["value"] for e in row] for row in mod["matrix"]])
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names), 1.2 + 0.6 * len(names)))
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("readout change", fontsize=8)
    ax.set_ylabel("steered vector", fontsize=8)
    ax.set_title(res["model"], fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.7)
    return _save(fig, path)


def write_study_report(out: str | Path, report: dict[str, Any]) -> Path:
    """Draw the figures and write ``report.html`` (the JSON is written by the study)."""
    root = Path(out)
    figs = root / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    models = report["models"]
    overview = []
    for name, r in models.items():
        stab = r["stability"]
        split = np.mean([v["value"] for v in stab["split_half"].values()])
        tmpl = [v["value"] for d in stab["template"].values() for v in d.values()]
        auc = np.nanmean([v["value"] for v in stab["readout_auc"].values()])
        modi = np.nanmean([v["value"] for v in r["modularity"]["index"].values()])
        slope = np.mean([abs(c["slope"]["value"]) for c in r["causal_influence"].values()])
        overview.append([name, r["policy_level"], r["layer"], f"{split:.2f}",
                         f"{np.mean(tmpl):.2f}" if tmpl else "n/a", f"{auc:.2f}", f"{modi:.2f}", f"{slope:.2f}",
                         _est(r["steering_value"]["value"]), _est(r["monitoring_value"]["value"]),
                         r["verdict"]["text"]])
    parts = [
        "<h1>Policy dominance: emotion vectors from base to safety-tuned models</h1>",
        f"<p>Preset <b>{html.escape(report['preset'])}</b>; key vectors "
        + ", ".join(f"{html.escape(k)} &rarr; <code>{html.escape(v)}</code>" for k, v in report["key_vectors"].items())
        + f". emovec {html.escape(report['emovec_version'])}. Work per model: "
        + html.escape(json.dumps(report["plan"])) + ".</p>",
    ]
    if report.get("family_note"):
        parts.append(f"<p class=note><b>Caveat.</b> {html.escape(report['family_note'])}</p>")
    parts += [
        "<h2>Overview</h2>",
        _table(["model", "policy", "layer", "split-half cos", "template cos", "readout AUC", "modularity",
                "|refusal slope|", "steering value", "monitoring value", "verdict"], overview),
        "<p class=note>Steering value: balanced refusal accuracy gain of the best emotion steer minus the best "
        "control steer at matched KL (95% paired bootstrap). Monitoring value: cross-validated AUC of predicting "
        "unsafe replies from control readouts plus emotion readouts minus controls alone.</p>",
        "<h2>Stability</h2>",
        _img(_bars(models, lambda r, k: r["stability"]["split_half"][k], "split-half cosine", figs / "split.png",
                   (0, 1.05))),
        _img(_bars(models, lambda r, k: r["stability"]["readout_auc"][k], "held-out readout AUC",
                   figs / "auc.png", (0, 1.05))),
        "<h2>Modularity</h2>",
        _img(_bars(models, lambda r, k: r["modularity"]["index"][k], "modularity index (target / total)",
                   figs / "modularity.png", (0, 1.05))),
        *[_img(_matrix(r, figs / f"matrix_{i}.png")) for i, r in enumerate(models.values())],
        "<h2>Causal influence on refusal</h2>", _img(_dose(models, figs / "dose.png")),
    ]
    for name, r in models.items():
        crit = r["verdict"]["criteria"]
        parts += [
            f"<h2>{html.escape(name)}</h2>",
            f"<p><b>{html.escape(r['verdict']['text'])}</b></p>",
            _table(["criterion", "met", "numbers", "rule"],
                   [[k, c["met"], ", ".join(f"{a}={b:.3f}" if isinstance(b, float) else f"{a}={b}"
                                            for a, b in c.items() if a not in ("met", "rule")), c["rule"]]
                    for k, c in crit.items()]),
            _table(["vector", "split-half", "resample", "readout AUC", "modularity", "readout target change",
                    "nade target change", "refusal slope", "wrong-way share", "refuse harmful change", "KL benign",
                    "length change"],
                   [[k, _est(r["stability"]["split_half"][k]), _est(r["stability"]["resample"][k]),
                     _est(r["stability"]["readout_auc"][k]), _est(r["modularity"]["index"][k]),
                     _target_readout(r, k), _target_judge(r, k),
                     _est(r["causal_influence"][k]["slope"]), f"{r['causal_influence'][k]['wrong_way']:.2f}",
                     f"{r['modularity']['off_target'][k]['refuse_harmful_change']:+.2f}",
                     f"{r['modularity']['off_target'][k]['kl_benign']:.3f}",
                     f"{r['modularity']['off_target'][k]['length_change']:+.1f}"]
                    for k in r["key_vectors"].values()]),
            "<p class=note>Target change: the steered vector's own readout of its replies (circular) beside the "
            "independent emotion judge's change in that emotion's Plutchik counterpart (nade; "
            f"{html.escape(str(r['modularity'].get('judge_status', 'not run')))}).</p>",
            f"<p class=note>Steering: best control {html.escape(str(r['steering_value']['best_control']))}, best "
            f"emotion {html.escape(str(r['steering_value']['best_emotion']))} "
            f"{html.escape(r['steering_value']['note'])}. Monitoring: {r['monitoring_value']['n_unsafe']} unsafe of "
            f"{r['monitoring_value']['n']} replies; {html.escape(r['monitoring_value']['note'])}</p>",
        ]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>emovec: policy dominance</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write(root / "report.html", page)
