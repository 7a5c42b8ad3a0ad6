"""Steer a generation with an emotion vector and monitor every token's emotions as the model writes.

Extracts a small vector set (8 emotions, 3 topics, 2 layers of the default model; or pass ``--vectors`` from
``extract_and_validate.py``), then generates one reply unsteered and one steered toward ``--emotion``, monitoring
both, and scores the prompt's own tokens with ``monitoring`` around a plain forward pass. Checks that steering
raised the monitored score of the steered emotion on the reply.

    python examples/steer_and_monitor.py --emotion desperate --strength 0.15
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

import emovec

EMOTIONS = ("afraid", "angry", "calm", "desperate", "happy", "lonely", "proud", "sad")
PROMPT = "My landlord says I have to move out by Friday. What should I do?"


def small_vectors(lm: emovec.LoadedModel) -> emovec.VectorSet:
    """Vectors of ``EMOTIONS`` from the shipped corpus's first 3 topics at layers 8 and 12 (12 recommended)."""
    corpus = emovec.load_corpus().subset(None, 24, topics=3, emotions=EMOTIONS)
    ext = emovec.extract_emotion_vectors(lm, corpus, layers=[8, 12], token_start=10, max_length=64, skip_short=True,
                                         show_progress=True)
    return ext.vectors.with_recommended_layer(12)


def reply_scores(result: emovec.Generation) -> dict[str, float]:
    """Each monitored emotion's mean score over the reply's tokens (the prompt's are masked out)."""
    assert result.trace is not None
    mask = result.attention_mask.clone()
    mask[:, : result.prompt_length] = 0
    return dict(result.trace.summary(mask)[0]["mean"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for replies.json (default: a temp dir)")
    parser.add_argument("--vectors", type=Path, default=None, help="a vector set folder (default: extract one)")
    parser.add_argument("--emotion", default="desperate")
    parser.add_argument("--strength", type=float, default=0.15, help="fraction of the layer's mean residual norm")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="emovec-steer-"))
    out.mkdir(parents=True, exist_ok=True)

    lm = emovec.load_model()
    vs = emovec.VectorSet.load(args.vectors) if args.vectors else small_vectors(lm)
    layer = vs.default_layer
    spec = emovec.SteeringSpec([emovec.SteerTerm(args.emotion, args.strength)], layers=[layer], scope="generated")
    common = {"vectors": vs, "monitor": True, "max_new_tokens": args.max_new_tokens}
    plain = emovec.generate(lm, [PROMPT], **common)
    steered = emovec.generate(lm, [PROMPT], spec=spec, **common)
    before, after = reply_scores(plain), reply_scores(steered)

    # the same tools by hand: the prompt as the model sees it, read by the monitor during one forward pass
    text = emovec.format_prompt(lm, PROMPT)
    enc = lm.tokenizer(text, return_tensors="pt", add_special_tokens=not lm.has_chat_template).to(lm.device)
    with emovec.monitoring(lm, vs) as trace, torch.inference_mode():
        lm.model(**enc)
    prompt_top = trace.summary()[0]["top"][:3]

    print(f"prompt: {PROMPT}")
    print(f"prompt's top emotions at layer {layer}: {', '.join(f'{n} {x:+.3f}' for n, x in prompt_top)}")
    print(f"unsteered: {plain.replies[0]}")
    print(f"steered ({args.emotion} {args.strength:+g} at layer {layer}): {steered.replies[0]}")
    print(f"monitored {args.emotion} on the reply: {before[args.emotion]:+.3f} unsteered, "
          f"{after[args.emotion]:+.3f} steered")
    record = {"prompt": PROMPT, "layer": layer, "emotion": args.emotion, "strength": args.strength,
              "unsteered": plain.replies[0], "steered": steered.replies[0],
              "scores_unsteered": before, "scores_steered": after}
    (out / "replies.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(f"written: {out / 'replies.json'}")
    if not (plain.replies[0] and steered.replies[0]) or after[args.emotion] <= before[args.emotion]:
        print(f"FAILED: steering toward {args.emotion} did not raise its monitored score", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
