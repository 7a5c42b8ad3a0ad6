"""Read what users write for layers and steering terms. The command line and the Inspect provider both parse
here, so the same text means the same thing in both; every malformed piece raises an error that says what to
write instead."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from emovec.errors import EmovecError
from emovec.steer import Op, SteeringError, SteerTerm

__all__ = ["LAYER_FORMS", "LayerSpecError", "parse_layers", "parse_steer_text", "parse_term", "parse_terms"]

LAYER_FORMS = "all, one layer (12), a list (5,10,-1), a range (0-29) or a range with a step (0-29:2)"

# one layer, or a range FIRST-LAST with an optional :STEP; layers may be negative (counted from the end)
_LAYER_PART = re.compile(r"(?P<first>[-+]?\d+)(?:\s*-\s*(?P<last>[-+]?\d+)(?:\s*:\s*(?P<step>[-+]?\d+))?)?")


class LayerSpecError(EmovecError, ValueError):
    """Layer text that is not a layer, a list of layers or a range."""


def parse_layers(text: str | None) -> list[int] | None:
    """``None``/``all`` -> all layers (``None``); ``"3"``, ``"3,7,-1"``, ``"0-29"``, ``"10-20:2"`` -> the layers.

    Ranges include both ends. Raises ``LayerSpecError`` for anything else, an empty range or a step below 1.
    """
    if text is None or text.strip().lower() == "all":
        return None
    layers: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        match = _LAYER_PART.fullmatch(part)
        if match is None:
            what = "an empty item" if not part else repr(part)
            raise LayerSpecError(f"layers {text!r}: {what} is not a layer or range; write {LAYER_FORMS}")
        first, last, step = match.group("first", "last", "step")
        if last is None:
            layers.append(int(first))
            continue
        stride = int(step) if step is not None else 1
        if stride < 1:
            raise LayerSpecError(f"layers {text!r}: the step in {part!r} must be 1 or more, e.g. 0-29:2")
        span = list(range(int(first), int(last) + 1, stride))
        if not span:
            raise LayerSpecError(f"layers {text!r}: the range {part!r} holds no layer; write the first layer, then "
                                 "the last (e.g. 10-20), with both counted the same way")
        layers += span
    return layers


def parse_term(item: str, op: Op = "add", flag: str = "--steer") -> SteerTerm:
    """One ``NAME=STRENGTH`` (``op`` ``add`` or ``clamp``) or bare ``NAME`` (``ablate``) as a steering term.

    ``flag`` names where the text came from (``--steer``, ``steer=``) in the error message.
    """
    if op == "ablate":
        name = item.strip()
        if not name or "=" in name:
            raise SteeringError(f"{flag} {item!r}: write a bare vector NAME, e.g. desperate")
        return SteerTerm(name, 0.0, "ablate")
    example = "calm=0.05" if op == "add" else "calm=0.5"
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep:
        hint = " (NAME:STRENGTH is no longer read)" if ":" in item else ""
        raise SteeringError(f"{flag} {item!r}: write NAME=STRENGTH, e.g. {example}{hint}")
    if not name:
        raise SteeringError(f"{flag} {item!r}: the vector name before '=' is missing; write NAME=STRENGTH, "
                            f"e.g. {example}")
    try:
        strength = float(value)
    except ValueError:
        raise SteeringError(f"{flag} {item!r}: strength {value.strip()!r} is not a number; write NAME=STRENGTH, "
                            f"e.g. {example}") from None
    if not math.isfinite(strength):
        raise SteeringError(f"{flag} {item!r}: strength must be a finite number, e.g. {example}")
    return SteerTerm(name, strength, op)


def parse_terms(steer: Iterable[str], clamp: Iterable[str], ablate: Iterable[str]) -> list[SteerTerm]:
    """``NAME=STRENGTH`` items (``--steer``, ``--clamp``) and bare names (``--ablate``) as steering terms, in that
    order."""
    terms = [parse_term(item, "add", "--steer") for item in steer]
    terms += [parse_term(item, "clamp", "--clamp") for item in clamp]
    terms += [parse_term(item, "ablate", "--ablate") for item in ablate]
    return terms


def parse_steer_text(text: str, flag: str = "steer=") -> list[SteerTerm]:
    """``"calm=0.05,desperate=-0.02"`` -> two ``add`` terms, each read as one ``--steer`` item is.

    Blank items (a trailing comma) are skipped; an empty text gives no terms.
    """
    return [parse_term(part, "add", flag) for part in text.split(",") if part.strip()]
