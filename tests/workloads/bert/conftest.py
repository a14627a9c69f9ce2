"""Shared fixtures: models load once per test process (the real MiniLM and a tiny random classifier)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.bert import engines, models
from workloads.bert.predictor import Predictor


@pytest.fixture(scope="session")
def minilm() -> models.LoadedModel:
    return models.load("minilm")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.make_random_classifier("bert-tiny-random", root=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny(tiny_dir: Path) -> models.LoadedModel:
    return models.load(str(tiny_dir))


@pytest.fixture(scope="session")
def minilm_predictor(minilm: models.LoadedModel) -> Predictor:
    return Predictor(minilm, engines.build_engine(minilm, device="cpu"), max_length=64)


@pytest.fixture(scope="session")
def tiny_predictor(tiny: models.LoadedModel) -> Predictor:
    return Predictor(tiny, engines.build_engine(tiny, device="cpu"), max_length=16)
