"""Do steering vectors carried through the cross-model alignment move a held-out model like its own vectors do?

A direction of a training model ``i`` (an emotion or control vector, in ``i``'s activation space) is carried into
the held-out model ``m`` through the shared basis: into ``i``'s whitened stimulus components, onto the shared
response by ``i``'s basis loadings, back into ``m``'s whitened components by the pseudo-inverse of ``m``'s
label-free map onto the shared response, and into ``m``'s activation space by the pseudo-inverse of its
whitening. The directions carried from every training model are averaged (as unit vectors). On ``m``, three
directions of the same norm are then steered at the study layer: ``m``'s own (*native*), the carried one
(*mapped*) and a seeded *random* one; each one's effect is the mean change of next-token refusal log-odds on the
red-team prompts, with a bootstrap interval over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emovec.evaluation.judges.model_scores import refusal_logodds
from emovec.metrics import bootstrap
from emovec.metrics.alignment import centre, gcca
from emovec.models.loading import LoadedModel
from emovec.steer import differentiable_steering
from emovec.studies.cross_model.data import ModelData
from emovec.studies.cross_model.fit import TransferShift, label_free_map, whitened_views

TRANSFER: tuple[str, ...] = ("control:refusal", "control:caution", "calm", "afraid")


def mapped_directions(data: Sequence[ModelData], m: int, pcs: int, k: int,
                      names: Sequence[str] = TRANSFER) -> dict[str, np.ndarray]:
    """Each named direction of the training models carried into model ``m``'s activation space (unit vectors,
    the mean over training models that have it; see module docs)."""
    white, views = whitened_views(data, pcs)
    train = [i for i in range(len(data)) if i != m]
    basis = gcca([centre(views[i]) for i in train], k)
    loadings, w_m = basis.w, label_free_map(views[m], basis.g)
    back = np.linalg.pinv(w_m) @ np.linalg.pinv(white[m][1])  # shared response -> m's activation space
    out: dict[str, np.ndarray] = {}
    for name in names:
        carried = []
        for n, i in enumerate(train):
            if name not in data[i].names:
                continue
            d = data[i].directions[data[i].names.index(name)].numpy().astype(np.float64)
            v = (d @ white[i][1]) @ loadings[n] @ back
            if np.linalg.norm(v) > 0:
                carried.append(v / np.linalg.norm(v))
        if carried:
            mean = np.mean(carried, axis=0)
            out[name] = mean / max(np.linalg.norm(mean), 1e-12)
    return out


def _shift(lm: LoadedModel, layer: int, direction: torch.Tensor | None, scale: float,
           prompts: Sequence[str]) -> np.ndarray:
    with torch.inference_mode():
        if direction is None:
            return refusal_logodds(lm, prompts).numpy()
        with differentiable_steering(lm, layer, direction.to(lm.device), scale):
            return refusal_logodds(lm, prompts).numpy()


def transfer_shifts(lm: LoadedModel, target: ModelData, mapped: dict[str, np.ndarray], prompts: Sequence[str],
                    strength: float, seed: int = 0, n_boot: int = 500) -> list[TransferShift]:
    """Native, mapped and random steering of ``target`` (loaded as ``lm``) at ``strength`` times the mean norm of
    its shared-stimulus activations; one ``TransferShift`` per direction ``target`` has natively."""
    scale = strength * float(target.stimuli.norm(dim=-1).mean())
    plain = _shift(lm, target.layer, None, 0.0, prompts)
    gen = torch.Generator().manual_seed(10_000 + seed)  # a stream of its own, apart from any seeded vectors
    out = []
    for name, carried in mapped.items():
        if name not in target.names:
            continue
        native = target.directions[target.names.index(name)].float()
        mapped_t = torch.from_numpy(carried).float()
        random = torch.randn(native.shape[0], generator=gen)
        effects = {kind: _shift(lm, target.layer, d, scale, prompts) - plain
                   for kind, d in (("native", native), ("mapped", mapped_t), ("random", random))}
        out.append(TransferShift(
            model=target.model, direction=name,
            cos_mapped_native=float(torch.nn.functional.cosine_similarity(native, mapped_t, dim=0)),
            **{kind: bootstrap(v, n_resamples=n_boot, seed=seed) for kind, v in effects.items()}))
    return out
