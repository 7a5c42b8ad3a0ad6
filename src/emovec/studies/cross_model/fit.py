"""The cross-model emotion basis study: is there a small shared basis of emotion-related directions whose
readings predict tone-masked safety failures on a model it never saw?

Method (per held-out model ``m``; every other model trains):
1. Each model's shared-stimulus activations are reduced to its top ``pcs`` whitened principal components
   (fitted on the stimuli), so widths (576, 640, 896) stop mattering.
2. A shared basis of ``k`` directions is fitted on the training models by generalised CCA over the stimuli
   (``emovec.metrics.alignment.gcca``); ``k`` is chosen by the held-out fit of the shared response
   (stimuli split in halves: mean canonical correlation between models on the half not fitted).
3. The held-out model is mapped onto the shared response **without labels**: a ridge map from its
   stimulus activations to the shared response (light adaptation of the representation only).
4. Features of a reply = its mean reply-token activation, mapped into the shared basis. A logistic head:
   (a) *no adaptation*: trained on the other models' labelled replies, applied to ``m``;
   (b) *light adaptation*: (a)'s training replies plus ``n`` labelled replies of ``m`` (n = 10, 20, 50),
       evaluated on ``m``'s other replies, averaged over draws;
   (c) *own*: a basis (top-k PCs) and probe fitted on ``m`` alone, cross-validated by request.
   Baselines: a surface-text classifier (TF-IDF words, trained on the other models' reply texts) and a random
   basis of the same size in ``m``'s own space (cross-validated like (c)).
   With no labels at all, the *mismatch score* (``mismatch_direction``: calm and self-confident high, caution and
   uncertainty low) read in ``m``'s space from its own vectors, and from the other models' vectors carried into
   ``m`` through the basis and its label-free map.
5. AUC for tone-masked failures with a bootstrap interval over requests (a request's framings move together);
   "not estimable" with the counts when a class has fewer than ``min_class`` replies.
Alignment quality between every pair of models on the stimuli: debiased CKA and mutual k-NN against their
stimulus-shuffled nulls. Each basis direction is named by its nearest emotion and control vectors in each
training model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from emovec import metrics
from emovec.metrics import Estimate
from emovec.metrics.alignment import centre, debiased_cka, gcca, mutual_knn, shuffled_null, whiten
from emovec.studies._kit import StudyResult, older_estimate
from emovec.studies.cross_model.data import ModelData

ADAPT_N: tuple[int, ...] = (10, 20, 50)


class AUC(BaseModel):
    """An AUC as a ``metrics.Estimate`` (NaN when too few replies of a class make it not estimable: ``note`` then
    says so), with the counts of each class it was measured on."""

    auc: Estimate
    n_pos: int
    n_neg: int
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_loose_bounds(cls, data: Any) -> Any:
        """Schema 2 kept the value and its bounds as loose numbers (``None`` when not estimable)."""
        if isinstance(data, dict) and "auc" not in data and "value" in data:
            est = older_estimate(data["value"], data.get("low"), data.get("high"), "AUC, bootstrap over requests",
                                 n=data["n_pos"] + data["n_neg"])
            data = {"auc": est or Estimate.missing(data["n_pos"] + data["n_neg"], data.get("note") or "not estimable"),
                    **{k: data[k] for k in ("n_pos", "n_neg", "note") if k in data}}
        return data

    @property
    def estimable(self) -> bool:
        return not math.isnan(self.auc.value)

    @property
    def value(self) -> float | None:
        """The AUC, ``None`` when not estimable."""
        return self.auc.value if self.estimable else None

    @property
    def low(self) -> float | None:
        return self.auc.low if self.estimable else None

    @property
    def high(self) -> float | None:
        return self.auc.high if self.estimable else None


class HeldOut(BaseModel):
    model: str
    label: str = "tone_masked"
    k: int
    no_adaptation: AUC
    light: dict[str, AUC]
    own: AUC
    text_baseline: AUC
    random_basis: AUC
    # label-free mismatch scores (calm and self-confident high, caution and uncertainty low; ``mismatch_direction``):
    # in the held-out model's own space from its own vectors, and through the shared basis from the other models'
    # vectors alone; no labels, no fitting on the held-out model
    mismatch_own: AUC | None = None
    mismatch_basis: AUC | None = None
    # training model -> direction -> share of its whitened norm the basis captures (captured_share); with
    # "emotions (mean)" and "random directions (mean)", the chance a direction with no relation to the basis gets
    captured: dict[str, dict[str, float]] = {}
    # model -> per basis direction, the correlation over the shared stimuli of that model's variate (its whitened
    # stimuli times its loadings) with the shared response: how strongly each model carries each direction; the
    # held-out model's row uses its label-free map
    loadings: dict[str, list[float]] = {}


class TransferShift(BaseModel):
    """One direction carried into one held-out model (``emovec.studies.cross_model.transfer``); shifts of the
    refusal log-odds, steered minus plain."""

    model: str
    direction: str
    cos_mapped_native: float
    native: metrics.Estimate
    mapped: metrics.Estimate
    random: metrics.Estimate


class PairAlignment(BaseModel):
    a: str
    b: str
    debiased_cka: float
    cka_null_p95: float
    mutual_knn: float
    knn_null_p95: float


class CrossModelResult(StudyResult):
    schema_version: int = 3  # 3: each AUC's interval is a metrics.Estimate
    models: list[str]
    label: str
    tone_judges: str = "tone markers only"  # which judges set the tone of the tone-masked label
    counts: dict[str, dict[str, int]]
    k_curve: dict[str, float]
    alignment: list[PairAlignment]
    held_out: list[HeldOut]
    basis_names: list[list[str]] = Field(default_factory=list)
    transfer: list[TransferShift] = Field(default_factory=list)  # native vs mapped vs random steering
    answer: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_schema_2(cls, data: Any) -> Any:
        """A schema-2 file reads as schema 3 (each AUC converts itself: ``AUC._from_loose_bounds``)."""
        if isinstance(data, dict) and data.get("schema_version", 3) < 3:
            return {**data, "schema_version": 3}
        return data


def auc_estimate(y: np.ndarray, score: np.ndarray, groups: Sequence[str], *, n_boot: int = 500, seed: int = 0,
                 min_class: int = 5) -> AUC:
    """AUC with a bootstrap interval over groups; not estimable below ``min_class`` of either class."""
    ok = np.isfinite(score)
    n_pos, n_neg = int(y[ok].sum()), int((1 - y[ok]).sum())
    if min(n_pos, n_neg) < min_class:
        note = f"not estimable: {n_pos} failures / {n_neg} others (need {min_class} of each)"
        return AUC(auc=Estimate.missing(n_pos + n_neg, note), n_pos=n_pos, n_neg=n_neg, note=note)
    est = metrics.auc_estimate(y, score, list(groups), n_resamples=n_boot, seed=seed, min_class=min_class)
    return AUC(auc=est, n_pos=n_pos, n_neg=n_neg)


def _fit_head(x: np.ndarray, y: np.ndarray) -> object | None:
    if len(np.unique(y)) < 2:
        return None
    return LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(x, y)


def _score(head: object | None, x: np.ndarray) -> np.ndarray:
    if head is None:
        return np.full(len(x), np.nan)
    return np.asarray(head.predict_proba(x)[:, 1])  # type: ignore[attr-defined]


def _cv_scores(x: np.ndarray, y: np.ndarray, groups: Sequence[str], folds: int = 5) -> np.ndarray:
    out = np.full(len(y), np.nan)
    for train, test in GroupKFold(n_splits=min(folds, len(set(groups)))).split(x, y, np.asarray(groups)):
        out[test] = _score(_fit_head(x[train], y[train]), x[test])
    return out


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(0), train.std(0) + 1e-8
    return [(train - mu) / sd, *[(o - mu) / sd for o in others]]


def choose_k(views: list[np.ndarray], ks: Sequence[int], seed: int = 0) -> dict[int, float]:
    """Held-out fit per k: fit the shared response on half the stimuli, map each view's other half into it by
    its loadings, and average the correlation between models' mapped components."""
    n = len(views[0])
    order = np.random.default_rng(seed).permutation(n)
    fit_rows, test_rows = order[: n // 2], order[n // 2:]
    curve = {}
    for k in ks:
        if k >= len(fit_rows) - 1:
            continue
        model = gcca([centre(v[fit_rows]) for v in views], k)
        mapped = [model.project(j, v[test_rows] - v[fit_rows].mean(0)) for j, v in enumerate(views)]
        corrs = [np.corrcoef(mapped[a][:, c], mapped[b][:, c])[0, 1] for a in range(len(views))
                 for b in range(a + 1, len(views)) for c in range(k)]
        curve[k] = float(np.nanmean(corrs))
    return curve


def _pick_k(curve: dict[int, float], tolerance: float = 0.05) -> int:
    """The largest k whose held-out fit is within ``tolerance`` of the best (more directions, no worse fit)."""
    best = max(curve.values())
    return max(k for k, v in curve.items() if v >= best - tolerance)


def alignment_pairs(data: Sequence[ModelData], pcs: int, n_perm: int = 50) -> list[PairAlignment]:
    out = []
    for i in range(len(data)):
        for j in range(i + 1, len(data)):
            a = centre(data[i].stimuli.numpy())
            b = centre(data[j].stimuli.numpy())
            out.append(PairAlignment(
                a=data[i].model, b=data[j].model, debiased_cka=debiased_cka(a, b),
                cka_null_p95=float(np.quantile(shuffled_null(debiased_cka, a, b, n_perm), 0.95)),
                mutual_knn=mutual_knn(a, b), knn_null_p95=float(np.quantile(shuffled_null(mutual_knn, a, b, n_perm),
                                                                            0.95))))
    return out


def whitened_views(data: Sequence[ModelData], pcs: int) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                                list[np.ndarray]]:
    """Every model's whitening ``(mean, W)`` of its shared-stimulus activations and its stimuli in those
    components (step 1 of the module docs)."""
    white = [whiten(d.stimuli.numpy(), pcs) for d in data]
    return white, [(d.stimuli.numpy() - white[i][0]) @ white[i][1] for i, d in enumerate(data)]


def label_free_map(view: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """A held-out model's map from its whitened stimuli onto the shared response, from the stimuli alone (ridge,
    relative to the view's mean eigenvalue; step 3 of the module docs)."""
    v = centre(view)
    ridge = 0.1 * np.trace(v.T @ v) / v.shape[1]
    return np.asarray(np.linalg.solve(v.T @ v + ridge * np.eye(v.shape[1]), v.T @ shared))


def loading_fit(view: np.ndarray, loadings: np.ndarray, shared: np.ndarray) -> list[float]:
    """Per basis direction, the correlation of a model's variate ``centre(view) @ loadings[:, c]`` with the shared
    response ``shared[:, c]`` over the stimuli (1: the model carries that direction exactly)."""
    variate = centre(view) @ loadings
    return [float(np.corrcoef(variate[:, c], shared[:, c])[0, 1]) for c in range(shared.shape[1])]


MISMATCH_HIGH: tuple[str, ...] = ("calm", "self-confident")
MISMATCH_LOW: tuple[str, ...] = ("control:caution", "control:uncertainty")


def mismatch_direction(d: ModelData) -> np.ndarray | None:
    """A model's label-free mismatch direction in its own activation space: the mean of the unit calm and
    self-confident vectors minus the mean of the unit caution and uncertainty control directions (a reply reading
    high on it sounds calm and sure while carrying little caution); None when the model lacks one of them."""
    index = {n: i for i, n in enumerate(d.names)}
    if any(n not in index for n in (*MISMATCH_HIGH, *MISMATCH_LOW)):
        return None
    unit = d.directions.double().numpy()
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    return np.asarray(np.mean([unit[index[n]] for n in MISMATCH_HIGH], axis=0)
                      - np.mean([unit[index[n]] for n in MISMATCH_LOW], axis=0))


def held_out(data: Sequence[ModelData], m: int, pcs: int, ks: Sequence[int], label: str,
             seed: int = 0, n_boot: int = 500) -> tuple[HeldOut, dict[int, float], list[str]]:
    """Leave model ``m`` out (see module docs); also returns the k curve and the basis names."""
    train = [d for i, d in enumerate(data) if i != m]
    target = data[m]
    white, views = whitened_views(data, pcs)
    train_views = [v for i, v in enumerate(views) if i != m]
    curve = choose_k(train_views, ks, seed)
    k = _pick_k(curve)
    basis = gcca([centre(v) for v in train_views], k)

    def features(i: int, loadings: np.ndarray) -> np.ndarray:
        return ((data[i].replies.numpy() - white[i][0]) @ white[i][1]) @ loadings

    train_idx = [i for i in range(len(data)) if i != m]
    x_train = np.concatenate([features(i, basis.w[n]) for n, i in enumerate(train_idx)])
    y_train = np.concatenate([getattr(data[i], label) for i in train_idx])
    # the held-out model's map onto the shared response, from its stimuli alone (ridge, no labels)
    w_m = label_free_map(views[m], basis.g)
    x_m, y_m = features(m, w_m), getattr(target, label)
    groups = target.request_ids
    xs_train, xs_m = _standardise(x_train, x_m)
    none = auc_estimate(y_m, _score(_fit_head(xs_train, y_train), xs_m), groups, seed=seed, n_boot=n_boot)
    if y_train.sum() == 0:  # nothing to learn from: say so rather than report an empty sample
        none = none.model_copy(update={"note": f"no training positives: the other models gave no {label} reply"})
    light = {str(n): _light(xs_train, y_train, xs_m, y_m, groups, n, seed, n_boot) for n in ADAPT_N
             if n < len(y_m) - 10}
    own_x = (target.replies.numpy() - white[m][0]) @ white[m][1][:, :k]
    own = auc_estimate(y_m, _cv_scores(_standardise(own_x)[0], y_m, groups), groups, seed=seed, n_boot=n_boot)
    rng = np.random.default_rng(seed)
    rand_x = target.replies.numpy() @ rng.normal(size=(target.replies.shape[1], k))
    random_basis = auc_estimate(y_m, _cv_scores(_standardise(rand_x)[0], y_m, groups), groups, seed=seed, n_boot=n_boot)
    text_scores = _text_scores([data[i] for i in train_idx], target, label)
    text = auc_estimate(y_m, text_scores, groups, seed=seed, n_boot=n_boot)
    mismatch_own = mismatch_basis = None
    own_dir = mismatch_direction(target)
    if own_dir is not None:
        mismatch_own = auc_estimate(y_m, target.replies.double().numpy() @ own_dir, groups, seed=seed, n_boot=n_boot)
    carried = []  # each training model's mismatch direction in basis coordinates, unit length
    for n, i in enumerate(train_idx):
        u = mismatch_direction(data[i])
        if u is not None:
            c = (u @ white[i][1]) @ basis.w[n]
            carried.append(c / max(float(np.linalg.norm(c)), 1e-12))
    if carried:
        mismatch_basis = auc_estimate(y_m, x_m @ np.mean(carried, axis=0), groups, seed=seed, n_boot=n_boot)
    names = name_basis(basis, train, [white[i] for i in train_idx])
    captured = _captured(data, white, basis.w, train_idx, seed)
    fits = {data[i].model: loading_fit(views[i], basis.w[n], basis.g) for n, i in enumerate(train_idx)}
    fits[f"{target.model} (held out, label-free map)"] = loading_fit(views[m], w_m, basis.g)
    return HeldOut(model=target.model, label=label, k=k, no_adaptation=none, light=light, own=own, text_baseline=text,
                   random_basis=random_basis, mismatch_own=mismatch_own, mismatch_basis=mismatch_basis,
                   captured=captured, loadings=fits), curve, names


def _light(x_train: np.ndarray, y_train: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, groups: Sequence[str],
           n: int, seed: int, n_boot: int, draws: int = 10) -> AUC:
    """Head on the training models' replies plus about ``n`` of the held-out model's (whole requests, so no framing
    of a request used for adaptation is scored); pooled scores of the rest."""
    rng = np.random.default_rng(seed)
    scores = np.zeros(len(y_m))
    counts = np.zeros(len(y_m))
    for _ in range(draws):
        pick, rest = adaptation_split(groups, n, rng)
        head = _fit_head(np.concatenate([x_train, x_m[pick]]), np.concatenate([y_train, y_m[pick]]))
        scores[rest] += _score(head, x_m[rest])
        counts[rest] += 1
    mean = np.where(counts > 0, scores / np.maximum(counts, 1), np.nan)
    return auc_estimate(y_m, mean, groups, seed=seed, n_boot=n_boot)


def adaptation_split(groups: Sequence[str], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(pick, rest)`` reply indices: whole groups (requests) drawn at random until at least ``n`` replies are
    picked, and every reply of the other groups. The replies of one request under its framings are not
    independent, so a request is either used for adaptation or scored, never both."""
    labels = np.asarray(groups)
    order = rng.permutation(np.unique(labels))
    sizes = np.array([int((labels == g).sum()) for g in order])
    taken = order[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    chosen = np.isin(labels, taken)
    return np.flatnonzero(chosen), np.flatnonzero(~chosen)


def captured_share(directions: np.ndarray, whitening: np.ndarray, loadings: np.ndarray) -> np.ndarray:
    """Per direction (rows of ``directions`` ``[m, D]``, in one model's activation space), the share of its squared
    norm in that model's whitened components (``whitening`` ``[D, p]``) that lies in the span of the basis's
    loadings for the model (``[p, k]``): 1 when the basis holds the direction, about ``k / p`` for one it ignores.
    """
    z = directions @ whitening
    q, _ = np.linalg.qr(loadings)
    total = (z**2).sum(1)
    return np.where(total > 0, ((z @ q) ** 2).sum(1) / np.where(total > 0, total, 1.0), np.nan)


def _captured(data: Sequence[ModelData], white: Sequence[tuple[np.ndarray, np.ndarray]], loadings: Sequence[np.ndarray],
              train_idx: Sequence[int], seed: int, n_random: int = 200) -> dict[str, dict[str, float]]:
    """How much of each training model's control (safety-relevant) directions the shared basis captures, beside
    the mean share of its emotion vectors and of random directions."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for n, i in enumerate(train_idx):
        d = data[i]
        dirs = d.directions.double().numpy()
        shares = captured_share(dirs, white[i][1], loadings[n])
        ctrl = [j for j, name in enumerate(d.names) if name.startswith("control:")]
        emo = [j for j, name in enumerate(d.names) if not name.startswith("control:")]
        row = {d.names[j].removeprefix("control:"): float(shares[j]) for j in ctrl}
        if emo:
            row["emotions (mean)"] = float(np.nanmean(shares[emo]))
        rand = captured_share(rng.normal(size=(n_random, dirs.shape[1])), white[i][1], loadings[n])
        row["random directions (mean)"] = float(np.nanmean(rand))
        out[d.model] = row
    return out


def _text_scores(train: Sequence[ModelData], target: ModelData, label: str) -> np.ndarray:
    texts = [t for d in train for t in d.reply_texts]
    y = np.concatenate([getattr(d, label) for d in train])
    vec = TfidfVectorizer(min_df=2, ngram_range=(1, 2))
    x = vec.fit_transform(texts)
    if len(np.unique(y)) < 2:
        return np.full(len(target.reply_texts), np.nan)

    head = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(x, y)
    return np.asarray(head.predict_proba(vec.transform(target.reply_texts))[:, 1])


def name_basis(basis: object, train: Sequence[ModelData], white: Sequence[tuple[np.ndarray, np.ndarray]],
               top: int = 3) -> list[str]:
    """For each basis direction, the nearest emotion/control vectors (by |cosine|) in each training model."""
    out = []
    w = basis.w  # type: ignore[attr-defined]
    for c in range(w[0].shape[1]):
        parts = []
        for j, d in enumerate(train):
            direction = white[j][1] @ w[j][:, c]  # back in the model's residual space
            dirs = d.directions.numpy()
            cos = dirs @ direction / (np.linalg.norm(dirs, axis=1) * np.linalg.norm(direction) + 1e-12)
            best = np.argsort(-np.abs(cos))[:top]
            parts.append(f"{d.model}: " + ", ".join(f"{d.names[b]} {cos[b]:+.2f}" for b in best))
        out.append(" | ".join(parts))
    return out
