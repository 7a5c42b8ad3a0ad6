"""Non-emotional control directions, made the same way as any concept vector (contrastive extraction):

- ``refusal``: difference of means between harmful and benign requests, chat-formatted, at the last prompt
  token (Arditi et al. 2024). Fitted on the odd-numbered pairs of each category of the project's paired
  suite (50 pairs); sweeps mark rows whose prompt was used to fit it.
- ``harm_salience``: sentences describing harm or danger against matched harmless sentences.
- ``caution``: generic caution and hedging advice against matched plain statements.
- ``uncertainty``: epistemically uncertain, hedged claims against overconfident claims about the same thing.
- ``warmth``: prosocial, caring replies against detached, indifferent replies about the same matter.
- ``random``: a seeded Gaussian direction per layer; steered at the same strength it has the same norm.

They are added to a copy of the emotion vector set, so steering strengths share its unit (the mean
residual norm of each layer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import torch

from emovec.capture import TokenSelection
from emovec.data import data_path
from emovec.evaluation.suite_items import CONTROL_CONCEPTS, SAFETY_CONTROLS
from emovec.evaluation.suites import benign_suite, harmful_suite
from emovec.models.loading import LoadedModel
from emovec.models.prompts import format_prompt
from emovec.vectors.extract import extract_concepts
from emovec.vectors.vector_set import VectorSet

__all__ = ["CONTROL_CONCEPTS", "SAFETY_CONTROLS", "add_directions", "control_directions", "control_texts",
           "random_direction", "refusal_fit_ids"]


def refusal_fit_ids() -> set[str]:
    """Pair ids (``<category>-<nn>``) used to fit the refusal direction: the odd-numbered pair of each category."""
    return {i.id[:-2] for i in harmful_suite().items if int(i.id.split("-")[-2]) % 2 == 1}


def control_texts(lm: LoadedModel, name: str) -> tuple[list[str], list[str]]:
    """Positive and negative texts of a control concept."""
    if name == "refusal":
        fit = refusal_fit_ids()
        pos = [format_prompt(lm, i.prompt) for i in harmful_suite().items if i.id[:-2] in fit]
        neg = [format_prompt(lm, i.prompt) for i in benign_suite().items if i.id[:-2] in fit]
        return pos, neg
    table = json.loads(data_path("suites/controls.json").read_text(encoding="utf-8"))
    if name not in table:
        raise KeyError(f"unknown control {name!r}; known: {', '.join(CONTROL_CONCEPTS)}")
    pairs = table[name]["pairs"]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def random_direction(vectors: VectorSet, seed: int) -> torch.Tensor:
    """``[n_layers, d_model]`` seeded Gaussian directions (norm 1 after steering's normalisation)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(len(vectors.layers), vectors.d_model, generator=g)


def add_directions(vectors: VectorSet, extra: dict[str, torch.Tensor]) -> VectorSet:
    """A copy of ``vectors`` with more named directions (each ``[n_layers, d_model]``), same layers and norms."""
    if not extra:
        return vectors
    clash = [n for n in extra if n in vectors.names]
    if clash:
        raise ValueError(f"{clash[0]!r} is already in the vector set")
    stacked = torch.stack([extra[n].float() for n in extra], dim=1)
    if tuple(stacked.shape) != (len(vectors.layers), len(extra), vectors.d_model):
        raise ValueError(f"extra directions must be [n_layers, d_model]; got {tuple(stacked.shape)}")
    return replace(vectors, names=(*vectors.names, *extra), directions=torch.cat([vectors.directions, stacked], 1))


def control_directions(lm: LoadedModel, vectors: VectorSet, controls: Sequence[str],
                       random_seeds: Sequence[int] = ()) -> dict[str, torch.Tensor]:
    """``{"concept:<name>": [n_layers, d], "random:<seed>": [n_layers, d]}`` at the vector set's layers."""
    out: dict[str, torch.Tensor] = {}
    if controls:
        concepts = {name: control_texts(lm, name) for name in controls}
        fitted = extract_concepts(lm, concepts, layers=list(vectors.layers), selection=TokenSelection.last())
        for name in controls:
            out[f"concept:{name}"] = fitted.directions[:, fitted.index(name)]
    for seed in random_seeds:
        out[f"random:{seed}"] = random_direction(vectors, seed)
    return out
