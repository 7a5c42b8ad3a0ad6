from __future__ import annotations

import pytest
import torch

from emovec.errors import CorpusError
from emovec.vectors.design import emotion_effects, summarize_design


def _unbalanced(seed: int = 0) -> tuple[torch.Tensor, list[str], list[str], torch.Tensor]:
    """Topic effects much larger than emotion effects, and emotion e0 written mostly on topic t0."""
    g = torch.Generator().manual_seed(seed)
    d, n_e, n_t = 16, 5, 6
    topic = 10 * torch.randn(n_t, d, generator=g)
    emo = torch.randn(n_e, d, generator=g)
    emo -= emo.mean(0)
    rows, es, ts = [], [], []
    for e in range(n_e):
        for t in range(n_t):
            reps = 4 if (e == 0 and t == 0) else (0 if e == 0 and t > 2 else 1)
            for _ in range(reps):
                rows.append(topic[t] + emo[e] + 0.01 * torch.randn(d, generator=g))
                es.append(f"e{e}")
                ts.append(f"t{t}")
    return torch.stack(rows), es, ts, emo


def test_topic_removal_recovers_planted_effects_where_plain_means_do_not():
    x, es, ts, truth = _unbalanced()
    names, effects, _ = emotion_effects(x, es, ts)
    assert names == [f"e{i}" for i in range(5)]
    assert (effects - truth).norm() / truth.norm() < 0.05
    _, plain, _ = emotion_effects(x, es, None)
    assert (plain - truth).norm() / truth.norm() > 0.5


def test_emotion_effects_keep_trailing_shape_and_centre():
    x, es, ts, _ = _unbalanced()
    stacked = torch.stack([x, 2 * x], dim=1)  # [n, layers, d]
    _, effects, centre = emotion_effects(stacked, es, ts)
    assert effects.shape == (5, 2, 16) and centre.shape == (2, 16)
    torch.testing.assert_close(effects.mean(0), torch.zeros(2, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(effects[:, 1], 2 * effects[:, 0], rtol=1e-4, atol=1e-4)


def test_summarize_design_counts_and_errors():
    s = summarize_design(["a", "b", "a", "b"], ["x", "x", "y", "y"])
    assert (s.n_emotions, s.n_topics, s.cells_filled, s.cells_total, s.design) == (2, 2, 4, 4, "crossed")
    with pytest.raises(CorpusError, match=r"fewer than 2 topics \(b\)"):
        summarize_design(["a", "b", "a"], ["x", "x", "y"])
    with pytest.raises(CorpusError, match="read as crossed"):
        summarize_design(["a", "b", "c", "a", "b", "c"], ["x", "y", "z", "w", "v", "u"])
    loose = summarize_design(["a", "b", "c", "a", "b", "c"], ["x", "y", "z", "w", "v", "u"], crossed=False)
    assert loose.fill == 1 / 3 and not loose.topic_removal
    with pytest.raises(CorpusError, match="no stories"):
        summarize_design([], [])
