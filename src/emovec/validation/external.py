"""Checks of emotion vectors on human-rated text that no one at emovec wrote.

- **Sentence valence**: the VADER study's 23,703 human-written snippets (tweets, movie reviews, New York Times
  editorials, Amazon reviews), each rated by about 20 people on a -4..4 scale (Hutto & Gilbert, ICWSM 2014; MIT
  licence). They ship in the ``vadersentiment`` 3.3.2 source archive, in
  ``additional_resources/hutto_ICWSM_2014.tar.gz``, which is read at run time and never copied.
- **Word valence labels**: NRC EmoLex positive/negative labels (Mohammad & Turney), shipped in the ``nrclex``
  package's ``data/nrc_en.json`` (MIT).

The valence readout is built from the emotion vectors alone: among their first three principal components,
the one whose coordinates best separate NRC-positive from NRC-negative emotion words, signed so positive
words score high. Nothing is fitted on the snippets.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor

from emovec._files import cache_root
from emovec.metrics import Estimate, pearson_estimate, percentile

VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_MEMBER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
SUBSETS = {
    "tweets": "tweets_GroundTruth.txt",
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
}
GET_VADER = ("pip download --no-deps --no-binary :all: vadersentiment==3.3.2 -d .venv/share/emovec-data "
             "(`make install` does this), or set EMOVEC_DATA to the folder holding " + VADER_SDIST)
GET_NRC = "pip install --no-deps nrclex (`make install` does this)"
GET_CHITCHAT = "pip install --no-deps chitchat-dataset==0.9.0 (`make install` does this)"


class ExternalDataMissing(Exception):
    """A human-rated data set is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Snippet:
    subset: str
    text: str
    valence: float


def data_dirs() -> list[Path]:
    """Where external data archives are looked for: ``$EMOVEC_DATA``, the environment's share folder, the cache."""
    dirs = [Path(os.environ["EMOVEC_DATA"])] if os.environ.get("EMOVEC_DATA") else []
    dirs.append(Path(sys.prefix) / "share" / "emovec-data")
    dirs.append(cache_root() / "data")
    return dirs


def find_vader_sdist() -> Path:
    """The ``vadersentiment`` 3.3.2 source archive, or ``ExternalDataMissing`` saying how to get it."""
    for d in data_dirs():
        if (d / VADER_SDIST).is_file():
            return d / VADER_SDIST
    raise ExternalDataMissing(f"the VADER human-rated snippets are not installed ({VADER_SDIST} not in "
                              f"{', '.join(map(str, data_dirs()))}); get them with: {GET_VADER}")


@cache
def chitchat_messages(min_words: int = 4) -> tuple[Snippet, ...]:
    """Human chat messages of the BYU Chit-Chat Challenge (the ``chitchat-dataset`` 0.9.0 package, MIT; 7,168
    open-domain conversations between people), one per turn (a speaker's consecutive utterances joined), with at
    least ``min_words`` words; ``subset`` is ``chitchat`` and ``valence`` NaN (not rated). Read from the installed
    package's ``dataset.json`` at run time, never copied.

    Example:
        >>> len(chitchat_messages()) > 50_000
        True
    """
    import importlib.resources
    import json

    try:
        path = importlib.resources.files("chitchat_dataset") / "dataset.json"
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError):
        raise ExternalDataMissing(f"the Chit-Chat Challenge messages are not installed; get them with: "
                                  f"{GET_CHITCHAT}") from None
    rows = []
    for conversation in data.values():
        for turn in conversation.get("messages", []):
            text = " ".join(str(u.get("text", "")).strip() for u in turn).strip()
            if len(text.split()) >= min_words:
                rows.append(Snippet("chitchat", text, float("nan")))
    return tuple(rows)


@cache
def vader_snippets(sdist: Path | None = None) -> tuple[Snippet, ...]:
    """All 23,703 snippets with their mean human valence, read from the source archive.

    Example:
        >>> len(vader_snippets())
        23703
    """
    path = sdist or find_vader_sdist()
    with tarfile.open(path) as outer:
        member = outer.extractfile(VADER_MEMBER)
        if member is None:
            raise ExternalDataMissing(f"{path} has no {VADER_MEMBER}; is it the 3.3.2 source archive?")
        inner_bytes = member.read()
    rows: list[Snippet] = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for subset, name in SUBSETS.items():
            handle = inner.extractfile(f"hutto_ICWSM_2014/{name}")
            if handle is None:
                raise ExternalDataMissing(f"{path}: {name} missing from the ICWSM archive")
            for line in handle.read().decode("utf-8", errors="replace").splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[2].strip():
                    rows.append(Snippet(subset, parts[2].strip(), float(parts[1])))
    return tuple(rows)


@cache
def nrc_polarity() -> dict[str, int]:
    """NRC EmoLex polarity of every word labelled positive or negative but not both: ``+1`` or ``-1``."""
    spec = importlib.util.find_spec("nrclex")
    if spec is None or not spec.submodule_search_locations:
        raise ExternalDataMissing(f"NRC EmoLex is not installed; get it with: {GET_NRC}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "nrc_en.json"
    if not path.is_file():
        raise ExternalDataMissing(f"{path} is missing from the installed nrclex; reinstall it: {GET_NRC}")
    lexicon: dict[str, list[str]] = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, int] = {}
    for word, labels in lexicon.items():
        pos, neg = "positive" in labels, "negative" in labels
        if pos != neg:
            out[word] = 1 if pos else -1
    return out


class ValenceAxis(BaseModel):
    """The valence direction read from the vectors, and how well it orders the emotion words."""

    layer: int
    component: int
    explained: float
    word_r: Estimate
    n_positive: int
    n_negative: int
    coordinates: dict[str, float]


def valence_axis(directions: Tensor, names: Sequence[str], layer: int, polarity: dict[str, int],
                 n_components: int = 3) -> tuple[ValenceAxis, Tensor]:
    """Pick, among the vectors' first principal components, the one that best separates NRC-positive from
    NRC-negative emotion words (point-biserial r), signed so positive words score high.

    Returns:
        ``(summary, unit axis [d])``.
    """
    labelled = [(i, polarity[n]) for i, n in enumerate(names) if n in polarity]
    if len({s for _, s in labelled}) < 2 or len(labelled) < 6:
        raise ValueError("too few emotion words have an NRC polarity to orient a valence axis")
    mat = directions.double()
    centred = mat - mat.mean(0)
    _, sing, vh = torch.linalg.svd(centred, full_matrices=False)
    explained = (sing**2 / (sing**2).sum()).tolist()
    idx = [i for i, _ in labelled]
    signs = np.array([s for _, s in labelled], dtype=np.float64)
    best, best_r = 0, 0.0
    for c in range(min(n_components, len(vh))):
        coords = (centred @ vh[c]).numpy()[idx]
        r = float(np.corrcoef(coords, signs)[0, 1])
        if abs(r) > abs(best_r):
            best, best_r = c, r
    axis = vh[best] * (1.0 if best_r >= 0 else -1.0)
    coords = (centred @ axis).numpy()
    word_r = pearson_estimate(coords[idx], signs)
    summary = ValenceAxis(
        layer=layer, component=best + 1, explained=explained[best], word_r=word_r,
        n_positive=int((signs > 0).sum()), n_negative=int((signs < 0).sum()),
        coordinates={n: float(coords[i]) for i, n in enumerate(names)},
    )
    return summary, axis.float()


class SubsetValence(BaseModel):
    """Correlation of the valence readout with mean human valence on one VADER subset."""

    subset: str
    n: int
    r: Estimate
    random_direction_p95: float
    vader_r: float | None = None
    probe_r: Estimate | None = None


def correlate_subsets(snippets: Sequence[Snippet], readout: np.ndarray, random_readouts: np.ndarray,
                      vader_scores: np.ndarray | None = None,
                      probe_readout: np.ndarray | None = None) -> list[SubsetValence]:
    """Per subset: r of the readout with human valence, against the 95th percentile of |r| for random directions.

    Args:
        snippets: the snippets read.
        readout: ``[n]`` valence readout per snippet.
        random_readouts: ``[n, k]`` readouts on ``k`` random unit directions (same centre, same activations).
        vader_scores: VADER's own compound score per snippet, as a reference, when the package is installed.
        probe_readout: the corpus-trained valence probe's readout per snippet (``valence_probe``), when fitted.
    """
    out = []
    for subset in SUBSETS:
        rows = np.array([i for i, s in enumerate(snippets) if s.subset == subset])
        if len(rows) < 4:
            continue
        human = np.array([snippets[i].valence for i in rows])
        rand = [abs(float(np.corrcoef(random_readouts[rows, k], human)[0, 1])) for k in range(random_readouts.shape[1])]
        vader = float(np.corrcoef(vader_scores[rows], human)[0, 1]) if vader_scores is not None else None
        probe = pearson_estimate(probe_readout[rows], human) if probe_readout is not None else None
        out.append(SubsetValence(subset=subset, n=len(rows), r=pearson_estimate(readout[rows], human),
                                 random_direction_p95=percentile(rand, 95), vader_r=vader, probe_r=probe))
    return out


def vader_compound(texts: Sequence[str]) -> np.ndarray | None:
    """VADER's own compound score per text when ``vaderSentiment`` is installed (a reference), else ``None``."""
    if importlib.util.find_spec("vaderSentiment") is None:
        return None
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(t)["compound"] for t in texts])


def sample_snippets(snippets: Sequence[Snippet], per_subset: int | None, seed: int = 0) -> list[Snippet]:
    """All snippets, or a seeded sample of ``per_subset`` from each subset."""
    if per_subset is None:
        return list(snippets)
    rng = np.random.default_rng(seed)
    out: list[Snippet] = []
    for subset in SUBSETS:
        rows = [s for s in snippets if s.subset == subset]
        pick = rng.choice(len(rows), size=min(per_subset, len(rows)), replace=False)
        out += [rows[i] for i in sorted(pick)]
    return out
