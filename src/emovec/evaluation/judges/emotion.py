"""An independent emotion judge for replies: the ``nade`` package (MIT; a fastText emoji model feeding one
LightGBM regressor per emotion, trained on social-media text; offline, about 14 MB).

Why: a steer's effect on emotion is otherwise measured by the steered model's own readout of its replies,
which is circular (the same directions write and read). ``nade`` shares no weights with any model emovec
steers, so a change in its scores between steered and unsteered replies is outside evidence.

It scores Plutchik's eight basic emotions, each in [0, 1]: ``PLUTCHIK``. A comparison with one of the 171
emotion words goes through ``plutchik_of`` (the table ``emovec/data/judges/emotions171_plutchik.tsv``: the
closest basic emotion by the wheel's mild and intense forms, dyads to their dominant side, ``None`` for the 13
words with no counterpart, such as ``tired`` or ``reflective``).

Optional: ``pip install emovec[judges]`` (or ``pip install nade``). Without it, ``load_emotion_judge`` returns
``None`` and callers report ``SKIPPED``; nothing else changes. On first load ``nade`` unpacks its regressors
into its own package folder (a few MB), so that folder must be writable once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from emovec.data import data_path, emotions

PLUTCHIK: tuple[str, ...] = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
SKIPPED = "emotion judge skipped (install nade)"


@cache
def plutchik_table() -> dict[str, str | None]:
    """Each of the 171 emotion words -> its closest Plutchik emotion, or ``None`` (see the module docs)."""
    table: dict[str, str | None] = {}
    for line in data_path("judges/emotions171_plutchik.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("emotion\t"):
            continue
        word, basic = line.split("\t")
        if basic != "-" and basic not in PLUTCHIK:
            raise ValueError(f"emotions171_plutchik.tsv: {basic!r} for {word!r} is not a Plutchik emotion")
        table[word] = None if basic == "-" else basic
    missing = set(emotions()) - set(table)
    if missing:
        raise ValueError(f"emotions171_plutchik.tsv lacks {sorted(missing)}")
    return table


def plutchik_of(emotion: str) -> str | None:
    """The Plutchik emotion that ``emotion`` (one of the 171 words, or a Plutchik name) is compared with.

    Args:
        emotion: an emotion word, e.g. ``"desperate"``.

    Returns:
        One of ``PLUTCHIK``, or ``None`` when the word has no counterpart (or is unknown).

    Example:
        >>> plutchik_of("terrified"), plutchik_of("tired")
        ('fear', None)
    """
    if emotion in PLUTCHIK:
        return emotion
    return plutchik_table().get(emotion)


@dataclass(frozen=True)
class EmotionScores:
    """``scores[i, k]``: ``nade``'s score of text ``i`` for ``PLUTCHIK[k]`` in [0, 1]; NaN for empty texts."""

    scores: np.ndarray

    def column(self, emotion: str) -> np.ndarray:
        return np.asarray(self.scores[:, PLUTCHIK.index(emotion)])

    def as_rows(self) -> list[dict[str, float]]:
        return [{e: float(v) for e, v in zip(PLUTCHIK, row, strict=True)} for row in self.scores]


class EmotionJudge:
    """``nade``'s eight-emotion scorer, loaded once. Use ``load_emotion_judge()`` rather than this directly."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def score(self, texts: Sequence[str], batch_size: int = 512) -> EmotionScores:
        """Score each text (newlines and case are normalised by ``nade``); empty texts get NaN.

        Args:
            texts: replies.
            batch_size: texts per call into ``nade``.

        Returns:
            ``EmotionScores`` with one row per text.

        Example:
            >>> judge = load_emotion_judge()
            >>> judge.score(["I am terrified."]).column("fear") if judge else None
        """
        out = np.full((len(texts), len(PLUTCHIK)), np.nan)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        for start in range(0, len(keep), batch_size):
            idx = keep[start: start + batch_size]
            pred = self._model.predict([" ".join(texts[i].split()) for i in idx])
            for k, emo in enumerate(PLUTCHIK):
                out[idx, k] = np.asarray(pred[emo].to_pylist(), dtype=float)
        return EmotionScores(out)


_STATE: dict[str, Any] = {}


def load_emotion_judge() -> EmotionJudge | None:
    """The ``nade`` judge, or ``None`` when ``nade`` is not installed or cannot load (``emotion_judge_error``
    says why). Loaded once per process (about a second)."""
    if "judge" in _STATE:
        return _STATE["judge"]
    judge: EmotionJudge | None = None
    try:
        from nade import Nade
    except ImportError:
        _STATE["error"] = SKIPPED
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nade warns once per regressor it unpacks on first load
                judge = EmotionJudge(Nade())
        except Exception as exc:  # a broken install or a read-only package folder: report and carry on
            _STATE["error"] = f"emotion judge skipped (nade failed to load: {exc})"
    _STATE["judge"] = judge
    return judge


def emotion_judge_error() -> str | None:
    """Why the emotion judge is unavailable (after ``load_emotion_judge``), or ``None``."""
    return _STATE.get("error") if _STATE.get("judge") is None and "judge" in _STATE else None


def reset_emotion_judge() -> None:
    """Forget the loaded judge (tests use it to exercise the skip path)."""
    _STATE.clear()


def judge_emotions(texts: Sequence[str]) -> EmotionScores | None:
    """Score texts with ``nade``; ``None`` when it is unavailable (see ``emotion_judge_error``).

    Args:
        texts: replies.

    Returns:
        ``EmotionScores`` or ``None``.

    Example:
        >>> s = judge_emotions(["What a wonderful day!"])
        >>> None if s is None else s.column("joy")[0] > 0.5
    """
    judge = load_emotion_judge()
    return None if judge is None else judge.score(texts)
