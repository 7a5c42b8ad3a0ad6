"""Write one brief per writer (topic) from three differently worded brief versions."""
import random, pathlib
root = pathlib.Path("/work/corpus_raw")
emotions = [l.strip() for l in open("/work/shared/data/emotions171.txt") if l.strip()]
topics = [l.rstrip("\n").split("\t") for l in open(root / "topics.tsv")]
domains = [l.strip() for l in open(root / "domains.txt") if l.strip()]
N_NEUTRAL = 6

V1 = """You are writing short fiction for a text collection. Read the whole brief before you start.

The situation (the same for every story): "{topic}"

For each of the {n} feelings listed at the end, write one short story of 80 to 130 words set in this situation, in which the main character feels that feeling. Show the feeling through what happens and through what the character does, thinks and says. The feeling word itself, and every word from its family, must never appear in that story (for "angry": anger, angrily, angered; for "hopeful": hope, hoping, hopefully). Name feelings as little as you can at all: let actions, thoughts, speech and physical detail carry it.

Vary the stories: about half in the first person and half in the third person; different names (from many cultures), ages, places and details. Each story stands alone; do not reuse sentences or openings.

Write only the story: no title, no preface such as "Here is a story", no notes or comments.

After the stories, write {k} neutral texts of 80 to 130 words each: factual or procedural paragraphs on {k} different subjects in the area of "{domain}", with no feelings, no opinions, no characters and no story.

Output: append to the file {path} one JSON object per line (JSON Lines, UTF-8), exactly these keys:
  {{"kind": "story", "emotion": "<the feeling exactly as listed>", "topic_id": "{tid}", "writer": "{wid}", "brief": "{bv}", "text": "<the story>"}}
  {{"kind": "neutral", "subject": "<a few words naming the subject>", "topic_id": null, "writer": "{wid}", "brief": "{bv}", "text": "<the text>"}}
Write in batches of 10 to 20 records with a short Python script that builds each line with json.dumps (so quotes and newlines are escaped) and appends to the file; never truncate what is already there. When you have finished, check with a short script that every line parses, every listed feeling has exactly one story, every text has 80 to 130 words, and no story contains its own feeling word or a word of its family; rewrite any record that fails (for such fixes you may rewrite the file through a temporary file). Work only in that file: do not open other files in its folder or elsewhere on this machine.

The feelings ({n}), in the order to write them:
{cells}

When done, reply with one line: how many stories and neutral texts the file holds.
"""

V2 = """Writing commission: {n} very short stories and {k} plain factual paragraphs.

Setting for all stories: {topic}

Each story:
- 80-130 words, prose, a single scene in that setting;
- its main character is feeling the one assigned emotion (list below); the reader should be able to tell which emotion it is from events, behaviour, inner thoughts and dialogue alone;
- must not contain the assigned emotion word or any related form of it (noun, adjective, adverb or verb: e.g. for "frightened" avoid fright, frighten, frightening, frightful);
- should avoid naming emotions in general;
- roughly half the stories first-person, half third-person; vary the characters' names, ages, backgrounds and the small details of the scene; no two stories should open the same way;
- contains nothing but the story itself (no title, no introduction, no afterword).

Each factual paragraph: 80-130 words on a distinct topic within "{domain}"; informative or step-by-step; no people with feelings, no opinions, no narrative.

Deliverable: the file {path}, JSON Lines (one JSON object per line, UTF-8). Stories:
{{"kind": "story", "emotion": "<emotion as given>", "topic_id": "{tid}", "writer": "{wid}", "brief": "{bv}", "text": "..."}}
Paragraphs:
{{"kind": "neutral", "subject": "<subject in a few words>", "topic_id": null, "writer": "{wid}", "brief": "{bv}", "text": "..."}}
Append in chunks (say 10-20 records at a time) using a small Python script with json.dumps for correct escaping; do not overwrite earlier chunks. At the end, validate the file with a script (valid JSON per line, one story per emotion with none missing or doubled, word counts within 80-130, assigned word and its forms absent) and repair whatever fails. Use only this file; do not look at any other files on the machine.

Emotions, one story each, in this order:
{cells}

Finish with a one-line reply giving the number of stories and paragraphs in the file.
"""

V3 = """Task: write {n} short stories, one per emotion below, plus {k} neutral paragraphs, into a JSONL file.

Story scenario: {topic}
Per story: 80 to 130 words. The protagonist experiences the given emotion in that scenario. Convey it by showing (events, actions, thoughts, speech), not by labelling it. Hard rule: the emotion word and its word family are absent from the story (example: for "grateful", no grateful, gratefully, gratitude). Keep other emotion words rare. Mix first-person and third-person narration about evenly; vary names, ages, places. Story text only, no heading, no framing sentence, no remarks.

Neutral paragraphs: {k} paragraphs, 80 to 130 words each, each on a different subject from the field of {domain}; factual or how-to; no characters, no feelings, no opinions.

File: {path} (append only; one JSON object per line; build lines with json.dumps in a Python script; write 10 to 20 records per step).
Story record: {{"kind": "story", "emotion": "<emotion>", "topic_id": "{tid}", "writer": "{wid}", "brief": "{bv}", "text": "<story>"}}
Paragraph record: {{"kind": "neutral", "subject": "<subject>", "topic_id": null, "writer": "{wid}", "brief": "{bv}", "text": "<paragraph>"}}
Last step: verify with a script that all lines are valid JSON, all {n} emotions have exactly one story, all texts are 80-130 words, and no story uses its own emotion word or a related form; fix failures (rewriting via a temporary file is fine for fixes). Touch no other file and read nothing else on this machine.

Emotions (write in this order):
{cells}

Reply with a single line: counts of stories and paragraphs in the file.
"""
versions = {"v1": V1, "v2": V2, "v3": V3}
for i, (tid, _domain_kind, topic) in enumerate(topics):
    wid = f"w{i + 1:02d}"
    bv = f"b2026-12-{['v1', 'v2', 'v3'][i % 3]}"
    tmpl = versions[bv.split("-")[-1]]
    order = emotions[:]
    random.Random(1000 + i).shuffle(order)
    path = root / "out" / f"{wid}_{tid}.jsonl"
    text = tmpl.format(topic=topic, n=len(order), k=N_NEUTRAL, domain=domains[i], path=path, tid=tid, wid=wid, bv=bv,
                       cells="\n".join(order))
    (root / "briefs" / f"{wid}.txt").write_text(text)
print("ok")
