"""Two (or more) corpora side by side, from the ``report.json`` that ``emovec inspect`` wrote for each vector set.

    emovec extract --corpus writers --out runs/corpora/writers --token-start 10 --layers 2-28:2 --skip-short
    emovec inspect runs/corpora/writers
    (the same for --corpus smollm2)
    python benchmarks/corpora.py runs/corpora/writers runs/corpora/smollm2 > runs/corpora/side_by_side.md

Prints markdown tables: classification (words alone, vectors nested, permutation baseline, input embeddings
alone), the corpus diagnostic margins, valence on the VADER snippets, the implicit scenarios, emotion groups, the
learning curve over topics and the most frequent confusions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _fmt(e: dict[str, Any] | None, digits: int = 3) -> str:
    if not e:
        return "n/a"
    return f"{e['value']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"


def _name(report: dict[str, Any], folder: Path) -> str:
    corpus = (report.get("provenance") or {}).get("corpus") or {}
    file = Path(corpus.get("path", "?")).name
    return f"{folder.name} ({report['n_stories']} stories, {report['n_topics']} topics; {file})"


def classification(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = ["| corpus | words alone top-1 / top-5 | vectors nested top-1 | nested top-5 | nested mean rank | "
           "shuffled labels top-1 / top-5 (99th pct) | input embeddings alone top-1 / top-5 | layer |",
           "|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        tb, n, p, ident = r.get("text_baseline") or {}, r.get("nested") or {}, r.get("permutation") or {}, \
            r.get("identity") or {}
        out.append(f"| {name} | {_fmt(tb.get('top1'))} / {_fmt(tb.get('top5'))} | {_fmt(n.get('top1'))} | "
                   f"{_fmt(n.get('top5'))} | {_fmt(n.get('mean_rank'), 1)} | "
                   f"{p.get('top1_p99', float('nan')):.3f} / {p.get('top5_p99', float('nan')):.3f} | "
                   f"{_fmt(ident.get('embedding_top1'))} / {_fmt(ident.get('embedding_top5'))} | "
                   f"{r['recommended_layer']} |")
    chance = rows[0][1]
    out.append(f"\nchance: top-1 {chance['chance_top1']:.4f}, top-5 {chance['chance_top5']:.4f}, mean rank "
               f"{chance['chance_mean_rank']:.0f}")
    return out


def diagnostic(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = ["| corpus | layer | same-emotion margin | same-topic margin | emotion > topic? |", "|---|---|---|---|---|"]
    for name, r in rows:
        for d in r["diagnostic"]:
            if d["layer"] != r["recommended_layer"]:
                continue
            em, tm = d["same_emotion"] - d["unrelated"], d["same_topic"] - d["unrelated"]
            out.append(f"| {name} | {d['layer']} | {em:+.3f} | {tm:+.3f} | {'yes' if em > tm else 'no'} |")
        margins = [(d["same_emotion"] - d["unrelated"], d["same_topic"] - d["unrelated"]) for d in r["diagnostic"]]
        out.append(f"| {name} | all read | {min(m[0] for m in margins):+.3f} to {max(m[0] for m in margins):+.3f} | "
                   f"{min(m[1] for m in margins):+.3f} to {max(m[1] for m in margins):+.3f} | "
                   f"{sum(e > t for e, t in margins)} of {len(margins)} layers |")
    return out


def valence(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = ["| corpus | subset | n | readout r | VADER itself | random directions 95th pct | beats VADER |",
           "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        for s in r["external"]["subsets"]:
            vader = s.get("vader_r")
            beats = "n/a" if vader is None else ("yes" if s["r"]["value"] > vader else "no")
            out.append(f"| {name} | {s['subset']} | {s['n']} | {_fmt(s['r'])} | "
                       f"{'n/a' if vader is None else f'{vader:.3f}'} | {s['random_direction_p95']:.3f} | {beats} |")
    return out


def implicit(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = ["| corpus | scenarios | top-1 among their emotions | diagonal - off-diagonal cosine |", "|---|---|---|---|"]
    for name, r in rows:
        im = r.get("implicit")
        if im:
            out.append(f"| {name} | {len(im['scenarios'])} | {im['top1_rate']:.2f} | "
                       f"{im['diagonal_mean'] - im['off_diagonal_mean']:+.3f} |")
    return out


def groups_and_curve(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = ["| corpus | groups | top-1 in the true group | chance (shuffled pairing) |", "|---|---|---|---|"]
    for name, r in rows:
        for g in (r.get("identity") or {}).get("groups", []):
            out.append(f"| {name} | {g['k']} | {_fmt(g['accuracy'])} | {g['chance']:.3f} |")
    out += ["", "| corpus | topics | ~topics fitted per fold | top-1 | top-5 |", "|---|---|---|---|---|"]
    for name, r in rows:
        for p in (r.get("identity") or {}).get("learning_curve", []):
            out.append(f"| {name} | {p['topics']} | {p['train_topics']:.1f} | {_fmt(p['top1'])} | {_fmt(p['top5'])} |")
    return out


def confusions(rows: list[tuple[str, dict[str, Any]]], top: int = 12) -> list[str]:
    out = ["| corpus | most frequent confusions (true -> predicted: stories, cosine of the vectors) |", "|---|---|"]
    for name, r in rows:
        pairs = (r.get("identity") or {}).get("confusions", [])[:top]
        out.append(f"| {name} | " + "; ".join(f"{c['truth']} -> {c['predicted']}: {c['count']} ({c['cosine']:.2f})"
                                             for c in pairs) + " |")
    return out


def refresh_identity(folder: Path) -> None:
    """Recompute a report's identity figures (confusions, groups, learning curve, embedding-layer null) as
    ``emovec inspect`` does, from the saved story activations, and rewrite its report.json (for a report written
    before the figures existed; the rest of the report is unchanged)."""
    from emovec import load_model
    from emovec._files import atomic_write
    from emovec.validation.crossval import Recipe
    from emovec.validation.identity import identity_figures
    from emovec.validation.validator import _embedding_inputs
    from emovec.vectors import VectorSet
    from emovec.vectors.story_cache import load_stories, tensors_hash

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    vs = VectorSet.load(folder)
    cached = load_stories(folder, tensors_hash(folder))
    if cached is None:
        raise SystemExit(f"{folder} has no story activations of these vectors; run emovec inspect instead")
    stories, bases = cached
    assert stories.topics is not None
    lm = load_model(vs.provenance.model.name)
    j = stories.layers.index(report["recommended_layer"])
    emb, emb_basis = _embedding_inputs(lm, vs, stories.labels)
    recipe = Recipe(topic_removal=bool(report["recipe"]["topic_removal"]), readout=report["recipe"]["readout"])
    ident = identity_figures(stories.acts[:, j], stories.labels, stories.topics, bases[j], recipe,
                             report["recommended_layer"], embedding_acts=emb, embedding_basis=emb_basis,
                             n_folds=report["n_folds"], n_resamples=500, seed=0)
    report["identity"] = json.loads(ident.model_dump_json())
    atomic_write(folder / "report.json", json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="vector set folders inspected by `emovec inspect`")
    parser.add_argument("--refresh-identity", action="store_true",
                        help="recompute each report's identity figures first (reports written before them)")
    args = parser.parse_args()
    if args.refresh_identity:
        for folder in args.folders:
            refresh_identity(folder)
    rows = []
    for folder in args.folders:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        rows.append((_name(report, folder), report))
    for title, part in (("Classification (topic-held-out)", classification), ("Corpus diagnostic", diagnostic),
                        ("Valence on human-rated text (VADER snippets)", valence), ("Implicit scenarios", implicit),
                        ("Emotion groups and the learning curve", groups_and_curve), ("Confusions", confusions)):
        print(f"### {title}\n")
        print("\n".join(part(rows)) + "\n")


if __name__ == "__main__":
    main()
