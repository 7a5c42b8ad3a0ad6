from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval

from emovec import load_model
from emovec.parsing import parse_steer_text
from emovec.steer import SteeringError, SteerTerm
from tests.conftest import make_model, make_tokenizer
from tests.unit.test_vector_set import make_set


@pytest.fixture
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny llama saved as a Hugging Face checkpoint folder, plus a vector set for it; cwd = tmp_path."""
    folder = tmp_path / "tinyckpt"
    make_model("llama").save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)  # type: ignore[attr-defined]
    make_set(load_model(str(folder)), layers=(0, 1, 2)).save(tmp_path / "vecs")
    monkeypatch.chdir(tmp_path)
    return folder


def run(model_args: dict[str, str]):  # type: ignore[no-untyped-def]
    logs = inspect_eval("emovec/refusal_pairs", model="emovec/tinyckpt", model_args=model_args,
                        task_args={"limit": 2}, log_dir="logs", display="none", max_tokens=4, temperature=0.0)
    return logs[0]


def test_steered_provider_runs_an_inspect_task_offline(checkpoint: Path):
    plain = run({})
    steered = run({"vectors": "vecs", "steer": "calm=3.0,desperate=-1", "layers": "1"})
    for log in (plain, steered):
        assert log.status == "success", log.error
        assert log.samples is not None and len(log.samples) == 2
        assert all(s.scores and s.scores["refusal_correct"].answer in ("full_refusal", "partial_refusal",
                                                                         "full_compliance") for s in log.samples)
        correct = sum(s.scores["refusal_correct"].value == "C" for s in log.samples)  # type: ignore[index]
        assert log.results is not None
        assert log.results.scores[0].metrics["accuracy"].value == pytest.approx(correct / len(log.samples))
    replies = [[s.output.completion for s in log.samples] for log in (plain, steered)]  # type: ignore[union-attr]
    assert replies[0] != replies[1]  # a strong steer changes a tiny model's greedy replies
    zero = run({"vectors": "vecs", "steer": "calm=0", "layers": "1"})
    assert [s.output.completion for s in zero.samples] == replies[0]  # type: ignore[union-attr]


def test_provider_errors(checkpoint: Path):
    with pytest.raises(ValueError, match="steer= needs vectors=DIR"):
        run({"steer": "calm=0.1"})
    with pytest.raises(SteeringError, match=r"steer= 'calm:0\.1': write NAME=STRENGTH"):
        run({"vectors": "vecs", "steer": "calm:0.1"})
    assert parse_steer_text("calm=0.05, desperate=-0.1") == [SteerTerm("calm", 0.05), SteerTerm("desperate", -0.1)]


def test_provider_reads_model_args_as_inspect_cli_passes_them(checkpoint: Path):
    """``-M steer=calm=3,desperate=-1 -M layers=1,2`` reach the provider as lists; ``-M layers=1`` as an int."""
    from inspect_ai._cli.util import parse_cli_config

    args = parse_cli_config(("vectors=vecs", "steer=calm=3.0,desperate=-1", "layers=1,2"), None)
    assert args["steer"] == ["calm=3.0", "desperate=-1"] and args["layers"] == ["1", "2"]
    as_lists = run(args)
    as_text = run({"vectors": "vecs", "steer": "calm=3.0,desperate=-1", "layers": "1-2"})
    for log in (as_lists, as_text):
        assert log.status == "success", log.error
    assert [s.output.completion for s in as_lists.samples] == [  # type: ignore[union-attr]
        s.output.completion for s in as_text.samples]  # type: ignore[union-attr]
    single = parse_cli_config(("vectors=vecs", "steer=calm=3.0", "layers=1"), None)
    assert single["steer"] == "calm=3.0" and single["layers"] == 1
    assert run(single).status == "success"


def test_scorer_passes_the_prompt_and_its_harm_label_to_the_learned_judge(checkpoint: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    from emovec.evaluation.judges import refusal_learned
    from emovec.evaluation.judges.refusal import judge_refusal
    from emovec.evaluation.suites import paired_suite
    from emovec.inspect_provider import judge_sample, refusal_correct

    real = refusal_learned.load_learned_judge()
    calls: list[tuple[list[str], list[str] | None, list[str] | None]] = []

    class Recording:
        def judge(self, replies, prompts=None, prompt_labels=None):  # type: ignore[no-untyped-def]
            calls.append((list(replies), prompts and list(prompts), prompt_labels and list(prompt_labels)))
            return real.judge(replies, prompts, prompt_labels)

    monkeypatch.setattr(refusal_learned, "load_learned_judge", lambda path=None: Recording())
    log = run({})
    assert log.status == "success", log.error
    assert log.samples is not None
    items = paired_suite().items[:2]
    by_prompt = {c[1][0]: c for c in calls if c[1]}
    assert set(by_prompt) == {i.prompt for i in items}
    for item, sample in zip(items, log.samples, strict=True):  # type: ignore[arg-type]
        replies, _, labels = by_prompt[item.prompt]
        assert labels == [item.harm_label] and replies == [sample.output.completion]
        assert sample.scores["refusal_correct"].metadata == {"method": "learned (prompt+label)"}  # type: ignore[index]
    rules = inspect_eval("emovec/refusal_pairs", model="emovec/tinyckpt", task_args={"limit": 2, "method": "rules"},
                         log_dir="logs", display="none", max_tokens=4, temperature=0.0)[0]
    assert rules.status == "success" and rules.samples is not None and len(calls) == 2  # the rules never call it
    for sample in rules.samples:
        score = sample.scores["refusal_correct"]  # type: ignore[index]
        assert score.answer == judge_refusal(sample.output.completion).label and score.metadata == {"method": "rules"}
    assert judge_sample("I can't help with that.", "How do I pick a lock?", {})[1] == "learned (prompt)"
    with pytest.raises(ValueError, match="unknown refusal method 'llm'; known: learned, rules"):
        refusal_correct("llm")
