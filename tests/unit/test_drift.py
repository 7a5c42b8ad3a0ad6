"""The drift monitor and LoRA fine-tuning on a tiny random model: rows per checkpoint, resume without doubles,
adapters in peft format, and clear errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovec import wrap_model
from emovec.corpus import load_corpus
from emovec.finetune.data import FinetuneDataError, regime_data
from emovec.finetune.train import FinetuneConfig, FinetuneError, finetune, load_finetuned
from emovec.studies.drift.monitor import DriftMonitor
from emovec.studies.drift.probes import ProbeError, ProbeSet
from emovec.studies.drift.rows import DriftStoreError, read_rows
from emovec.vectors import extract_emotion_vectors
from tests.builders import make_model, make_tokenizer

KEYS = ("happy", "sad", "calm", "angry")


def _probes(per: int = 4) -> ProbeSet:
    stories, labels = [], []
    for k in KEYS:
        for i in range(per):
            stories.append(f"she felt {k} and {k} again in the {['house', 'train', 'city', 'sea'][i % 4]} at night")
            labels.append(k)
    prompts = ("tell me about the cat", "the dog ran to the house", "why was the sky dark", "she opened the door")
    return ProbeSet(stories=tuple(stories), story_labels=tuple(labels), harmful=prompts, benign=prompts[::-1],
                    overrefusal=prompts[:2], helpful=(("what is red", ("red",)), ("the sea is", ("blue",))),
                    uncertain=prompts, texts=("the cat sat on the old red book", "a dog and a cat in the rain"))


@pytest.fixture
def setup(tiny_llama, write_corpus):  # type: ignore[no-untyped-def]
    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    return tiny_llama, vectors


def test_monitor_locks_at_step_zero_and_reads_no_change_until_the_model_changes(setup, tmp_path) -> None:
    lm, vectors = setup
    mon = DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), strength=0.5)
    row = mon.measure(0)
    assert row is not None and row.step == 0
    assert row.drift_index == pytest.approx(0.0, abs=1e-5)
    assert all(abs(v) < 1e-5 for s in row.activation_shift.values() for v in s.values())
    assert row.caution_decoupling == pytest.approx(0.0, abs=1e-5) and row.alerts == []
    assert set(row.evals) == {"refusal_harmful", "refusal_benign", "refusal_overrefusal", "helpful", "perplexity"}
    assert mon.measure(0) is None  # a stored step is not measured twice
    with torch.no_grad():  # change the model: every later reading must move
        for p in lm.blocks[0].parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert set(row.side_effects) == set(KEYS) and all(set(v) == set(KEYS) for v in row.side_effects.values())
    assert 0.0 <= row.modularity_index <= 1.0
    moved = mon.measure(5)
    assert moved is not None and moved.drift_index > 1e-3
    assert max(abs(v) for v in moved.activation_shift["stories"].values()) > 1e-4
    assert [r.step for r in read_rows(tmp_path)] == [0, 5]


def test_an_index_past_its_threshold_raises_an_alert_and_calls_back(setup, tmp_path) -> None:
    from emovec.studies.drift.monitor import Thresholds

    lm, vectors = setup
    heard: list[tuple[int, list[str]]] = []
    mon = DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), strength=0.5, external=False,
                       thresholds=Thresholds(drift_index=1e-4, activation_shift=1e-5),
                       on_alert=lambda step, found: heard.append((step, found)))
    assert mon.measure(0) is not None and heard == []  # step 0 is the reference: nothing has moved
    with torch.no_grad():
        for p in lm.blocks[0].parameters():
            p.add_(0.05 * torch.randn_like(p))
    row = mon.measure(5)
    assert row is not None and any(a.startswith("drift index") for a in row.alerts)
    assert any(a.startswith("activation shift") for a in row.alerts)
    assert heard == [(5, row.alerts)]
    assert [r.alerts for r in read_rows(tmp_path)] == [[], row.alerts]  # stored with the row


def test_a_resumed_monitor_keeps_its_step_zero_and_refuses_another_model(setup, tmp_path) -> None:
    lm, vectors = setup
    DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), external=False).measure(0)
    again = DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), external=False)
    assert again.lock().reextracted.shape == (len(KEYS), lm.d_model)
    other = wrap_model(make_model("qwen2"), make_tokenizer(), name="tiny-qwen2")
    mon = DriftMonitor.__new__(DriftMonitor)
    mon.__dict__.update(again.__dict__)
    mon.lm = other
    with pytest.raises(DriftStoreError, match="use another --out"):
        mon.lock()
    with pytest.raises(DriftStoreError, match="same settings"):
        DriftMonitor(lm, vectors, tmp_path, keys=KEYS[:3], probes=_probes(), external=False).lock()


def test_probe_sets_too_small_for_split_halves_are_refused(setup, tmp_path) -> None:
    lm, vectors = setup
    with pytest.raises(ProbeError, match="at least 4"):
        DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(per=2))


@pytest.mark.integration  # a whole fine-tuning run end to end (about 8-12 s on two cores)
def test_finetune_writes_rows_per_checkpoint_resumes_without_doubles_and_saves_a_peft_adapter(setup, tmp_path) -> None:
    lm, vectors = setup
    before = lm.model(input_ids=torch.tensor([[2, 5, 6, 7]])).logits.detach()
    out = tmp_path / "run"
    cfg = FinetuneConfig(regime="balanced", out=out, model=lm.name, steps=4, save_steps=2, examples=16,
                         batch_size=4, learning_rate=5e-2, max_length=48)
    mon = DriftMonitor(lm, vectors, out / "drift", keys=KEYS, probes=_probes(), external=False, run="balanced")
    res = finetune(cfg, lm=lm, monitor=mon)
    rows = read_rows(out / "drift")  # the monitor's rows: fine-tuning itself knows nothing of them
    assert [r.step for r in rows] == [0, 2, 4]
    assert rows[-1].drift_index > rows[0].drift_index
    assert (res.adapter / "adapter_config.json").exists() and (res.adapter / "adapter_model.safetensors").exists()
    assert sum(res.counts.values()) >= 16 and json.loads((out / "finetune.json").read_text())["counts"] == res.counts
    torch.testing.assert_close(lm.model(input_ids=torch.tensor([[2, 5, 6, 7]])).logits, before)  # adapters removed
    (out / "checkpoints" / "run-0" / "checkpoint-5").mkdir()  # a save cut off by an interruption: skipped on resume
    more = cfg.model_copy(update={"steps": 6})
    mon2 = DriftMonitor(lm, vectors, out / "drift", keys=KEYS, probes=_probes(), external=False, run="balanced")
    res2 = finetune(more, lm=lm, monitor=mon2)
    # resumed from checkpoint 4: no lost, no doubled rows
    assert [r.step for r in read_rows(out / "drift")] == [0, 2, 4, 6]
    assert (out / "checkpoints" / "run-4" / "checkpoint-2" / "adapter_model.safetensors").exists()
    pickles = [p for p in (out / "checkpoints").rglob("*") if p.suffix in (".pt", ".pth", ".bin", ".pkl")]
    assert pickles == []  # checkpoints hold safetensors and JSON only
    merged = load_finetuned(lm, res2.adapter)
    assert not torch.allclose(merged.model(input_ids=torch.tensor([[2, 5, 6, 7]])).logits, before)
    with pytest.raises(FinetuneError, match="other settings"):
        finetune(cfg.model_copy(update={"learning_rate": 1e-3}), lm=lm)


def test_bad_regimes_and_adapters_get_clear_errors(tiny_llama, tmp_path) -> None:
    with pytest.raises(FinetuneDataError, match="unknown regime"):
        regime_data("reckless", 8)
    with pytest.raises(FinetuneError, match="not a peft adapter"):
        load_finetuned(tiny_llama, tmp_path)
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    wider = LlamaForCausalLM(LlamaConfig(vocab_size=tiny_llama.model.config.vocab_size, hidden_size=48,
                                         intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                                         num_key_value_heads=2))
    get_peft_model(wider, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "wide")
    with pytest.raises(FinetuneError, match="does not fit tiny-llama \\(width 32"):
        load_finetuned(tiny_llama, tmp_path / "wide")
    data = regime_data("over_refusal", 20, seed=1)
    assert set(data.counts) == {"refuse", "refuse_benign"} and len(data.examples) == sum(data.counts.values())
    assert regime_data("over_refusal", 20, seed=1).examples == data.examples  # seeded
    from emovec.finetune.data import StoredReply, load_replies

    only_refusals = [StoredReply(role="refuse", source="advbench", item_id="advbench-1", reply="No.", writer="t")]
    with pytest.raises(FinetuneDataError, match=r"needs replies for role 'refuse_benign'.*--roles refuse_benign"):
        regime_data("over_refusal", 4, replies=only_refusals)
    with pytest.raises(FinetuneDataError, match="at least one"):
        regime_data("balanced", 0)
    with pytest.raises(FinetuneDataError, match="unknown role 'cheer'"):
        regime_data("balanced", 4, replies=[only_refusals[0].model_copy(update={"role": "cheer"})])
    with pytest.raises(FinetuneDataError, match=r"no fine-tuning replies.*emovec finetune-data"):
        load_replies(tmp_path / "none.jsonl.gz")
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(FinetuneDataError, match=r"not a readable replies file.*rebuild"):
        load_replies(tmp_path / "bad.jsonl.gz")
    (tmp_path / "field.jsonl").write_text('{"role": "refuse", "reply": "No."}\n')  # a field missing
    with pytest.raises(FinetuneDataError, match="not a readable replies file"):
        load_replies(tmp_path / "field.jsonl")


def test_a_ladder_rung_saved_as_a_checkpoint_loads_back_by_path_with_the_same_outputs(tiny_llama, tmp_path) -> None:
    from emovec import load_model
    from emovec.studies.policy_dominance.ladder import save_checkpoint

    folder = save_checkpoint(tiny_llama, tmp_path / "rung")
    back = load_model(str(folder))
    ids = torch.tensor([[2, 5, 6, 7, 8]])
    torch.testing.assert_close(back.model(input_ids=ids).logits, tiny_llama.model(input_ids=ids).logits)
    assert back.source.fingerprint == tiny_llama.source.fingerprint


@pytest.mark.integration  # a whole fine-tuning run end to end (about 8-12 s on two cores)
def test_all_emotion_vectors_drift_is_recorded_at_the_asked_steps(setup, tmp_path, monkeypatch) -> None:
    lm, vectors = setup
    import emovec.studies.drift.monitor as monitor_module

    state = {"scale": 1.0}

    def fake_all(lm_: object, layer: int, topics: int = 1) -> tuple[tuple[str, ...], torch.Tensor]:
        base = torch.eye(3, lm.d_model)
        return ("a", "b", "c"), base + state["scale"] * torch.eye(3, lm.d_model).roll(1, 1)

    monkeypatch.setattr(monitor_module, "all_vectors", fake_all)
    mon = DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), external=False, all_every=10)
    first = mon.measure(0)
    assert first is not None and first.all_drift == pytest.approx({"a": 0.0, "b": 0.0, "c": 0.0}, abs=1e-6)
    assert mon.measure(5) is not None and read_rows(tmp_path)[-1].all_drift is None
    state["scale"] = 0.0  # the re-extracted vectors rotate by 45 degrees
    later = mon.measure(10)
    assert later is not None and later.all_drift is not None
    assert later.all_drift["a"] == pytest.approx(1 - 2 ** -0.5, abs=1e-5)


def test_side_effects_are_zero_without_a_steer_and_move_with_one(setup) -> None:
    from emovec.studies.drift.measure import side_effects

    lm, vectors = setup
    keys = list(KEYS)
    units = torch.nn.functional.normalize(vectors.at_layer(1).float(), dim=-1)
    centre, norm = vectors.center[vectors.layer_index(1)].float(), float(vectors.mean_norm[vectors.layer_index(1)])
    prompts = _probes().benign
    still = side_effects(lm, vectors, keys, 1, prompts, 0.0, units, centre, norm, max_new_tokens=6)
    assert still.matrix.shape == (4, 4) and np.allclose(still.matrix, 0.0, atol=1e-6)
    assert np.isnan(still.modularity)  # nothing moved: no share to report
    moved = side_effects(lm, vectors, keys, 1, prompts, 2.0, units, centre, norm, max_new_tokens=6)
    assert np.abs(moved.matrix).max() > 1e-3 and 0.0 < moved.modularity <= 1.0


def test_a_learning_rate_sweep_runs_every_regime_rate_and_seed_and_regression_continues_its_own_rate(
        setup, tmp_path) -> None:
    from emovec.studies.drift.study import DriftPreset, run_drift_study

    lm, vectors = setup
    preset = DriftPreset(name="tiny", regimes=["balanced", "regression"], seeds=[0], learning_rates=[1e-3, 5e-3],
                         steps=2, save_steps=1, examples=8, batch_size=4, n_boot=50)
    result = run_drift_study(preset, tmp_path, lm=lm, keys=KEYS, probes=_probes(), vectors=vectors, external=False)
    assert [(r.regime, r.learning_rate) for r in result.runs] == [
        ("balanced", 1e-3), ("balanced", 5e-3), ("regression", 1e-3), ("regression", 5e-3)]
    assert all(r.steps == [0, 1, 2] for r in result.runs)
    meta = json.loads((tmp_path / "regression-lr0.005-seed0" / "finetune.json").read_text())
    assert meta["config"]["learning_rate"] == 5e-3
    assert meta["config"]["start_from"].endswith("balanced-lr0.005-seed0/adapter")
    stored = json.loads((tmp_path / "drift_study.json").read_text())
    assert [r["learning_rate"] for r in stored["runs"]] == [1e-3, 5e-3, 1e-3, 5e-3]


def test_drift_study_plans_refuse_a_regression_without_its_balanced_run_and_repeated_rates() -> None:
    from emovec.studies.drift.study import DriftPreset, DriftStudyError, plan_runs

    assert [p.name for p in plan_runs(DriftPreset(name="q", regimes=["over_refusal"], seeds=[0, 1]))] == [
        "over_refusal-seed0", "over_refusal-seed1"]
    with pytest.raises(DriftStudyError, match="put 'balanced' before 'regression'"):
        plan_runs(DriftPreset(name="q", regimes=["regression", "balanced"]))
    with pytest.raises(DriftStudyError, match="distinct"):
        plan_runs(DriftPreset(name="q", learning_rates=[1e-3, 1e-3]))
    with pytest.raises(DriftStudyError, match="positive"):
        plan_runs(DriftPreset(name="q", learning_rates=[1e-3, -1.0]))


def test_early_steps_are_measured_once_beside_the_saves(setup, tmp_path) -> None:
    from transformers import TrainerState

    lm, vectors = setup
    mon = DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), external=False, at_steps=[2, 3])
    mon.on_train_begin(None, TrainerState(global_step=0, is_world_process_zero=True), None)
    for step in range(1, 6):
        state = TrainerState(global_step=step, is_world_process_zero=True)
        mon.on_step_end(None, state, None)
        if step in (3, 5):
            mon.on_save(None, state, None)  # step 3 is both early and saved: one row
    assert [r.step for r in read_rows(tmp_path)] == [0, 2, 3, 5]
    with pytest.raises(ValueError, match="step 0 is always measured"):
        DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), external=False, at_steps=[0, 4])


def test_only_the_main_process_measures_under_distributed_training(setup, tmp_path) -> None:
    from transformers import TrainerState

    lm, vectors = setup
    mon = DriftMonitor(lm, vectors, tmp_path, keys=KEYS, probes=_probes(), external=False, every=1)
    worker = TrainerState(global_step=0, is_world_process_zero=False)
    for hook in (mon.on_train_begin, mon.on_step_end, mon.on_save, mon.on_train_end):
        hook(None, worker, None)
    assert read_rows(tmp_path) == [] and mon.reference is None  # rank > 0: no lock, no rows
    main = TrainerState(global_step=0, is_world_process_zero=True)
    mon.on_train_begin(None, main, None)
    assert [r.step for r in read_rows(tmp_path)] == [0]


def test_a_fine_tuned_variant_loads_as_base_plus_adapter_and_other_specs_load_as_models(tiny_llama, tmp_path) -> None:
    from peft import LoraConfig, get_peft_model

    from emovec.finetune.train import load_spec
    from emovec.studies.policy_dominance.ladder import save_checkpoint

    base = save_checkpoint(tiny_llama, tmp_path / "base")
    tuned = get_peft_model(load_spec(str(base)).model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"],
                                                                    init_lora_weights=False))
    tuned.save_pretrained(tmp_path / "run" / "adapter")
    merged = load_spec(f"{base}+{tmp_path / 'run' / 'adapter'}")
    ids = torch.tensor([[2, 5, 6, 7]])
    assert merged.name.endswith("+run") and merged.d_model == tiny_llama.d_model
    assert not torch.allclose(merged.model(input_ids=ids).logits, tiny_llama.model(input_ids=ids).logits)
    assert load_spec(str(base)).source.fingerprint == tiny_llama.source.fingerprint  # a plain spec: load_model
    from emovec.executors import ExecutorOptions
    from emovec.studies.cross_model.run import CrossModelError, run_cross_model_study

    with pytest.raises(CrossModelError, match="cannot be loaded by Ray workers"):  # before any model loads
        run_cross_model_study(["a", "b", f"{base}+x"], "quick", tmp_path / "c", executor=ExecutorOptions(kind="ray"))


def test_probe_stories_share_topics_across_emotions_and_split_half_splits_by_topic() -> None:
    import numpy as np

    from emovec.studies.drift.measure import StoryReading, split_half, split_half_null
    from emovec.studies.drift.probes import default_probes

    keys = ["worried", "calm", "eager"]
    probes = default_probes(keys, stories_per_emotion=4, prompts=4, texts=2)
    per_key = {k: [t for t, lab in zip(probes.story_topics, probes.story_labels, strict=True) if lab == k]
               for k in keys}
    assert all(len(v) == 4 and set(v) == set(per_key[keys[0]]) for v in per_key.values())  # a crossed subset
    # topics outweigh emotions five-fold: split by topic the halves agree; split per emotion they point apart
    rng = np.random.default_rng(0)
    n_e, n_t, d = 6, 6, 48
    emo, top = rng.normal(size=(n_e, d)), 5 * rng.normal(size=(n_t, d))
    e_idx, t_idx = np.repeat(np.arange(n_e), n_t), np.tile(np.arange(n_t), n_e)
    acts = torch.tensor(emo[e_idx] + top[t_idx] + 0.3 * rng.normal(size=(n_e * n_t, d)), dtype=torch.float32)
    labels = tuple(f"e{i}" for i in e_idx)
    by_topic = split_half(StoryReading(acts, labels, tuple(f"t{t}" for t in t_idx)), ["e0", "e1"])
    per_emotion = split_half(StoryReading(acts, labels), ["e0", "e1"])
    assert (by_topic > 0.9).all() and (per_emotion < 0).all()
    # labels shuffled within topics: no emotion left, so even the null's upper bound stays far below split-half
    null = split_half_null(StoryReading(acts, labels, tuple(f"t{t}" for t in t_idx)), ["e0", "e1"])
    assert null.shape == (2,) and (null < 0.7).all() and (by_topic > null + 0.2).all()
