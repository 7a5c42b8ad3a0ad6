"""Run a sweep: generate under every condition, grade every reply, append rows to Parquet, resume safely.

Storage: ``OUT/sweep.json`` (the config, model and vector provenance, suites with source and licence) and
``OUT/results/part-NNNNN.parquet``. Each part is written whole through a temporary file and an atomic
rename, after each batch; a row's ``key`` is the hash of its condition (condition, strength, layers, suite,
seed and the settings that change replies) plus the prompt id. A rerun reads the parts, skips every key
already there and continues, so an interrupted run loses at most the batch in flight and never duplicates
a row. Rows of one batch mix conditions: each row carries its own steering strengths.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from emovec._progress import stage
from emovec.evaluation.controls import add_directions, control_directions, refusal_fit_ids
from emovec.evaluation.judges.emotion import PLUTCHIK, judge_emotions
from emovec.evaluation.judges.model_judge import ModelJudge, make_judge
from emovec.evaluation.judges.model_scores import (
    combine_logodds,
    openings,
)
from emovec.evaluation.judges.text import (
    CALM_EMOTIONS,
    DISTRESS_EMOTIONS,
    judge_helpful,
    judge_specificity,
    judge_tone,
    repetition_rate,
    tone_masked,
)
from emovec.evaluation.rows import SWEEP_SCHEMA, SweepRow, read_sweep_rows
from emovec.evaluation.side_effects import kl_and_perplexity
from emovec.evaluation.store import stored_keys, write_part
from emovec.evaluation.suites import PromptItem, Suite, load_suite
from emovec.evaluation.sweep_config import SweepConfig, Unit, grid
from emovec.evaluation.sweep_manifest import SweepManifest, check_manifest, settings_of, sweep_manifest, vectors_hash
from emovec.evaluation.sweep_refusal import grade_refusals
from emovec.executors import ExecutorOptions, make_executor
from emovec.generation import generate
from emovec.metrics import percentile
from emovec.models.loading import LoadedModel, load_model
from emovec.steer import mixed_spec
from emovec.vectors.vector_set import VectorSet


@dataclass
class Row:
    unit: Unit
    key: str
    unit_key: str
    item: PromptItem


@dataclass
class SweepResult:
    out: Path
    rows: pd.DataFrame
    new_rows: int
    skipped_rows: int
    judge_status: str
    manifest: SweepManifest


def _percentile(values: Sequence[float], q: float) -> float:
    return percentile(values, q) if values else float("nan")


@dataclass
class _Context:
    """What batches share: the refusal openings and the unsteered first-token distributions seen so far."""

    openings: Any
    fit_ids: set[str]
    judge: ModelJudge | None
    reference: dict[str, torch.Tensor] = field(default_factory=dict)  # prompt -> unsteered log-probs


@dataclass
class _Shared:
    """What every batch of one sweep needs, sent once to each worker."""

    token: str  # one per run: a worker's cached context belongs to one run
    config: SweepConfig
    vectors: VectorSet  # the emotion vectors with the control directions added
    fit_ids: set[str]


def sweep_batch(lm: LoadedModel, shared: _Shared, batch: list[Row], state: dict[str, Any]) -> list[SweepRow]:
    """One keyed batch, graded (the unit of work an executor runs). A worker builds its context (refusal
    openings, its own model judge, the unsteered-distribution cache) on its first batch of a run."""
    if state.get("token") != shared.token:
        cfg = shared.config
        local = None
        if cfg.judge_local and not cfg.judge_url:
            local = load_model(cfg.judge_local, device=cfg.device, dtype=cfg.dtype)
        judge = make_judge(cfg.judge_url, cfg.judge_model, local=local)
        state.update(token=shared.token, ctx=_Context(openings(lm), shared.fit_ids, judge))
    return _run_batch(lm, shared.vectors, shared.config, batch, state["ctx"])


def _run_batch(lm: LoadedModel, vectors: VectorSet, config: SweepConfig, rows: list[Row],
               ctx: _Context) -> list[SweepRow]:
    judge, fit_ids = ctx.judge, ctx.fit_ids
    layers = rows[0].unit.layers
    prompts = [r.item.prompt for r in rows]
    systems = [config.prompt_template.format(emotion=r.unit.condition.name) if r.unit.condition.kind == "prompt"
               else None for r in rows]
    spec = mixed_spec([(r.unit.condition.direction if r.unit.condition.steered else None, r.unit.strength)
                       for r in rows], layers, config.scope)
    monitored = [n for n in (*CALM_EMOTIONS, *DISTRESS_EMOTIONS) if n in vectors.names] if config.monitor else []
    start = time.perf_counter()
    gen = generate(lm, prompts, vectors=vectors, spec=spec, monitor=monitored or False,
                   max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=rows[0].unit.seed,
                   system=systems, time_steps=True, score_tokens=True,
                   after_tokens=sorted(ctx.openings.ambiguous) if config.logodds else (),
                   keep_cache=config.perplexity)
    seconds = time.perf_counter() - start
    new_mask = gen.attention_mask[:, gen.prompt_length:]
    n_new = new_mask.sum(1).tolist()
    p50, p95 = _percentile(gen.token_ms, 50), _percentile(gen.token_ms, 95)
    calm_gap = _calm_gap(gen, len(rows)) if monitored else [float("nan")] * len(rows)
    assert gen.first_logprobs is not None
    logodds = (combine_logodds(ctx.openings, gen.first_logprobs, gen.after_prompt).tolist()
               if config.logodds else [float("nan")] * len(rows))
    kl, ppl = kl_and_perplexity(lm, [r.item.prompt for r in rows], [r.unit.condition.steered for r in rows],
                                systems, gen, ctx.reference, kl=config.kl, perplexity=config.perplexity)
    # the independent emotion judge (nade), beside the model's own readout; NaN when it is not installed
    emo = judge_emotions(gen.replies)
    emo_rows = emo.as_rows() if emo is not None else [dict.fromkeys(PLUTCHIK, math.nan)] * len(rows)
    grades = grade_refusals(gen.replies, [r.item for r in rows], config.refusal_judge)  # one call per batch
    batch = {"n_new": n_new, "calm_gap": calm_gap, "logodds": logodds, "kl": kl, "ppl": ppl, "p50": p50, "p95": p95,
             "seconds": seconds, "systems": systems, "emotions": emo_rows}
    return [_row(rows, i, reply, ref, batch, judge, fit_ids)
            for i, (reply, ref) in enumerate(zip(gen.replies, grades, strict=True))]


def _calm_gap(gen: Any, n: int) -> list[float]:
    """Per row, the monitored calm emotions' mean readout over the reply minus the distress ones' (NaN without
    either group or a reply token)."""
    gap = [float("nan")] * n
    if gen.trace is None:
        return gap
    scores = gen.trace.scores[:, :, 0, :]  # [rows, positions, names]
    names = gen.trace.names
    calm_cols = [names.index(n) for n in CALM_EMOTIONS if n in names]
    distress_cols = [names.index(n) for n in DISTRESS_EMOTIONS if n in names]
    first = gen.prompt_length - 1  # the last prompt token predicts the first reply token
    reply_scores = scores[:, first:]
    real = gen.attention_mask[:, first: first + reply_scores.shape[1]].bool()
    for i in range(n):
        s = reply_scores[i][real[i]]
        if len(s) and calm_cols and distress_cols:
            gap[i] = float(s[:, calm_cols].mean() - s[:, distress_cols].mean())
    return gap


def _row(rows: list[Row], i: int, reply: str, ref: Any, batch: dict[str, Any], judge: Any,
         fit_ids: set[str]) -> SweepRow:
    """Row ``i`` of a batch: its reply read by every judge, beside what the batch measured (``batch``: per-row
    lists and per-batch figures)."""
    row, item = rows[i], rows[i].item
    spec_score = judge_specificity(reply).score
    tone = judge_tone(reply)
    harmful = item.should_refuse
    judge_label, judge_score = None, float("nan")
    if judge is not None and judge.available():
        judge_label = judge.xstest(item.prompt, reply)
        if harmful:
            rubric = judge.strongreject(item.prompt, reply)
            judge_score = rubric.score if rubric is not None else float("nan")
    gap = batch["calm_gap"][i]
    return SweepRow.model_validate({
        "key": row.key, "unit_key": row.unit_key, "condition": row.unit.condition.label,
        "cond_kind": row.unit.condition.kind, "cond_name": row.unit.condition.name,
        "strength": row.unit.strength, "layers": ",".join(map(str, row.unit.layers)) if row.unit.condition.steered
        else "", "suite": row.unit.suite, "seed": row.unit.seed, "item_id": item.id, "item_kind": item.kind,
        "category": item.category, "framing": item.framing, "pair": item.pair, "prompt": item.prompt,
        "system": batch["systems"][i] or "", "reply": reply, "n_new_tokens": int(batch["n_new"][i]),
        "refusal_label": ref.label, "refusal_score": ref.score, "refusal_label_rules": ref.rules,
        "refusal_label_learned": ref.learned, "specificity": spec_score,
        "harmful_detail": spec_score if harmful and ref.label != "full_refusal" else 0.0,
        "hedges": tone.hedges, "confidence": tone.confidence, "repetition": repetition_rate(reply),
        "helpful_correct": float(judge_helpful(reply, item.reference)) if item.kind == "helpful" else math.nan,
        "calm_minus_distress": gap,
        "tone_masked": tone_masked(harmful, ref.label, spec_score, tone, None if math.isnan(gap) else gap),
        "refusal_logodds": float(batch["logodds"][i]), "kl": float(batch["kl"][i]),
        "perplexity": float(batch["ppl"][i]), "ms_per_token_p50": batch["p50"], "ms_per_token_p95": batch["p95"],
        "batch_seconds": batch["seconds"], "batch_new_tokens": int(sum(batch["n_new"])), "batch_rows": len(rows),
        "batch_id": rows[0].key, "control_fit": bool(item.pair and (item.id[:-2] in fit_ids)),
        "judge_label": judge_label, "judge_score": judge_score,
        **{f"nade_{e}": batch["emotions"][i][e] for e in PLUTCHIK},
    })


def plan_rows(config: SweepConfig, units: Sequence[Unit], suites: dict[str, Suite],
              settings: dict[str, Any]) -> list[Row]:
    """Every (unit, prompt) row, grouped by layers and seed, prompt-major within a suite (a prompt's conditions
    sit side by side, so they share batches)."""
    rows: list[Row] = []
    groups: dict[tuple[tuple[int, ...], int], list[Unit]] = {}
    for u in units:
        groups.setdefault((u.layers, u.seed), []).append(u)
    for (_layers, _seed), group in groups.items():
        for name, suite in suites.items():
            members = [u for u in group if u.suite == name]
            keys = [u.key(settings) for u in members]
            for item in suite.items:
                for u, k in zip(members, keys, strict=True):
                    rows.append(Row(u, f"{k}:{item.id}", k, item))
    return rows


def _check_conditions(config: SweepConfig, lm: LoadedModel, vectors: VectorSet) -> list[str]:
    """Every emotion the conditions name and every layer they steer must exist; returns the control concepts."""
    for cond in config.conditions:
        if cond.kind in ("emotion", "prompt"):
            vectors.index(cond.name)  # unknown names fail here, with suggestions
    layers_needed = sorted({layer for ls in (config.layers or []) for layer in ls})
    lm.check_layers(layers_needed)
    for layer in layers_needed:
        vectors.layer_index(layer)
    return sorted({c.name for c in config.conditions if c.kind == "concept"})


def _batches(todo: Sequence[Row], size: int) -> list[list[Row]]:
    """The rows still to run in batches of at most ``size``; a batch holds one layer set and one seed."""
    batches: list[list[Row]] = []
    for r in todo:
        last = batches[-1] if batches else None
        if last and len(last) < size and (last[0].unit.layers, last[0].unit.seed) == (r.unit.layers, r.unit.seed):
            last.append(r)
        else:
            batches.append([r])
    return batches


def run_sweep(
    config: SweepConfig,
    lm: LoadedModel,
    vectors: VectorSet,
    *,
    force: bool = False,
    show_progress: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    executor: ExecutorOptions | None = None,
) -> SweepResult:
    """Run (or continue) a sweep; returns every row so far.

    Args:
        config: the sweep (see ``emovec.evaluation.sweep_config``).
        lm: the model; ``vectors`` must come from it.
        vectors: the emotion vector set (also the unit of every strength).
        force: add to an output folder made with another model or vectors.
        show_progress: report the ``sweep`` stage (a bar in a terminal, else one line when done).
        on_batch: called with (batches done, batches planned) after each batch is written.
        executor: where batches run (default: ``config.executor``, local unless it says ``ray``). Either way
            this process writes every batch through the keyed store, so runs resume and give the same rows.
    """
    vectors.check_compatible(lm)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    controls = _check_conditions(config, lm, vectors)
    seeds = sorted({int(c.name) for c in config.conditions if c.kind == "random"})
    full = add_directions(vectors, control_directions(lm, vectors, controls, seeds))
    suites = {name: load_suite(name, limit=config.limits.get(name, config.limit)) for name in config.suites}
    local = None
    if config.judge_local and not config.judge_url:
        local = load_model(config.judge_local, device=config.device, dtype=config.dtype)
    judge = make_judge(config.judge_url, config.judge_model, local=local)
    digest = vectors_hash(vectors)
    manifest = sweep_manifest(config, lm, vectors, digest, suites, judge)
    check_manifest(out, manifest, force)
    settings = settings_of(config, lm, vectors, digest)
    units = grid(config, vectors.default_layer)
    rows = plan_rows(config, units, suites, settings)
    done_keys = stored_keys(out)
    todo = [r for r in rows if r.key not in done_keys]
    fit_ids = refusal_fit_ids() if controls else set()
    batches = _batches(todo, config.batch_size)
    token = uuid.uuid4().hex
    state: dict[str, Any] = {"token": token, "ctx": _Context(openings(lm), fit_ids, judge)}
    runner = make_executor(executor or config.executor, lm, state=state)
    shared = _Shared(token, config, full, fit_ids)
    done = {"batches": 0, "rows": 0}
    what = f"{len(units)} settings x {len(rows) // max(len(units), 1)} prompts, {len(rows) - len(todo)} done before, "
    with stage("sweep", len(todo), unit="replies", detail=what + runner.name, show=show_progress) as advance:

        def keep(_index: int, graded: list[SweepRow]) -> None:
            write_part(out, graded, SWEEP_SCHEMA)
            done["batches"] += 1
            done["rows"] += len(graded)
            advance(len(graded))
            if on_batch is not None:
                on_batch(done["batches"], len(batches))

        runner.map(sweep_batch, shared, batches, keep)
    written = done["rows"]
    status = "not configured" if judge is None else ("ok" if judge.available() else f"unavailable: {judge.error}")
    if judge is not None and not judge.available():
        manifest.judge_status = status
        manifest.write(out)
    all_rows = read_sweep_rows(out)
    planned = {r.key for r in rows}
    if len(all_rows):
        all_rows = all_rows[all_rows["key"].isin(planned)].reset_index(drop=True)
    return SweepResult(out, all_rows, written, len(rows) - len(todo), status, manifest)

