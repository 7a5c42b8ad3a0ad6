from __future__ import annotations

import json

import pytest
import torch

from emovec.capture import capture
from emovec.corpus import load_corpus
from emovec.errors import CorpusError
from emovec.vectors import extract_concepts, extract_emotion_vectors
from emovec.vectors.extract import neutral_subspace, project_out


def test_emotion_recipe_by_hand(tiny_llama, write_corpus):
    corpus = load_corpus(write_corpus())
    ext = extract_emotion_vectors(tiny_llama, corpus, token_start=2, denoise_variance=None, topic_removal=False,
                                  show_progress=False)
    vs = ext.vectors
    assert vs.names == ("happy", "sad", "angry", "calm") and vs.layers == (0, 1, 2)
    # by hand: story means -> emotion means -> minus the mean over emotions
    stories = corpus.stories
    story_means = capture(tiny_llama, [r.text for r in stories], None,
                          selection=vs.provenance.token_selection).means
    labels = [r.emotion for r in stories]
    emo = torch.stack([story_means[[i for i, e in enumerate(labels) if e == n]].mean(0) for n in vs.names])
    expected = (emo - emo.mean(0)).transpose(0, 1)
    torch.testing.assert_close(vs.directions, expected, rtol=1e-4, atol=1e-5)
    assert ext.stories.labels == labels and ext.stories.topics == [r.topic for r in stories]
    torch.testing.assert_close(ext.stories.acts, story_means)
    prov = vs.provenance
    assert prov.token_selection.start == 2 and prov.corpus is not None and prov.corpus.n_train == 16
    assert prov.model.name == "tiny-llama" and prov.method == "emotion_mean"
    assert prov.method_params["topic_removal"] is False


def test_crossed_corpus_removes_topics_by_default(tiny_llama, write_corpus):
    corpus = load_corpus(write_corpus())
    ext = extract_emotion_vectors(tiny_llama, corpus, token_start=2, denoise_variance=None, show_progress=False)
    assert ext.design.topic_removal and ext.design.fill == 1.0 and ext.design.n_topics == 4
    info = ext.vectors.provenance.corpus
    assert info is not None and info.n_topics == 4 and info.cells_filled == info.cells_total == 16
    # balanced crossed design: removing topic means leaves the emotion means unchanged
    plain = extract_emotion_vectors(tiny_llama, corpus, token_start=2, denoise_variance=None, topic_removal=False,
                                    show_progress=False)
    torch.testing.assert_close(ext.vectors.directions, plain.vectors.directions, rtol=1e-4, atol=1e-5)


def test_missing_cells_warn_and_topics_still_removed(tiny_llama, write_corpus, tmp_path):
    path = write_corpus()
    lines = [ln for ln in path.read_text().splitlines() if '"story/happy/0"' not in ln and '"story/sad/1"' not in ln]
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="2 of 16 emotion x topic cells have no story"):
        ext = extract_emotion_vectors(tiny_llama, load_corpus(path), token_start=2, denoise_variance=None,
                                      topic_removal=True, show_progress=False)
    assert ext.design.cells_filled == 14 and ext.vectors.provenance.method_params["topic_removal"] is True


def test_design_errors(tiny_llama, write_corpus, tmp_path):
    path = write_corpus(per=2)
    lines = [ln for ln in path.read_text().splitlines() if '"story/calm/1"' not in ln]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=r"1 emotions have stories in fewer than 2 topics \(calm\)"):
        extract_emotion_vectors(tiny_llama, load_corpus(path), token_start=2, topic_removal=True, show_progress=False)
    rotating = write_corpus(per=4)
    settings = {"model": "m", "model_file_sha256": None, "model_fingerprint": "f", "story_template": "s",
                "neutral_template": "n", "max_new_tokens": 1, "temperature": 0.0, "top_p": 1.0, "seed": 0,
                "batch_size": 1, "design": "rotating"}
    rotating.with_name(rotating.name + ".meta.json").write_text(json.dumps(settings))
    corpus = load_corpus(rotating)
    assert corpus.design == "rotating"
    with pytest.raises(CorpusError, match="read as crossed but was made in the 'rotating' design"):
        extract_emotion_vectors(tiny_llama, corpus, token_start=2, topic_removal=True, show_progress=False)
    ext = extract_emotion_vectors(tiny_llama, corpus, token_start=2, show_progress=False)
    assert ext.design.topic_removal is False


def test_denoising_removes_neutral_components(tiny_llama, write_corpus):
    corpus = load_corpus(write_corpus(n_neutral=8))
    ext = extract_emotion_vectors(tiny_llama, corpus, token_start=2, denoise_variance=0.5, show_progress=False)
    neutral = capture(tiny_llama, [r.text for r in corpus.neutral], None,
                      selection=ext.vectors.provenance.token_selection).means
    for j in range(3):
        basis, k = neutral_subspace(neutral[:, j], 0.5)
        assert k == ext.denoise_components[j] >= 1
        torch.testing.assert_close(ext.vectors.directions[j] @ basis.T, torch.zeros(4, k), atol=1e-4, rtol=0)
        basis_j = ext.bases[j]
        assert basis_j is not None
        torch.testing.assert_close(basis_j, basis)


def test_skip_short_drops_and_records(tiny_llama, write_corpus, tmp_path):
    from emovec.corpus import CorpusRecord
    from emovec.validation import stories_from_corpus

    path = write_corpus(length=12)
    short = CorpusRecord(id="story/calm/9", kind="story", emotion="calm", topic="train", index=9, text="calm .")
    path.write_text(path.read_text() + short.model_dump_json() + "\n")
    corpus = load_corpus(path)
    with pytest.raises(CorpusError, match="story/calm/9"):
        extract_emotion_vectors(tiny_llama, corpus, token_start=4, show_progress=False)
    with pytest.warns(UserWarning, match=r"1 of 17 stories .*story/calm/9"):
        ext = extract_emotion_vectors(tiny_llama, corpus, token_start=4, skip_short=True, show_progress=False)
    assert ext.vectors.provenance.method_params["stories_skipped_short"] == 1
    assert len(ext.stories.labels) == 16
    with pytest.warns(UserWarning, match="1 of 17 stories"):
        again, _ = stories_from_corpus(tiny_llama, ext.vectors)
    torch.testing.assert_close(again.acts, ext.stories.acts)


def test_neutral_subspace_and_projection():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=g) * torch.tensor([10.0, 4, 1, 1, 1, 1, 1, 1])
    basis, k = neutral_subspace(x, 0.5)
    assert k == 1 and basis.shape == (1, 8)
    assert abs(basis[0, 0]) > 0.98
    v = torch.randn(3, 8, generator=g)
    torch.testing.assert_close(project_out(v, basis) @ basis.T, torch.zeros(3, 1), atol=1e-5, rtol=0)


def test_extraction_errors(tiny_llama, write_corpus):
    corpus = load_corpus(write_corpus(length=6))
    with pytest.raises(CorpusError, match=r"16 of 16 stories .*--skip-short"):
        extract_emotion_vectors(tiny_llama, corpus, token_start=50, denoise_variance=None, show_progress=False)
    corpus = load_corpus(write_corpus(length=60, neutral_length=6))
    with pytest.raises(CorpusError, match="0 neutral texts long enough"), \
            pytest.warns(UserWarning, match="6 of 6 neutral texts are not longer than the token start 50"):
        extract_emotion_vectors(tiny_llama, corpus, token_start=50, show_progress=False)
    with pytest.raises(CorpusError, match="neutral texts"):
        extract_emotion_vectors(tiny_llama, load_corpus(write_corpus(n_neutral=0)), token_start=1,
                                show_progress=False)


@pytest.mark.parametrize("method", ["mean_diff", "pca", "logistic"])
def test_contrastive_concepts(tiny_llama, method):
    pos = [f"she was happy and smiled {w}" for w in ("today", "again", "at night", "with tea", "slowly")]
    neg = [f"she was sad and cried {w}" for w in ("today", "again", "at night", "with tea", "slowly")]
    vs = extract_concepts(tiny_llama, {"joy": (pos, neg)}, method=method, layers=[1, 2])
    assert vs.names == ("joy",) and vs.layers == (1, 2) and vs.provenance.method == method
    acts = capture(tiny_llama, pos + neg, [2], selection=vs.provenance.token_selection).means[:, 0]
    proj = acts @ vs.vector("joy", 2)
    assert proj[:5].mean() > proj[5:].mean()
    with pytest.raises(CorpusError, match="positive and negative"):
        extract_concepts(tiny_llama, {"joy": (pos, [])})
