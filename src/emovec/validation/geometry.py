"""Geometry of a vector set and what it says: principal components, implicit emotion in scenarios, logit lens."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import BaseModel
from torch import Tensor

from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection, capture
from emovec.data import Scenario, implicit_scenarios
from emovec.metrics import readout
from emovec.models.loading import LoadedModel
from emovec.vectors.vector_set import VectorSet


class ImplicitResult(BaseModel):
    """Cosine of scenario activations (rows) with the vectors of the scenarios' emotions (columns)."""

    scenarios: list[str]
    emotions: list[str]
    matrix: list[list[float]]
    rank_of_true: list[int]
    diagonal_mean: float
    off_diagonal_mean: float
    top1_rate: float


def classify(vectors: VectorSet, acts: Tensor, layer: int) -> Tensor:
    """Scores ``[n_texts, n_vectors]``: each activation's projection, after centring, on each unit direction."""
    j = vectors.layer_index(layer)
    units = torch.nn.functional.normalize(vectors.directions[j], dim=-1)
    return readout(acts, units, vectors.center[j] if vectors.center is not None else 0.0)


def pca_geometry(vectors: VectorSet, layer: int, k: int = 10) -> tuple[list[float], Tensor]:
    """Explained-variance ratios of the first ``k`` PCs of the vectors at ``layer``, and every vector's coords."""
    mat = vectors.at_layer(layer).double()
    centered = mat - mat.mean(0)
    _, sing, vh = torch.linalg.svd(centered, full_matrices=False)
    ratio = (sing**2 / (sing**2).sum()).tolist()[:k]
    coords = centered @ vh[:2].T
    # Deterministic sign: the largest-magnitude coordinate of each PC is positive.
    signs = torch.sign(coords.gather(0, coords.abs().argmax(0, keepdim=True)))
    return ratio, (coords * signs).float()


def implicit_emotion(lm: LoadedModel, vectors: VectorSet, layer: int,
                     scenarios: Sequence[Scenario] | None = None) -> ImplicitResult | None:
    """Cosine between scenario activations (every token from the third on, centred: the first position is an
    attention sink that would dominate the mean) and the vectors of the implied emotions."""
    rows = [s for s in (scenarios or implicit_scenarios()) if s.emotion in vectors.names]
    if not rows:
        return None
    res = capture(lm, [s.text for s in rows], [layer], selection=TokenSelection.from_index(FIRST_CONTENT_TOKEN))
    j = vectors.layer_index(layer)
    acts = res.means[:, 0] - (vectors.center[j] if vectors.center is not None else 0)
    acts = torch.nn.functional.normalize(acts, dim=-1)
    units = torch.nn.functional.normalize(vectors.directions[j], dim=-1)
    full = acts @ units.T  # [n_scenarios, n_vectors]
    cols = [vectors.index(s.emotion) for s in rows]
    matrix = full[:, cols]
    ranks = [int((full[i] > full[i, cols[i]]).sum()) + 1 for i in range(len(rows))]
    n = len(rows)
    off = (matrix.sum() - matrix.diagonal().sum()) / max(n * n - n, 1)
    return ImplicitResult(
        scenarios=[s.text for s in rows], emotions=[s.emotion for s in rows], matrix=matrix.tolist(),
        rank_of_true=ranks, diagonal_mean=float(matrix.diagonal().mean()), off_diagonal_mean=float(off),
        top1_rate=sum(r == 1 for r in ranks) / n,
    )


TokenLists = dict[str, list[str]]


def logit_lens(lm: LoadedModel, vectors: VectorSet, layer: int, k: int = 8) -> tuple[TokenLists, TokenLists]:
    """Tokens each direction promotes and suppresses, read through the model's final norm and unembedding."""
    j = vectors.layer_index(layer)
    with torch.inference_mode():
        dirs = vectors.directions[j].to(lm.device, lm.dtype)
        logits = lm.lm_head(lm.final_norm(dirs[None]))[0].float()
        # Remove the logits the norm gives any direction, so the ranking reflects this direction.
        logits = logits - logits.mean(0, keepdim=True)
    top = logits.topk(k, dim=-1).indices.tolist()
    bottom = (-logits).topk(k, dim=-1).indices.tolist()
    decode = lm.tokenizer.convert_ids_to_tokens
    clean = lambda ids: [t.replace("Ġ", " ").replace("▁", " ") for t in decode(ids)]  # noqa: E731
    return ({n: clean(top[i]) for i, n in enumerate(vectors.names)},
            {n: clean(bottom[i]) for i, n in enumerate(vectors.names)})


