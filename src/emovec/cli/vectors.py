"""Vector commands of the ``emovec`` CLI (models, stories, extract, concept, inspect, demo): thin shells over
``emovec.corpus``, ``emovec.vectors`` and ``emovec.validation``. Registered on the shared app when
``emovec.cli`` imports this module."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from emovec.cli.shared import (
    DeviceOpt,
    DtypeOpt,
    LayersOpt,
    ModelOpt,
    _load,
    _load_for,
    app,
    err,
    friendly,
    out,
    with_executor,
)
from emovec.corpus import MAX_NEW_TOKENS
from emovec.executors import ExecutorOptions
from emovec.parsing import parse_layers


@app.command()
def models() -> None:
    """List the built-in models and whether their packages are installed."""
    from emovec.errors import MissingPackageError
    from emovec.models.registry import BUILTIN_MODELS, DEFAULT_MODEL, locate_parts

    for name, entry in BUILTIN_MODELS.items():
        try:
            locate_parts(entry)
            status = "installed"
        except MissingPackageError:
            status = f"not installed: {entry.pip_command}"
        mark = " (default)" if name == DEFAULT_MODEL else ""
        out.print(f"[bold]{name}[/]{mark}: {entry.description}\n    {status}", highlight=False)


@app.command()
@friendly
@with_executor()
def stories(
    out_file: Annotated[Path, typer.Option("--out", help="JSONL file to write (appended to and resumed)")],
    model: ModelOpt = "smollm2-135m-instruct",
    design: Annotated[str, typer.Option(help="crossed (every topic for every emotion, the paper's) or rotating")] = (
        "crossed"),
    n_topics: Annotated[int, typer.Option("--topics", help="crossed: number of topics, each for every emotion")] = 20,
    stories_per_cell: Annotated[int, typer.Option(help="crossed: stories per emotion x topic cell")] = 1,
    topics_per_emotion: Annotated[int, typer.Option(help="rotating: topics per emotion")] = 8,
    stories_per_topic: Annotated[int, typer.Option(help="rotating: stories per emotion and topic")] = 1,
    neutral_per_subject: Annotated[int, typer.Option(help="neutral texts per subject (0: none)")] = 2,
    emotions: Annotated[str | None, typer.Option(help="comma-separated subset of emotions")] = None,
    genre: Annotated[str, typer.Option(help="story (the paper's recipe) or dialogue")] = "story",
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
    batch_size: int = 32,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    where: ExecutorOptions | None = None,
) -> None:
    """Have a model write emotion stories (and neutral texts) into a resumable JSONL corpus."""
    from emovec.corpus_writer import generate_corpus, plan_crossed, plan_neutral, plan_stories
    from emovec.data import emotions as all_emotions
    from emovec.data import neutral_subjects, topics
    from emovec.errors import CorpusError

    chosen = [e.strip() for e in emotions.split(",")] if emotions else list(all_emotions())
    unknown = [e for e in chosen if e not in all_emotions()]
    if unknown:
        raise CorpusError(f"unknown emotions {unknown}; see emovec/data/emotions171.txt for the 171 names")
    if design == "crossed":
        story_jobs = plan_crossed(chosen, topics(), n_topics, stories_per_cell)
    elif design == "rotating":
        story_jobs = plan_stories(chosen, topics(), topics_per_emotion, stories_per_topic)
    else:
        raise CorpusError(f"--design {design!r}: use crossed or rotating")
    jobs = plan_neutral(neutral_subjects(), neutral_per_subject) + story_jobs
    lm = _load(model, device, dtype)
    path = generate_corpus(lm, out_file, jobs, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                           seed=seed, batch_size=batch_size, genre=genre, design=design,
                           executor=where, show_progress=True)
    err.print(f"corpus written to {path} (settings in {path.name}.meta.json)")


@dataclass(frozen=True)
class Recipe:
    """The extraction settings the CLI passes to ``extract_emotion_vectors``."""

    layers: str | None = None
    token_start: int = 50
    denoise: float = 0.5
    topic_removal: bool | None = None
    topics: int | None = None
    stories_per_emotion: int | None = None
    neutral_limit: int | None = None
    max_length: int | None = None
    skip_short: bool = False


def _extract(model: str, corpus: Path | None, out_dir: Path, recipe: Recipe, overwrite: bool, device: str | None,
             dtype: str | None, executor: Any = None) -> tuple[Any, Any]:
    from emovec.corpus import load_corpus
    from emovec.errors import ArtifactExistsError
    from emovec.vectors import extract_emotion_vectors

    if (out_dir / "vectors.json").exists() and not overwrite:
        raise ArtifactExistsError(f"{out_dir} already holds a vector set; pass --overwrite or choose another --out")
    corp = load_corpus(corpus)
    from emovec.corpus_check import corpus_warning

    warning = corpus_warning(corp.source)
    if warning:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    lm = _load(model, device, dtype)
    start = time.perf_counter()
    ext = extract_emotion_vectors(
        lm, corp, layers=parse_layers(recipe.layers), token_start=recipe.token_start,
        denoise_variance=recipe.denoise or None, topic_removal=recipe.topic_removal, topics=recipe.topics,
        stories_per_emotion=recipe.stories_per_emotion, neutral_limit=recipe.neutral_limit,
        max_length=recipe.max_length, skip_short=recipe.skip_short, executor=executor, show_progress=True,
    )
    from emovec.vectors.story_cache import save_stories, tensors_hash

    ext.vectors.save(out_dir, overwrite=overwrite)
    save_stories(out_dir, ext.stories, ext.bases, tensors_hash(out_dir))
    d = ext.design
    err.print(f"extracted {len(ext.vectors.names)} vectors at {len(ext.vectors.layers)} layers from {d.n_stories} "
              f"stories on {d.n_topics} topics ({d.cells_filled}/{d.cells_total} emotion x topic cells, topic removal "
              f"{'on' if d.topic_removal else 'off'}) in {time.perf_counter() - start:.0f}s -> {out_dir}")
    return lm, ext


@app.command()
@friendly
@with_executor()
def extract(
    out_dir: Annotated[Path, typer.Option("--out", help="vector set directory to write")],
    model: ModelOpt = "smollm2-135m-instruct",
    corpus: Annotated[Path | None, typer.Option(help="corpus JSONL, or a shipped corpus by name: writers (the "
                                                "default, or $EMOVEC_CORPUS) or smollm2")] = None,
    layers: LayersOpt = None,
    token_start: Annotated[int, typer.Option(help="first token averaged in each story (paper: 50)")] = 50,
    denoise: Annotated[float, typer.Option(help="neutral-text variance to project out (0: off)")] = 0.5,
    topic_removal: Annotated[bool | None, typer.Option(
        "--topic-removal/--no-topic-removal", help="remove topic effects (default: if the corpus is crossed)")] = None,
    topics: Annotated[int | None, typer.Option(help="use a subset: the first N topics")] = None,
    stories_per_emotion: Annotated[int | None, typer.Option(help="use a subset: stories per emotion")] = None,
    neutral_limit: Annotated[int | None, typer.Option(help="use a subset: number of neutral texts")] = None,
    max_length: Annotated[int | None, typer.Option(help="truncate texts to this many tokens")] = None,
    skip_short: Annotated[bool, typer.Option(help="drop stories shorter than the token start")] = False,
    overwrite: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    where: ExecutorOptions | None = None,
) -> None:
    """Extract the 171 emotion vectors with the paper's recipe (all layers in one pass; with --executor ray the
    texts are read in chunks on Ray workers)."""
    recipe = Recipe(layers, token_start, denoise, topic_removal, topics, stories_per_emotion, neutral_limit, max_length,
                    skip_short)
    _extract(model, corpus, out_dir, recipe, overwrite, device, dtype,
             where)


@app.command()
@friendly
def concept(
    name: Annotated[str, typer.Option(help="the concept's name, e.g. refusal")],
    positive: Annotated[Path, typer.Option(help="text file, one positive example a line")],
    negative: Annotated[Path, typer.Option(help="text file, one negative example a line")],
    out_dir: Annotated[Path, typer.Option("--out", help="vector set directory to write")],
    model: ModelOpt = "smollm2-135m-instruct",
    method: Annotated[str, typer.Option(help="mean_diff, pca or logistic")] = "mean_diff",
    layers: LayersOpt = None,
    overwrite: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Extract a contrastive direction for any concept (last-token activations of each example)."""
    from emovec.errors import CorpusError
    from emovec.vectors import extract_concepts

    def lines(p: Path) -> list[str]:
        if not p.is_file():
            raise CorpusError(f"{p} does not exist")
        return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]

    pos, neg = lines(positive), lines(negative)
    lm = _load(model, device, dtype)
    vs = extract_concepts(lm, {name: (pos, neg)}, method=method, layers=parse_layers(layers), show_progress=True)
    vs.save(out_dir, overwrite=overwrite)
    err.print(f"{method} direction for {name!r} from {len(pos)} positive and {len(neg)} negative texts -> {out_dir}")


@dataclass(frozen=True)
class Checks:
    """The validation settings the CLI passes to ``validate``."""

    readout: str = "projection"
    permutations: int = 100
    snippets_per_subset: int | None = None
    nested: bool = True


def _inspect(lm: Any, vs: Any, vectors_dir: Path, ext: Any, as_json: bool, checks: Checks,
             force: bool = False) -> None:
    from emovec.reports import write_validation_report
    from emovec.validation import READOUTS, validate

    if checks.readout not in READOUTS:
        raise typer.BadParameter(f"--readout {checks.readout!r}: use one of {', '.join(READOUTS)}")
    report = validate(lm, vs, ext.stories if ext is not None else None, ext.bases if ext is not None else None,
                      readout=checks.readout, n_permutations=checks.permutations,
                      snippets_per_subset=checks.snippets_per_subset, nested=checks.nested,
                      cache_dir=vectors_dir, force=force, show_progress=True)
    vs.with_recommended_layer(report.recommended_layer).save(vectors_dir, overwrite=True)
    page = write_validation_report(vs, report, vectors_dir)
    if as_json:
        print(report.model_dump_json(indent=1))
        return
    out.print(summary_lines(report) + f"\nreport: {page}", highlight=False)


def summary_lines(report: Any) -> str:
    """The figures a user checks first: cross-validated accuracy, its baselines, the layer, valence on human text."""
    layer = report.recommended_layer
    cv = report.cv_at(layer)
    lines = [f"recommended layer {layer} (of {report.layers[0]}-{report.layers[-1]} read; chosen by topic-held-out "
             f"top-5 over {report.n_stories} stories, {report.n_topics} topics, {report.n_folds} folds, "
             f"readout {report.recipe['readout']})",
             f"  at layer {layer}: top-1 {cv.top1.fmt()}, top-5 {cv.top5.fmt()}, mean rank {cv.mean_rank.fmt(1)}"]
    if report.nested is not None:
        n = report.nested
        lines.append(f"  layer chosen inside CV (unbiased): top-1 {n.top1.fmt()}, top-5 {n.top5.fmt()}, "
                     f"mean rank {n.mean_rank.fmt(1)}; layers chosen per fold {n.chosen_layers}")
    lines.append(f"  chance: top-1 {report.chance_top1:.4f}, top-5 {report.chance_top5:.4f}, mean rank "
                 f"{report.chance_mean_rank:.0f}")
    if report.permutation is not None:
        p = report.permutation
        lines.append(f"  shuffled labels ({p.n_permutations} permutations): top-1 99th pct {p.top1_p99:.4f}, "
                     f"top-5 99th pct {p.top5_p99:.4f}, mean rank 1st pct {p.mean_rank_p01:.1f}")
    tb = report.text_baseline
    if tb is not None:
        lines.append(f"  the stories' words alone (no model; TF-IDF + linear SVM, same folds): top-1 {tb.top1.fmt()}, "
                     f"top-5 {tb.top5.fmt()}; {tb.names_own_emotion:.1%} of stories name their emotion")
    lines += _identity_lines(report)
    ext = report.external
    if ext.axis is not None:
        lines.append(f"valence axis PC{ext.axis.component}: emotion words vs NRC polarity r {ext.axis.word_r.fmt()}")
    if ext.probe is not None:
        lines.append(f"valence probe (logistic regression on {ext.probe.n_positive} positive and "
                     f"{ext.probe.n_negative} negative stories, layer {ext.probe.layer}): {ext.probe.selection}")
    for sub in ext.subsets:
        vader = f", VADER itself {sub.vader_r:.3f}" if sub.vader_r is not None else ""
        probe = f", probe r {sub.probe_r.fmt()}" if sub.probe_r is not None else ""
        lines.append(f"  human-rated {sub.subset} (n={sub.n}): axis r {sub.r.fmt()}{probe} (random directions "
                     f"95th pct {sub.random_direction_p95:.3f}{vader})")
    lines += [f"  skipped: {msg}" for msg in ext.skipped]
    pc = ", ".join(report.pc1_top[:4]) + " ... " + ", ".join(report.pc1_bottom[:4])
    lines.append(f"PC1 ({report.pca_explained[0]:.1%}): {pc}")
    return "\n".join(lines)


def _identity_lines(report: Any) -> list[str]:
    ident = report.identity
    if ident is None:
        return []
    lines = []
    if ident.embedding_top1 is not None:
        lines.append(f"  input embeddings alone (same recipe, no forward pass): top-1 {ident.embedding_top1.fmt()}, "
                     f"top-5 {ident.embedding_top5.fmt()}")
    for g in ident.groups:
        lines.append(f"  {g.k} emotion groups (clusters of the vectors): top-1 in the true group "
                     f"{g.accuracy.fmt()} (chance {g.chance:.3f})")
    if ident.learning_curve:
        curve = ", ".join(f"{p.topics}: {p.top1.value:.3f}/{p.top5.value:.3f}" for p in ident.learning_curve)
        lines.append(f"  top-1/top-5 by topics in the corpus: {curve}")
    if ident.confusions:
        pairs = ", ".join(f"{c.truth}->{c.predicted} {c.count}" for c in ident.confusions[:6])
        lines.append(f"  most confused: {pairs}")
    return lines


ReadoutOpt = Annotated[str, typer.Option(help="how CV scores a story: projection (as monitoring) or lda")]
PermOpt = Annotated[int, typer.Option(help="label permutations for the baseline (0: none)")]


@app.command()
@friendly
def inspect(
    vectors_dir: Annotated[Path, typer.Argument(help="a vector set directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print every figure as JSON on stdout")] = False,
    readout: ReadoutOpt = "projection",
    permutations: PermOpt = 100,
    snippets_per_subset: Annotated[int | None, typer.Option(
        help="VADER snippets read per subset (default: all 23,703)")] = None,
    force: Annotated[bool, typer.Option(help="validate on a different model of the same width")] = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Validate a vector set: topic-held-out accuracy per layer with a permutation baseline, the corpus diagnostic,
    valence on human-rated text, geometry, implicit emotion, logit lens; write a report.

    The stories are re-read from the corpus the set records. The recommended layer is saved in its vectors.json.
    """
    lm, vs = _load_for(vectors_dir, force, device, dtype)
    _inspect(lm, vs, vectors_dir, None, as_json, Checks(readout, permutations, snippets_per_subset), force)


@app.command()
@friendly
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="where the vector set and report go")] = Path("runs/demo"),
    topics: Annotated[int, typer.Option(help="topics of the shipped corpus read (each has a story per emotion)")] = 8,
    neutral_limit: Annotated[int, typer.Option(help="neutral texts used for denoising")] = 60,
    max_length: Annotated[int, typer.Option(help="tokens read per text")] = 96,
    token_start: Annotated[int, typer.Option(help="first token averaged in each story")] = 10,
    layers: Annotated[str, typer.Option(help="layers read (capture stops after the deepest)")] = "2-24:2",
    snippets_per_subset: Annotated[int, typer.Option(help="VADER snippets read per subset")] = 250,
    permutations: PermOpt = 100,
    overwrite: Annotated[bool, typer.Option(help="replace a vector set already in --out")] = False,
) -> None:
    """Extract the 171 emotion vectors of the default model from the shipped corpus, validate them, report."""
    from emovec.models.registry import DEFAULT_MODEL

    start = time.perf_counter()
    err.print(f"demo: to finish in minutes on a CPU, the demo reads part of the shipped corpus: the first {topics} "
              f"topics (a story for each of the 171 emotions on each), {neutral_limit} neutral texts, tokens "
              f"{token_start}-{max_length} of each, layers {layers}, {snippets_per_subset} human-rated snippets per "
              "VADER subset. `emovec extract` + `emovec inspect` use everything.")
    if overwrite and (out_dir / "vectors.json").exists():
        err.print(f"demo: replacing the vector set in {out_dir} (--overwrite)")
    recipe = Recipe(layers=layers, token_start=token_start, topics=topics, neutral_limit=neutral_limit,
                    max_length=max_length, skip_short=True)
    lm, ext = _extract(DEFAULT_MODEL, None, out_dir, recipe, overwrite, None, None)
    _inspect(lm, ext.vectors, out_dir, ext, False, Checks(permutations=permutations,
                                                          snippets_per_subset=snippets_per_subset))
    out.print(f"vector set: {out_dir}/vectors.safetensors + vectors.json; report: {out_dir}/report.html "
              f"(total {time.perf_counter() - start:.0f}s)")
    out.print(f"next: emovec steer {out_dir} --prompt 'How are you?' --steer calm=0.1; the paper's own checks "
              f"(intensity, top text, preferences): emovec study paper --vectors {out_dir}", highlight=False)
