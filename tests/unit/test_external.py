from __future__ import annotations

import numpy as np
import pytest
import torch

from emovec.validation import external
from emovec.validation.external import (
    ExternalDataMissing,
    Snippet,
    correlate_subsets,
    find_vader_sdist,
    sample_snippets,
    valence_axis,
)


def test_valence_axis_finds_the_polarity_component_and_its_sign():
    g = torch.Generator().manual_seed(0)
    names = [f"w{i}" for i in range(40)]
    polarity = {n: (1 if i % 2 else -1) for i, n in enumerate(names[:30])}
    # the first PC is a nuisance (arousal-like), the second carries polarity, pointing negative words up
    nuisance = torch.randn(40, generator=g) * 5
    valence = torch.tensor([-(1.0 if i % 2 else -1.0) for i in range(40)]) * 2
    dirs = nuisance[:, None] * torch.eye(8)[0] + valence[:, None] * torch.eye(8)[1] + 0.1 * torch.randn(40, 8,
                                                                                                        generator=g)
    summary, axis = valence_axis(dirs, names, 7, polarity)
    assert summary.component == 2 and summary.word_r.value > 0.95
    assert axis[1] < -0.99  # signed so positive words score high
    assert summary.n_positive == 15 and summary.n_negative == 15
    with pytest.raises(ValueError, match="too few"):
        valence_axis(dirs, names, 7, {"w0": 1})


def test_correlate_subsets_against_random_and_sampling():
    rng = np.random.default_rng(0)
    snippets = [Snippet(sub, f"t{i}", float(v)) for sub in ("tweets", "movie") for i, v in
                enumerate(rng.normal(0, 1, 200))]
    human = np.array([s.valence for s in snippets])
    readout = human + rng.normal(0, 0.5, len(human))
    rand = rng.normal(0, 1, (len(human), 20))
    rows = correlate_subsets(snippets, readout, rand)
    assert [r.subset for r in rows] == ["tweets", "movie"]
    assert all(r.r.value > 0.8 > 0.3 > r.random_direction_p95 for r in rows) and rows[0].vader_r is None
    picked = sample_snippets(snippets, 50, seed=1)
    assert len(picked) == 100 and picked == sample_snippets(snippets, 50, seed=1)


def test_missing_data_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(external, "data_dirs", lambda: [tmp_path])
    with pytest.raises(ExternalDataMissing, match=r"pip download --no-deps --no-binary :all: vadersentiment==3\.3\.2"):
        find_vader_sdist()


def test_installed_human_rated_data_has_the_published_counts():
    try:
        snippets = external.vader_snippets()
        polarity = external.nrc_polarity()
    except ExternalDataMissing as exc:
        pytest.skip(str(exc))
    counts = {sub: sum(s.subset == sub for s in snippets) for sub in external.SUBSETS}
    assert len(snippets) == 23_703 and counts["tweets"] == 4_200 and counts["amazon"] == 3_708
    assert polarity["happy"] == 1 and polarity["afraid"] == -1
    assert all(-4 <= s.valence <= 4 for s in snippets)
