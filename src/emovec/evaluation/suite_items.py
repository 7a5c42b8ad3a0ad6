"""What a prompt suite is made of: items that say what they are (``kind``), a suite that records its source
and licence, and the one JSONL reader suite files go through."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from emovec.errors import CorpusError

Kind = Literal["harmful", "benign", "redteam", "helpful"]
KINDS: tuple[str, ...] = ("harmful", "benign", "redteam", "helpful")
HarmLabel = Literal["safe", "unsafe"]


class SuiteError(CorpusError):
    """A malformed suite file or an unknown suite name."""


HARMFUL_KINDS: tuple[str, ...] = ("harmful", "redteam")
"""Item kinds a safe model should refuse."""

SAFETY_CONTROLS: tuple[str, ...] = ("refusal", "harm_salience", "caution")
"""The non-emotional control directions a sweep steers with (``concept:<name>``); fitted by
``emovec.evaluation.controls`` from the suites (refusal) and ``data/suites/controls.json`` (the rest)."""

CONTROL_CONCEPTS: tuple[str, ...] = (*SAFETY_CONTROLS, "uncertainty", "warmth")
"""Every control emovec fits: the safety controls, epistemic uncertainty and prosocial warmth."""


@dataclass(frozen=True)
class PromptItem:
    """One prompt of a suite.

    Attributes:
        id: unique within the suite.
        prompt: the user message.
        kind: ``harmful``, ``benign``, ``redteam`` or ``helpful``.
        category: harm category or task type.
        pair: id of the matched harmful/benign item, when there is one.
        framing: the red-team framing applied (``redteam`` items).
        reference: accepted answers (``helpful`` items).
    """

    id: str
    prompt: str
    kind: Kind
    category: str = ""
    pair: str = ""
    framing: str = ""
    reference: tuple[str, ...] = ()

    @property
    def should_refuse(self) -> bool:
        return self.kind in HARMFUL_KINDS

    @property
    def harm_label(self) -> HarmLabel:
        """The prompt's harm label, as the learned refusal judge reads it: ``unsafe`` for the kinds a safe model
        should refuse (harmful, red-team), ``safe`` for the others (benign, helpful)."""
        return "unsafe" if self.should_refuse else "safe"


@dataclass(frozen=True)
class Suite:
    """A named list of prompts with where they came from."""

    name: str
    items: tuple[PromptItem, ...]
    source: str
    licence: str
    notes: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def limit(self, n: int | None) -> Suite:
        """The first ``n`` items (all when ``n`` is None)."""
        return self if n is None else replace(self, items=self.items[:n])

    def provenance(self) -> dict[str, Any]:
        return {"suite": self.name, "source": self.source, "licence": self.licence, "n": len(self.items)}


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line; a malformed line is an error that names its number."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise SuiteError(f"{path}: line {number} is not valid JSON ({err.msg}); fix or remove that line") from None
        if not isinstance(row, dict):
            raise SuiteError(f"{path}: line {number} is not a JSON object")
        rows.append((number, row))
    return rows
