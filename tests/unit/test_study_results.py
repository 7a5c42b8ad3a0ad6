"""Every study gives the same result file as before its code moved into its own folder (issue 32): each study
runs on a tiny model (or, for the cross-model fit, synthetic models) with a small preset and a fixed seed, and its
result is compared, number by number, with the file recorded at commit d2391ea, before the move
(``tests/unit/golden/<study>.json``; the paper study's after its intensity interval moved to Fisher's z scale). A
result file of an older schema is read through the result model, as any old file is, so a figure whose interval
changed shape is compared by its numbers.

Timings (``seconds``, ``ms_per_token``) and the package version are left out. Record again only for a change
that is meant to move the numbers: ``EMOVEC_RECORD_GOLDEN=1 pytest tests/unit/test_study_results.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from emovec.studies._kit import FROM_OLDER_FILE
from tests.builders import make_set
from tests.unit.test_architecture import bound_violations

GOLDEN = Path(__file__).parent / "golden"
VOLATILE = {"seconds", "emovec_version"}  # and every latency (ms_per_token, ms_per_token_p50, ...)
TIMING = re.compile(r"[0-9.]+ ms/token")  # the latency an answer line quotes


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in VOLATILE and not k.startswith("ms_per_token")}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return TIMING.sub("- ms/token", value) if isinstance(value, str) else value


def _with_volatile(old: Any, new: Any) -> Any:
    """``old`` (recorded without the volatile fields) with them put back from ``new``, so it validates."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = {k: _with_volatile(v, new.get(k)) for k, v in old.items()}
        return {**out, **{k: v for k, v in new.items() if k not in old and (k in VOLATILE or k.startswith("ms_per_"))}}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_with_volatile(a, b) for a, b in zip(old, new, strict=True)]
    return old


def _same(new: Any, old: Any, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` (numbers within a relative 1e-6; NaN equals NaN). An interval rebuilt from
    an older file's loose bounds knows only its numbers: its count and method are not compared."""
    if isinstance(old, dict) and FROM_OLDER_FILE in str(old.get("method", "")):
        old = {k: v for k, v in old.items() if k not in ("n", "method")}
        new = {k: v for k, v in new.items() if k not in ("n", "method")} if isinstance(new, dict) else new
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{where}.{k}: missing" for k in old if k not in new]
        out += [f"{where}.{k}: added" for k in new if k not in old]
        for k in old:
            if k in new:
                out += _same(new[k], old[k], f"{where}.{k}")
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(new)} items, recorded {len(old)}"]
        return [d for i, (a, b) in enumerate(zip(new, old, strict=True)) for d in _same(a, b, f"{where}[{i}]")]
    if isinstance(old, float | int) and isinstance(new, float | int) and not isinstance(old, bool):
        if (math.isnan(old) and math.isnan(new)) or math.isclose(new, old, rel_tol=1e-6, abs_tol=1e-9):
            return []
        return [f"{where}: {new!r}, recorded {old!r}"]
    return [] if new == old else [f"{where}: {new!r}, recorded {old!r}"]


def check(name: str, result: BaseModel) -> None:
    """Compare ``result`` with the recorded file ``golden/<name>.json`` (or record it)."""
    path = GOLDEN / f"{name}.json"
    raw = result.model_dump(mode="json")  # NaN stays NaN (JSON null would not read back into a float field)
    new = _clean(raw)
    assert not bound_violations(new), bound_violations(new)[:10]  # bounded figures stay inside their bounds
    if os.environ.get("EMOVEC_RECORD_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
        return
    recorded = _with_volatile(json.loads(path.read_text()), raw)
    old = _clean(type(result).model_validate(recorded).model_dump(mode="json"))
    diff = _same(new, old)
    assert not diff, f"{name} moved from its recorded result:\n" + "\n".join(diff[:40])


def test_policy_dominance(tiny_llama, tmp_path) -> None:
    from emovec.studies.policy_dominance import ModelPlan, Preset, run_study

    preset = Preset(name="tiny", background=2, per_emotion=4, max_length=40, templates=("story", "dialogue"),
                    n_splits=10, n_seeds=3, n_boot=100, limits={"paired": 2, "helpful": 2}, max_new_tokens=3,
                    strength=1.0, dose=(-1.0, 0.0, 1.0), dose_prompts=3)
    res = run_study([ModelPlan("tiny")], preset, tmp_path, keys={"calm": "calm", "desperate": "desperate"},
                    loaded={"tiny": tiny_llama})
    assert res.report is not None
    check("policy_dominance", res.report)


def test_stability(tiny_llama, write_corpus) -> None:
    from emovec.corpus import load_corpus
    from emovec.studies.stability.curve import stability_curve

    names = ["happy", "sad", "angry", "calm"]
    corpus = load_corpus(write_corpus(emotions=tuple(names), per=8, length=24))
    check("stability", stability_curve(tiny_llama, ["happy", "calm"], names, 1, counts=(6, 4), corpus=corpus,
                                       n_splits=10))


def test_paper(tiny_llama, monkeypatch) -> None:
    from emovec.studies.paper import PaperPreset, preferences, run_paper_study
    from emovec.studies.paper import run as paper

    vocab = tiny_llama.tokenizer.get_vocab()
    monkeypatch.setattr(preferences, "_option_tokens", lambda lm: (vocab["red"], vocab["blue"]))
    monkeypatch.setattr(paper, "activities", lambda: ["water and tea", "bread and a book", "money for work",
                                                      "a warm dark phone", "the cat sat", "a red train"])
    vs = make_set(tiny_llama, names=("afraid", "calm", "sad", "happy", "angry", "blissful"), layers=(1,))
    preset = PaperPreset(name="tiny", snippets=0, chat=0, partners=2, steer_emotions=4, steer_partners=2,
                         n_random=8, n_perm=20, steer_random=3)
    check("paper", run_paper_study(tiny_llama, vs, preset))


@pytest.mark.integration  # six held-out fits with their bootstraps (about a minute on two cores)
def test_cross_model(tmp_path) -> None:
    from emovec.studies.cross_model.run import CrossPreset, _fit
    from tests.unit.test_cross_model import _models

    data = _models(shared=True)
    preset = CrossPreset(name="tiny", pcs=20, ks=[2, 4], labels=["tone_masked"], transfer_prompts=0)
    check("cross_model", _fit([d.model for d in data], data, preset, tmp_path))


def test_drift(tiny_llama, write_corpus, tmp_path) -> None:
    from emovec.corpus import load_corpus
    from emovec.studies.drift.study import DriftPreset, run_drift_study
    from emovec.vectors import extract_emotion_vectors
    from tests.unit.test_drift import KEYS, _probes

    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    preset = DriftPreset(name="tiny", regimes=["balanced", "regression"], seeds=[0], steps=2, save_steps=1,
                         early_steps=[], examples=8, batch_size=4, n_boot=50)
    check("drift", run_drift_study(preset, tmp_path, lm=tiny_llama, keys=KEYS, probes=_probes(), vectors=vectors,
                                   external=False))


@pytest.mark.integration  # optimises four directions and generates for ten arms (about 30 s on two cores)
def test_robustify(tiny_llama, write_corpus, tmp_path, monkeypatch) -> None:
    from emovec.corpus import load_corpus
    from emovec.studies.robustify import RobustPreset, run_robustify_study
    from emovec.vectors import extract_emotion_vectors

    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    monkeypatch.setattr("emovec.studies.robustify.run.load_model", lambda name: tiny_llama)
    monkeypatch.setattr("emovec.studies.robustify.run.study_vectors", lambda lm, folder, topics, **_: vectors)
    preset = RobustPreset(name="tiny", source="calm", strength=0.5, steps=3, meaning_weights=[5.0], redteam=6,
                          benign=4, helpful=4, max_new_tokens=4, n_prompts=8, val_every=2, adversarial_weights=[5.0])
    check("robustify", run_robustify_study(preset, tmp_path, model="tiny"))
