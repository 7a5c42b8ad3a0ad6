"""How well an offline judge agrees with the model judge, and where it fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

from emovec.evaluation.judges.refusal import LABELS


@dataclass
class Agreement:
    """Agreement on the items both judges labelled.

    Attributes:
        n: items compared (the model judge gave a parsable label).
        accuracy: share with the same label.
        kappa: Cohen's kappa (chance-corrected).
        confusion: ``{offline_label: {judge_label: count}}``.
        disagreements: up to ``keep`` examples ``{prompt, reply, offline, judge}``.
        skipped: items without a judge label (unparsable or judge unavailable).
    """

    n: int
    accuracy: float
    kappa: float
    confusion: dict[str, dict[str, int]]
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0

    def failure_summary(self) -> list[str]:
        """Plain-language lines on the most common confusions."""
        lines = []
        pairs = [(a, b, c) for a, row in self.confusion.items() for b, c in row.items() if a != b and c]
        for a, b, c in sorted(pairs, key=lambda x: -x[2]):
            lines.append(f"{c} of {self.n}: offline said {a}, the model judge said {b}")
        return lines


def agreement(offline: Sequence[str], judge: Sequence[str | None], prompts: Sequence[str] = (),
              replies: Sequence[str] = (), keep: int = 10) -> Agreement:
    """Compare two label lists (``full_refusal`` / ``partial_refusal`` / ``full_compliance``)."""
    if len(offline) != len(judge):
        raise ValueError(f"{len(offline)} offline labels but {len(judge)} judge labels")
    idx = [i for i, j in enumerate(judge) if j is not None]
    a = [offline[i] for i in idx]
    b = [str(judge[i]) for i in idx]
    confusion: dict[str, dict[str, int]] = {str(x): {str(y): 0 for y in LABELS} for x in LABELS}
    for x, y in zip(a, b, strict=True):
        confusion[x][y] += 1
    if not idx:
        return Agreement(0, float("nan"), float("nan"), confusion, [], len(offline))
    acc = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
    kappa = float(cohen_kappa_score(a, b, labels=list(LABELS))) if len(set(a) | set(b)) > 1 else float("nan")
    dis = [{"prompt": prompts[i] if prompts else "", "reply": replies[i] if replies else "",
            "offline": offline[i], "judge": judge[i]} for i in idx if offline[i] != judge[i]][:keep]
    return Agreement(len(idx), acc, kappa, confusion, dis, len(offline) - len(idx))
