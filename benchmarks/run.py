"""emovec benchmarks: one JSON object per line, {"name", "value", "unit", "ratio", "target"}.

Ratios compare two things measured in the same run on the same inputs, so machine load affects both.
Run with `make bench`; `--quick` uses fewer texts and skips the full extraction.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from emovec import load_model
from emovec.capture import TokenSelection, _batches, _selection_row, capture
from emovec.corpus import load_corpus
from emovec.evaluation.judges.accuracy import LabelledReply
from emovec.models.loading import LoadedModel

sys.path.insert(0, os.path.dirname(__file__))
from executors import bench_ray_sweep
from serving import bench_serving


def emit(name: str, value: float, unit: str, ratio: float | None, target: str | None) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit,
                      "ratio": None if ratio is None else round(ratio, 4), "target": target}), flush=True)


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_capture(lm: LoadedModel, texts: list[str], repeats: int) -> None:
    """Capture at every layer vs the plain backbone forward (no LM head) over the same batches."""
    sel = TokenSelection.from_index(50)
    ids = lm.tokenizer(texts)["input_ids"]
    rows = [_selection_row(sel, len(i), None, None) for i in ids]
    batches = list(_batches(ids, rows, lm.tokenizer.pad_token_id, 8192, 64))
    n_tokens = sum(len(i) for i in ids)

    def plain() -> None:
        with torch.inference_mode():
            for b in batches:
                lm.backbone(input_ids=b.input_ids, attention_mask=b.attention_mask, use_cache=False)

    def captured() -> None:
        capture(lm, texts, None, selection=sel)

    plain()  # warm up
    t_plain, t_capture = [], []
    for _ in range(repeats):  # interleaved so drift in machine load hits both
        t_plain.append(best_of(plain, 1))
        t_capture.append(best_of(captured, 1))
    plain_tps, capture_tps = n_tokens / min(t_plain), n_tokens / min(t_capture)
    emit("capture_throughput_all_layers", capture_tps, "tokens/s", capture_tps / plain_tps, ">= 0.95x plain backbone")


def bench_cached_load(model: str) -> None:
    """A fresh process: import time, the first ``load_model`` (which also triggers transformers' lazy imports of
    its own submodules), and a second ``load_model``: reading the cached safetensors checkpoint itself."""
    code = ("import time,os;os.environ['TRANSFORMERS_VERBOSITY']='error';t=time.perf_counter();"
            "import emovec;u=time.perf_counter();emovec.load_model(" + repr(model) + ");v=time.perf_counter();"
            "emovec.load_model(" + repr(model) + ");print(u-t, v-u, time.perf_counter()-v)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # make sure the cache exists
    line = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    imports, first, again = (float(x) for x in line.split())
    emit("cached_load_default_model", again, "s", None, "< 3 s (cached checkpoint, transformers modules loaded)")
    emit("first_load_in_fresh_process", first, "s", None, "recorded (includes transformers' lazy imports)")
    emit("import_emovec", imports, "s", None, "recorded")


def bench_full_extraction(lm: LoadedModel) -> None:
    from emovec.vectors import extract_emotion_vectors

    corpus = load_corpus()
    start = time.perf_counter()
    ext = extract_emotion_vectors(lm, corpus, skip_short=True, show_progress=False)
    seconds = time.perf_counter() - start
    emit("full_extraction_171_emotions", seconds, "s", None,
         f"recorded ({len(corpus.records)} texts, {len(ext.vectors.layers)} layers)")


def timing_vectors(lm: LoadedModel) -> object:
    """171 seeded random directions with the real mean residual norms: steering cost does not depend on
    which directions are used, so this keeps the benchmark independent of extraction."""
    from emovec.data import emotions
    from emovec.vectors import Provenance, VectorSet

    res = capture(lm, [r.text for r in load_corpus().stories[:16]], None, max_length=64)
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(lm.n_layers, 171, lm.d_model, generator=g)
    prov = Provenance(model=lm.source, method="random-for-timing", token_selection=TokenSelection.from_index(0))
    return VectorSet(names=emotions(), layers=tuple(range(lm.n_layers)), directions=dirs, mean_norm=res.mean_norm,
                     provenance=prov, center=res.means.mean(0))


def bench_generation(lm: LoadedModel, batch: int, repeats: int, new_tokens: int = 32) -> None:
    """Plain generate vs steered (two emotions, one layer) vs monitored (all 171 emotions), same prompts."""
    from emovec.generation import generate
    from emovec.steer import SteeringSpec, SteerTerm

    vs = timing_vectors(lm)
    prompts = [f"Tell me about your day number {i}." for i in range(batch)]
    spec = SteeringSpec([SteerTerm("desperate", 0.05), SteerTerm("calm", -0.05)], layers=[20])
    # min_new_tokens keeps every variant generating the same number of tokens
    length = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    runs: dict[str, Callable[[], object]] = {
        "plain": lambda: generate(lm, prompts, **length),
        "steered": lambda: generate(lm, prompts, vectors=vs, spec=spec, **length),  # type: ignore[arg-type]
        "monitored": lambda: generate(lm, prompts, vectors=vs, monitor=True, **length),  # type: ignore[arg-type]
    }
    best = {k: float("inf") for k in runs}
    runs["plain"]()  # warm up
    names = list(runs)
    for r in range(repeats):
        # rotate the order each repeat so drift in machine speed does not favour whichever variant runs first
        for name in names[r % len(names):] + names[: r % len(names)]:
            best[name] = min(best[name], best_of(runs[name], 1))
    tps = {k: batch * new_tokens / v for k, v in best.items()}
    emit(f"steered_generate_batch{batch}", tps["steered"], "tokens/s", tps["steered"] / tps["plain"],
         ">= 0.97x plain generate")
    emit(f"monitored_171_generate_batch{batch}", tps["monitored"], "tokens/s", tps["monitored"] / tps["plain"],
         ">= 0.95x plain generate")


def bench_sweep(lm: LoadedModel, repeats: int) -> None:
    """A sweep (4 conditions mixed in batches of 16, steering, monitoring and every judge) vs plain batched
    ``generate`` of the same prompts in the same batches; generated tokens per second."""
    import tempfile

    from emovec.evaluation.sweep import run_sweep
    from emovec.evaluation.sweep_config import load_config
    from emovec.generation import generate

    vs = timing_vectors(lm)
    base = {"vectors": "in-memory", "conditions": ["none", "emotion:calm", "emotion:desperate", "random:0"],
            "strengths": [0.05], "layers": [[20]], "suites": ["paired"], "limit": 8, "max_new_tokens": 32,
            "batch_size": 16}
    best = {"sweep": float("inf"), "sweep_no_ppl": float("inf"), "plain": float("inf"), "generation": float("inf")}
    tokens: dict[str, int] = {}
    rows = None
    for r in range(repeats):
        order = ["plain", "sweep", "sweep_no_ppl"] if r % 2 else ["sweep", "sweep_no_ppl", "plain"]
        for name in order:
            if name == "plain" and rows is None:
                continue
            start = time.perf_counter()
            if name == "plain":
                assert rows is not None
                n = 0
                for i in range(0, len(rows), 16):
                    b = rows.iloc[i: i + 16]
                    g = generate(lm, list(b["prompt"]), system=[x or None for x in b["system"]], max_new_tokens=32)
                    n += int(g.attention_mask[:, g.prompt_length:].sum())
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    cfg = load_config({**base, "out": tmp, "perplexity": name == "sweep"})
                    res = run_sweep(cfg, lm, vs, show_progress=False)  # type: ignore[arg-type]
                rows = res.rows
                n = int(rows["n_new_tokens"].sum())
                batches = rows.drop_duplicates("batch_id")
                best["generation"] = min(best["generation"], float(batches["batch_seconds"].sum()))
                tokens["generation"] = int(batches["batch_new_tokens"].sum())
            best[name] = min(best[name], time.perf_counter() - start)
            tokens[name] = n
    tps = {k: tokens[k] / best[k] for k in best}
    emit("sweep_generation_phase_batch16", tps["generation"], "tokens/s", tps["generation"] / tps["plain"],
         ">= 0.9x plain batched generate (mixed-condition steered generation with monitoring, as in a sweep)")
    emit("sweep_total_batch16", tps["sweep"], "tokens/s", tps["sweep"] / tps["plain"],
         "recorded; target 0.9x read strictly (every judge included, perplexity under the unsteered model too)")
    emit("sweep_generate_batch16_without_perplexity", tps["sweep_no_ppl"], "tokens/s",
         tps["sweep_no_ppl"] / tps["plain"], "recorded (perplexity: false)")


def bench_judges() -> None:
    """The refusal judge against the hand-labelled file (whole file and the held-out half), the string-match
    baseline on the same replies, the rule judge's throughput, and the nade emotion judge's when installed."""
    from emovec.evaluation.judges.accuracy import (
        baseline_refusal,
        independent,
        load_labelled,
        measure,
        second_annotator,
    )
    from emovec.evaluation.judges.agreement import agreement
    from emovec.evaluation.judges.emotion import SKIPPED, load_emotion_judge
    from emovec.evaluation.judges.refusal import judge_refusal

    rows = load_labelled()
    for split in ("all", "heldout"):
        sub = [r for r in rows if split in ("all", r.split)]
        judge, base = measure(lambda t: judge_refusal(t).label, sub), measure(baseline_refusal, sub)
        t, b = judge.three_class_estimate, judge.binary_estimate
        emit(f"refusal_judge_3class_{split}", judge.three_class, "accuracy", judge.three_class / base.three_class,
             f">= 0.90 ({judge.n} hand-labelled replies; 95% [{t.low:.3f}, {t.high:.3f}]; ratio: over the "
             "string-match baseline)")
        emit(f"refusal_judge_binary_{split}", judge.binary, "accuracy", judge.binary / base.binary,
             f">= 0.93 ({judge.n} hand-labelled replies; 95% [{b.low:.3f}, {b.high:.3f}]; ratio: over the "
             "string-match baseline)")
        emit(f"string_match_baseline_3class_{split}", base.three_class, "accuracy", None, "recorded")
        emit(f"string_match_baseline_binary_{split}", base.binary, "accuracy", None, "recorded")
        print(json.dumps({"name": f"refusal_judge_confusion_{split}", "rows_people_columns_judge": judge.confusion}),
              flush=True)
    indep = independent(rows)
    judge, base = measure(lambda t: judge_refusal(t).label, indep), measure(baseline_refusal, indep)
    for kind, got, baseline, est in (("3class", judge.three_class, base.three_class, judge.three_class_estimate),
                                     ("binary", judge.binary, base.binary, judge.binary_estimate)):
        emit(f"refusal_judge_{kind}_independent_writers", got, "accuracy", got / baseline,
             f"{'>= 0.90' if kind == '3class' else '>= 0.93'} ({judge.n} replies written and labelled by writers who "
             f"never saw the rules; 95% [{est.low:.3f}, {est.high:.3f}]; string match {baseline:.3f}; ratio: over it)")
    second = second_annotator(rows)
    first = {r.id: r.label for r in rows}
    both = agreement([first[r.id] for r in second], [r.label for r in second])
    emit("annotator_agreement_3class", both.accuracy, "accuracy", None,
         f"recorded ({both.n} replies labelled again by an independent second annotator; Cohen's kappa "
         f"{both.kappa:.3f}, chance-corrected)")
    held = [r for r in second if r.split == "heldout"]
    vs_second = measure(lambda t: judge_refusal(t).label, held)
    est = vs_second.three_class_estimate
    emit("refusal_judge_vs_second_annotator_3class_heldout", vs_second.three_class, "accuracy",
         vs_second.three_class / measure(baseline_refusal, held).three_class,
         f">= 0.90 ({vs_second.n} held-out replies, the second annotator's labels; 95% [{est.low:.3f}, "
         f"{est.high:.3f}]; ratio: over the string-match baseline)")
    replies = [r.reply for r in rows] * 10
    seconds = best_of(lambda: [judge_refusal(t) for t in replies], 3)
    emit("refusal_judge_throughput", len(replies) / seconds, "replies/s", None, ">= 1000 replies/s on 2 cores")
    bench_learned_judge(rows, len(replies) / seconds)
    nade = load_emotion_judge()
    if nade is None:
        print(json.dumps({"name": "emotion_judge_throughput", "skipped": SKIPPED}), flush=True)
        return
    seconds = best_of(lambda: nade.score(replies), 2)
    emit("emotion_judge_throughput", len(replies) / seconds, "replies/s", None, "recorded (nade, 8 emotions)")


def bench_learned_judge(rows: Sequence[LabelledReply], rules_per_second: float) -> None:
    """The shipped learned refusal judge's throughput (the default of ``emovec judge refusal``), with prompts and
    harm labels, against the rule judge's on the same replies. Its agreement with people is measured by
    ``emovec judge train --report`` (grouped cross-validation; src/emovec/data/judges/README.md), not here: the
    labelled file in the package is part of its training rows."""
    from emovec.evaluation.judges.refusal_learned import load_learned_judge

    judge = load_learned_judge()
    replies = [r.reply for r in rows] * 10
    prompts = [r.prompt for r in rows] * 10
    labels: list[Any] = ["unsafe" if i % 2 else "safe" for i in range(len(replies))]
    seconds = best_of(lambda: judge.judge(replies, prompts, labels), 3)
    emit("learned_refusal_judge_throughput", len(replies) / seconds, "replies/s",
         len(replies) / seconds / rules_per_second,
         ">= 1000 replies/s on 2 cores (prompt+label mode, one process; ratio: over the rule judge)")


def bench_drift_monitor(lm: LoadedModel, steps: int = 6) -> None:
    """The drift monitor's cost per checkpoint against the training it watches, at the defaults (a checkpoint
    every ``FinetuneConfig().save_steps`` steps): the ratio is monitor time / training time between saves."""
    import tempfile
    from pathlib import Path

    from emovec.finetune.train import FinetuneConfig, finetune
    from emovec.studies import study_vectors
    from emovec.studies.drift.monitor import DriftMonitor

    with tempfile.TemporaryDirectory() as tmp:
        vectors = study_vectors(lm, Path(tmp) / "vectors", topics=2)
        monitor = DriftMonitor(lm, vectors, Path(tmp) / "drift")
        monitor.lock()
        start = time.perf_counter()
        monitor.measure(0)
        per_checkpoint = time.perf_counter() - start
        defaults = FinetuneConfig(regime="balanced", out=Path(tmp) / "ft")
        cfg = defaults.model_copy(update={"steps": steps, "save_steps": steps})
        result = finetune(cfg, lm=lm)
    per_step = result.train_seconds / steps
    between = defaults.save_steps * per_step
    emit("drift_monitor_per_checkpoint", per_checkpoint, "s", per_checkpoint / between,
         f"<= 0.10x the training between checkpoints (save_steps={defaults.save_steps}, {per_step:.2f} s/step, "
         f"batch {defaults.batch_size})")


def bench_robust_step(lm: LoadedModel, steps: int = 6, repeats: int = 3) -> None:
    """``emovec.robust``'s optimisation steps per second on the model (the default batch: 4 prompt pairs per side,
    each pair one forward + backward with a steered direction; validation off, so this is the step alone), and
    the ratio of one steered forward+backward to one plain forward over the same batch of harmful pairs."""
    import tempfile
    from pathlib import Path

    from emovec.robust import losses
    from emovec.robust.optimize import RobustConfig, optimize_direction, preference_pairs
    from emovec.steer import differentiable_steering

    vs = timing_vectors(lm)
    layer = lm.n_layers // 2
    readout = min(layer + 4, lm.n_layers - 1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RobustConfig(source="calm", out=Path(tmp) / "r", layer=layer, steps=steps, val_fraction=0,
                           own_replies=False, save_every=steps)
        stamps: list[float] = []
        optimize_direction(lm, vs, cfg, n_prompts=16,  # type: ignore[arg-type]
                           on_step=lambda step, record: stamps.append(time.perf_counter()))
        bad = preference_pairs(lm, cfg, 16)[0].take(range(cfg.batch)).batch(lm)
    norm = float(vs.mean_norm[vs.layer_index(layer)])  # type: ignore[attr-defined]
    direction = torch.nn.Parameter(vs.vector("calm", layer).float().clone())  # type: ignore[attr-defined]

    def plain() -> None:
        with torch.no_grad():
            losses.read(lm, bad, readout)

    def steered() -> None:
        with differentiable_steering(lm, layer, direction, 0.1 * norm):
            r = losses.read(lm, bad, readout)
        (r.seq_logp.sum() + r.hidden.sum()).backward()

    def plain_backward() -> None:  # the same loss, the gradient taken to the input embeddings instead
        def leaf(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
            return out.detach().requires_grad_()

        hook = lm.model.get_input_embeddings().register_forward_hook(leaf)
        try:
            r = losses.read(lm, bad, readout)
        finally:
            hook.remove()
        (r.seq_logp.sum() + r.hidden.sum()).backward()

    plain()  # warm up
    t_plain, t_steered, t_backward = [], [], []
    for _ in range(repeats):  # interleaved so drift in machine load hits all three
        t_plain.append(best_of(plain, 1))
        t_steered.append(best_of(steered, 1))
        t_backward.append(best_of(plain_backward, 1))
    per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    emit("robust_step", 1 / per_step, "steps/s", min(t_steered) / min(t_plain),
         f"recorded (batch {cfg.batch} pairs per side); ratio: steered forward+backward / plain forward, "
         "<= 2.5x (frozen weights)")
    emit("robust_step_vs_plain_backward", min(t_steered) * 1000, "ms", min(t_steered) / min(t_backward),
         "ratio: steered forward+backward / plain forward+backward (gradient to the input embeddings, the whole "
         "depth; the steered backward stops at the steered layer), <= 1.2x")


def bench_robust_adversary(lm: LoadedModel, steps: int = 4) -> None:
    """Optimisation steps per second under each adversary, as a ratio to the plain step measured in the same run
    (the refusal-ablation attack adds hooks only; the embedding attack adds ``adv_steps`` forward+backward
    passes per step)."""
    import tempfile
    from pathlib import Path

    from emovec.robust.optimize import RobustConfig, optimize_direction

    vs = timing_vectors(lm)
    layer = lm.n_layers // 2
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("none", "ablate_refusal", "embedding"):
            cfg = RobustConfig(source="calm", out=Path(tmp) / kind, layer=layer, steps=steps, val_fraction=0,
                               own_replies=False, save_every=steps, adversary=kind)  # type: ignore[arg-type]
            stamps: list[float] = []

            def stamp(step: int, record: dict[str, float], into: list[float] = stamps) -> None:
                into.append(time.perf_counter())

            optimize_direction(lm, vs, cfg, n_prompts=16, on_step=stamp)  # type: ignore[arg-type]
            rates[kind] = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    # Under any adversary a step also reads the harmful batch without the attack (the stability term), so the
    # ablation step does a third read besides hooks: the hooks alone are measured by bench_ablation_hooks.
    for kind in ("ablate_refusal", "embedding"):
        emit(f"robust_step_{kind}", rates[kind], "steps/s", rates["none"] / rates[kind],
             "recorded; ratio: this adversary's step time over the plain step's, "
             + ("<= 1.5x (hooks on every block, plus one read of the harmful batch without the attack)"
                if kind == "ablate_refusal" else "<= 4x (2 ascent steps per step)"))


def bench_ablation_hooks(lm: LoadedModel, repeats: int = 3) -> None:
    """Forward and backward (to the input embeddings) of 16 prompts with the refusal-ablation hooks on every
    block vs without: the cost of the hooks alone."""
    from contextlib import nullcontext

    from emovec.robust.adversary import refusal_ablation

    enc = lm.tokenizer([f"Explain step {i} of making bread at home." for i in range(16)], return_tensors="pt",
                       padding=True)
    direction = torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0))

    def run(ablate: bool) -> None:
        emb = lm.model.get_input_embeddings()(enc["input_ids"]).detach().requires_grad_(True)
        with refusal_ablation(lm, direction) if ablate else nullcontext():
            logits = lm.model(inputs_embeds=emb, attention_mask=enc["attention_mask"]).logits
        logits[:, -1].float().logsumexp(-1).sum().backward()

    run(False)
    plain, hooked = best_of(lambda: run(False), repeats), best_of(lambda: run(True), repeats)
    emit("refusal_ablation_hooks", hooked * 1000, "ms", hooked / plain,
         "ratio: forward+backward with the refusal direction projected out after every block over without, "
         "<= 1.2x (hooks only)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--judges-only", action="store_true", help="only the judge benchmarks (no model)")
    args = parser.parse_args()
    bench_judges()
    if args.judges_only:
        return
    lm = load_model("smollm2-135m-instruct")
    stories = [r.text for r in load_corpus().stories]
    bench_capture(lm, stories[: 48 if args.quick else 96], repeats=2 if args.quick else 3)
    bench_cached_load("smollm2-135m-instruct")
    bench_generation(lm, 1, repeats=6 if args.quick else 9)
    bench_generation(lm, 16, repeats=3 if args.quick else 6)
    bench_sweep(lm, repeats=2 if args.quick else 3)
    bench_drift_monitor(lm)
    bench_robust_step(lm)
    bench_robust_adversary(lm)
    bench_ablation_hooks(lm)
    bench_ray_sweep(lm, timing_vectors(lm), emit)
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        print(json.dumps({"name": "serve", "skipped": "the serve extra is not installed (pip install emovec[serve])"}))
    else:
        bench_serving(lm, timing_vectors(lm), emit, quick=args.quick)
    if not args.quick:
        bench_full_extraction(lm)


if __name__ == "__main__":
    main()
