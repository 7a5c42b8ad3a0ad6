"""Modularity and causal influence of steering vectors.

Modularity. Each of K vectors is steered in turn (at one strength); its replies, and the unsteered replies to
the same prompts, are read back by the *unsteered* model and scored on all K vectors (mean over reply
tokens, centred, in units of the layer's mean norm). ``matrix[i][j]`` is the mean change in readout ``j``
when steering ``i`` (interval: bootstrap over prompts). The modularity index of vector ``i`` is
``|matrix[i][i]| / sum_j |matrix[i][j]|``: the share of the readout change that lands on the target (1 is
perfectly modular; 1/K is what an unrelated direction gives). Off-target quantities (refusal, helpfulness,
fluency, KL on benign prompts) are reported beside it from the sweep that produced the replies.

Because the readout is the steered model's own, the same replies are also scored by an independent emotion
judge (``nade``, ``emovec.evaluation.judges.emotion``): ``judge_matrix[i][k]`` is the mean change in its
score of Plutchik emotion ``PLUTCHIK[k]`` when steering ``i``, and ``judge_target[i]`` the change in the
Plutchik counterpart of vector ``i`` (``plutchik_of``; NaN for names without one), beside ``matrix[i][i]``.
Without ``nade`` both are empty and ``judge_status`` says "emotion judge skipped (install nade)".

Causal influence. The dose-response of a behaviour over strength: per prompt, the least-squares slope of the
behaviour on strength; the mean slope (bootstrap interval over prompts), the spread of per-prompt slopes
(steerability), and the share of prompts whose slope has the opposite sign to the mean (wrong way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection, capture, readable
from emovec.evaluation.judges.emotion import PLUTCHIK, emotion_judge_error, judge_emotions, plutchik_of
from emovec.evaluation.judges.model_scores import refusal_logodds
from emovec.evaluation.suites import HARMFUL_KINDS
from emovec.metrics import Estimate, bootstrap, index_bootstrap, readout, target_share
from emovec.models.loading import LoadedModel
from emovec.steer import SteeringSpec, SteerTerm
from emovec.vectors.vector_set import VectorSet


def reply_readouts(lm: LoadedModel, vectors: VectorSet, names: Sequence[str], layer: int,
                   replies: Sequence[str]) -> np.ndarray:
    """``[n_replies, K]``: each reply read by ``lm`` as it is (call it unsteered), mean over its tokens from the
    third on (the first position is an attention sink whose norm would dominate the mean), projected on the unit
    vectors from the set's centre, in units of the layer's mean norm. NaN for a reply of fewer than three tokens."""
    j = vectors.layer_index(layer)
    units = torch.nn.functional.normalize(torch.stack([vectors.vector(n, layer) for n in names]), dim=-1)
    centre = vectors.center[j] if vectors.center is not None else torch.zeros(vectors.d_model)
    out = np.full((len(replies), len(names)), np.nan)
    keep = [i for i, ok in enumerate(readable(lm, replies)) if ok]
    if keep:
        res = capture(lm, [replies[i] for i in keep], [layer],
                      selection=TokenSelection.from_index(FIRST_CONTENT_TOKEN))
        scores = readout(res.means[:, 0], units, centre, float(vectors.mean_norm[j]))
        out[keep] = scores.numpy()
    return out


@dataclass
class Modularity:
    names: list[str]
    strength: float
    matrix: list[list[Estimate]]  # [steered][read]
    index: dict[str, Estimate]
    off_target: dict[str, dict[str, float]]
    judge_status: str = "nade"
    judge_matrix: list[list[Estimate]] = field(default_factory=list)  # [steered][PLUTCHIK], nade score change
    judge_target: dict[str, Estimate] = field(default_factory=dict)
    judge_emotions: list[str] = field(default_factory=lambda: list(PLUTCHIK))  # the judge_matrix columns

    def as_dict(self) -> dict[str, Any]:
        return {"names": self.names, "strength": self.strength,
                "matrix": [[e.as_dict() for e in row] for row in self.matrix],
                "index": {k: v.as_dict() for k, v in self.index.items()}, "off_target": self.off_target,
                "judge_status": self.judge_status, "judge_emotions": self.judge_emotions,
                "judge_matrix": [[e.as_dict() for e in row] for row in self.judge_matrix],
                "judge_target": {k: v.as_dict() for k, v in self.judge_target.items()}}


def judge_scores(replies: pd.DataFrame) -> np.ndarray | None:
    """``[n, 8]`` ``nade`` scores of the rows' replies: the sweep's ``nade_*`` columns when it scored them, else
    scored now; ``None`` when ``nade`` is not installed."""
    cols = [f"nade_{e}" for e in PLUTCHIK]
    if all(c in replies for c in cols) and replies[cols].notna().any().any():
        return replies[cols].to_numpy(float)
    scores = judge_emotions([str(r) for r in replies["reply"]])
    return None if scores is None else scores.scores


def modularity_from_rows(lm: LoadedModel, vectors: VectorSet, rows: pd.DataFrame, names: Sequence[str],
                         layer: int, strength: float, n_boot: int = 1000, seed: int = 0) -> Modularity:
    """Modularity from sweep rows: unsteered (``none``) replies and each ``emotion:<name>`` at ``strength``, on
    benign and helpfulness prompts (so refusals do not dominate the readout)."""
    rng = np.random.default_rng(seed)
    quiet = rows[rows["item_kind"].isin(["benign", "helpful"])]
    base = quiet[quiet["cond_kind"] == "none"].set_index("item_id")
    if base.empty:
        raise ValueError("modularity needs unsteered ('none') rows on benign or helpfulness prompts")
    base_read = pd.DataFrame(reply_readouts(lm, vectors, names, layer, list(base["reply"])), index=base.index,
                             columns=list(names))
    matrix, index, off = [], {}, {}
    base_judge = judge_scores(base)
    judge_matrix: list[list[Estimate]] = []
    judge_target: dict[str, Estimate] = {}
    for name in names:
        sub = quiet[(quiet["condition"] == f"emotion:{name}") & np.isclose(quiet["strength"], strength)]
        sub = sub[sub["item_id"].isin(base.index)].set_index("item_id")
        if sub.empty:
            raise KeyError(f"no sweep rows steer {name!r} at strength {strength}")
        read = reply_readouts(lm, vectors, names, layer, list(sub["reply"]))
        delta = read - base_read.loc[sub.index].to_numpy()
        matrix.append([bootstrap(delta[:, k], n_resamples=n_boot, seed=rng) for k in range(len(names))])
        d = delta[np.isfinite(delta).all(1)]
        index[name] = index_bootstrap(len(d), partial(_target_share, d, list(names).index(name)),
                                      n_resamples=n_boot, seed=rng)
        steered = rows[(rows["condition"] == f"emotion:{name}") & np.isclose(rows["strength"], strength)]
        plain = rows[rows["cond_kind"] == "none"]
        off[name] = _off_target(steered, plain)
        sub_judge = judge_scores(sub) if base_judge is not None else None
        if base_judge is not None and sub_judge is not None:
            jd = sub_judge - pd.DataFrame(base_judge, index=base.index).loc[sub.index].to_numpy()
            judge_matrix.append([bootstrap(jd[:, k], n_resamples=n_boot, seed=rng) for k in range(len(PLUTCHIK))])
            basic = plutchik_of(name)
            judge_target[name] = (judge_matrix[-1][PLUTCHIK.index(basic)] if basic is not None
                                  else Estimate.missing(0, f"{name!r} has no Plutchik counterpart"))
    status = "nade" if base_judge is not None else str(emotion_judge_error())
    return Modularity(list(names), strength, matrix, index, off, status, judge_matrix, judge_target)


def _target_share(d: np.ndarray, target: int, rows: np.ndarray) -> float:
    """Share of the absolute mean readout change of the resampled ``rows`` on the steered emotion's readout."""
    return target_share(d[rows], target)


def _rate(df: pd.DataFrame, kinds: tuple[str, ...], label: str) -> float:
    sub = df[df["item_kind"].isin(kinds)]
    return float((sub["refusal_label"] == label).mean()) if len(sub) else float("nan")


def _off_target(steered: pd.DataFrame, plain: pd.DataFrame) -> dict[str, float]:
    def helpful(df: pd.DataFrame) -> float:
        sub = df[df["item_kind"] == "helpful"]
        return float(sub["helpful_correct"].mean()) if len(sub) else float("nan")

    def ppl(df: pd.DataFrame) -> float:
        v = df["perplexity"].to_numpy(float)
        v = v[np.isfinite(v) & (v > 0)]
        return float(np.exp(np.log(v).mean())) if len(v) else float("nan")

    quiet = steered[steered["item_kind"].isin(["benign", "helpful"])]
    return {
        "refuse_harmful_change": _rate(steered, HARMFUL_KINDS, "full_refusal")
        - _rate(plain, HARMFUL_KINDS, "full_refusal"),
        "answer_benign_change": _rate(steered, ("benign",), "full_compliance") - _rate(plain, ("benign",),
                                                                                         "full_compliance"),
        "helpfulness_change": helpful(steered) - helpful(plain),
        "perplexity_ratio": ppl(steered) / ppl(plain) if ppl(plain) > 0 else float("nan"),
        "kl_benign": float(quiet["kl"].mean()) if len(quiet) else float("nan"),
        "length_change": float(steered["n_new_tokens"].mean() - plain["n_new_tokens"].mean()),
        "hedges_change": float(steered["hedges"].mean() - plain["hedges"].mean()),
        "confidence_change": float(steered["confidence"].mean() - plain["confidence"].mean()),
    }


@dataclass
class CausalInfluence:
    name: str
    behaviour: str
    strengths: list[float]
    mean_by_strength: list[float]
    slope: Estimate
    slope_sd: float  # spread of per-prompt slopes (steerability differences)
    wrong_way: float  # share of prompts whose slope opposes the mean

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "behaviour": self.behaviour, "strengths": self.strengths,
                "mean_by_strength": self.mean_by_strength, "slope": self.slope.as_dict(), "slope_sd": self.slope_sd,
                "wrong_way": self.wrong_way}


def slopes(values: np.ndarray, strengths: Sequence[float]) -> np.ndarray:
    """Per-row least-squares slope of ``values`` ``[n, len(strengths)]`` on strength."""
    x = np.asarray(strengths, float)
    xc = x - x.mean()
    return np.asarray(((values - values.mean(1, keepdims=True)) * xc).sum(1) / (xc**2).sum())


def influence_from_values(name: str, behaviour: str, values: np.ndarray, strengths: Sequence[float],
                          n_boot: int = 1000, seed: int = 0) -> CausalInfluence:
    if values.shape[0] < 3:
        raise ValueError(f"causal influence needs at least 3 prompts for an interval; got {values.shape[0]}")
    s = slopes(values, strengths)
    est = bootstrap(s, n_resamples=n_boot, seed=seed)
    sign = np.sign(est.value)
    wrong = float(np.mean(np.sign(s) == -sign)) if sign != 0 else float("nan")
    return CausalInfluence(name, behaviour, [float(x) for x in strengths], values.mean(0).tolist(), est,
                           float(s.std()), wrong)


def refusal_dose_response(lm: LoadedModel, vectors: VectorSet, name: str, layer: int, prompts: Sequence[str],
                          strengths: Sequence[float], n_boot: int = 1000) -> CausalInfluence:
    """Causal influence of steering ``name`` on the next-token refusal log-odds of ``prompts``."""
    values = np.stack([refusal_logodds(lm, prompts, spec=SteeringSpec([SteerTerm(name, float(s))], layers=[layer]),
                                       vectors=vectors).numpy() if s != 0 else refusal_logodds(lm, prompts).numpy()
                       for s in strengths], axis=1)
    return influence_from_values(name, "refusal_logodds", values, strengths, n_boot)
