"""The emotion vectors a drift run locks: extracted once per base model by emovec's recipe (topic-crossed
corpus, topic removal, neutral denoising) at one mid-depth layer, cached as a vector set."""

from __future__ import annotations

from pathlib import Path

from emovec.models.loading import LoadedModel
from emovec.vectors.vector_set import VectorSet

MAX_LENGTH = 192  # tokens read per story (the recipe reads from token 50 on)
DEPTH = 0.5  # the layer read: half the depth (the demo's nested topic-held-out choice on SmolLM2 was 14 of 30)


def drift_layer(lm: LoadedModel) -> int:
    return max(1, round(DEPTH * lm.n_layers))


def key_vectors(lm: LoadedModel, folder: str | Path, *, topics: int = 4, layer: int | None = None,
                show_progress: bool = False) -> VectorSet:
    """All 171 emotion vectors at ``layer`` from ``topics`` topics of the shipped corpus, cached in ``folder``
    (reused when it holds vectors of this model); ``show_progress`` reports the ``capture`` stage."""
    from emovec.corpus import load_corpus
    from emovec.data import default_corpus_path
    from emovec.vectors.extract import extract_emotion_vectors

    path = Path(folder)
    if (path / "vectors.json").exists():
        cached = VectorSet.load(path)
        cached.check_compatible(lm)
        return cached
    chosen = layer if layer is not None else drift_layer(lm)
    lm.check_layers([chosen])
    ext = extract_emotion_vectors(lm, load_corpus(default_corpus_path()), layers=[chosen], topics=topics,
                                  max_length=MAX_LENGTH, show_progress=show_progress)
    vectors = ext.vectors.with_recommended_layer(chosen)
    vectors.save(path)
    return vectors
