"""The executors: local and Ray give the same sweep rows; a Ray worker killed mid-batch is retried with no lost
and no doubled result; a worker whose model cannot load fails the run with its error; no Ray, a clear message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from emovec.executors import ExecutorError, ExecutorOptions, ModelSpec, make_executor, spec_of
from emovec.executors.ray_pool import RayExecutor

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny llama saved as a Hugging Face folder, so a worker can load it by path."""
    from tests.builders import make_model, make_tokenizer

    folder = tmp_path_factory.mktemp("tiny")
    make_model("llama").save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


def _double(lm, shared, item, state):  # type: ignore[no-untyped-def]
    state["seen"] = state.get("seen", 0) + 1
    return (item * shared, lm.n_layers, state["seen"])


def test_local_executor_runs_in_order_and_keeps_state(tiny_llama):
    got: list[tuple[int, object]] = []
    ex = make_executor(None, tiny_llama)
    ex.map(_double, 10, [1, 2, 3], lambda i, r: got.append((i, r)))
    assert got == [(0, (10, 3, 1)), (1, (20, 3, 2)), (2, (30, 3, 3))]


def test_a_model_in_memory_cannot_be_sent_to_workers(tiny_llama):
    with pytest.raises(ExecutorError, match="save_pretrained"):
        make_executor(ExecutorOptions(kind="ray"), tiny_llama)


def test_ray_retries_a_killed_worker_with_no_lost_or_doubled_result(ray_local, saved_tiny: Path, tmp_path: Path):
    flag = tmp_path / "killed-once"

    def die_once(lm, shared, item, state):  # type: ignore[no-untyped-def]
        if item == 2 and not flag.exists():
            flag.write_text("x")
            os._exit(1)  # the worker process dies mid-batch
        return item * shared

    got: dict[int, list[int]] = {}
    ex = RayExecutor(ModelSpec(name=str(saved_tiny)), ExecutorOptions(kind="ray", workers=2, retries=1))
    ex.map(die_once, 3, list(range(6)), lambda i, r: got.setdefault(i, []).append(r))
    assert flag.exists()  # a worker really died
    assert got == {i: [3 * i] for i in range(6)}  # every batch exactly once


def test_ray_reports_a_worker_that_cannot_load_its_model(ray_local, tmp_path: Path):
    ex = RayExecutor(ModelSpec(name=str(tmp_path / "no-such-model")), ExecutorOptions(kind="ray", workers=1))
    with pytest.raises(ExecutorError, match="could not load"):
        ex.map(_double, 1, [1], lambda i, r: None)


def test_ray_asks_for_gpus_the_cluster_lacks(ray_local, saved_tiny: Path):
    ex = RayExecutor(ModelSpec(name=str(saved_tiny)), ExecutorOptions(kind="ray", workers=2, gpus_per_worker=1))
    with pytest.raises(ExecutorError, match="GPUs; the Ray cluster has 0"):
        ex.map(_double, 1, [1], lambda i, r: None)


def test_ray_sweep_gives_the_local_rows_and_resumes(ray_local, saved_tiny: Path, tmp_path: Path):
    from emovec import load_model
    from emovec.evaluation.store import read_results
    from emovec.evaluation.sweep import run_sweep
    from emovec.evaluation.sweep_config import load_config
    from tests.builders import make_set

    lm = load_model(saved_tiny)
    assert spec_of(lm).name == str(saved_tiny.resolve())
    vs = make_set(lm, layers=(0, 1, 2))
    base = {"model": "tiny", "vectors": "unused", "conditions": ["none", "emotion:calm", "emotion:desperate"],
            "strengths": [0.1], "layers": [[1]], "suites": ["paired"], "limit": 4, "max_new_tokens": 6,
            "batch_size": 4, "perplexity": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray worker has one thread: keep float reductions in the same order
    try:
        local = run_sweep(load_config({**base, "out": str(tmp_path / "local")}), lm, vs, show_progress=False)
    finally:
        torch.set_num_threads(threads)

    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        if done == 1:
            raise Stop

    cfg = load_config({**base, "out": str(tmp_path / "ray"), "executor": {"kind": "ray", "workers": 2}})
    with pytest.raises(Stop):
        run_sweep(cfg, lm, vs, show_progress=False, on_batch=stop)
    assert len(read_results(cfg.out)) == 4  # one batch stored before the interruption
    remote = run_sweep(cfg, lm, vs, show_progress=False)
    assert remote.skipped_rows == 4 and remote.rows["key"].is_unique and len(remote.rows) == len(local.rows)
    a = local.rows.sort_values("key").reset_index(drop=True)
    b = remote.rows.sort_values("key").reset_index(drop=True)
    for col in ("key", "condition", "item_id", "reply", "refusal_label", "n_new_tokens"):
        assert list(a[col]) == list(b[col]), col
    for col in ("refusal_logodds", "kl", "calm_minus_distress"):
        assert np.allclose(a[col], b[col], atol=1e-4, equal_nan=True), col


def test_ray_blackmail_gives_the_local_replies(ray_local, saved_tiny: Path, tmp_path: Path):
    from emovec import load_model
    from emovec.evaluation.blackmail import DEFAULT_VARIANTS, BlackmailCondition, run_blackmail
    from tests.builders import make_set

    lm = load_model(saved_tiny)
    vs = make_set(lm, layers=(0, 1, 2))
    args = {"conditions": [BlackmailCondition(None), BlackmailCondition("calm", 0.2)],
            "variants": DEFAULT_VARIANTS[:2], "samples": 2, "temperature": 0.0, "max_new_tokens": 5, "batch_size": 3,
            "show_progress": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_blackmail(lm, vs, tmp_path / "local", **args)
    finally:
        torch.set_num_threads(threads)
    remote = run_blackmail(lm, vs, tmp_path / "ray", executor=ExecutorOptions(kind="ray", workers=2), **args)
    a, b = local.sort_values("key"), remote.sort_values("key")
    assert len(a) == 8 and list(a["key"]) == list(b["key"]) and list(a["reply"]) == list(b["reply"])


def test_ray_corpus_generation_gives_the_local_texts(ray_local, saved_tiny: Path, tmp_path: Path):
    from emovec import load_model
    from emovec.corpus import load_corpus
    from emovec.corpus_writer import generate_corpus, plan_neutral

    lm = load_model(saved_tiny)
    jobs = plan_neutral(["the sea", "a train"], 3)
    args = {"max_new_tokens": 5, "temperature": 0.0, "batch_size": 2, "show_progress": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generate_corpus(lm, tmp_path / "local.jsonl", jobs, **args)
    finally:
        torch.set_num_threads(threads)
    generate_corpus(lm, tmp_path / "ray.jsonl", jobs, executor=ExecutorOptions(kind="ray", workers=2), **args)
    a = {r.id: r.text for r in load_corpus(tmp_path / "local.jsonl").records}
    b = {r.id: r.text for r in load_corpus(tmp_path / "ray.jsonl").records}
    assert len(a) == 6 and a == b


def test_ray_tune_runs_the_drift_study_sweep_with_the_local_rows(ray_local, saved_tiny: Path, tmp_path: Path,
                                                                 write_corpus):
    from emovec.corpus import load_corpus
    from emovec.models.loading import load_model
    from emovec.studies.drift.study import DriftPreset, run_drift_study
    from emovec.vectors import extract_emotion_vectors
    from tests.unit.test_drift import KEYS, _probes

    lm = load_model(str(saved_tiny))
    vectors = extract_emotion_vectors(lm, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    preset = DriftPreset(name="tiny", regimes=["balanced", "regression"], seeds=[0], learning_rates=[1e-3, 5e-2],
                         steps=2, save_steps=1, examples=8, batch_size=4, n_boot=50)
    common = {"lm": lm, "model": str(saved_tiny), "keys": KEYS, "probes": _probes(), "vectors": vectors,
              "external": False}
    on_ray = run_drift_study(preset, tmp_path / "ray", executor=ExecutorOptions(kind="ray", workers=2), **common)
    local = run_drift_study(preset, tmp_path / "local", **common)
    assert [(r.regime, r.learning_rate, r.steps) for r in on_ray.runs] == [
        (r.regime, r.learning_rate, r.steps) for r in local.runs]
    for a, b in zip(on_ray.runs, local.runs, strict=True):
        np.testing.assert_allclose(a.values("drift_index"), b.values("drift_index"), rtol=1e-3, atol=1e-4)
    assert on_ray.runs[-1].values("drift_index")[-1] > 0  # the runs trained
    assert list((tmp_path / "ray" / "tune").iterdir())  # Tune kept its trial records


def test_ray_extraction_reads_the_texts_in_chunks_and_gives_the_local_vectors(ray_local, saved_tiny: Path,
                                                                              write_corpus, monkeypatch):
    from emovec.corpus import load_corpus
    from emovec.models.loading import load_model
    from emovec.vectors import extract, extract_emotion_vectors

    monkeypatch.setattr(extract, "READ_CHUNK", 7)  # several chunks, the last one short
    lm = load_model(str(saved_tiny))
    corpus = load_corpus(write_corpus())
    kwargs = {"token_start": 2, "denoise_variance": 0.5, "show_progress": False}
    local = extract_emotion_vectors(lm, corpus, **kwargs)
    on_ray = extract_emotion_vectors(lm, corpus, executor=ExecutorOptions(kind="ray", workers=2), **kwargs)
    assert on_ray.vectors.names == local.vectors.names
    torch.testing.assert_close(on_ray.stories.acts, local.stories.acts, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(on_ray.vectors.directions, local.vectors.directions, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(on_ray.vectors.mean_norm, local.vectors.mean_norm, rtol=1e-5, atol=1e-6)


def test_ray_finetune_trial_trains_the_adapter_a_local_run_trains(ray_local, saved_tiny: Path, tmp_path: Path):
    from safetensors.torch import load_file

    from emovec.finetune.train import FinetuneConfig, finetune
    from emovec.finetune.trials import finetune_trial
    from emovec.models.loading import load_model

    cfg = FinetuneConfig(regime="balanced", out=tmp_path / "ray", model=str(saved_tiny), steps=2, save_steps=1,
                         examples=8, batch_size=4, learning_rate=5e-2, max_length=48)
    on_ray = finetune_trial(cfg, ExecutorOptions(kind="ray", workers=1))
    local = finetune(cfg.model_copy(update={"out": tmp_path / "local"}), lm=load_model(str(saved_tiny)))
    assert on_ray.counts == local.counts and on_ray.adapter.is_dir() and on_ray.train_seconds > 0
    a = load_file(str(on_ray.adapter / "adapter_model.safetensors"))
    b = load_file(str(local.adapter / "adapter_model.safetensors"))
    assert set(a) == set(b) and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_ray_cross_model_reading_gives_the_local_readings(ray_local, saved_tiny: Path, tmp_path: Path,
                                                         monkeypatch):
    from emovec.corpus import load_corpus
    from emovec.models.loading import load_model
    from emovec.studies.cross_model import data as cross_model_data
    from emovec.studies.cross_model.data import collect

    monkeypatch.setattr(cross_model_data, "REPLY_BATCH", 4)  # several reply parts, the last one short
    lm = load_model(str(saved_tiny))
    topics = load_corpus().topics()
    args = {"prompts": 10, "neutral": 3, "max_new_tokens": 4, "vector_topic": topics[0], "stimulus_topic": topics[1]}
    local = collect(lm, tmp_path / "local", **args)
    on_ray = collect(lm, tmp_path / "ray", executor=ExecutorOptions(kind="ray", workers=2), **args)
    assert len(on_ray.reply_texts) == 10 and on_ray.reply_texts == local.reply_texts
    assert on_ray.names == local.names and on_ray.prompt_ids == local.prompt_ids
    for field in ("directions", "stimuli", "replies"):
        torch.testing.assert_close(getattr(on_ray, field), getattr(local, field), rtol=1e-4, atol=1e-5)
    assert (tmp_path / "ray" / "data.json").exists()  # the calling process cached it


def test_ray_robustify_evaluates_the_arms_as_a_local_run_does(ray_local, saved_tiny: Path, tmp_path: Path) -> None:
    from emovec.models.loading import load_model
    from emovec.studies.robustify.evaluate import ArmJob, EvalShared, evaluate_arms
    from emovec.studies.robustify.run import RobustPreset
    from tests.builders import make_set

    lm = load_model(str(saved_tiny))
    vectors = make_set(lm, names=("calm", "sad"), layers=(0, 1, 2))
    preset = RobustPreset(name="tiny", redteam=4, benign=3, helpful=3, max_new_tokens=4)
    calm = vectors.vector("calm", 1).float()
    jobs = [ArmJob("plain", None, 0.0), ArmJob("naive", calm, 0.5), ArmJob("prompt", None, 0.0, "You feel calm."),
            ArmJob("random", torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0)), 0.5)]
    shared = EvalShared(vectors, 1, preset, attack=vectors.vector("sad", 1).float())
    local = evaluate_arms(lm, shared, jobs)
    on_ray = evaluate_arms(lm, shared, jobs, ExecutorOptions(kind="ray", workers=2))
    assert [e.replies for e in on_ray] == [e.replies for e in local] and len(on_ray) == 4
    for a, b in zip(on_ray, local, strict=True):
        assert a.refusal_redteam == b.refusal_redteam and a.refusal_redteam_attacked == b.refusal_redteam_attacked
        assert a.kl.value == pytest.approx(b.kl.value, rel=1e-4, abs=1e-6)
    assert local[1].kl.value > 0 == local[0].kl.value  # steering moved the next-token distribution


def test_ray_paper_steering_gives_the_local_preference_shifts(ray_local, tmp_path: Path) -> None:
    from emovec.models.loading import load_model
    from emovec.studies.paper.run import activities, steering_shifts
    from tests.builders import make_model, make_set, make_tokenizer

    make_model("llama").save_pretrained(tmp_path)  # a tokenizer that can answer "A" or "B" (in place of ! and ?)
    make_tokenizer(rename={"!": "A", "?": "B"}).save_pretrained(tmp_path)  # type: ignore[attr-defined]
    lm = load_model(str(tmp_path))
    vectors = make_set(lm, names=("calm", "sad", "happy"), layers=(0, 1, 2))
    args = (lm, vectors, 1, activities()[:8], ["calm", "sad", "happy"], 2, 2.0)
    local = steering_shifts(*args, n_random=2)
    on_ray = steering_shifts(*args, n_random=2, executor=ExecutorOptions(kind="ray", workers=2))
    assert set(on_ray.emotions) == {"calm", "sad", "happy"} and len(on_ray.random) == 2
    for name in local.emotions:  # the same shift of every activity, emotion by emotion
        np.testing.assert_allclose(on_ray.emotions[name], local.emotions[name], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.stack(on_ray.random), np.stack(local.random), rtol=1e-4, atol=1e-6)
    assert any(np.abs(v).max() > 1e-4 for v in local.emotions.values())  # the steering moved the choices


def test_replicas_take_a_gpu_each_when_the_cluster_has_one_for_every_worker_unless_told_otherwise() -> None:
    from emovec.executors.ray_pool import gpus_per_replica

    class Cluster:  # what gpus_per_replica reads of Ray: the cluster's resources
        def __init__(self, gpus: int) -> None:
            self.gpus = gpus

        def cluster_resources(self) -> dict[str, float]:
            return {"CPU": 16.0, "GPU": float(self.gpus)}

    auto = ExecutorOptions(kind="ray", workers=4)
    assert auto.gpus_per_worker is None
    assert gpus_per_replica(Cluster(8), auto) == 1.0 and gpus_per_replica(Cluster(2), auto) == 0.0
    assert gpus_per_replica(Cluster(8), auto.model_copy(update={"gpus_per_worker": 0.5})) == 0.5
    assert gpus_per_replica(Cluster(8), auto.model_copy(update={"gpus_per_worker": 0.0})) == 0.0  # CPUs, as asked
    with pytest.raises(ExecutorError, match="need 4 GPUs; the Ray cluster has 2"):
        gpus_per_replica(Cluster(2), auto.model_copy(update={"gpus_per_worker": 1.0}))
