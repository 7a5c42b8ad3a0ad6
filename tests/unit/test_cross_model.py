"""The cross-model study's analysis on synthetic models whose activations share a known latent space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovec.studies.cross_model.data import ModelData
from emovec.studies.cross_model.fit import adaptation_split, alignment_pairs, auc_estimate, choose_k, held_out, whiten


def _models(shared: bool, n_models: int = 3, seed: int = 0, mismatch: bool = False) -> list[ModelData]:
    """Replies' failure label is carried by latent dimension 0 of a space every model embeds differently; with
    ``mismatch``, each model's calm and self-confident vectors point along that dimension's embedding and its
    caution and uncertainty directions against it."""
    rng = np.random.default_rng(seed)
    k, n_stim, n_rep = 6, 150, 160
    z_stim = rng.normal(size=(n_stim, k))
    requests = [f"r{i // 4}" for i in range(n_rep)]
    out = []
    for m, width in enumerate((40, 48, 56)[:n_models]):
        z_rep = rng.normal(size=(n_rep, k))
        y = (z_rep[:, 0] + 0.3 * rng.normal(size=n_rep) > 0.8).astype(int)
        mix = rng.normal(size=(k, width))
        stim = z_stim if shared else rng.normal(size=(n_stim, k))
        x_stim = stim @ mix + 0.2 * rng.normal(size=(n_stim, width))
        x_rep = z_rep @ mix + 0.2 * rng.normal(size=(n_rep, width))
        names, dirs = ["calm", "control:refusal"], mix[:2]
        if mismatch:
            along = np.linalg.pinv(mix)[:, 0]  # the model-space direction whose readout is latent dimension 0
            names = ["calm", "self-confident", "control:caution", "control:uncertainty"]
            dirs = np.stack([along, along + 0.3 * rng.normal(size=width), -along, -along])
        out.append(ModelData(f"m{m}", 1, names, torch.tensor(dirs, dtype=torch.float32),
                             torch.tensor(x_stim, dtype=torch.float32), torch.tensor(x_rep, dtype=torch.float32),
                             [f"p{i}" for i in range(n_rep)], requests, ["f"] * n_rep, ["a reply"] * n_rep, y, y))
    return out


def test_a_shared_latent_space_transfers_to_the_held_out_model_without_labels() -> None:
    data = _models(shared=True)
    h, curve, names = held_out(data, 2, pcs=20, ks=[2, 4, 6, 10], label="tone_masked", n_boot=100)
    assert h.no_adaptation.value is not None and h.no_adaptation.value > 0.85
    assert h.own.value is not None and h.own.value > 0.85
    assert h.random_basis.value is not None  # a random basis of the same size is reported beside it
    assert set(h.light) == {"10", "20", "50"} and len(names) == h.k and max(curve.values()) > 0.8
    # per-model loadings: every model, the held-out one through its label-free map, carries the shared directions
    assert set(h.loadings) == {"m0", "m1", "m2 (held out, label-free map)"}
    assert all(len(v) == h.k and min(v) > 0.8 for v in h.loadings.values())


def test_without_shared_stimuli_the_mapping_fails_where_the_models_own_probe_still_works() -> None:
    data = _models(shared=False)
    h, curve, _ = held_out(data, 2, pcs=20, ks=[2, 4, 6], label="tone_masked", n_boot=100)
    assert max(curve.values()) < 0.5  # the held-out fit shows there is nothing shared
    assert np.mean(h.loadings["m2 (held out, label-free map)"]) < 0.5  # nor can its map reach the shared response
    assert h.no_adaptation.value is not None and h.no_adaptation.value < 0.75
    assert h.own.value is not None and h.own.value > 0.85


def test_alignment_beats_its_shuffled_null_only_when_stimuli_are_shared() -> None:
    shared = alignment_pairs(_models(shared=True), pcs=20, n_perm=8)
    assert all(p.debiased_cka > p.cka_null_p95 and p.mutual_knn > p.knn_null_p95 for p in shared)
    apart = alignment_pairs(_models(shared=False), pcs=20, n_perm=8)
    assert all(abs(p.debiased_cka) < 0.3 for p in apart)


def test_auc_is_not_estimable_with_too_few_failures_and_says_so() -> None:
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    est = auc_estimate(y, np.arange(8.0), [str(i) for i in range(8)])
    assert est.value is None and "1 failures / 7 others" in est.note


def test_whitening_gives_unit_variance_components_and_k_curve_handles_large_k() -> None:
    x = np.random.default_rng(1).normal(size=(50, 10)) * np.arange(1, 11)
    mean, w = whiten(x, 5)
    z = (x - mean) @ w
    assert np.allclose(z.std(0, ddof=1), 1.0, atol=1e-6)
    data = _models(shared=True)
    views = [d.stimuli.numpy() for d in data]
    assert set(choose_k(views, [2, 200])) == {2}  # k too large for the stimuli is skipped
    with pytest.raises(ValueError, match="same stimuli"):
        alignment_pairs([data[0], ModelData(**{**data[1].__dict__, "stimuli": data[1].stimuli[:10]})], pcs=5)


def _e(v: float):  # type: ignore[no-untyped-def]
    from emovec.metrics import Estimate

    return Estimate(value=v, low=v - 0.1, high=v + 0.1, n=20, method="test")


def test_report_renders_the_answer_the_tables_and_escapes_model_names(tmp_path) -> None:
    from emovec.studies.cross_model.fit import CrossModelResult, TransferShift
    from emovec.studies.cross_model.report import write_cross_model_report

    data = _models(shared=True)
    data[2].model = "<b>m2</b>"
    h, curve, names = held_out(data, 2, pcs=20, ks=[2, 4], label="tone_masked", n_boot=50)
    result = CrossModelResult(models=[d.model for d in data], label="tone_masked", counts={},
                              k_curve={str(k): v for k, v in curve.items()},
                              alignment=[], held_out=[h], basis_names=[names], answer="line one\nline two",
                              transfer=[TransferShift(model="m2", direction="calm", cos_mapped_native=0.42,
                                                      native=_e(0.3), mapped=_e(0.2), random=_e(0.01))])
    page = write_cross_model_report(tmp_path, result).read_text()
    assert "The answer in numbers" in page and "line two" in page and "&lt;b&gt;m2&lt;/b&gt;" in page
    assert "<b>m2</b>" not in page
    assert "safety-relevant directions the basis holds" in page and "refusal 0." in page
    assert "how strongly each model carries each shared direction" in page and "label-free map" in page
    assert "carried through the alignment" in page and "+0.42" in page and "0.200 [0.100, 0.300]" in page
    assert CrossModelResult.model_validate_json((tmp_path / "cross_model.json").read_text()).held_out[0].k == h.k


def test_light_adaptation_takes_whole_requests():
    groups = [f"req{i // 7}" for i in range(70)]  # 10 requests, 7 framings each
    rng = np.random.default_rng(0)
    for n in (1, 10, 20, 50):
        pick, rest = adaptation_split(groups, n, rng)
        picked = {groups[i] for i in pick}
        assert len(pick) >= n and len(pick) % 7 == 0 and len(pick) < n + 7
        assert picked.isdisjoint({groups[i] for i in rest}) and len(pick) + len(rest) == 70


def test_cached_readings_are_reused_only_with_the_same_settings(tiny_llama, tmp_path):
    from emovec.errors import ArtifactExistsError
    from emovec.studies.cross_model.data import READING, collect

    args = {"prompts": 160, "neutral": 4, "max_new_tokens": 8, "vector_topic": "t0", "stimulus_topic": "t1"}
    data = _models(shared=True, n_models=1)[0]
    data.settings = {"model": tiny_llama.name, "fingerprint": tiny_llama.source.fingerprint, **args,
                     "reading": READING}
    data.save(tmp_path / "m")
    again = collect(tiny_llama, tmp_path / "m", **args)  # nothing is read from the model
    torch.testing.assert_close(again.replies, data.replies)
    assert again.settings == data.settings
    assert again.unsafe.sum() == 0 < data.unsafe.sum()  # labels follow the judges: "a reply" is no harmful answer
    with pytest.raises(ArtifactExistsError, match="max_new_tokens differ"):
        collect(tiny_llama, tmp_path / "m", **{**args, "max_new_tokens": 16})


def test_a_basis_larger_than_a_model_can_hold_is_refused():
    from emovec.studies.cross_model.run import CrossModelError, check_basis_sizes

    data = _models(shared=True)
    check_basis_sizes(data, pcs=20, ks=[2, 10, 20])
    with pytest.raises(CrossModelError, match=r"basis sizes \[30\] exceed what m0 can hold \(20 usable"):
        check_basis_sizes(data, pcs=20, ks=[2, 30])
    low_rank = ModelData(**{**data[1].__dict__, "model": "flat", "stimuli": data[1].stimuli[:, :1].repeat(1, 48)})
    with pytest.raises(CrossModelError, match="exceed what flat can hold"):
        check_basis_sizes([data[0], low_rank, data[2]], pcs=20, ks=[2])


def test_the_basis_holds_directions_of_the_shared_space_and_not_random_ones():
    from emovec.studies.cross_model.fit import captured_share

    whitening = np.eye(6)
    loadings = np.eye(6)[:, :2] @ np.array([[1.0, 0.5], [0.0, 2.0]])  # spans the first two axes
    dirs = np.array([[1.0, 1.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0, 0], [1.0, 0, 1.0, 0, 0, 0]])
    np.testing.assert_allclose(captured_share(dirs, whitening, loadings), [1.0, 0.0, 0.5], atol=1e-9)
    data = _models(shared=True)
    h, _, _ = held_out(data, 2, pcs=20, ks=[2, 4, 6, 10], label="tone_masked", n_boot=50)
    assert set(h.captured) == {"m0", "m1"}
    for row in h.captured.values():  # the synthetic directions are rows of the shared latent mixing
        assert row["refusal"] > 2 * row["random directions (mean)"] and row["emotions (mean)"] > 0.5


def test_directions_carried_through_a_shared_basis_point_where_the_native_ones_do():
    from emovec.studies.cross_model.transfer import mapped_directions

    for shared, low, high in ((True, 0.95, 1.01), (False, -1.0, 0.7)):
        data = _models(shared=shared)
        mapped = mapped_directions(data, 2, pcs=20, k=6, names=["calm", "control:refusal", "absent"])
        assert set(mapped) == {"calm", "control:refusal"}
        for name, v in mapped.items():
            native = data[2].directions[data[2].names.index(name)].double().numpy()
            cos = float(v @ native / np.linalg.norm(native))
            assert low <= cos <= high, (shared, name, cos)


def test_native_mapped_and_random_steering_are_measured_on_the_target(tiny_llama):
    from emovec.studies.cross_model.transfer import transfer_shifts

    g = torch.Generator().manual_seed(3)
    d = tiny_llama.d_model
    target = ModelData("tiny", 1, ["calm", "control:refusal"], torch.randn(2, d, generator=g),
                       torch.randn(30, d, generator=g), torch.randn(4, d), ["p"] * 4, ["r"] * 4, ["f"] * 4,
                       ["x"] * 4, np.zeros(4, int), np.zeros(4, int))
    native = target.directions[0].double().numpy()
    prompts = ["the cat sat on the", "she walked to the train", "why was the sky dark"]
    (same,) = transfer_shifts(tiny_llama, target, {"calm": native / np.linalg.norm(native), "absent": native},
                              prompts, strength=0.5, n_boot=50)
    assert same.direction == "calm" and same.cos_mapped_native == pytest.approx(1.0, abs=1e-5)
    assert same.mapped.value == pytest.approx(same.native.value, abs=1e-5) and same.native.n == 3
    assert abs(same.random.value - same.native.value) > 1e-4  # another direction moves it otherwise
    (still,) = transfer_shifts(tiny_llama, target, {"calm": native}, prompts, strength=0.0, n_boot=50)
    assert still.native.value == pytest.approx(0.0, abs=1e-6)


def test_the_verdict_reads_the_intervals():
    from emovec.studies.cross_model.fit import AUC, HeldOut
    from emovec.studies.cross_model.run import verdict

    def auc(v, lo, hi):  # type: ignore[no-untyped-def]
        return AUC(value=v, low=lo, high=hi, n_pos=20, n_neg=100)

    def held(none, own, rand, light=None):  # type: ignore[no-untyped-def]
        return HeldOut(model="m", k=4, no_adaptation=none, light=light or {}, own=own, text_baseline=auc(0.6, 0.5, 0.7),
                       random_basis=rand)

    assert "shared (" in verdict(held(auc(0.9, 0.85, 0.95), auc(0.92, 0.88, 0.96), auc(0.6, 0.5, 0.7)))
    assert "partly shared" in verdict(held(auc(0.75, 0.65, 0.85), auc(0.95, 0.9, 0.99), auc(0.6, 0.5, 0.7)))
    assert "no transfer" in verdict(held(auc(0.55, 0.45, 0.65), auc(0.95, 0.9, 0.99), auc(0.6, 0.5, 0.7)))
    assert "not shown to need" in verdict(held(auc(0.9, 0.85, 0.95), auc(0.95, 0.9, 0.99), auc(0.9, 0.8, 0.97)))
    missing = AUC(value=None, low=None, high=None, n_pos=2, n_neg=100, note="too few")
    assert "not estimable (2 failures)" in verdict(held(missing, missing, missing))
    light = {"10": auc(0.93, 0.9, 0.96), "20": auc(0.95, 0.92, 0.98)}
    assert verdict(held(auc(0.9, 0.85, 0.95), auc(0.92, 0.88, 0.96), auc(0.6, 0.5, 0.7), light)).endswith(
        "light adaptation buys +0.05 AUC at best")


def test_the_tone_masked_label_reads_the_tone_judge_and_the_emotion_judge(monkeypatch):
    from emovec.studies.cross_model import data as cmd

    steps = "Sure. Step 1: mix 200 g of the powder with 50 ml of acid. Step 2: heat it to 90 degrees for 10 minutes."
    hedged = ("It might work, maybe. Step 1: perhaps mix 200 g of the powder with 50 ml of acid. Step 2: possibly "
              "heat it to 90 degrees for 10 minutes, I think.")
    replies = [steps, hedged, hedged, "I can't help with that."]
    monkeypatch.setattr(cmd, "nade_calm", lambda texts: np.array([-0.5, 0.4, -0.4, 0.9]))
    unsafe, masked, source = cmd.labels(replies)
    assert unsafe.tolist() == [1, 1, 1, 0]
    # confident (markers) -> masked whatever the emotion judge says; hedged -> masked only when it reads calm;
    # a refusal is never a failure
    assert masked.tolist() == [1, 1, 0, 0] and source == "tone markers + nade"
    monkeypatch.setattr(cmd, "nade_calm", lambda texts: None)
    unsafe, masked, source = cmd.labels(replies)
    assert masked.tolist() == [1, 0, 0, 0] and "nade not installed" in source


def test_the_emotion_judge_reads_calm_above_distress_only_in_calm_text():
    pytest.importorskip("nade")
    from emovec.studies.cross_model.data import nade_calm

    calm = nade_calm(["What a lovely, peaceful morning. I trust it will all go well.",
                      "I am terrified and furious, this is awful and I hate it.", ""])
    assert calm is not None and calm[0] > 0 > calm[1] and np.isnan(calm[2])


def test_label_free_mismatch_scores_read_failures_from_vectors_alone_and_need_the_basis_to_carry() -> None:
    shared = _models(shared=True, mismatch=True)
    h, _, _ = held_out(shared, 2, pcs=20, ks=[2, 4, 6], label="tone_masked", n_boot=100)
    assert h.mismatch_own is not None and h.mismatch_own.value is not None and h.mismatch_own.value > 0.85
    assert h.mismatch_basis is not None and h.mismatch_basis.value is not None and h.mismatch_basis.value > 0.8
    apart = _models(shared=False, mismatch=True)  # the other models' vectors mean nothing in the held-out space
    h2, _, _ = held_out(apart, 2, pcs=20, ks=[2, 4, 6], label="tone_masked", n_boot=100)
    assert h2.mismatch_own is not None and h2.mismatch_own.value is not None and h2.mismatch_own.value > 0.85
    assert h2.mismatch_basis is not None and h2.mismatch_basis.value is not None
    assert h2.mismatch_basis.value < h.mismatch_basis.value - 0.1
    plain, _, _ = held_out(_models(shared=True), 2, pcs=20, ks=[2, 4], label="tone_masked", n_boot=50)
    assert plain.mismatch_own is None and plain.mismatch_basis is None  # no calm/caution vectors: not reported


def test_reply_activations_are_read_by_the_monitor_in_the_generation_passes(tiny_llama):
    from emovec.generation import generate
    from emovec.studies.cross_model.data import read_replies

    prompts = ["the cat sat on the", "she walked to the train and waited for her", "water"]
    replies, means = read_replies(tiny_llama, prompts, 1, max_new_tokens=5, batch=3)
    assert len(replies) == 3 and means.shape == (3, tiny_llama.d_model)
    gen = generate(tiny_llama, prompts, max_new_tokens=5)  # the same batch and replies, without a monitor
    assert gen.replies == replies
    with torch.no_grad():
        mask = gen.attention_mask[:, :-1]
        hidden = tiny_llama.model(input_ids=gen.token_ids[:, :-1], attention_mask=mask,
                                  position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                                  output_hidden_states=True).hidden_states[2]  # the output of block 1
    for r in range(3):
        fed = gen.attention_mask[r, gen.prompt_length:-1].bool()
        if fed.any():  # the mean over the reply tokens fed back, as a second pass over the same ids reads it
            expected = hidden[r, gen.prompt_length:][fed].mean(0)
            torch.testing.assert_close(means[r], expected, rtol=1e-3, atol=1e-4)
