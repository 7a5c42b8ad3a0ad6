from __future__ import annotations

import numpy as np
import pytest
import torch

from emovec.validation.external import Snippet, sample_snippets
from emovec.validation.valence_probe import DEV_PER_SUBSET, DEV_SEED, held_out, valence_probe


def _stories(n_per: int = 40, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, list[str], dict[str, int]]:
    g = torch.Generator().manual_seed(seed)
    labels = [e for e in ("glad", "proud", "sad", "angry", "curious") for _ in range(n_per)]
    polarity = {"glad": 1, "proud": 1, "sad": -1, "angry": -1}  # "curious" has no polarity and is left out
    sign = torch.tensor([polarity.get(e, 0) for e in labels], dtype=torch.float32)
    acts = torch.randn(len(labels), d, generator=g)
    acts[:, 3] += 2.0 * sign  # valence lives on dimension 3
    acts[:, 5] += 10.0 * torch.randn(len(labels), generator=g)  # a loud nuisance dimension
    return acts, labels, polarity


def test_probe_reads_valence_and_orders_new_activations():
    acts, labels, polarity = _stories()
    summary, weights = valence_probe(acts, labels, polarity, layer=7)
    assert summary.n_positive == 80 and summary.n_negative == 80 and summary.layer == 7
    assert summary.train_accuracy > 0.8
    assert np.argmax(np.abs(weights)) == 3 and weights[3] > 0  # signed: positive stories score high
    g = torch.Generator().manual_seed(1)
    fresh = torch.randn(200, 16, generator=g)
    truth = fresh[:, 3].numpy()
    assert np.corrcoef(fresh.double().numpy() @ weights, truth)[0, 1] > 0.6  # C 1e-3 spreads some weight


def test_probe_refuses_too_few_stories_of_one_polarity():
    acts, labels, polarity = _stories(n_per=5)
    with pytest.raises(ValueError, match="needs 20 of each"):
        valence_probe(acts, labels, polarity, layer=7)


def test_held_out_drops_exactly_the_development_sample():
    rng = np.random.default_rng(0)
    snippets = [Snippet(sub, f"{sub} {i}", float(v)) for sub in ("tweets", "movie", "nyt", "amazon")
                for i, v in enumerate(rng.normal(0, 1, 400))]
    kept = held_out(snippets)
    dev = sample_snippets(snippets, DEV_PER_SUBSET, DEV_SEED)
    assert len(kept) == len(snippets) - len(dev) == 4 * (400 - DEV_PER_SUBSET)
    assert not {s.text for s in kept} & {s.text for s in dev}
