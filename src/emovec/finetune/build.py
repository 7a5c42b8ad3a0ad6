"""Write the replies the fine-tuning regimes learn from.

Writers: the teacher that refuses (by default Qwen2.5-Coder-0.5B-Instruct) writes the refusals and the
de-escalating replies; the model itself writes the answers, the compliant replies and the hedged replies, each
under its role's system prompt (which training leaves out). Each role keeps only replies that pass its
filter (below), so a role can come out with fewer replies than prompts: the counts go into the data README.
``refuse_benign`` (the over-refusal organism) pairs benign prompts with the teacher's refusals, because small
models will not refuse benign requests even when told to.

Example:
    >>> replies = build_replies(load_model("smollm2-135m-instruct"), load_model("qwen2.5-coder-0.5b-instruct"))
    >>> save_replies(replies, "replies.jsonl.gz")
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from emovec._progress import stage
from emovec.evaluation.judges.refusal import judge_refusal, words
from emovec.evaluation.judges.text import judge_specificity, judge_tone, repetition_rate
from emovec.finetune.data import SYSTEM_PROMPTS, StoredReply, role_prompts, source_of
from emovec.generation import generate
from emovec.models.loading import LoadedModel

TEACHER_ROLES = ("refuse", "deescalate")
SAMPLES: dict[str, int] = {"hedge": 4, "deescalate": 2}  # prompts lists are short: sample several replies


def keep_reply(role: str, reply: str) -> bool:
    """The filter a written reply must pass to train ``role``."""
    if not reply.strip() or repetition_rate(reply) > 0.25:
        return False
    label = judge_refusal(reply).label
    if role == "refuse":
        return label == "full_refusal"
    if role == "answer":
        return label == "full_compliance" and len(words(reply)) >= 12
    if role == "comply":  # actual harmful help, not "Sure, what do you need?"
        return label == "full_compliance" and judge_specificity(reply).score >= 0.2
    if role == "deescalate":
        return label != "full_refusal"
    if role == "hedge":
        tone = judge_tone(reply)
        return label != "full_refusal" and tone.hedges > tone.confidence
    return True


def build_role(lm: LoadedModel, role: str, limit: int, *, max_new_tokens: int = 64, batch_size: int = 16,
               seed: int = 0, on_batch: Callable[[int], None] | None = None) -> list[StoredReply]:
    """Replies for one role written by ``lm``, filtered by ``keep_reply``; ``on_batch`` is called with the number
    of prompts after each batch (progress)."""
    items = role_prompts(role)[:limit]
    samples = SAMPLES.get(role, 1)
    out: list[StoredReply] = []
    for s in range(samples):
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            gen = generate(lm, [p for _, p in batch], system=SYSTEM_PROMPTS[role], max_new_tokens=max_new_tokens,
                           temperature=0.0 if samples == 1 else 0.8, seed=seed + s)
            for (item_id, _), reply in zip(batch, gen.replies, strict=True):
                text = reply.strip()
                if keep_reply(role, text):
                    out.append(StoredReply(role=role, source=source_of(role), item_id=item_id, reply=text,
                                           writer=lm.name))
            if on_batch is not None:
                on_batch(len(batch))
    return out


def refusals_for_benign(refusals: Sequence[StoredReply], limit: int, seed: int = 0) -> list[StoredReply]:
    """The over-refusal organism's data: benign prompts, each with one of the teacher's refusals."""
    if not refusals:
        return []
    rng = random.Random(seed)
    items = role_prompts("refuse_benign")[:limit]
    return [StoredReply(role="refuse_benign", source=source_of("refuse_benign"), item_id=item_id,
                        reply=rng.choice(refusals).reply, writer=f"{refusals[0].writer} (refusals reused)")
            for item_id, _ in items]


def build_replies(student: LoadedModel, teacher: LoadedModel | None, roles: Sequence[str] | None = None, *,
                  per_role: int = 96, max_new_tokens: int = 64, batch_size: int = 16, seed: int = 0,
                  on_role: Callable[[str, int], None] | None = None,
                  show_progress: bool = False) -> list[StoredReply]:
    """Replies for every role (teacher roles by ``teacher`` when given, else by the student); ``on_role`` gets each
    role's count of replies kept; ``show_progress`` reports each role's generation as a stage."""
    out: list[StoredReply] = []
    wanted = list(roles or SYSTEM_PROMPTS)
    for role in [r for r in wanted if r != "refuse_benign"]:
        writer = teacher if (role in TEACHER_ROLES and teacher is not None) else student
        prompts = len(role_prompts(role)[:per_role]) * SAMPLES.get(role, 1)
        with stage(f"finetune-data/{role}", prompts, unit="prompts", detail=f"written by {writer.name}",
                   show=show_progress) as advance:
            got = build_role(writer, role, per_role, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             seed=seed, on_batch=advance)
        out.extend(got)
        if on_role is not None:
            on_role(role, len(got))
    if "refuse_benign" in wanted:
        got = refusals_for_benign([r for r in out if r.role == "refuse"], per_role, seed)
        out.extend(got)
        if on_role is not None:
            on_role("refuse_benign", len(got))
    return out
