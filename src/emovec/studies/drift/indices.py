"""The drift indices, each a small documented function of arrays measured at step 0 and at a checkpoint.

- **drift index**: mean over key vectors of ``1 - cos(v_t, v_0)`` between the vector re-extracted at the
  checkpoint and the one re-extracted (from the same probe stories) at step 0. 0: no rotation; 1: orthogonal.
- **caution decoupling index**: how much of the step-0 coupling between caution-like vectors and cautious
  behaviour is gone. With ``c_0`` and ``c_t`` the dose-response slopes (refusal and hedging log-odds per unit
  strength, one entry per caution-like vector and behaviour),
  ``1 - <c_t, c_0> / <c_0, c_0>``: 0 when the coupling is unchanged, 1 when it has vanished, above 1 when it
  reversed, negative when it grew.
- **emotion-bundle collapse index**: loss of distinct behavioural profiles among the key vectors. Each key
  vector's effect profile is the vector of per-prompt behaviour changes it causes when steered; the effective
  rank (exp of the entropy of the normalised singular values) of the profile matrix counts distinct profiles;
  the index is ``1 - erank_t / erank_0`` (0: as distinct as at step 0; towards 1: one shared profile). The
  mean pairwise cosine of the profiles is reported beside it.
- **activation shift**: per probe set and key vector, mean projection at the checkpoint minus at step 0, in
  units of the layer's step-0 mean residual norm.
"""

from __future__ import annotations

import numpy as np


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.where(norms > 0, norms, 1.0))


def direction_drift(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """``1 - cos`` per row of two ``[K, d]`` arrays of directions.

    Example:
        >>> direction_drift(np.eye(2), np.eye(2)).tolist()
        [0.0, 0.0]
    """
    if reference.shape != current.shape:
        raise ValueError(f"directions differ in shape: {reference.shape} vs {current.shape}")
    return np.asarray(1.0 - (_unit_rows(reference) * _unit_rows(current)).sum(-1))


def drift_index(reference: np.ndarray, current: np.ndarray) -> float:
    """Mean ``direction_drift`` over the key vectors."""
    return float(direction_drift(reference, current).mean())


def caution_decoupling_index(reference: np.ndarray, current: np.ndarray) -> float:
    """``1 - <c_t, c_0> / <c_0, c_0>`` over the caution-like vectors' slopes (any shape, flattened); NaN when
    the step-0 coupling is zero.

    Example:
        >>> caution_decoupling_index(np.array([2.0, 1.0]), np.array([1.0, 0.5]))
        0.5
    """
    c0, ct = reference.ravel().astype(float), current.ravel().astype(float)
    keep = np.isfinite(c0) & np.isfinite(ct)
    denom = float(c0[keep] @ c0[keep])
    return float("nan") if denom == 0 else float(1.0 - (ct[keep] @ c0[keep]) / denom)


def effective_rank(matrix: np.ndarray) -> float:
    """exp(entropy) of the normalised singular values of a ``[K, m]`` matrix (1 to min(K, m)); 0 if all zero.

    Example:
        >>> round(effective_rank(np.eye(3)), 6)
        3.0
    """
    m = np.nan_to_num(np.asarray(matrix, dtype=float))
    s = np.linalg.svd(m, compute_uv=False)
    if s.sum() == 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def mean_profile_cosine(matrix: np.ndarray) -> float:
    """Mean pairwise cosine between the rows of ``[K, m]`` (1: every vector does the same thing)."""
    u = _unit_rows(np.nan_to_num(np.asarray(matrix, dtype=float)))
    k = len(u)
    if k < 2:
        return float("nan")
    sims = u @ u.T
    return float((sims.sum() - np.trace(sims)) / (k * (k - 1)))


def bundle_collapse_index(reference: np.ndarray, current: np.ndarray) -> float:
    """``1 - erank(current) / erank(reference)`` of the key vectors' effect profiles; NaN if the reference
    profiles are all zero."""
    r0 = effective_rank(reference)
    return float("nan") if r0 == 0 else 1.0 - effective_rank(current) / r0
