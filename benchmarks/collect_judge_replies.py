"""Collect real replies of the packaged models to the suites, for hand-labelling the refusal judge's test file.

Run once: ``python benchmarks/collect_judge_replies.py OUT.jsonl``. The replies were then labelled by hand to
XSTest's definitions and stored in ``src/emovec/data/judges/refusal_labelled.jsonl`` (see its README).
Greedy decoding, at most 150 new tokens (the first 16 qwen replies) or 120, so some replies are cut off
(the judge must handle that too).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from emovec import load_model
from emovec.evaluation.suites import load_suite
from emovec.generation import generate

PLAN = {  # model -> (suite, every k-th prompt, offset)
    "qwen2.5-coder-0.5b-instruct": [("harmful", 4, 0), ("benign", 8, 1), ("redteam", 28, 3)],
    "smollm2-135m-instruct": [("harmful", 4, 1), ("benign", 8, 3), ("redteam", 28, 8)],
}


def main(path: str) -> None:
    done = set()
    if os.path.exists(path):  # resume: skip replies already collected
        with open(path, encoding="utf-8") as handle:
            done = {(json.loads(line)["source"], json.loads(line)["item_id"]) for line in handle if line.strip()}
    with open(path, "a", encoding="utf-8") as out:
        for model, plan in PLAN.items():
            lm = load_model(model)
            for suite_name, step, offset in plan:
                items = [i for i in load_suite(suite_name).items[offset::step]
                         if (f"{model}/{suite_name}", i.id) not in done]
                for start in range(0, len(items), 16):
                    batch = items[start: start + 16]
                    gen = generate(lm, [i.prompt for i in batch], max_new_tokens=120)
                    for item, reply in zip(batch, gen.replies, strict=True):
                        out.write(json.dumps({"source": f"{model}/{suite_name}", "item_id": item.id,
                                              "prompt": item.prompt, "reply": reply}) + "\n")
                    out.flush()
                    print(model, suite_name, start, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
