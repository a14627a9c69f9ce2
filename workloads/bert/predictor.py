"""Answer sentence pairs: tokenise (truncating and flagging over-long input), run the engine, decode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workloads.bert.engines import Engine
from workloads.bert.models import LABELS, LoadedModel, Task


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

    def _encode(
        self, first: list[str], second: list[str] | None
    ) -> tuple[dict[str, torch.Tensor], list[bool]]:
        tokenizer = self.loaded.tokenizer
        full = tokenizer(first, second, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        truncated = [len(ids) > self.max_length for ids in full]
        padding = "max_length" if self.engine.static_shape else "longest"
        encoded = tokenizer(
            first,
            second,
            truncation="longest_first" if second is not None else True,
            max_length=self.max_length,
            padding=padding,
            return_tensors="pt",
            return_token_type_ids=True,
        )
        batch = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        return batch, truncated

    def predict(self, pairs: Sequence[Pair]) -> list[Answer]:
        """Return one answer per pair, in order."""
        if not pairs:
            return []
        a = [p.text_a for p in pairs]
        b = [p.text_b for p in pairs]
        if self.task is Task.CLASSIFY:
            batch, truncated = self._encode(a, b)
            probs = torch.softmax(self.engine.run(batch), dim=-1).tolist()
            return [
                Answer(
                    label=self.labels[max(range(len(row)), key=row.__getitem__)],
                    probabilities={label: round(p, 6) for label, p in zip(self.labels, row, strict=True)},
                    similarity=None,
                    truncated=t,
                )
                for row, t in zip(probs, truncated, strict=True)
            ]
        batch, truncated = self._encode(a + b, None)
        emb = self.engine.run(batch)
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
