from __future__ import annotations

import json

import pytest

from emovec.corpus import load_corpus
from emovec.corpus_writer import generate_corpus, plan_neutral, plan_stories
from emovec.data import emotions, implicit_scenarios, neutral_subjects, topics
from emovec.errors import CorpusError


def test_packaged_data():
    assert len(emotions()) == 171 and len(set(emotions())) == 171
    assert emotions()[0] == "afraid"
    assert len(topics()) >= 100 and len(neutral_subjects()) >= 50
    scen = implicit_scenarios()
    assert len(scen) == 12 and all(s.emotion in emotions() for s in scen)
    assert all(s.emotion not in s.text.lower() for s in scen)


def test_plans_rotate_topics_index_major():
    jobs = plan_stories(["calm", "sad"], ["t0", "t1", "t2"], 2)
    assert [j.id for j in jobs] == ["story/calm/0", "story/sad/0", "story/calm/1", "story/sad/1"]
    assert len({j.topic for j in jobs}) == 3
    assert len(plan_neutral(["a", "b"], 3)) == 6
    grid = plan_stories(["calm", "sad"], ["t0", "t1", "t2"], 3, stories_per_topic=2)
    assert len(grid) == 12 and {j.topic for j in grid if j.emotion == "calm"} == {"t0", "t1", "t2"}
    assert [j.topic for j in grid if j.emotion == "calm"][:2] == ["t0", "t0"]
    with pytest.raises(CorpusError):
        plan_stories([], ["t"], 1)


def test_generation_is_resumable(tiny_llama, tmp_path):
    out = tmp_path / "c.jsonl"
    jobs = plan_stories(["calm", "sad"], ["the sea"], 2) + plan_neutral(["the train"], 1)
    generate_corpus(tiny_llama, out, jobs[:3], max_new_tokens=6, batch_size=2, show_progress=False)
    assert len(out.read_text().splitlines()) == 3
    # simulate a crash mid-write: a torn last line is cut and the missing texts are generated
    out.write_text(out.read_text() + '{"id": "story/sad/1", "ki')
    generate_corpus(tiny_llama, out, jobs, max_new_tokens=6, batch_size=2, show_progress=False)
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(j.id for j in jobs)
    meta = json.loads((tmp_path / "c.jsonl.meta.json").read_text())
    assert meta["model"] == "tiny-llama" and meta["seed"] == 0 and "{emotion}" in meta["story_template"]
    with pytest.raises(CorpusError, match="other settings"):
        generate_corpus(tiny_llama, out, jobs, max_new_tokens=7, show_progress=False)
    with pytest.raises(CorpusError, match="other settings"):  # a dialogue run cannot resume a story corpus
        generate_corpus(tiny_llama, out, jobs, max_new_tokens=6, batch_size=2, show_progress=False, genre="dialogue")


def test_dialogue_genre(tiny_llama, tmp_path):
    out = tmp_path / "d.jsonl"
    generate_corpus(tiny_llama, out, plan_stories(["calm"], ["the sea"], 1), max_new_tokens=4, show_progress=False,
                    genre="dialogue")
    meta = json.loads((tmp_path / "d.jsonl.meta.json").read_text())
    assert "dialogue" in meta["story_template"] and "{emotion}" in meta["story_template"]
    with pytest.raises(CorpusError, match="genre 'poem'"):
        generate_corpus(tiny_llama, tmp_path / "p.jsonl", [], genre="poem")


def test_load_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "none.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(CorpusError, match="holds no records"):
        load_corpus(empty)
    bad = tmp_path / "bad.jsonl"
    good = '{"id": "a", "kind": "story", "emotion": "calm", "topic": "t", "index": 0, "text": "x"}'
    bad.write_text(good + "\n" + '{"id": "b", "kind": "poem"}\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: malformed"):
        load_corpus(bad)
    bad.write_text(good + "\n" + good + "\n")
    with pytest.raises(CorpusError, match="duplicate id"):
        load_corpus(bad)


def test_split_and_subset(write_corpus):
    corpus = load_corpus(write_corpus(per=4))
    train, held = corpus.split(1)
    assert len(train) == 12 and len(held) == 4 and all(r.index == 3 for r in held)
    sub = corpus.subset(2)
    assert len(sub.stories) == 8 and len(sub.neutral) == len(corpus.neutral)
    two = corpus.emotions()[:2]
    only = corpus.subset(None, 1, emotions=two)
    assert sorted({str(r.emotion) for r in only.stories}) == sorted(two) and len(only.stories) == 8
    assert len(only.neutral) == 1


def test_plan_crossed_is_topic_major_and_complete():
    from emovec.corpus_writer import plan_crossed

    jobs = plan_crossed(["calm", "angry", "sad"], ["a walk", "a storm", "a train"], 2, stories_per_cell=2)
    assert len(jobs) == 3 * 2 * 2 and len({j.id for j in jobs}) == len(jobs)
    assert [j.topic for j in jobs[:6]] == ["a walk"] * 6  # a whole topic before the next
    assert {(j.emotion, j.topic) for j in jobs} == {(e, t) for e in ("calm", "angry", "sad") for t in ("a walk",
                                                                                                       "a storm")}
    with pytest.raises(CorpusError, match="only 3 topics"):
        plan_crossed(["calm"], ["a", "b", "c"], 4)


def test_gzipped_corpus_loads_with_its_meta(write_corpus, tmp_path):
    import gzip

    plain = write_corpus()
    packed = tmp_path / "stories.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    settings = {"model": "m", "model_file_sha256": None, "model_fingerprint": "f", "story_template": "s",
                "neutral_template": "n", "max_new_tokens": 1, "temperature": 0.0, "top_p": 1.0, "seed": 0,
                "batch_size": 1, "design": "crossed"}
    (tmp_path / "stories.jsonl.meta.json").write_text(json.dumps(settings))
    corpus = load_corpus(packed)
    assert corpus.design == "crossed" and len(corpus.stories) == len(load_corpus(plain).stories)
    assert corpus.topics() == ["train", "house", "sea", "city"]
    assert {r.topic for r in corpus.subset(None, None, topics=2).stories} == {"train", "house"}
    (tmp_path / "stories.jsonl.meta.json").write_text("{broken")
    with pytest.raises(CorpusError, match="unreadable corpus meta file"):
        load_corpus(packed)
