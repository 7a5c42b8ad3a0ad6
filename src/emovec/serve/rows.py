"""One batch row as the worker decodes it: its tokens, their scores, its text so far and when it ends.

A row ends at an end-of-sequence token (``stop``), at a stop string (``stop``; the reply is cut before it), at
``max_tokens`` (``length``), or when its job is cancelled or times out (no more events). A monitored row's
token gets its score from the forward pass that reads it, one step after the token was chosen; so a monitored
row that ends on a stop string or at its length runs one step more to score its last token (that step's token is
dropped), and its stream sends each token's text together with its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from emovec.monitor import MonitorTrace
from emovec.serve.jobs import Finished, Job, Progress
from emovec.serve.schemas import ReadoutSummary, TokenScores


class TextCursor:
    """The text a stream has sent, kept a prefix of the final (stripped) reply: leading and trailing whitespace,
    an incomplete character and the start of a possible stop string are held back until the text goes on."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.sent = ""

    def _held(self, text: str) -> str:
        text = text.lstrip().rstrip().rstrip("\ufffd").rstrip()
        for stop in self.stops:
            for cut in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:cut]):
                    text = text[: len(text) - cut].rstrip()
                    break
        return text

    def advance(self, text: str, final: bool = False) -> str:
        """The new part of ``text`` (the decoded reply so far; ``final``: the finished reply) to send now."""
        ready = text if final else self._held(text)
        if len(ready) <= len(self.sent) or not ready.startswith(self.sent):
            return ""  # nothing new, or decoding changed text already sent (a stream cannot take it back)
        delta, self.sent = ready[len(self.sent):], ready
        return delta


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the earliest stop string starts in ``text``, or ``None``."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def readout_summary(names: Sequence[str], layer: int, scores: list[list[float]]) -> ReadoutSummary:
    """Mean and peak of each vector over the reply's tokens and the top five by mean, as ``MonitorTrace.summary``
    computes them for a generation.

    Example:
        >>> summary = readout_summary(["calm", "sad"], 16, [[0.1, -0.2], [0.3, 0.0]])  # two tokens
    """
    steps = [torch.tensor(scores, dtype=torch.float32).reshape(1, len(scores), 1, len(names))]
    row = MonitorTrace(names=list(names), layers=[layer], steps=steps).summary()[0]
    return ReadoutSummary(mean=row["mean"], max=row["max"], top=[(n, float(v)) for n, v in row["top"]])


class RowTracker:
    """Follows one job's row through a batch's decoding steps and sends its events.

    Args:
        job: the job in this row.
        tokenizer: to decode the row's tokens (the worker's own; only the worker thread uses it).
        eos: the ids that end a reply.
        columns: for a monitored job, the positions of its vectors among the batch's monitored names.
        layer_index: for a monitored job, the position of its layer among the batch's monitored layers.
    """

    def __init__(self, job: Job, tokenizer: Any, eos: set[int], columns: list[int] | None = None,
                 layer_index: int = 0) -> None:
        self.job, self.tokenizer, self.eos = job, tokenizer, eos
        self.columns, self.layer_index = columns, layer_index
        self.ids: list[int] = []
        self.scores: list[list[float]] = []
        self.reason: str | None = None
        self.cut: int | None = None  # where a stop string starts in the decoded reply
        self.done = False
        self.cursor = TextCursor(job.stop)
        self.sent_tokens = 0

    @property
    def budget(self) -> int:
        """Decoding steps this row may need: a monitored row's last token is scored one step later."""
        return self.job.max_tokens + (1 if self.job.monitor is not None else 0)

    def step(self, index: int, token: int, scores: Tensor | None, row: int) -> bool:
        """Take one decoding step's token (and the scores of the pass that chose it); whether the row is done."""
        if self.done:
            return True
        if self.job.dropped:
            self.done = True
            return True
        if self.job.monitor is not None and index > 0 and scores is not None and len(self.scores) < len(self.ids):
            assert self.columns is not None
            self.scores.append(scores[row, -1, self.layer_index, self.columns].tolist())
        if self.reason is not None or token in self.eos:
            self.finish(self.reason or "stop")
            return True
        self.ids.append(token)
        self._check_end()
        if self.reason is not None and self.job.monitor is None:
            self.finish(self.reason)
            return True
        if self.job.stream:
            self._progress()
        return False

    def _check_end(self) -> None:
        if self.job.stop:
            cut = first_stop(self._decode(self.ids), self.job.stop)
            if cut is not None:
                self.cut, self.reason = cut, "stop"
                return
        if len(self.ids) >= self.job.max_tokens:
            self.reason = "length"

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def _visible(self) -> list[int]:
        return self.ids if self.job.monitor is None else self.ids[: len(self.scores)]

    def _new_tokens(self, upto: int) -> list[TokenScores]:
        out = self.token_scores(self.sent_tokens, upto)
        self.sent_tokens = max(self.sent_tokens, upto)
        return out

    def token_scores(self, start: int = 0, stop: int | None = None) -> list[TokenScores]:
        """The scored reply tokens ``[start, stop)`` with their monitored names' scores."""
        if self.job.monitor is None:
            return []
        names = self.job.monitor.names
        end = len(self.scores) if stop is None else min(stop, len(self.scores))
        return [TokenScores(id=self.ids[k], token=self._decode([self.ids[k]]),
                            scores=dict(zip(names, self.scores[k], strict=True))) for k in range(start, end)]

    def _progress(self) -> None:
        visible = self._visible()
        decoded = self._decode(visible)
        text = self.cursor.advance(decoded if self.cut is None else decoded[: self.cut])
        tokens = self._new_tokens(len(visible))
        if text or tokens:
            self.job.sink(Progress(self.job.index, text, tokens))

    def reply_text(self) -> str:
        """The reply as the library gives it: decoded without special tokens, cut before a stop string, stripped."""
        text = self._decode(self.ids)
        return (text if self.cut is None else text[: self.cut]).strip()

    def finish(self, reason: str) -> None:
        """Send the last of the stream (if any) and the whole reply; the row is done."""
        if self.done:
            return
        self.done = True
        text = self.reply_text()
        if self.job.stream:
            delta = self.cursor.advance(text, final=True)
            tokens = self._new_tokens(len(self.scores))
            if delta or tokens:
                self.job.sink(Progress(self.job.index, delta, tokens))
        monitor = self.job.monitor
        summary = readout_summary(monitor.names, monitor.layer, self.scores) if monitor is not None else None
        self.job.sink(Finished(self.job.index, text, reason, len(self.ids), self.token_scores(), summary))
