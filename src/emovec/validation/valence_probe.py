"""A valence probe trained on the corpus: the second valence readout beside the vectors' own axis.

The axis of ``external.valence_axis`` is one direction among the 171 emotion means. The probe uses every story:
a logistic regression on the stories' activations at the recommended layer, labelled by the NRC EmoLex polarity
of each story's emotion (emotions without one polarity are left out). Nothing is fitted on the VADER snippets.

Its two settings (the layer rule and ``C``) were chosen once on a seeded development sample of the snippets
(``DEV_PER_SUBSET`` per subset, seed ``DEV_SEED``); those snippets are removed from every reported valence
figure (``held_out``), so the figures are read on snippets the choice never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from torch import Tensor

from emovec.validation.external import Snippet, sample_snippets

DEV_SEED = 777
DEV_PER_SUBSET = 250
PROBE_C = 1e-3
MIN_PER_CLASS = 20


class ValenceProbe(BaseModel):
    """What the valence probe was trained on."""

    layer: int
    c: float
    n_positive: int
    n_negative: int
    train_accuracy: float
    selection: str


def held_out(snippets: Sequence[Snippet]) -> list[Snippet]:
    """The snippets outside the development sample the probe's settings were chosen on."""
    dev = {(s.subset, s.text) for s in sample_snippets(snippets, DEV_PER_SUBSET, DEV_SEED)}
    return [s for s in snippets if (s.subset, s.text) not in dev]


def valence_probe(acts: Tensor, labels: Sequence[str], polarity: dict[str, int], layer: int,
                  c: float = PROBE_C) -> tuple[ValenceProbe, np.ndarray]:
    """Fit the probe on story activations ``[n, d]`` labelled by their emotion's NRC polarity.

    Returns:
        ``(summary, weights [d])``: the readout of an activation ``a`` is ``a @ weights`` (up to a constant).

    Raises:
        ValueError: fewer than ``MIN_PER_CLASS`` stories of either polarity.
    """
    signs = np.array([polarity.get(label, 0) for label in labels])
    keep = signs != 0
    n_pos, n_neg = int((signs > 0).sum()), int((signs < 0).sum())
    if min(n_pos, n_neg) < MIN_PER_CLASS:
        raise ValueError(f"{n_pos} positive and {n_neg} negative stories; the valence probe needs "
                         f"{MIN_PER_CLASS} of each (use more emotions or topics)")
    x = acts.double().numpy()[keep]
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    clf = LogisticRegression(C=c, max_iter=5000).fit(z, signs[keep])
    summary = ValenceProbe(
        layer=layer, c=c, n_positive=n_pos, n_negative=n_neg, train_accuracy=float(clf.score(z, signs[keep])),
        selection=(f"layer rule and C chosen on {DEV_PER_SUBSET} snippets per subset (seed {DEV_SEED}), "
                   "left out of every valence figure"),
    )
    return summary, clf.coef_[0] / sd
