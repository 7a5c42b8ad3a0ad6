"""Run the cross-model study: read every model (cached per model, so a rerun resumes), then leave each model
out in turn (``emovec.studies.cross_model.fit``), and write ``cross_model.json``.

Example:
    >>> result = run_cross_model_study(preset="quick", out="runs/cross")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from emovec._progress import stage
from emovec.corpus import load_corpus
from emovec.evaluation.suites import redteam_suite
from emovec.executors import ExecutorOptions, check_available
from emovec.finetune.train import load_spec
from emovec.studies._kit import DEFAULT_MODELS, Study, StudyError, StudyPreset, StudyRun, write_result
from emovec.studies.cross_model.data import ModelData, collect
from emovec.studies.cross_model.fit import AUC, CrossModelResult, HeldOut, TransferShift, alignment_pairs, held_out
from emovec.studies.cross_model.report import write_cross_model_report
from emovec.studies.cross_model.transfer import mapped_directions, transfer_shifts


class CrossModelError(StudyError):
    """A cross-model study that cannot run as asked."""


class CrossPreset(StudyPreset):
    """How many red-team replies and neutral texts each model reads, the basis sizes tried and the transfer test."""

    prompts: int = 140  # red-team prompts per model (20 requests x 7 framings)
    neutral: int = 60
    max_new_tokens: int = 64
    pcs: int = 40
    ks: list[int] = Field(default_factory=lambda: [2, 4, 6, 8, 12, 16, 20])
    # the question's failures, then any harmful compliance
    labels: list[str] = Field(default_factory=lambda: ["tone_masked", "unsafe"])
    transfer_prompts: int = 20  # red-team prompts on which native, mapped and random steering are compared (0: off)
    transfer_strength: float = 0.1  # a fraction of the mean norm of the model's shared-stimulus activations


PRESETS = {"quick": CrossPreset(name="quick"),
           "full": CrossPreset(name="full", prompts=700, neutral=120, max_new_tokens=128, pcs=80,
                               transfer_prompts=60)}


CHANCE_AUC = 0.5  # an interval that reaches it shows no transfer
SHARED_MARGIN = 0.05  # within this of its own basis's AUC, a held-out model's basis counts as shared


def verdict(h: HeldOut, margin: float = SHARED_MARGIN) -> str:
    """One held-out model's answer in words, from its AUCs and their intervals:
    - ``not estimable``: too few failures for the no-adaptation AUC;
    - ``no transfer``: the no-adaptation interval reaches 0.5;
    - ``transfers, but not shown to need the basis``: a random basis in the model's own space reaches the
      no-adaptation AUC (its upper bound is above it);
    - ``shared``: above chance, above the random basis, and within ``margin`` of the model's own basis;
    - ``partly shared``: above chance and the random basis, but more than ``margin`` below its own basis.
    Then what light adaptation buys: the best light AUC minus the no-adaptation AUC."""
    none, own, rand = h.no_adaptation, h.own, h.random_basis
    if none.value is None or none.low is None:
        return f"{h.model} ({h.label}): not estimable ({none.n_pos} failures)"
    if none.low <= CHANCE_AUC:
        what = "no transfer (the no-adaptation interval reaches chance)"
    elif rand.value is not None and rand.high is not None and rand.high >= none.value:
        what = "transfers, but not shown to need the basis (a random basis reaches it)"
    elif own.value is not None and none.value >= own.value - margin:
        what = f"shared (above chance and the random basis, within {margin:.2f} of its own basis)"
    else:
        what = "partly shared (above chance and the random basis, below its own basis)"
    gains = [a.value - none.value for a in h.light.values() if a.value is not None]
    buys = f"; light adaptation buys {max(gains):+.2f} AUC at best" if gains else ""
    return f"{h.model} ({h.label}): {what}{buys}"


def _answer(result: CrossModelResult) -> str:
    lines = []
    for h in result.held_out:
        def fmt(a: AUC) -> str:
            if a.value is None or a.low is None or a.high is None:
                return a.note or "n/a"
            return f"{a.value:.2f} [{a.low:.2f}, {a.high:.2f}]"
        lines.append(f"{h.model} held out, {h.label} (k={h.k}): no adaptation {fmt(h.no_adaptation)}; "
                     + "; ".join(f"{n} labelled {fmt(a)}" for n, a in h.light.items())
                     + f"; own basis {fmt(h.own)}; text baseline {fmt(h.text_baseline)}; random basis "
                     f"{fmt(h.random_basis)}"
                     + ("" if h.mismatch_own is None else f"; label-free mismatch score, own vectors "
                        f"{fmt(h.mismatch_own)}")
                     + ("" if h.mismatch_basis is None else f", carried through the basis "
                        f"{fmt(h.mismatch_basis)}"))
    lines += [f"verdict: {verdict(h)}" for h in result.held_out]
    for t in result.transfer:
        lines.append(f"steering {t.model} with {t.direction} carried from the other models (cos to its own "
                     f"{t.cos_mapped_native:+.2f}): refusal log-odds shift mapped {t.mapped.text(3)}, native "
                     f"{t.native.text(3)}, random {t.random.text(3)}")
    return "\n".join(lines)


def check_basis_sizes(data: Sequence[ModelData], pcs: int, ks: Sequence[int]) -> None:
    """Refuse basis sizes no model can hold: each model is read through at most ``pcs`` whitened components of its
    shared-stimulus activations, fewer when the stimuli span fewer dimensions, and the k curve is fitted on half
    the stimuli."""
    if not ks:
        raise CrossModelError("no basis sizes to try: give at least one k")
    ranks = {d.model: min(pcs, int(np.linalg.matrix_rank(d.stimuli.double().numpy() - d.stimuli.double().numpy()
                                                           .mean(0))), len(d.stimuli) // 2 - 2) for d in data}
    model, usable = min(ranks.items(), key=lambda kv: kv[1])
    too_big = [k for k in ks if k > usable]
    if too_big:
        raise CrossModelError(f"basis sizes {too_big} exceed what {model} can hold ({usable} usable dimensions: "
                              f"{pcs} whitened components at most, its stimuli's rank, and half the "
                              f"{len(data[0].stimuli)} stimuli for the k curve); use k <= {usable} or more stimuli")


def _transfer(models: Sequence[str], data: Sequence[ModelData], held: Sequence[HeldOut], p: CrossPreset) -> list[
        TransferShift]:
    """Native vs mapped vs random steering on each held-out model (each model is loaded again, one at a time)."""
    prompts = [i.prompt for i in redteam_suite().items[: p.transfer_prompts]]
    out: list[TransferShift] = []
    for m, name in enumerate(models):
        k = next(h.k for h in held if h.model == data[m].model)
        mapped = mapped_directions(data, m, p.pcs, k)
        lm = load_spec(name)
        out += transfer_shifts(lm, data[m], mapped, prompts, p.transfer_strength)
        del lm
    return out


def run_cross_model_study(models: Sequence[str] = DEFAULT_MODELS, preset: str | CrossPreset = "quick",
                          out: str | Path = "runs/cross", *, say: Callable[[str], None] | None = None,
                          executor: ExecutorOptions | None = None, show_progress: bool = False) -> CrossModelResult:
    """Read every model, leave each out in turn, and write ``cross_model.json`` into ``out``. ``executor``:
    where each model's reading runs (``emovec.studies.cross_model.data``); the fits run in this process. ``say``
    gets a line as each model is read; ``show_progress`` reports the reading and the fits as stages."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if len(models) < 3:
        raise CrossModelError("a basis shared across models is fitted on at least two and tested on a third: "
                              f"give three or more models (got {len(models)})")
    check_available(executor)
    tuned = [m for m in models if "+" in m]
    if tuned and executor is not None and executor.kind == "ray":
        raise CrossModelError(f"fine-tuned variants ({', '.join(tuned)}) are merged in this process and cannot be "
                              "loaded by Ray workers; read them with the local executor, or save each merged model "
                              "as a checkpoint folder (emovec.studies.policy_dominance.ladder.save_checkpoint) "
                              "and pass its path")
    root = Path(out)
    data = _read_models(models, p, root, say or (lambda _m: None), executor, show_progress)
    if len({len(d.stimuli) for d in data}) != 1:
        raise CrossModelError("the models did not read the same shared stimuli; delete the cached model folders")
    check_basis_sizes(data, p.pcs, p.ks)
    with stage("cross-model/fit", detail=f"leave each of {len(data)} models out", show=show_progress):
        return _fit(models, data, p, root)


def _read_models(models: Sequence[str], p: CrossPreset, root: Path, say: Callable[[str], None],
                 executor: ExecutorOptions | None, show_progress: bool) -> list[ModelData]:
    """Each model's directions, shared stimuli and red-team replies (cached per model in ``root/models``)."""
    topics = load_corpus().topics()
    data: list[ModelData] = []
    with stage("cross-model/read", len(models), unit="models", detail=f"{p.prompts} red-team replies each",
               show=show_progress) as advance:
        for name in models:
            say(f"reading {name}: directions, the shared stimuli (the stories on {topics[1]!r} and {p.neutral} "
                f"neutral texts), {p.prompts} red-team replies")
            lm = load_spec(name)
            data.append(collect(lm, root / "models" / name.replace("/", "_"), prompts=p.prompts, neutral=p.neutral,
                                max_new_tokens=p.max_new_tokens, vector_topic=topics[0], stimulus_topic=topics[1],
                                executor=executor))
            del lm
            advance()
    return data


def _fit(models: Sequence[str], data: list[ModelData], p: CrossPreset, root: Path) -> CrossModelResult:
    """Leave each model out in turn (and transfer, when the preset asks), write ``cross_model.json``."""
    held, curves, names = [], {}, []
    for m in range(len(data)):
        for label in p.labels:
            h, curve, basis_names = held_out(data, m, p.pcs, p.ks, label)
            held.append(h)
        curves.update({f"{data[m].model} out, k={k}": v for k, v in curve.items()})
        names.append(basis_names)
    transfer = _transfer(models, data, held, p) if p.transfer_prompts > 0 else []
    counts = {d.model: {"replies": len(d.unsafe), "unsafe": int(d.unsafe.sum()),
                        "tone_masked": int(d.tone_masked.sum())} for d in data}
    result = CrossModelResult(models=[d.model for d in data], label=", ".join(p.labels), counts=counts,
                              tone_judges=data[0].tone_judges, k_curve=curves,
                              alignment=alignment_pairs(data, p.pcs), held_out=held, basis_names=names,
                              transfer=transfer)
    result.answer = _answer(result)
    write_result(root / "cross_model.json", result)
    return result


def _run(run: StudyRun) -> CrossModelResult:
    return run_cross_model_study(run.models or DEFAULT_MODELS, run.preset, run.out,  # type: ignore[arg-type]
                                 say=run.say, executor=run.executor, show_progress=run.show_progress)


STUDY = Study(
    name="cross-model",
    question="Is there a small emotion basis shared across models whose readings predict tone-masked safety "
             "failures on a model it never saw?",
    presets=PRESETS, run=_run, result=CrossModelResult, report=write_cross_model_report,
    answer=lambda r: r.answer.splitlines())
