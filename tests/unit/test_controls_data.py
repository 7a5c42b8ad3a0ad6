"""Every non-emotional control concept has enough matched, distinct contrast pairs to fit a direction."""

from __future__ import annotations

import pytest

from emovec.evaluation.controls import CONTROL_CONCEPTS, control_texts


@pytest.mark.parametrize("name", [c for c in CONTROL_CONCEPTS if c != "refusal"])
def test_control_pairs_are_many_matched_and_distinct(tiny_llama, name: str) -> None:
    pos, neg = control_texts(tiny_llama, name)
    assert len(pos) == len(neg) >= 20
    assert all(p.strip() and n.strip() and p != n for p, n in zip(pos, neg, strict=True))
    assert len(set(pos)) == len(pos)


def test_an_unknown_control_names_the_known_ones(tiny_llama) -> None:
    with pytest.raises(KeyError, match="uncertainty"):
        control_texts(tiny_llama, "bravery")
