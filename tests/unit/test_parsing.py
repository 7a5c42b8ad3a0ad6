"""emovec.parsing: the layer and steering-term syntax shared by the command line and the Inspect provider."""

from __future__ import annotations

import pytest

from emovec.errors import EmovecError
from emovec.parsing import LayerSpecError, parse_layers, parse_steer_text, parse_term, parse_terms
from emovec.steer import SteeringError, SteerTerm


@pytest.mark.parametrize(("text", "layers"), [
    (None, None),
    ("all", None),
    (" ALL ", None),
    ("3", [3]),
    ("-1", [-1]),
    ("3,7,-1", [3, 7, -1]),
    (" 3 , 7 ", [3, 7]),
    ("0-4", [0, 1, 2, 3, 4]),
    ("0 - 2", [0, 1, 2]),
    ("10-20:5", [10, 15, 20]),
    ("10-21:5", [10, 15, 20]),
    ("2-24:2", list(range(2, 25, 2))),
    ("-3--1", [-3, -2, -1]),
    ("1,4-5,9", [1, 4, 5, 9]),
    ("5-5", [5]),
])
def test_parse_layers_reads_every_documented_form(text: str | None, layers: list[int] | None):
    assert parse_layers(text) == layers


@pytest.mark.parametrize(("text", "message"), [
    ("", r"an empty item is not a layer or range"),
    ("3,", r"an empty item is not a layer or range"),
    ("3,,4", r"an empty item is not a layer or range"),
    ("x", r"'x' is not a layer or range"),
    ("3.5", r"'3\.5' is not a layer or range"),
    ("0-", r"'0-' is not a layer or range"),
    ("-", r"'-' is not a layer or range"),
    ("1-2-3", r"'1-2-3' is not a layer or range"),
    ("1-4:x", r"'1-4:x' is not a layer or range"),
    ("4:2", r"'4:2' is not a layer or range"),
    ("1-4:2:1", r"'1-4:2:1' is not a layer or range"),
    ("1-4:0", r"the step in '1-4:0' must be 1 or more"),
    ("10-0:-2", r"the step in '10-0:-2' must be 1 or more"),
    ("20-10", r"the range '20-10' holds no layer"),
    ("0--1", r"the range '0--1' holds no layer"),
])
def test_parse_layers_says_what_to_write(text: str, message: str):
    with pytest.raises(LayerSpecError, match=message) as caught:
        parse_layers(text)
    assert isinstance(caught.value, EmovecError) and isinstance(caught.value, ValueError)
    if "holds no layer" in message:
        assert "e.g. 10-20" in str(caught.value)
    elif "step" not in message:
        assert "write all, one layer (12), a list (5,10,-1), a range (0-29) or a range with a step (0-29:2)" in str(
            caught.value)


def test_parse_terms_builds_add_clamp_and_ablate_terms_in_order():
    terms = parse_terms([" desperate = 0.05", "calm=-1e-2"], ["afraid=0.5"], [" happy "])
    assert terms == [SteerTerm("desperate", 0.05, "add"), SteerTerm("calm", -0.01, "add"),
                     SteerTerm("afraid", 0.5, "clamp"), SteerTerm("happy", 0.0, "ablate")]
    assert parse_terms([], [], []) == []


@pytest.mark.parametrize(("steer", "clamp", "ablate", "message"), [
    (["calm"], [], [], r"--steer 'calm': write NAME=STRENGTH, e\.g\. calm=0\.05$"),
    (["calm:0.05"], [], [], r"--steer 'calm:0\.05': write NAME=STRENGTH, e\.g\. calm=0\.05 \(NAME:STRENGTH is no "
                            r"longer read\)"),
    (["=0.05"], [], [], r"--steer '=0\.05': the vector name before '=' is missing"),
    (["calm="], [], [], r"--steer 'calm=': strength '' is not a number"),
    (["calm=lots"], [], [], r"--steer 'calm=lots': strength 'lots' is not a number; write NAME=STRENGTH"),
    (["calm=0.1=2"], [], [], r"strength '0\.1=2' is not a number"),
    (["calm=nan"], [], [], r"--steer 'calm=nan': strength must be a finite number"),
    (["calm=inf"], [], [], r"strength must be a finite number"),
    ([], ["calm"], [], r"--clamp 'calm': write NAME=STRENGTH, e\.g\. calm=0\.5"),
    ([], [], ["calm=0.1"], r"--ablate 'calm=0\.1': write a bare vector NAME"),
    ([], [], [" "], r"--ablate ' ': write a bare vector NAME"),
])
def test_parse_terms_says_what_to_write(steer: list[str], clamp: list[str], ablate: list[str], message: str):
    with pytest.raises(SteeringError, match=message):
        parse_terms(steer, clamp, ablate)


def test_parse_steer_text_reads_comma_separated_terms():
    assert parse_steer_text("calm=0.05,desperate=-0.02") == [SteerTerm("calm", 0.05), SteerTerm("desperate", -0.02)]
    assert parse_steer_text(" calm = 0.05 , ") == [SteerTerm("calm", 0.05)]
    assert parse_steer_text("") == []


@pytest.mark.parametrize(("text", "message"), [
    ("calm:0.05", r"steer= 'calm:0\.05': write NAME=STRENGTH, e\.g\. calm=0\.05 \(NAME:STRENGTH is no longer read\)"),
    ("calm=0.05,desperate", r"steer= 'desperate': write NAME=STRENGTH"),
    ("calm=high", r"steer= 'calm=high': strength 'high' is not a number"),
])
def test_parse_steer_text_says_what_to_write(text: str, message: str):
    with pytest.raises(SteeringError, match=message):
        parse_steer_text(text)


@pytest.mark.parametrize("text", ["calm=0.05", "calm=0.05,desperate=-0.02", "a=1, b = -2e-3 ,c=0"])
def test_inspect_and_command_line_read_the_same_text_the_same_way(text: str):
    items = [part for part in text.split(",") if part.strip()]
    assert parse_steer_text(text) == parse_terms(items, [], [])
    assert parse_steer_text(text) == [parse_term(item) for item in items]


def test_inspect_and_command_line_reject_the_same_text():
    for text in ("calm", "calm:0.05", "calm=x", "=1"):
        with pytest.raises(SteeringError) as from_cli:
            parse_terms([text], [], [])
        with pytest.raises(SteeringError) as from_inspect:
            parse_steer_text(text)
        assert str(from_cli.value).removeprefix("--steer") == str(from_inspect.value).removeprefix("steer=")
