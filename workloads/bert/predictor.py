"""Answer sentence pairs: tokenise (truncating and flagging over-long input), run the engine, decode.

A dynamic batch mixes inputs of different lengths. Padding all of them to the longest one wastes
compute (on the bench's news sentences, 11-22 tokens, about 30% of a 64-sentence batch is padding),
so an eager engine gets the batch sorted by length and cut into chunks, each padded only to its own
longest member. Where to cut comes from a cost model: a forward pass costs its padded tokens plus a
fixed overhead worth :data:`CHUNK_OVERHEAD_TOKENS` tokens (weights streamed from memory, per-op
dispatch), minimised exactly by dynamic programming over the distinct lengths. A single pair is
never split. Engines with a static shape (Neuron) get one call padded to that shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workloads.bert.engines import Engine
from workloads.bert.models import LABELS, LoadedModel, Task

# The fixed cost of one forward pass in tokens: measured on the CPU here for MiniLM with one
# thread, a 1-token forward costs as much as about 24 tokens of a large batch (7.4 ms vs 0.31 ms
# per token); rounded up because two intra-op threads split small passes less well.
CHUNK_OVERHEAD_TOKENS = 64


def plan_chunks(lengths: Sequence[int], overhead_tokens: int = CHUNK_OVERHEAD_TOKENS) -> list[list[int]]:
    """Return input indices grouped into chunks of similar length, minimising padded tokens + overhead.

    The indices are sorted by length; a chunk is a run of that order and costs
    ``overhead_tokens + size * longest``. Cuts are only useful between distinct lengths, so the
    dynamic programme runs over those (at most max_length of them).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if not order:
        return []
    # Ends of runs of equal length in sorted order: the only useful cut points.
    ends = [
        i + 1 for i in range(len(order)) if i + 1 == len(order) or lengths[order[i + 1]] != lengths[order[i]]
    ]
    best = [0.0] + [float("inf")] * len(ends)
    cut = [0] * (len(ends) + 1)
    for j, end in enumerate(ends, start=1):
        longest = lengths[order[end - 1]]
        for i in range(j):
            start = ends[i - 1] if i else 0
            cost = best[i] + overhead_tokens + (end - start) * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks: list[list[int]] = []
    j = len(ends)
    while j:
        i = cut[j]
        chunks.append(order[(ends[i - 1] if i else 0) : ends[j - 1]])
        j = i
    return chunks[::-1]


@dataclass(frozen=True)
class Pair:
    """Two sentences to compare."""

    text_a: str
    text_b: str


@dataclass(frozen=True)
class Answer:
    """A pair's label, with class probabilities (classifier) or cosine similarity (embedding model)."""

    label: str
    probabilities: dict[str, float] | None
    similarity: float | None
    truncated: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form the server sends."""
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "similarity": self.similarity,
            "truncated": self.truncated,
        }


class Predictor:
    """Turn pairs into answers with one engine call per batch.

    ``max_length`` caps the tokens of one encoded input (a pair for a classifier, one sentence
    for an embedding model); longer input is truncated (longest sentence first) and the answer
    says so. ``threshold`` is the cosine similarity at or above which an embedding model calls
    a pair a paraphrase (0.6 separates paraphrases, 0.72-0.93, from near misses, 0.23-0.48, on the 10 triples of samples.py; tune it on your own labelled pairs).
    """

    def __init__(self, loaded: LoadedModel, engine: Engine, *, max_length: int = 128, threshold: float = 0.6):
        self.loaded = loaded
        self.engine = engine
        self.task = loaded.task
        static = engine.static_shape
        self.max_length = min(max_length, loaded.max_positions, static[1] if static else max_length)
        self.threshold = threshold
        self.labels = loaded.labels or LABELS
        self.chunk_overhead_tokens = CHUNK_OVERHEAD_TOKENS

    def _tokenize(self, first: list[str], second: list[str] | None) -> tuple[list[Any], list[bool]]:
        """Return per-input encodings (lists, unpadded, truncated to max_length) and truncation flags.

        One tokenizer pass without truncation gives every length; only the inputs that are too
        long are encoded again with truncation (longest sentence first for a pair).
        """
        tokenizer = self.loaded.tokenizer
        full = tokenizer(first, second, add_special_tokens=True, truncation=False, verbose=False)
        ids, types = full["input_ids"], full.get("token_type_ids")
        types = types if types is not None else [[0] * len(x) for x in ids]
        truncated = [len(x) > self.max_length for x in ids]
        long = [i for i, t in enumerate(truncated) if t]
        if long:
            cut = tokenizer(
                [first[i] for i in long],
                [second[i] for i in long] if second is not None else None,
                truncation="longest_first" if second is not None else True,
                max_length=self.max_length,
            )
            cut_types = cut.get("token_type_ids") or [[0] * len(x) for x in cut["input_ids"]]
            for k, i in enumerate(long):
                ids[i], types[i] = cut["input_ids"][k], cut_types[k]
        return list(zip(ids, types, strict=True)), truncated

    def _tensors(self, encoded: Sequence[Any], width: int) -> dict[str, torch.Tensor]:
        """Pad encodings to ``width`` tokens: input_ids, attention_mask, token_type_ids."""
        n = len(encoded)
        pad = self.loaded.tokenizer.pad_token_id or 0
        input_ids = torch.full((n, width), pad, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        token_types = torch.zeros((n, width), dtype=torch.long)
        for row, (ids, types) in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            token_types[row, : len(ids)] = torch.tensor(types)
        return {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": token_types}

    def model_inputs(self, pairs: Sequence[Pair]) -> list[dict[str, torch.Tensor]]:
        """Return the padded tensors of every engine call ``predict(pairs)`` makes (for model-only timing)."""
        if self.task is Task.CLASSIFY:
            encoded, _ = self._tokenize([p.text_a for p in pairs], [p.text_b for p in pairs])
        else:
            encoded, _ = self._tokenize([p.text_a for p in pairs] + [p.text_b for p in pairs], None)
        return [tensors for _, tensors in self._calls(encoded)]

    def _calls(self, encoded: Sequence[Any]) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
        """Return (input indices, padded tensors) of each engine call: length-sorted chunks or one static shape."""
        if self.engine.static_shape:
            return [(list(range(len(encoded))), self._tensors(encoded, self.engine.static_shape[1]))]
        chunks = plan_chunks([len(ids) for ids, _ in encoded], self.chunk_overhead_tokens)
        calls = []
        for chunk in chunks:
            part = [encoded[i] for i in chunk]
            calls.append((chunk, self._tensors(part, max(len(ids) for ids, _ in part))))
        return calls

    def _run(self, first: list[str], second: list[str] | None) -> tuple[torch.Tensor, list[bool]]:
        """Tokenise, run the engine over length-sorted chunks (or one static-shape call), restore order."""
        encoded, truncated = self._tokenize(first, second)
        calls = self._calls(encoded)
        if self.engine.static_shape:
            return self.engine.run(calls[0][1]), truncated
        chunks = [chunk for chunk, _ in calls]
        outputs = [self.engine.run(tensors) for _, tensors in calls]
        order = torch.tensor([i for chunk in chunks for i in chunk])
        result = torch.empty((len(encoded), *outputs[0].shape[1:]), dtype=outputs[0].dtype)
        result[order] = torch.cat(outputs)
        return result, truncated

    def predict(self, pairs: Sequence[Pair]) -> list[Answer]:
        """Return one answer per pair, in order."""
        if not pairs:
            return []
        a = [p.text_a for p in pairs]
        b = [p.text_b for p in pairs]
        if self.task is Task.CLASSIFY:
            logits, truncated = self._run(a, b)
            probs = torch.softmax(logits, dim=-1).tolist()
            return [
                Answer(
                    label=self.labels[max(range(len(row)), key=row.__getitem__)],
                    probabilities={label: round(p, 6) for label, p in zip(self.labels, row, strict=True)},
                    similarity=None,
                    truncated=t,
                )
                for row, t in zip(probs, truncated, strict=True)
            ]
        emb, truncated = self._run(a + b, None)
        n = len(pairs)
        sims = (emb[:n] * emb[n:]).sum(-1).tolist()
        return [
            Answer(
                label=LABELS[1] if s >= self.threshold else LABELS[0],
                probabilities=None,
                similarity=round(s, 6),
                truncated=truncated[i] or truncated[n + i],
            )
            for i, s in enumerate(sims)
        ]
