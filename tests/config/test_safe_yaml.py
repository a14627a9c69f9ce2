"""The config YAML reader: what it still accepts (BOMs, aliases within the limits) and where the limits lie."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlhpc.config import ConfigError, load_config, parse_config
from mlhpc.config.safe_yaml import MAX_DEPTH, MAX_NODES, YamlRefused, load
from mlhpc.errors import ECHO_LIMIT, echo, shorten


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfproject:\n  name: bom-test\n")
    assert load_config(path).project.name == "bom-test"


def test_aliases_and_merges_within_the_limits_still_work() -> None:
    config, _ = parse_config(
        "project:\n  tags: &tags {Team: ml}\n"
        "network:\n  availability_zones: &zones [us-east-1a, us-east-1b]\n  az_count: 2\n"
    )
    assert config.project.tags == {"Team": "ml"}
    assert list(config.network.availability_zones or []) == ["us-east-1a", "us-east-1b"]


def test_core_tags_are_allowed() -> None:
    data, _ = load(
        "a: !!str 12\nb: !!int '3'\nc: !!float 1\nd: !!bool true\ne: !!null ''\nf: !!seq [1]\ng: !!map {}\n"
    )
    assert data == {"a": "12", "b": 3, "c": 1.0, "d": True, "e": None, "f": [1], "g": {}}


def _aliased(copies: int) -> str:
    # root mapping 1 + key 'a' 1 + the anchored list 1 + 1,000 items, key 'b' 1 + its list 1,
    # and each alias counts the anchored list again (1,001 values): 1,005 + 1,001 x copies
    return f"a: &w [{', '.join(['1'] * 1000)}]\nb: [{', '.join(['*w'] * copies)}]\n"


def test_the_expansion_limit_counts_every_aliased_value() -> None:
    fits = (MAX_NODES - 1005) // 1001
    assert 1005 + 1001 * fits <= MAX_NODES < 1005 + 1001 * (fits + 1)
    data, _ = load(_aliased(fits))
    assert len(data["b"]) == fits
    with pytest.raises(YamlRefused, match=f"more than {MAX_NODES:,} values once its aliases are expanded"):
        load(_aliased(fits + 1))


def test_the_depth_limit() -> None:
    # a top-level mapping, its key, then nested lists: the innermost list is at depth MAX_DEPTH
    assert load("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))[0] is not None
    with pytest.raises(YamlRefused, match=f"nested more than {MAX_DEPTH} levels"):
        load("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)


def test_a_bomb_is_refused_quickly() -> None:
    import time

    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 12)]
    started = time.perf_counter()
    with pytest.raises(ConfigError):
        parse_config("\n".join(lines))
    # 9^12 values once expanded; refused after composing a few hundred nodes (generous bound for CI)
    assert time.perf_counter() - started < 5


def test_shorten_keeps_short_text_and_says_how_much_it_cut() -> None:
    assert shorten("abc") == "abc"
    assert shorten("x" * ECHO_LIMIT) == "x" * ECHO_LIMIT
    assert shorten("x" * (ECHO_LIMIT + 5)) == "x" * ECHO_LIMIT + "…(5 more characters)"
    assert echo("it's") == '"it\'s"' and echo(12) == "12"
    assert echo("y" * 10_000).endswith("(9,762 more characters)")
