"""The robustify study end to end on a tiny model: every arm is optimised or taken as is, evaluated on the
held-out suites, and saved in the usual vector-set format."""

from __future__ import annotations

import pytest

from emovec.corpus import load_corpus
from emovec.studies.robustify import RobustPreset, run_robustify_study
from emovec.vectors import extract_emotion_vectors
from emovec.vectors.vector_set import VectorSet


@pytest.mark.integration  # optimises two directions and generates for five arms (about 10 s on two cores)
def test_every_arm_is_reported_with_its_meaning_and_the_optimised_ones_are_vector_sets(
        tiny_llama, write_corpus, tmp_path, monkeypatch) -> None:
    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    monkeypatch.setattr("emovec.models.loading.load_model", lambda name: tiny_llama)
    monkeypatch.setattr("emovec.drift.vectors.key_vectors", lambda lm, folder, topics: vectors)
    preset = RobustPreset(name="tiny", source="calm", strength=0.5, steps=2, meaning_weights=[5.0], redteam=6,
                          benign=4, helpful=4, max_new_tokens=4)
    result = run_robustify_study(preset, tmp_path, model="tiny")
    assert [a.arm for a in result.arms] == ["plain", "naive", "random", "metric-only", "robust-5"]
    by = {a.arm: a for a in result.arms}
    assert by["naive"].cos_source == pytest.approx(1.0, abs=1e-5)
    assert by["robust-5"].cos_source >= by["metric-only"].cos_source - 1e-6
    assert all(a.refusal_redteam.n == 6 and a.refusal_benign.n == 4 for a in result.arms)
    assert len(result.answer.splitlines()) == 5
    from emovec.reports.robustify_report import write_robustify_report

    page = write_robustify_report(tmp_path, result).read_text()
    assert "The answer in numbers" in page and page.count("<tr>") == 6 and "data:image/png;base64," in page
    saved = VectorSet.load(tmp_path / "robust-5" / "vectors")
    assert saved.names == ("calm~robust",) and saved.provenance.method_params["meaning"] == 5.0
