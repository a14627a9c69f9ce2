"""The model paths: MiniLM against sentence-transformers, the classifier, truncation, Neuron (faked), devices."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.numeric import below, prob_gap
from workloads.bert import engines, models, samples
from workloads.bert.predictor import Pair, Predictor
from workloads.common.entry import WorkloadError


def test_minilm_similarity_matches_sentence_transformers(minilm_predictor: Predictor) -> None:
    # Independent reference: the sentence-transformers library's own pipeline for the same folder
    # (its Transformer -> Pooling -> Normalize modules). Tolerance 1e-4: same float32 weights, the
    # only differences are summation order in pooling and attention kernels.
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(models.minilm_dir()), device="cpu", local_files_only=True)
    pairs = samples.pairs()[:6]
    a = reference.encode([p[0] for p in pairs], convert_to_numpy=True)
    b = reference.encode([p[1] for p in pairs], convert_to_numpy=True)
    expected = (a * b).sum(-1)
    got = [ans.similarity for ans in minilm_predictor.predict([Pair(x, y) for x, y in pairs])]
    below(
        "MiniLM similarity vs sentence-transformers",
        float(np.max(np.abs(np.asarray(got) - expected))),
        1e-4,
        source="same float32 weights; summation order only",
    )


def test_minilm_ranks_every_paraphrase_above_its_near_miss(minilm_predictor: Predictor) -> None:
    for anchor, paraphrase, other in samples.TRIPLES:
        para, miss = minilm_predictor.predict([Pair(anchor, paraphrase), Pair(anchor, other)])
        assert para.similarity is not None and miss.similarity is not None
        assert para.similarity > miss.similarity, anchor


def test_classifier_returns_probabilities_that_sum_to_one(tiny_predictor: Predictor) -> None:
    answers = tiny_predictor.predict([Pair("a cat", "a dog"), Pair("one", "two")])
    for answer in answers:
        assert answer.probabilities is not None
        assert set(answer.probabilities) == {"not_paraphrase", "paraphrase"}
        assert sum(answer.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert answer.label == max(answer.probabilities, key=answer.probabilities.__getitem__)


def test_batched_answers_equal_one_at_a_time(tiny_predictor: Predictor) -> None:
    # Padding must not change an answer: rows of a batch are independent (attention mask).
    pairs = [Pair("short", "pair"), Pair("a much longer first sentence here", "and a second one too")]
    together = tiny_predictor.predict(pairs)
    alone = [tiny_predictor.predict([p])[0] for p in pairs]
    for x, y in zip(together, alone, strict=True):
        below("batched vs alone probability", prob_gap(x, y), 1e-5, source="float32 summation order only")


def test_over_long_input_is_truncated_and_flagged(tiny_predictor: Predictor) -> None:
    long = " ".join(["word"] * 50)
    short, cut = tiny_predictor.predict([Pair("two words", "three more words"), Pair(long, "x")])
    assert not short.truncated and cut.truncated


def test_unknown_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="does not exist"):
        models.resolve(str(tmp_path / "nope"))
    with pytest.raises(WorkloadError, match=r"has no config\.json"):
        models.resolve(str(tmp_path))


def test_cuda_request_without_a_gpu_is_refused() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(WorkloadError, match="no CUDA GPU"):
        engines.resolve_device("cuda")
    with pytest.raises(WorkloadError, match="neither torch-neuronx"):
        engines.resolve_device("neuron")
    assert engines.resolve_device("auto") is engines.Device.CPU


def test_gpu_dtype_choice() -> None:
    assert engines.resolve_dtype(engines.Device.CPU, "auto") is torch.float32
    assert engines.resolve_dtype(engines.Device.CUDA, "fp16") is torch.float16
    with pytest.raises(WorkloadError, match="fp16"):
        engines.resolve_dtype(engines.Device.CPU, "fp16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_half_precision_matches_cpu(tiny: models.LoadedModel) -> None:
    cpu = Predictor(tiny, engines.build_engine(tiny, device="cpu"), max_length=16)
    gpu = Predictor(tiny, engines.build_engine(tiny, device="cuda", precision="bf16"), max_length=16)
    pairs = [Pair("a b", "c d")]
    # bf16 keeps 8 bits of mantissa: probabilities agree to ~1e-2.
    assert gpu.predict(pairs)[0].probabilities == pytest.approx(cpu.predict(pairs)[0].probabilities, abs=2e-2)


class FakeNeuron(types.ModuleType):
    """Stands in for torch_neuronx: trace checks the static shape, DataParallel splits over 2 'cores'."""

    def __init__(self) -> None:
        super().__init__("torch_neuronx")
        self.traced_shapes: list[tuple[int, ...]] = []
        self.calls: list[tuple[int, ...]] = []

    def trace(
        self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], compiler_args: list[str]
    ) -> object:
        self.traced_shapes.append(tuple(example[0].shape))
        assert "--auto-cast" in compiler_args
        fake = self

        def compiled(*inputs: torch.Tensor) -> torch.Tensor:
            assert tuple(inputs[0].shape) == fake.traced_shapes[0], (
                "a Neuron model only runs its traced shape"
            )
            return module(*inputs)

        return compiled

    def DataParallel(self, compiled: object) -> object:
        fake = self

        def parallel(*inputs: torch.Tensor) -> torch.Tensor:
            fake.calls.append(tuple(inputs[0].shape))
            chunks = [torch.split(t, fake.traced_shapes[0][0]) for t in inputs]
            return torch.cat([compiled(*parts) for parts in zip(*chunks, strict=True)])  # type: ignore[operator]

        return parallel


def test_neuron_path_pads_to_the_static_shape_and_matches_cpu(tiny: models.LoadedModel) -> None:
    sdk = FakeNeuron()
    neuron = Predictor(
        tiny, engines.build_engine(tiny, sdk=sdk, static_batch=4, static_seq_len=16), max_length=16
    )
    cpu = Predictor(tiny, engines.build_engine(tiny, device="cpu"), max_length=16)
    pairs = [Pair(f"sentence number {i}", "another one") for i in range(5)]  # 5 rows -> padded to 8
    got, want = neuron.predict(pairs), cpu.predict(pairs)
    assert sdk.traced_shapes == [(4, 16)] and sdk.calls == [(8, 16)]
    for g, w in zip(got, want, strict=True):
        below(
            "static-shape (padded) vs CPU probability", prob_gap(g, w), 1e-5, source="float32 summation order"
        )


def test_onnxruntime_engine_matches_pytorch(tiny: models.LoadedModel) -> None:
    # Reference: the same Head in PyTorch eager. 1e-5 on probabilities: both fp32, only the
    # kernels' summation order differs (measured difference about 2e-7 for MiniLM embeddings).
    pairs = [Pair("a short one", "two"), Pair("a much longer first sentence for the model", "ok")]
    ort = Predictor(tiny, engines.build_engine(tiny, device="cpu", runtime="onnxruntime"), max_length=16)
    eager = Predictor(tiny, engines.build_engine(tiny, device="cpu"), max_length=16)
    for got, want in zip(ort.predict(pairs), eager.predict(pairs), strict=True):
        below(
            "ONNX Runtime vs PyTorch probability", prob_gap(got, want), 1e-5, source="fp32 both; kernels only"
        )
        assert got.truncated == want.truncated


def test_onnxruntime_missing_or_misused_is_a_clear_error(
    tiny: models.LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WorkloadError, match="CPU only"):
        engines.build_engine(tiny, device="cpu", runtime="onnxruntime", sdk=types.ModuleType("fake"))
    with pytest.raises(WorkloadError, match="fp32 only"):
        engines.build_engine(tiny, device="cpu", runtime="onnxruntime", precision="bf16")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import fails as if absent
    with pytest.raises(WorkloadError, match=r"pip install onnxruntime==1\.31\.1"):
        engines.build_engine(tiny, device="cpu", runtime="onnxruntime")


def test_an_engine_in_another_dtype_leaves_the_loaded_model_alone(tiny: models.LoadedModel) -> None:
    # Module.to() converts in place; an engine that changes device or dtype must convert a copy, or
    # the fp32 CPU reference built from the same loaded model (as the GPU test does) silently changes.
    bf16 = engines.build_engine(tiny, device="cpu", precision="bf16")
    assert next(tiny.model.parameters()).dtype is torch.float32
    assert next(bf16.head.parameters()).dtype is torch.bfloat16  # type: ignore[attr-defined]
    fp32 = engines.build_engine(tiny, device="cpu")
    assert next(fp32.head.parameters()).data_ptr() == next(tiny.model.parameters()).data_ptr()  # type: ignore[attr-defined]
